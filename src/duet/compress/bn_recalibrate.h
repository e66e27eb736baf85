// Re-estimates BatchNorm running statistics after a network changed under them (channels pruned,
// weights edited): every BN's running mean and variance become the exact average over the given
// batches, computed with train-mode forwards that touch no weight.
#pragma once

#include <vector>

#include "duet/nn/module.h"
#include "duet/tensor/tensor.h"

namespace duet::compress {

// `batches`: inputs as the model sees them (normalised). The model is left in eval mode; every
// BN's momentum is restored. No-op for a model without BatchNorm or an empty list.
void recalibrate_batchnorm(nn::Module& model, const std::vector<Tensor>& batches);

}  // namespace duet::compress
