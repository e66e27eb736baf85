// Differentiable layout ops: views that track gradients, copies into contiguous memory, concat.
#pragma once

#include <vector>

#include "duet/tensor/tensor.h"

namespace duet::ops {

Tensor contiguous(const Tensor& x);  // x itself when already contiguous
Tensor reshape(const Tensor& x, const std::vector<int64_t>& dims);  // one dim may be -1
Tensor flatten(const Tensor& x, int start_axis = 1);                // [N, ...] -> [N, rest]
Tensor permute(const Tensor& x, const std::vector<int>& order);
Tensor transpose(const Tensor& x, int a, int b);
Tensor slice(const Tensor& x, int axis, int64_t begin, int64_t end);
Tensor concat(const std::vector<Tensor>& xs, int axis);

}  // namespace duet::ops
