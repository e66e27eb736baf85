// Differentiable softmax family and losses.
#pragma once

#include "duet/tensor/tensor.h"

namespace duet::ops {

Tensor softmax(const Tensor& x);      // over the last dimension
Tensor log_softmax(const Tensor& x);  // over the last dimension
// logits: [N, C], targets: [N] int32 in [0, C). Mean over N; label smoothing as in torch.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, float label_smoothing = 0.0f);
// Mean of (a - b)^2 over all elements; shapes must match.
Tensor mse_loss(const Tensor& a, const Tensor& b);

}  // namespace duet::ops
