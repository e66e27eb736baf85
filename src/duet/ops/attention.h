// Differentiable multi-head scaled dot-product attention.
#pragma once

#include "duet/tensor/tensor.h"

namespace duet::ops {

// q: [B, H, L, D], k and v: [B, H, S, D] -> [B, H, L, D]; softmax(q k^T * scale) v with
// scale = 1 / sqrt(D) when scale <= 0.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    float scale = 0.0f);

}  // namespace duet::ops
