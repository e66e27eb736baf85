// Differentiable matrix products: matmul for [.., M, K] x [K, N] (leading dims folded into M)
// and linear (PyTorch's nn.functional.linear: y = x W^T + b) with its bias fused in the GEMM.
#pragma once

#include "duet/tensor/tensor.h"

namespace duet::ops {

// a: [..., M, K] (any leading dims, folded into rows), b: [K, N] -> [..., M, N].
Tensor matmul(const Tensor& a, const Tensor& b);
// Batched: a [B, M, K] x b [B, K, N] -> [B, M, N].
Tensor bmm(const Tensor& a, const Tensor& b);
// x: [..., in], weight: [out, in], bias: [out] or undefined -> [..., out].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

}  // namespace duet::ops
