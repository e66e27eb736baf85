// One network for both halves of duet: a class-conditional UNet whose encoder also classifies.
//
// Design: the classifier is the UNet's own down path and middle, run on the clean image (t = 0,
// the data end of every objective's time axis) with the "no class" label, so the label it must
// predict never enters the network; GroupNorm -> SiLU -> global average pooling of the middle's
// feature map gives the penultimate features, and one linear layer the logits. Generation is the
// plain UNet forward. Every trunk weight serves both tasks; the head adds C * (classes + 2)
// parameters. Joint training (`duet train --task unified`) adds the head's cross-entropy on the
// clean images to the flow / diffusion loss of the same batch (train/generate_step.h).
#pragma once

#include <memory>

#include "duet/models/classifier.h"
#include "duet/models/unet.h"

namespace duet::models {

class UnifiedNet : public Classifier {
 public:
  // The config is a UNet's (family "unified").
  UnifiedNet(Generator& gen, const UNetConfig& config);

  Tensor features(const Tensor& x) override;  // [N, C, H, W] -> [N, channels.back()]
  Tensor logits(const Tensor& features) override;

  UNet& unet() { return *unet_; }

 private:
  std::shared_ptr<UNet> unet_;
  std::shared_ptr<nn::GroupNorm> head_norm_;
  std::shared_ptr<nn::Linear> head_;
};

// The generator inside a model: the UNet itself, or a unified model's UNet; nullptr for models
// that cannot generate. The one test every command uses to ask "can this model draw images?".
UNet* generator_network(nn::Module& model);

}  // namespace duet::models
