// Differentiable pointwise activations.
#pragma once

#include "duet/tensor/tensor.h"

namespace duet::ops {

Tensor relu(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor gelu(const Tensor& x);  // exact erf form, like torch.nn.GELU()
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);

}  // namespace duet::ops
