#include "duet/models/unified.h"

#include <vector>

#include "duet/ops/blocked.h"
#include "duet/ops/pool.h"

namespace duet::models {

UnifiedNet::UnifiedNet(Generator& gen, const UNetConfig& config) : Classifier("UnifiedNet") {
  // The UNet is built first, from the same generator state, so that a unified model and a plain
  // UNet of the same config and seed start from the same trunk weights.
  unet_ = register_module("unet", std::make_shared<UNet>(gen, config));
  const int64_t width = config.channels.back();
  head_norm_ = register_module("head_norm", std::make_shared<nn::GroupNorm>(config.groups, width));
  head_ = register_module("head", std::make_shared<nn::Linear>(gen, width, config.num_classes));
}

Tensor UnifiedNet::features(const Tensor& x) {
  const int64_t n = x.dim(0);
  const UNetConfig& c = unet_->config();
  UNet::Encoding e =
      unet_->encode(x, Tensor::zeros(Shape{n}),
                    Tensor::from_vector(std::vector<int32_t>(n, c.null_class()), Shape{n}));
  const Tensor h = head_norm_->forward(e.middle, ops::NormActivation::silu);
  return ops::is_blocked(h) ? ops::global_avg_pool2d_blocked(h, c.channels.back())
                            : ops::global_avg_pool2d(h);
}

Tensor UnifiedNet::logits(const Tensor& features) {
  return head_->forward(features);
}

UNet* generator_network(nn::Module& model) {
  if (auto* unet = dynamic_cast<UNet*>(&model)) return unet;
  if (auto* unified = dynamic_cast<UnifiedNet*>(&model)) return &unified->unet();
  return nullptr;
}

}  // namespace duet::models
