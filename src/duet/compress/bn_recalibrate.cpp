#include "duet/compress/bn_recalibrate.h"

#include "duet/autograd/autograd.h"
#include "duet/nn/layers.h"

namespace duet::compress {

void recalibrate_batchnorm(nn::Module& model, const std::vector<Tensor>& batches) {
  std::vector<std::pair<nn::BatchNorm2d*, float>> norms;  // with their own momentum
  for (auto& [name, m] : model.named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(m)) norms.emplace_back(bn, bn->momentum);
  if (norms.empty() || batches.empty()) {
    model.eval();
    return;
  }
  autograd::NoGradGuard no_grad;
  model.train();
  // running = (1 - m) * running + m * batch with m = 1 / (i + 1) at batch i is the running
  // average of the batch statistics: batch 0 replaces the old statistics outright.
  for (size_t i = 0; i < batches.size(); ++i) {
    for (auto& [bn, momentum] : norms) bn->momentum = 1.0f / static_cast<float>(i + 1);
    model.forward(batches[i]);
  }
  for (auto& [bn, momentum] : norms) bn->momentum = momentum;
  model.eval();
}

}  // namespace duet::compress
