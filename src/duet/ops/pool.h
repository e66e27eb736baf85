// Differentiable pooling and resampling over NCHW tensors.
#pragma once

#include "duet/tensor/tensor.h"

namespace duet::ops {

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding = 0);
// count_include_pad = true, like torch's default.
Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding = 0);
// [N, C, H, W] -> [N, C].
Tensor global_avg_pool2d(const Tensor& x);
// Nearest-neighbour upsampling by an integer factor, of [N, C, H, W] or a channel-blocked x
// (ops/blocked.h; the result is blocked too).
Tensor upsample_nearest2d(const Tensor& x, int64_t factor);

}  // namespace duet::ops
