// Differentiable 2-D convolution (NCHW, PyTorch weight layout and semantics).
#pragma once

#include <vector>

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

// The gradients of a convolution's input, weight and bias (shape s, bias or not) from the output
// gradient g, contiguous: dx when need_dx, dw (and db with a bias) when need_dw; the others
// undefined. The backward pass of conv2d and of the fused convolutions.
std::vector<Tensor> conv2d_gradients(const kernels::Conv2dShape& s, const Tensor& x,
                                     const Tensor& w, bool has_bias, bool need_dx, bool need_dw,
                                     const Tensor& g);

// x: [N, C, H, W], weight: [K, C / groups, R, S], bias: [K] or undefined.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              const Conv2dOptions& options = {});

}  // namespace duet::ops
