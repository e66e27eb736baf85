// Tensor: a typed, strided view into reference-counted, 64-byte aligned storage from the caching
// allocator. Views (reshape, permute, slice, transpose) share storage and carry no gradient
// tracking; the differentiable versions live in ops/. Autograd state hangs off an opaque pointer
// that only the autograd layer understands, so this layer stays at the bottom of the stack.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "duet/tensor/dtype.h"
#include "duet/tensor/error.h"
#include "duet/tensor/shape.h"

namespace duet {

class Generator;

namespace autograd {
struct Meta;  // defined in autograd/, owned here only through a shared_ptr
}

// A block of aligned bytes; released to the allocator cache when the last tensor lets go.
class Storage {
 public:
  explicit Storage(size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  void* data_;
  size_t bytes_;
};

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::i32;
}
template <>
constexpr DType dtype_of<int8_t>() {
  return DType::i8;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return DType::u8;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::i64;
}
template <>
constexpr DType dtype_of<uint16_t>() {
  return DType::f16;
}  // raw half bits; bf16 via data_ptr

class Tensor {
 public:
  Tensor() = default;  // undefined tensor (no storage), e.g. "no gradient"

  static Tensor empty(const Shape& shape, DType dtype = DType::f32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32);
  static Tensor full(const Shape& shape, float value);
  static Tensor ones(const Shape& shape) { return full(shape, 1.0f); }
  static Tensor scalar(float value) { return full(Shape{}, value); }
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
  static Tensor from_vector(const std::vector<int32_t>& values, const Shape& shape);
  static Tensor uniform(const Shape& shape, Generator& gen, float lo = 0.0f, float hi = 1.0f);
  static Tensor normal(const Shape& shape, Generator& gen, float mean = 0.0f, float stddev = 1.0f);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int rank() const { return shape_.rank(); }
  int64_t dim(int axis) const { return shape_.dim(axis); }
  int64_t numel() const { return shape_.numel(); }
  DType dtype() const { return dtype_; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  int64_t offset() const { return offset_; }
  bool is_contiguous() const;
  // True when both tensors view the same storage.
  bool shares_storage(const Tensor& other) const { return storage_ == other.storage_; }

  // Typed pointer to the first element; checks the dtype (and that the tensor is defined).
  template <class T>
  T* data() const {
    check_access(dtype_of<T>());
    return static_cast<T*>(storage_->data()) + offset_;
  }
  void* raw_data() const;  // pointer to the first element, any dtype
  template <class T>
  std::span<T> span() const {  // contiguous tensors only
    require_contiguous("span");
    return {data<T>(), static_cast<size_t>(numel())};
  }
  std::vector<float> to_vector() const;  // f32 (any strides) as a flat row-major vector
  float item() const;                    // the value of a one-element f32 tensor

  // Views sharing storage (no gradient tracking; see ops/ for differentiable versions).
  Tensor reshape(
      const Shape& shape) const;  // contiguous tensors; one dim may be -1 via reshape_infer
  Tensor reshape_infer(std::vector<int64_t> dims) const;
  Tensor permute(const std::vector<int>& order) const;
  Tensor transpose(int a, int b) const;
  Tensor slice(int axis, int64_t begin, int64_t end) const;  // [begin, end) along axis
  Tensor select(int axis, int64_t index) const;              // drops the axis

  // Copies (contiguous, row-major) from a same-shape same-dtype contiguous tensor.
  void copy_from(const Tensor& src);
  void fill(float value);  // f32, contiguous
  Tensor clone() const;    // contiguous tensors; a fresh copy

  // Autograd state (opaque here). Only the autograd layer reads or writes it.
  const std::shared_ptr<autograd::Meta>& autograd_meta() const { return autograd_; }
  void set_autograd_meta(std::shared_ptr<autograd::Meta> meta) { autograd_ = std::move(meta); }

 private:
  void check_access(DType expected) const;
  void require_contiguous(const char* what) const;

  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;  // in elements
  Shape shape_;
  Shape strides_;  // in elements
  DType dtype_ = DType::f32;
  std::shared_ptr<autograd::Meta> autograd_;
};

// The index (row-major) of the first NaN or infinite element of a contiguous floating tensor
// (F32, F64, F16, BF16), or -1 when every element is finite or the dtype holds integers.
// Loaders use it to refuse a file whose values would turn every result into silent garbage.
int64_t first_non_finite(const Tensor& t);

}  // namespace duet
