// Differentiable embedding lookup and dropout.
#pragma once

#include "duet/tensor/rng.h"
#include "duet/tensor/tensor.h"

namespace duet::ops {

// table: [V, D], indices: int32 of any shape -> [..., D].
Tensor embedding(const Tensor& table, const Tensor& indices);
// Zeroes each element with probability p and scales the rest by 1 / (1 - p) when training;
// identity otherwise. Draws from `gen` (so runs are reproducible from the seed).
Tensor dropout(const Tensor& x, float p, bool training, Generator& gen);

}  // namespace duet::ops
