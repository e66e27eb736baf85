// Convolutions with more in their passes over input and output (kernels/conv2d_fused.h), the
// UNet residual block's two halves:
// - group_norm_act_conv2d, inference only: conv2d(act(group_norm(x))) + image_bias[:, :, None,
//   None] + residual, the normalisation applied as the input is read;
// - conv2d_add, differentiable: conv2d(x) + image_bias[:, :, None, None] + residual, the two sums
//   made in the convolution's output store, so that training writes the block's output once
//   instead of three times (and keeps no sum apart for the backward pass).
#pragma once

#include "duet/kernels/gemm.h"
#include "duet/ops/conv.h"
#include "duet/tensor/tensor.h"

namespace duet::ops {

// group_norm(x, groups, weight, bias, eps) followed by act; weight/bias [C] or undefined.
struct GroupNormAct {
  int64_t groups = 1;
  Tensor weight, bias;
  float eps = 1e-5f;
  kernels::Activation act = kernels::Activation::none;
};

// x [N, C, H, W]; weight [K, C, R, S] (groups 1), bias [K] or undefined; image_bias [N, K] or
// undefined; residual shaped like the output or undefined. An Error when gradients are enabled
// (use the separate ops to train).
Tensor group_norm_act_conv2d(const Tensor& x, const GroupNormAct& norm, const Tensor& weight,
                             const Tensor& bias, const Conv2dOptions& options,
                             const Tensor& image_bias, const Tensor& residual);

// x [N, C, H, W]; weight [K, C, R, S] (groups 1), bias [K] or undefined; image_bias [N, K] or
// undefined; residual shaped like the output or undefined. Records gradients for all five.
Tensor conv2d_add(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Conv2dOptions& options, const Tensor& image_bias, const Tensor& residual);

}  // namespace duet::ops
