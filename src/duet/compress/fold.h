// BatchNorm folding for inference: every Conv2d followed by an eval-mode BatchNorm2d becomes one
// FusedConv with bias, the ReLU after it and (in residual blocks) the shortcut add + final ReLU
// move into the conv's GEMM epilogue. Each block type has one folding rule (fold.cpp).
#pragma once

#include <memory>

#include "duet/nn/layers.h"

namespace duet::compress {

// The conv's weight and bias with the BatchNorm after it (null: none) folded in, per output
// channel: w' = w * t, b' = beta + (b - mean) * t with t = gamma / sqrt(var + eps), using the
// running statistics (eval mode), computed in double. New tensors; the layers are not modified.
struct FoldedWeights {
  Tensor weight, bias;
};
FoldedWeights fold_batch_norm(const nn::Conv2d& conv, const nn::BatchNorm2d* bn);

// True when fold_for_inference has a rule for this model's family (CIFAR and ImageNet-style
// ResNets, ShuffleNetV2, RepVGG in either form).
bool foldable(const nn::Module& model);

// A new model computing the same function as `model` in eval mode (within float rounding), made
// of FusedConvs: one conv call per conv + BN (+ ReLU) (+ residual add + ReLU). Weights are
// copied, so later changes to `model` do not reach it. The result is in eval mode, requires no
// gradients and throws if run in training mode. Error naming the type when the family has no
// rule (see foldable).
std::shared_ptr<nn::Module> fold_for_inference(nn::Module& model);

// What inference commands run: fold_for_inference(*model) when foldable, else `model` itself.
std::shared_ptr<nn::Module> inference_model(std::shared_ptr<nn::Module> model);

}  // namespace duet::compress
