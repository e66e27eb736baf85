// What every image classifier family shares: penultimate features (the vector the final linear
// head consumes, after global pooling or the class token) and that head, with forward(x) =
// logits(features(x)). The judge of generated images and the gap report read features through it.
#pragma once

#include <string>
#include <utility>

#include "duet/nn/module.h"

namespace duet::models {

class Classifier : public nn::Module {
 public:
  explicit Classifier(std::string type_name) : Module(std::move(type_name)) {}

  // [N, C, H, W] -> [N, F], F = the head's input width.
  virtual Tensor features(const Tensor& x) = 0;
  // [N, F] -> logits [N, classes]: the final linear layer alone.
  virtual Tensor logits(const Tensor& features) = 0;
  // Defined once here so that features and forward cannot drift apart.
  Tensor forward(const Tensor& x) override { return logits(features(x)); }
};

}  // namespace duet::models
