// Shape: up to six dimensions held inline (no heap), with the helpers every layer needs
// (element counts with overflow checks, contiguous strides, negative-axis normalisation).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace duet {

inline constexpr int kMaxDims = 6;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(const std::vector<int64_t>& dims);

  int rank() const { return rank_; }
  int64_t operator[](int i) const { return dims_[static_cast<size_t>(i)]; }
  int64_t& operator[](int i) { return dims_[static_cast<size_t>(i)]; }
  // Dimension by axis, negative counts from the end; throws duet::Error when out of range.
  int64_t dim(int axis) const { return dims_[static_cast<size_t>(normalize_axis(axis))]; }
  int normalize_axis(int axis) const;

  // Number of elements; throws duet::Error on int64 overflow.
  int64_t numel() const;
  std::vector<int64_t> to_vector() const { return {dims_.begin(), dims_.begin() + rank_}; }
  // Row-major strides in elements.
  Shape contiguous_strides() const;
  std::string str() const;  // "[2, 3, 4]"

  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }

  const int64_t* data() const { return dims_.data(); }

 private:
  std::array<int64_t, kMaxDims> dims_{};
  int rank_ = 0;
};

// Multiplies with an overflow check; used wherever sizes come from files or users.
int64_t checked_mul(int64_t a, int64_t b, const char* what);

}  // namespace duet
