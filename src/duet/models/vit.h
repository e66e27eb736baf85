// Vision Transformer (Dosovitskiy et al. 2021) at DeiT-tiny sizes: non-overlapping patches
// embedded by a strided conv, a class token and learned position embeddings, pre-norm blocks
// (LayerNorm, multi-head self-attention, LayerNorm, GELU MLP), a final norm and a head on the class
// token. state_dict names follow timm (cls_token, pos_embed, blocks.0.attn.qkv, ..., norm, head).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "duet/models/classifier.h"
#include "duet/nn/layers.h"

namespace duet::models {

struct ViTConfig {
  int patch = 4;  // image_size must be a multiple; 28x28 -> 49 patches + the class token
  int dim = 192;
  int depth = 12;
  int heads = 3;  // dim must be a multiple
  double mlp_ratio = 4.0;
  int in_channels = 1;
  int num_classes = 10;
  int image_size = 28;

  int64_t mlp_hidden() const { return static_cast<int64_t>(dim * mlp_ratio); }  // Python's int()
  int64_t num_patches() const {
    return static_cast<int64_t>(image_size / patch) * (image_size / patch);
  }

  nlohmann::json to_json() const;
  static ViTConfig from_json(const nlohmann::json& j);  // Error naming the bad field
};

// softmax(q k^T / sqrt(D)) v over [B, H, L, D]; a parameter-free leaf so that `duet info` counts
// the two attention matmuls (2 L^2 D MACs per head and image) on their own row.
class AttentionCore : public nn::Module {
 public:
  AttentionCore() : Module("SDPA") {}
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v);
};

class Attention : public nn::Module {
 public:
  Attention(Generator& gen, int64_t dim, int64_t heads);
  Tensor forward(const Tensor& x) override;  // [B, L, dim] -> [B, L, dim]

  int64_t heads;
  std::shared_ptr<nn::Linear> qkv;
  std::shared_ptr<AttentionCore> sdpa;
  std::shared_ptr<nn::Linear> proj;
};

class Mlp : public nn::Module {
 public:
  Mlp(Generator& gen, int64_t dim, int64_t hidden);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::Linear> fc1;
  std::shared_ptr<nn::Activation> act;
  std::shared_ptr<nn::Linear> fc2;
};

class ViTBlock : public nn::Module {
 public:
  ViTBlock(Generator& gen, int64_t dim, int64_t heads, int64_t hidden);
  Tensor forward(const Tensor& x) override;  // x + attn(norm1(x)), then + mlp(norm2(.))

  std::shared_ptr<nn::LayerNorm> norm1;
  std::shared_ptr<Attention> attn;
  std::shared_ptr<nn::LayerNorm> norm2;
  std::shared_ptr<Mlp> mlp;
};

class PatchEmbed : public nn::Module {
 public:
  PatchEmbed(Generator& gen, int64_t in_channels, int64_t dim, int64_t patch);
  Tensor forward(const Tensor& x) override;  // [B, C, H, W] -> [B, patches, dim]
  std::shared_ptr<nn::Conv2d> proj;
};

class VisionTransformer : public Classifier {
 public:
  VisionTransformer(Generator& gen, const ViTConfig& config);
  // forward: [N, C, H, W] -> logits [N, classes]. Features: the class token after the final
  // norm [N, dim], the input of head.
  Tensor features(const Tensor& x) override;
  Tensor logits(const Tensor& features) override;
  const ViTConfig& config() const { return config_; }

  Tensor& cls_token;  // [1, 1, dim]
  Tensor& pos_embed;  // [1, patches + 1, dim]
  std::shared_ptr<PatchEmbed> patch_embed;
  std::shared_ptr<nn::Sequential> blocks;
  std::shared_ptr<nn::LayerNorm> norm;
  std::shared_ptr<nn::Linear> head;

 private:
  ViTConfig config_;
};

}  // namespace duet::models
