// Differentiable elementwise arithmetic with NumPy broadcasting, and scalar forms.
#pragma once

#include "duet/tensor/tensor.h"

namespace duet::ops {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add_scalar(const Tensor& a, float s);
Tensor mul_scalar(const Tensor& a, float s);
// The broadcast result shape of a and b; throws an Error naming `op` and both shapes.
Shape broadcast_shape(const Shape& a, const Shape& b, const char* op);

}  // namespace duet::ops
