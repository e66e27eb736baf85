// Inference-only fusion of a GroupNorm and activation in front of a convolution, and of a
// per-image bias and a residual after it: conv2d(act(group_norm(x))) + image_bias[:, :, None,
// None] + residual in one pass over the convolution's input and output
// (kernels/conv2d_fused.h), the UNet residual block's two halves. Records no gradients.
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

}  // namespace duet::ops
