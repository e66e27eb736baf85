#include "duet/tensor/shape.h"

#include "duet/tensor/error.h"

namespace duet {

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::vector<int64_t>(dims)) {}

Shape::Shape(const std::vector<int64_t>& dims) {
  if (dims.size() > kMaxDims) fail("tensors have at most ", kMaxDims, " dims, got ", dims.size());
  rank_ = static_cast<int>(dims.size());
  for (int i = 0; i < rank_; ++i) {
    if (dims[static_cast<size_t>(i)] < 0)
      fail("shape dimension ", i, " is negative (", dims[static_cast<size_t>(i)], ")");
    dims_[static_cast<size_t>(i)] = dims[static_cast<size_t>(i)];
  }
}

int Shape::normalize_axis(int axis) const {
  const int a = axis < 0 ? axis + rank_ : axis;
  if (a < 0 || a >= rank_) fail("axis ", axis, " is out of range for shape ", str());
  return a;
}

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail(what, ": size overflows 64 bits (", a, " x ", b, ")");
  return r;
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n = checked_mul(n, dims_[static_cast<size_t>(i)], "shape");
  return n;
}

Shape Shape::contiguous_strides() const {
  Shape s;
  s.rank_ = rank_;
  int64_t acc = 1;
  for (int i = rank_ - 1; i >= 0; --i) {
    s.dims_[static_cast<size_t>(i)] = acc;
    acc *= dims_[static_cast<size_t>(i)];
  }
  return s;
}

std::string Shape::str() const {
  std::string out = "[";
  for (int i = 0; i < rank_; ++i) {
    if (i) out += ", ";
    out += std::to_string(dims_[static_cast<size_t>(i)]);
  }
  return out + "]";
}

bool Shape::operator==(const Shape& o) const {
  if (rank_ != o.rank_) return false;
  for (int i = 0; i < rank_; ++i)
    if (dims_[static_cast<size_t>(i)] != o.dims_[static_cast<size_t>(i)]) return false;
  return true;
}

}  // namespace duet
