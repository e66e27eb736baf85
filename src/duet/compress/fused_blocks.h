// The fused inference forms of the block types folding knows (built from FusedConv), and the
// classifier shell every folded family shares: features, global average pooling, linear head.
// Like FusedConv they run in eval mode under NoGradGuard only.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "duet/compress/fused_conv.h"
#include "duet/models/classifier.h"
#include "duet/nn/layers.h"

namespace duet::compress {

// A residual basic block (CIFAR or ImageNet style): relu(conv2(relu(conv1(x))) + shortcut(x)),
// with the shortcut add and the final ReLU in conv2's epilogue. shortcut null: identity.
class FusedBasicBlock : public nn::Module {
 public:
  FusedBasicBlock(std::shared_ptr<FusedConv> conv1, std::shared_ptr<FusedConv> conv2,
                  std::shared_ptr<FusedConv> shortcut);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<FusedConv> conv1, conv2, shortcut;
};

// ShuffleNetV2's unit with folded branches: stride 1 transforms the second half of the channels
// (branch1 null), stride 2 runs both branches on the whole input; then concat + channel shuffle.
class FusedShuffleUnit : public nn::Module {
 public:
  FusedShuffleUnit(std::shared_ptr<nn::Sequential> branch1,
                   std::shared_ptr<nn::Sequential> branch2);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::Sequential> branch1, branch2;
};

// A parameter-free step given as a function (the stem's max-pool), so it can sit in a Sequential.
class FnModule : public nn::Module {
 public:
  FnModule(std::string type_name, std::function<Tensor(const Tensor&)> fn)
      : Module(std::move(type_name)), fn_(std::move(fn)) {}
  Tensor forward(const Tensor& x) override { return fn_(x); }

 private:
  std::function<Tensor(const Tensor&)> fn_;
};

// head(global_avg_pool(body(x))): the shape all folded classifier families share, a
// models::Classifier like the model it came from (same features and logits). The head keeps the
// original's name ("fc", or RepVGG's "linear") so state_dict keys stay recognisable.
//
// Large batches run chunk-wise: each thread takes `chunk_images` images at a time through the
// whole body (its convs then run serially), so activations stay in cache from one layer to the
// next and the threads meet once per call instead of at every layer. Batches under two chunks,
// and calls inside another parallel region, run layer by layer with the convs parallelised.
class FoldedClassifier : public models::Classifier {
 public:
  FoldedClassifier(const std::string& type_name, std::shared_ptr<nn::Sequential> body,
                   const std::string& head_name, std::shared_ptr<nn::Linear> head);
  Tensor features(const Tensor& x) override;  // [N, C, H, W] -> pooled [N, F]
  Tensor logits(const Tensor& features) override;

  std::shared_ptr<nn::Sequential> body;
  std::shared_ptr<nn::Linear> head;

  // Run the body on channel-blocked activations where it can (blocked_forward.h); false keeps
  // every layer channel-major (the comparison tests and `duet bench infer --no-blocked`).
  bool channel_blocked = true;
  // Images per chunk; 0 runs every batch layer by layer. Channel-major, on the 2-core Zen 3
  // (ResNet-20, batch 250, single-thread CPU time): 8 and 16 were 2-4 % below unchunked, 4 no
  // better, 2 slower. Channel-blocked on Zen 5, three alternating runs each against ONNX
  // Runtime: 4 gave 0.90-0.92x, 8 0.89-0.90x, 2 0.87-0.89x (4 images of 16 channels at 28 x 28
  // are 200 KiB per activation, so a layer's input, output and residual stay in L2).
  int64_t chunk_images = 4;
};

}  // namespace duet::compress
