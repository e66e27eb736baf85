// Differentiable 2-D convolution (NCHW, PyTorch weight layout and semantics).
#pragma once

#include "duet/tensor/tensor.h"

namespace duet::ops {

struct Conv2dOptions {
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
};

// x: [N, C, H, W], weight: [K, C / groups, R, S], bias: [K] or undefined.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              const Conv2dOptions& options = {});

}  // namespace duet::ops
