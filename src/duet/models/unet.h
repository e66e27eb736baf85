// The residual UNet of duet's generators (class-conditional flow matching / diffusion): residual
// blocks conditioned on a time + class embedding, stride-2 downsampling, nearest-upsample + conv,
// skip concatenation and multi-head self-attention at chosen resolutions. Built from a config.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "duet/nn/layers.h"

namespace duet::models {

struct UNetConfig {
  int in_channels = 1;
  int image_size = 28;
  int num_classes = 10;                       // the class embedding has one more row: "no class"
  std::vector<int> channels = {32, 64, 128};  // per level, level 0 at full resolution
  int blocks_down = 2;                        // residual blocks per level going down
  int blocks_up = 3;                          // ... going up (one more, so every skip is consumed)
  std::vector<int> attention_levels;          // levels with attention after each residual block
  bool mid_attention = true;                  // attention between the two middle residual blocks
  int heads = 4;
  int embed_dim = 128;  // width of the time + class embedding
  int groups = 8;       // GroupNorm groups

  int levels() const { return static_cast<int>(channels.size()); }
  int null_class() const { return num_classes; }  // the "no class" label (classifier-free guidance)
  nlohmann::json to_json() const;
  static UNetConfig from_json(const nlohmann::json& j);  // Error naming the bad field
};

// The sinusoidal embedding of continuous times t in [0, 1] ([N] -> [N, dim]): cos then sin of
// 1000 t at geometric frequencies from 1 to 1/10000, the transformer / DDPM convention.
Tensor timestep_embedding(const Tensor& t, int64_t dim);

// GroupNorm -> SiLU -> 3x3 conv, + projected embedding, GroupNorm -> SiLU -> 3x3 conv, plus the
// input (through a 1x1 conv when the channel count changes).
class ResBlock : public nn::Module {
 public:
  ResBlock(Generator& gen, int64_t in_channels, int64_t out_channels, int64_t embed_dim,
           int64_t groups);
  Tensor forward(const Tensor& x, const Tensor& emb);

  std::shared_ptr<nn::GroupNorm> norm1, norm2;
  std::shared_ptr<nn::Conv2d> conv1, conv2, skip;  // skip: null when channels are unchanged
  std::shared_ptr<nn::Linear> emb_proj;
};

// Multi-head self-attention over the H*W positions of a feature map, with a residual connection:
// x + proj(attention(qkv(GroupNorm(x)))).
class AttentionBlock : public nn::Module {
 public:
  AttentionBlock(Generator& gen, int64_t channels, int64_t heads, int64_t groups);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::GroupNorm> norm;
  std::shared_ptr<nn::Conv2d> qkv, proj;
  int64_t heads;
};

// One resolution of the UNet: its residual blocks, optional attention after each, and the
// resampling conv (stride-2 down, or nearest x2 then 3x3 going up); null at the ends.
class UNetLevel : public nn::Module {
 public:
  UNetLevel() : Module("UNetLevel") {}
  std::shared_ptr<nn::Sequential> res, attn;  // attn: null or one block per residual block
  std::shared_ptr<nn::Conv2d> resample;
};

class UNet : public nn::Module {
 public:
  UNet(Generator& gen, const UNetConfig& config);
  // x: [N, C, H, W], t: [N] float times in [0, 1], y: [N] int32 labels (null_class() = none).
  // Returns the network's prediction (velocity or noise, by the objective) shaped like x.
  Tensor forward(const Tensor& x, const Tensor& t, const Tensor& y);

  // The two halves of forward(x, t, y) = decode(encode(x, t, y)). The encoder's output (the
  // middle's feature map) is what the unified model's classification head reads.
  struct Encoding {
    Tensor middle;              // [N, channels.back(), S / 2^(L-1), S / 2^(L-1)]
    std::vector<Tensor> skips;  // what the up path concatenates, in the order it pushed them
    Tensor emb;                 // the time + class embedding [N, embed_dim]
  };
  Encoding encode(const Tensor& x, const Tensor& t, const Tensor& y);
  Tensor decode(Encoding encoding);
  // For `duet info` and profiling: t = 0.5 and no class.
  Tensor forward(const Tensor& x) override;
  const UNetConfig& config() const { return config_; }
  // Whether forward runs on channel-blocked activations (ops/blocked.h): training with gradients,
  // blocked training on, every level's width a multiple of 16, no calibration hook on a conv.
  // Encoding's tensors are then blocked; forward's output is channel-major.
  bool trains_blocked();
  // The same for a forward without gradients (sampling) of `batch` images: from
  // kBlockedSamplingMinBatch on, the blocked layers were as fast as the fused channel-major ones,
  // whose convolutions transpose every input and output, or faster (unet-xs at batch 64: 69 ms
  // against 82 ms a step; unet-s: even; docs/benchmarks.md, 2026-12-02). Below, they were slower.
  bool samples_blocked(int64_t batch);
  static constexpr int64_t kBlockedSamplingMinBatch = 64;

 private:
  // The conditions both share: blocked layers on, whole blocks, no calibration hook, no profile.
  bool blockable();
  UNetConfig config_;
  std::shared_ptr<nn::Sequential> time_embed;
  std::shared_ptr<nn::Embedding> class_embed;
  std::shared_ptr<nn::Conv2d> conv_in, conv_out;
  std::vector<std::shared_ptr<UNetLevel>> down_, up_;
  std::shared_ptr<ResBlock> mid_res1_, mid_res2_;
  std::shared_ptr<AttentionBlock> mid_attn_;
  std::shared_ptr<nn::GroupNorm> norm_out;
};

}  // namespace duet::models
