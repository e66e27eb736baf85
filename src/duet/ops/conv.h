// Differentiable 2-D convolution (NCHW, PyTorch weight layout and semantics).
#pragma once

#include "duet/kernels/conv2d.h"
#include "duet/tensor/tensor.h"

namespace duet::ops {

struct Conv2dOptions {
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
};

// The kernel-level shape of a convolution of input x [N, C, H, W] with weight [K, C/groups, R, S]
// (square stride, padding and dilation from options). Builds it only; callers validate.
kernels::Conv2dShape conv2d_shape(const Shape& x, const Shape& weight,
                                  const Conv2dOptions& options);

// The same after checking x, weight and bias (undefined or [K]) for conv2d: an Error naming the
// op and both shapes otherwise.
kernels::Conv2dShape checked_conv2d_shape(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                          const Conv2dOptions& options);

// x: [N, C, H, W], weight: [K, C / groups, R, S], bias: [K] or undefined.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              const Conv2dOptions& options = {});

}  // namespace duet::ops
