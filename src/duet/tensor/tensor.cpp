#include "duet/tensor/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "duet/tensor/allocator.h"
#include "duet/tensor/rng.h"

namespace duet {

Storage::Storage(size_t bytes) : data_(memory::allocate(bytes)), bytes_(bytes) {}
Storage::~Storage() {
  memory::release(data_, bytes_);
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  const int64_t n = shape.numel();
  const int64_t bytes = checked_mul(n, static_cast<int64_t>(dtype_size(dtype)), "tensor bytes");
  Tensor t;
  t.storage_ = std::make_shared<Storage>(static_cast<size_t>(bytes));
  t.shape_ = shape;
  t.strides_ = shape.contiguous_strides();
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.storage_->data(), 0, t.nbytes());
  return t;
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape, DType::f32);
  t.fill(value);
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape) {
  DUET_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "from_vector: ", values.size(),
             " values for shape ", shape.str());
  Tensor t = empty(shape, DType::f32);
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

Tensor Tensor::from_vector(const std::vector<int32_t>& values, const Shape& shape) {
  DUET_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "from_vector: ", values.size(),
             " values for shape ", shape.str());
  Tensor t = empty(shape, DType::i32);
  std::copy(values.begin(), values.end(), t.data<int32_t>());
  return t;
}

Tensor Tensor::uniform(const Shape& shape, Generator& gen, float lo, float hi) {
  Tensor t = empty(shape, DType::f32);
  gen.uniform(t.data<float>(), t.numel(), lo, hi);
  return t;
}

Tensor Tensor::normal(const Shape& shape, Generator& gen, float mean, float stddev) {
  Tensor t = empty(shape, DType::f32);
  gen.normal(t.data<float>(), t.numel(), mean, stddev);
  return t;
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int i = rank() - 1; i >= 0; --i) {
    if (shape_[i] != 1 && strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

void Tensor::check_access(DType expected) const {
  if (!storage_) fail("access to an undefined tensor");
  if (expected != dtype_ &&
      !(expected == DType::f16 && dtype_ == DType::bf16))  // uint16_t reads both half formats
    fail("tensor of dtype ", dtype_name(dtype_), " accessed as ", dtype_name(expected));
}

void Tensor::require_contiguous(const char* what) const {
  if (!is_contiguous())
    fail(what, ": tensor of shape ", shape_.str(), " is not contiguous (make it contiguous first)");
}

void* Tensor::raw_data() const {
  if (!storage_) fail("access to an undefined tensor");
  return static_cast<char*>(storage_->data()) + offset_ * static_cast<int64_t>(dtype_size(dtype_));
}

std::vector<float> Tensor::to_vector() const {
  const float* base = data<float>();
  std::vector<float> out(static_cast<size_t>(numel()));
  std::array<int64_t, kMaxDims> idx{};
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t off = 0;
    for (int d = 0; d < rank(); ++d) off += idx[static_cast<size_t>(d)] * strides_[d];
    out[i] = base[off];
    for (int d = rank() - 1; d >= 0; --d) {
      if (++idx[static_cast<size_t>(d)] < shape_[d]) break;
      idx[static_cast<size_t>(d)] = 0;
    }
  }
  return out;
}

float Tensor::item() const {
  DUET_CHECK(numel() == 1, "item(): tensor of shape ", shape_.str(), " has ", numel(),
             " elements, expected 1");
  return *data<float>();
}

Tensor Tensor::reshape(const Shape& shape) const {
  require_contiguous("reshape");
  DUET_CHECK(shape.numel() == numel(), "reshape: cannot view shape ", shape_.str(), " (", numel(),
             " elements) as ", shape.str());
  Tensor t = *this;
  t.autograd_.reset();
  t.shape_ = shape;
  t.strides_ = shape.contiguous_strides();
  return t;
}

Tensor Tensor::reshape_infer(std::vector<int64_t> dims) const {
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1) {
      DUET_CHECK(infer < 0, "reshape: more than one -1 in the target shape");
      infer = static_cast<int>(i);
    } else {
      known = checked_mul(known, dims[i], "reshape");
    }
  }
  if (infer >= 0) {
    DUET_CHECK(known > 0 && numel() % known == 0, "reshape: cannot infer -1 for ", shape_.str());
    dims[static_cast<size_t>(infer)] = numel() / known;
  }
  return reshape(Shape(dims));
}

Tensor Tensor::permute(const std::vector<int>& order) const {
  DUET_CHECK(static_cast<int>(order.size()) == rank(), "permute: order has ", order.size(),
             " axes for a tensor of rank ", rank());
  std::vector<bool> seen(static_cast<size_t>(rank()), false);
  Tensor t = *this;
  t.autograd_.reset();
  for (int i = 0; i < rank(); ++i) {
    const int a = shape_.normalize_axis(order[static_cast<size_t>(i)]);
    DUET_CHECK(!seen[static_cast<size_t>(a)], "permute: axis ", a, " repeated");
    seen[static_cast<size_t>(a)] = true;
    t.shape_[i] = shape_[a];
    t.strides_[i] = strides_[a];
  }
  return t;
}

Tensor Tensor::transpose(int a, int b) const {
  std::vector<int> order(static_cast<size_t>(rank()));
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[static_cast<size_t>(shape_.normalize_axis(a))],
            order[static_cast<size_t>(shape_.normalize_axis(b))]);
  return permute(order);
}

Tensor Tensor::slice(int axis, int64_t begin, int64_t end) const {
  const int a = shape_.normalize_axis(axis);
  DUET_CHECK(0 <= begin && begin <= end && end <= shape_[a], "slice: [", begin, ", ", end,
             ") is out of range for axis ", a, " of shape ", shape_.str());
  Tensor t = *this;
  t.autograd_.reset();
  t.offset_ += begin * strides_[a];
  t.shape_[a] = end - begin;
  return t;
}

Tensor Tensor::select(int axis, int64_t index) const {
  const int a = shape_.normalize_axis(axis);
  Tensor s = slice(a, index, index + 1);
  std::vector<int64_t> dims, strides;
  for (int i = 0; i < rank(); ++i) {
    if (i == a) continue;
    dims.push_back(s.shape_[i]);
    strides.push_back(s.strides_[i]);
  }
  s.shape_ = Shape(dims);
  s.strides_ = Shape(strides);
  return s;
}

void Tensor::copy_from(const Tensor& src) {
  DUET_CHECK(src.shape_ == shape_ && src.dtype_ == dtype_, "copy_from: shape/dtype mismatch (",
             src.shape_.str(), " ", dtype_name(src.dtype_), " into ", shape_.str(), " ",
             dtype_name(dtype_), ")");
  require_contiguous("copy_from");
  src.require_contiguous("copy_from");
  std::memcpy(raw_data(), src.raw_data(), nbytes());
}

void Tensor::fill(float value) {
  require_contiguous("fill");
  float* p = data<float>();
  std::fill(p, p + numel(), value);
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_);
  t.copy_from(*this);
  return t;
}

int64_t first_non_finite(const Tensor& t) {
  DUET_CHECK(t.is_contiguous(), "first_non_finite: expected a contiguous tensor");
  auto scan = [&](auto value_at) -> int64_t {
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(value_at(i))) return i;
    return -1;
  };
  switch (t.dtype()) {
    case DType::f32: {
      const float* p = t.data<float>();
      return scan([p](int64_t i) { return p[i]; });
    }
    case DType::f64: {
      const auto* p = static_cast<const double*>(t.raw_data());
      return scan([p](int64_t i) { return p[i]; });
    }
    case DType::f16: {
      const auto* p = static_cast<const uint16_t*>(t.raw_data());
      return scan([p](int64_t i) { return f16_to_f32(p[i]); });
    }
    case DType::bf16: {
      const auto* p = static_cast<const uint16_t*>(t.raw_data());
      return scan([p](int64_t i) { return bf16_to_f32(p[i]); });
    }
    default:
      return -1;
  }
}

}  // namespace duet
