// Differentiable reductions.
#pragma once

#include <vector>

#include "duet/tensor/tensor.h"

namespace duet::ops {

Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdim = false);
Tensor sum_all(const Tensor& x);   // -> one-element tensor of shape []
Tensor mean_all(const Tensor& x);  // -> one-element tensor of shape []

}  // namespace duet::ops
