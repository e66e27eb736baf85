#include "bench/model_macs.h"

#include "duet/autograd/autograd.h"
#include "duet/models/registry.h"
#include "duet/nn/profile.h"

namespace duet::bench {

double forward_macs_per_image(const nlohmann::json& config) {
  Generator gen(0);
  auto model = models::build_model(config, gen);
  model->eval();
  nn::ProfileScope scope;
  autograd::NoGradGuard no_grad;
  model->forward(Tensor::zeros(models::input_shape(config)));
  double macs = 0;
  for (const auto& r : scope.records()) macs += r.macs;
  return macs;
}

}  // namespace duet::bench
