#include "duet/models/unet.h"

#include <cmath>

#include "duet/autograd/autograd.h"
#include "duet/models/config_fields.h"
#include "duet/nn/profile.h"
#include "duet/ops/activation.h"
#include "duet/ops/attention.h"
#include "duet/ops/blocked.h"
#include "duet/ops/conv_fused.h"
#include "duet/ops/eltwise.h"
#include "duet/ops/pool.h"
#include "duet/ops/shape_ops.h"

namespace duet::models {

nlohmann::json UNetConfig::to_json() const {
  return {{"family", "unet"},
          {"in_channels", in_channels},
          {"image_size", image_size},
          {"num_classes", num_classes},
          {"channels", channels},
          {"blocks_down", blocks_down},
          {"blocks_up", blocks_up},
          {"attention_levels", attention_levels},
          {"mid_attention", mid_attention},
          {"heads", heads},
          {"embed_dim", embed_dim},
          {"groups", groups}};
}

UNetConfig UNetConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) fail("model config: expected a JSON object, got ", j.dump());
  UNetConfig c;
  c.in_channels = config_int(j, "in_channels", c.in_channels, 1);
  c.image_size = config_int(j, "image_size", c.image_size, 4);
  c.num_classes = config_int(j, "num_classes", c.num_classes, 1);
  c.channels = config_int_list(j, "channels", c.channels, 1);
  c.blocks_down = config_int(j, "blocks_down", c.blocks_down, 1);
  c.blocks_up = config_int(j, "blocks_up", c.blocks_up, 1);
  c.attention_levels = config_int_list(j, "attention_levels", c.attention_levels, 0);
  c.mid_attention = config_bool(j, "mid_attention", c.mid_attention);
  c.heads = config_int(j, "heads", c.heads, 1);
  c.embed_dim = config_int(j, "embed_dim", c.embed_dim, 2);
  c.groups = config_int(j, "groups", c.groups, 1);

  if (c.channels.empty() || c.channels.size() > 6)
    fail("model config: field 'channels' must list 1 to 6 levels, got ", c.channels.size());
  if (c.blocks_up != c.blocks_down + 1)
    fail("model config: field 'blocks_up' must be blocks_down + 1 (every skip is consumed), got ",
         c.blocks_up, " with blocks_down ", c.blocks_down);
  if (c.embed_dim % 2 != 0) fail("model config: field 'embed_dim' must be even, got ", c.embed_dim);
  if (c.channels[0] % 2 != 0)
    fail("model config: field 'channels' must start with an even width, got ", c.channels[0]);
  for (int ch : c.channels)
    if (ch % c.groups != 0)
      fail("model config: every entry of 'channels' must be divisible by 'groups' (", c.groups,
           "), got ", ch);
  for (int l : c.attention_levels)
    if (l >= c.levels())
      fail("model config: field 'attention_levels' names level ", l, " but there are ", c.levels(),
           " levels");
  const int64_t factor = int64_t{1} << (c.levels() - 1);
  if (c.image_size % factor != 0)
    fail("model config: image_size ", c.image_size, " must be divisible by ", factor, " (",
         c.levels(), " levels halve it ", c.levels() - 1, " times)");
  const int attn_width = c.mid_attention ? c.channels.back() : 0;
  for (int l : c.attention_levels)
    if (c.channels[l] % c.heads != 0)
      fail("model config: level ", l, " width ", c.channels[l], " is not divisible by heads ",
           c.heads);
  if (attn_width % c.heads != 0)
    fail("model config: middle width ", attn_width, " is not divisible by heads ", c.heads);
  return c;
}

Tensor timestep_embedding(const Tensor& t, int64_t dim) {
  DUET_CHECK(t.rank() == 1 && t.dtype() == DType::f32,
             "timestep_embedding: t must be f32 [N], got ", t.shape().str());
  const Tensor tc = ops::contiguous(t);
  const int64_t n = t.dim(0), half = dim / 2;
  Tensor out = Tensor::empty(Shape{n, dim});
  const float* tp = tc.data<float>();
  float* op = out.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < half; ++k) {
      // Double precision keeps the large-argument phases identical to the PyTorch twin's.
      const double freq = std::exp(-std::log(10000.0) * static_cast<double>(k) / half);
      const double arg = 1000.0 * tp[i] * freq;
      op[i * dim + k] = static_cast<float>(std::cos(arg));
      op[i * dim + half + k] = static_cast<float>(std::sin(arg));
    }
  return out;
}

namespace {

std::shared_ptr<nn::Conv2d> conv3x3(Generator& gen, int64_t in, int64_t out, int64_t stride = 1) {
  return std::make_shared<nn::Conv2d>(gen, in, out, 3, ops::Conv2dOptions{stride, 1, 1, 1});
}

bool has_level(const std::vector<int>& levels, int l) {
  for (int v : levels)
    if (v == l) return true;
  return false;
}

template <class M>
M& child_as(const nn::Sequential& seq, size_t i) {
  return static_cast<M&>(*seq.children()[i].second);
}

}  // namespace

ResBlock::ResBlock(Generator& gen, int64_t in_channels, int64_t out_channels, int64_t embed_dim,
                   int64_t groups)
    : Module("ResBlock") {
  norm1 = register_module("norm1", std::make_shared<nn::GroupNorm>(groups, in_channels));
  conv1 = register_module("conv1", conv3x3(gen, in_channels, out_channels));
  emb_proj =
      register_module("emb_proj", std::make_shared<nn::Linear>(gen, embed_dim, out_channels));
  norm2 = register_module("norm2", std::make_shared<nn::GroupNorm>(groups, out_channels));
  conv2 = register_module("conv2", conv3x3(gen, out_channels, out_channels));
  if (in_channels != out_channels)
    skip = register_module("skip", std::make_shared<nn::Conv2d>(gen, in_channels, out_channels, 1));
}

namespace {

// norm -> SiLU -> conv (+ image bias, + residual) as one fused op (ops/conv_fused.h).
Tensor norm_silu_conv(const nn::GroupNorm& norm, const nn::Conv2d& conv, const Tensor& x,
                      const Tensor& image_bias, const Tensor& residual) {
  const ops::GroupNormAct gn{norm.groups, norm.weight, norm.bias, norm.eps,
                             kernels::Activation::silu};
  return ops::group_norm_act_conv2d(x, gn, conv.weight, conv.bias ? *conv.bias : Tensor(),
                                    conv.options(), image_bias, residual);
}

// conv(x) + image_bias[:, :, None, None] + residual, differentiable (ops::conv2d_add).
Tensor conv_add(const nn::Conv2d& conv, const Tensor& x, const Tensor& image_bias,
                const Tensor& residual) {
  return ops::conv2d_add(x, conv.weight, conv.bias ? *conv.bias : Tensor(), conv.options(),
                         image_bias, residual);
}

// A conv whose forward does more than convolve (an int8 stand-in, a calibration hook).
bool replaced(const nn::Conv2d& conv) {
  return conv.inference != nullptr || static_cast<bool>(conv.on_input);
}

}  // namespace

Tensor ResBlock::forward(const Tensor& x, const Tensor& emb) {
  if (ops::is_blocked(x)) {
    // Blocked activations (UNet::trains_blocked, samples_blocked): the embedding is added as
    // norm2 reads conv1's output, the residual in conv2's store.
    const Tensor e = emb_proj->forward(ops::silu(emb));
    const Tensor h = conv1->forward(norm1->forward(x, ops::NormActivation::silu));
    const Tensor a = ops::group_norm_blocked(h, e.dim(1), norm2->groups, norm2->weight, norm2->bias,
                                             norm2->eps, ops::NormActivation::silu, e);
    return conv2->forward_blocked(a, skip ? skip->forward(x) : x);
  }
  // Sampling below UNet::kBlockedSamplingMinBatch: each half of the block as one fused op, so
  // that the normalised input, the embedding sum and the residual sum never exist as tensors.
  // Training keeps the normalised input (the weight gradient reads it) and fuses only the sums;
  // `duet info`'s per-layer profile and int8 or calibrating convs take the layers one by one.
  if (!autograd::grad_enabled() && !nn::profiling() && !replaced(*conv1) && !replaced(*conv2)) {
    const Tensor e = emb_proj->forward(ops::silu(emb));
    const Tensor h = norm_silu_conv(*norm1, *conv1, x, e, Tensor());
    return norm_silu_conv(*norm2, *conv2, h, Tensor(), skip ? skip->forward(x) : x);
  }
  const Tensor e = emb_proj->forward(ops::silu(emb));  // [N, C], broadcast over H, W
  if (nn::profiling() || replaced(*conv1) || replaced(*conv2)) {
    Tensor h = conv1->forward(norm1->forward(x, ops::NormActivation::silu));
    h = ops::add(h, ops::reshape(e, {e.dim(0), e.dim(1), 1, 1}));
    h = conv2->forward(norm2->forward(h, ops::NormActivation::silu));
    return ops::add(skip ? skip->forward(x) : x, h);
  }
  // Training: the embedding and the residual added in the convolutions' output stores.
  const Tensor h = conv_add(*conv1, norm1->forward(x, ops::NormActivation::silu), e, Tensor());
  return conv_add(*conv2, norm2->forward(h, ops::NormActivation::silu), Tensor(),
                  skip ? skip->forward(x) : x);
}

AttentionBlock::AttentionBlock(Generator& gen, int64_t channels, int64_t heads_, int64_t groups)
    : Module("AttentionBlock"), heads(heads_) {
  norm = register_module("norm", std::make_shared<nn::GroupNorm>(groups, channels));
  qkv = register_module("qkv", std::make_shared<nn::Conv2d>(gen, channels, 3 * channels, 1));
  proj = register_module("proj", std::make_shared<nn::Conv2d>(gen, channels, channels, 1));
}

Tensor AttentionBlock::forward(const Tensor& x) {
  if (ops::is_blocked(x)) {
    // The attention's products are matrix products over positions: it runs channel-major, at
    // the coarse resolutions where the conversions cost little.
    const int64_t c = norm->weight.dim(0);
    return ops::to_blocked(forward(ops::from_blocked(x, c)));
  }
  const int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3), d = c / heads;
  // [N, 3C, H, W] -> [N, 3, heads, d, HW] -> [3, N, heads, HW, d]: q, k, v per head.
  Tensor qkv_t = ops::reshape(qkv->forward(norm->forward(x)), {n, 3, heads, d, hw});
  qkv_t = ops::contiguous(ops::permute(qkv_t, {1, 0, 2, 4, 3}));
  auto part = [&](int64_t i) {
    return ops::reshape(ops::slice(qkv_t, 0, i, i + 1), {n, heads, hw, d});
  };
  Tensor a = ops::scaled_dot_product_attention(part(0), part(1), part(2));
  nn::record_layer(this, a, 2.0 * static_cast<double>(n) * heads * hw * hw * d);
  a = ops::reshape(ops::contiguous(ops::permute(a, {0, 1, 3, 2})), {n, c, x.dim(2), x.dim(3)});
  if (nn::profiling() || replaced(*proj)) return ops::add(x, proj->forward(a));
  return conv_add(*proj, a, Tensor(), x);  // the residual added in the projection's store
}

UNet::UNet(Generator& gen, const UNetConfig& config) : Module("UNet"), config_(config) {
  const auto& ch = config.channels;
  const int64_t e = config.embed_dim, g = config.groups;
  time_embed = register_module(
      "time_embed", std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
                        std::make_shared<nn::Linear>(gen, ch[0], e),
                        std::make_shared<nn::Activation>(nn::ActivationKind::silu),
                        std::make_shared<nn::Linear>(gen, e, e)}));
  class_embed = register_module("class_embed",
                                std::make_shared<nn::Embedding>(gen, config.num_classes + 1, e));
  conv_in = register_module("conv_in", conv3x3(gen, config.in_channels, ch[0]));

  // Going down, the skip widths are recorded in the order the up path consumes them (reversed).
  std::vector<int64_t> skip_widths{ch[0]};
  auto down = std::make_shared<nn::Sequential>();
  int64_t width = ch[0];
  for (int l = 0; l < config.levels(); ++l) {
    auto level = std::make_shared<UNetLevel>();
    level->res = level->register_module("res", std::make_shared<nn::Sequential>());
    const bool attn = has_level(config.attention_levels, l);
    if (attn) level->attn = level->register_module("attn", std::make_shared<nn::Sequential>());
    for (int b = 0; b < config.blocks_down; ++b) {
      level->res->push_back(std::make_shared<ResBlock>(gen, width, ch[l], e, g));
      width = ch[l];
      if (attn)
        level->attn->push_back(std::make_shared<AttentionBlock>(gen, width, config.heads, g));
      skip_widths.push_back(width);
    }
    if (l + 1 < config.levels()) {
      level->resample = level->register_module("downsample", conv3x3(gen, width, width, 2));
      skip_widths.push_back(width);
    }
    down->push_back(level);
    down_.push_back(level);
  }
  register_module("down", down);

  auto mid = std::make_shared<nn::Sequential>();
  mid_res1_ = std::make_shared<ResBlock>(gen, width, width, e, g);
  mid->push_back(mid_res1_);
  if (config.mid_attention) {
    mid_attn_ = std::make_shared<AttentionBlock>(gen, width, config.heads, g);
    mid->push_back(mid_attn_);
  }
  mid_res2_ = std::make_shared<ResBlock>(gen, width, width, e, g);
  mid->push_back(mid_res2_);
  register_module("mid", mid);

  // Up levels are registered as up.0 (full resolution) ... up.L-1, like the down path, but run
  // from the deepest one.
  up_.resize(config.levels());
  for (int l = config.levels() - 1; l >= 0; --l) {
    auto level = std::make_shared<UNetLevel>();
    level->res = level->register_module("res", std::make_shared<nn::Sequential>());
    const bool attn = has_level(config.attention_levels, l);
    if (attn) level->attn = level->register_module("attn", std::make_shared<nn::Sequential>());
    for (int b = 0; b < config.blocks_up; ++b) {
      const int64_t skip = skip_widths.back();
      skip_widths.pop_back();
      level->res->push_back(std::make_shared<ResBlock>(gen, width + skip, ch[l], e, g));
      width = ch[l];
      if (attn)
        level->attn->push_back(std::make_shared<AttentionBlock>(gen, width, config.heads, g));
    }
    if (l > 0) level->resample = level->register_module("upsample", conv3x3(gen, width, width));
    up_[l] = level;
  }
  auto up = std::make_shared<nn::Sequential>();
  for (auto& level : up_) up->push_back(level);
  register_module("up", up);

  norm_out = register_module("norm_out", std::make_shared<nn::GroupNorm>(g, width));
  conv_out = register_module("conv_out", conv3x3(gen, width, config.in_channels));
  // The network starts by predicting zero, a common stabiliser for diffusion UNets.
  conv_out->weight.fill(0.0f);
  if (conv_out->bias) conv_out->bias->fill(0.0f);
}

UNet::Encoding UNet::encode(const Tensor& x, const Tensor& t, const Tensor& y) {
  DUET_CHECK(x.rank() == 4 && x.dim(1) == config_.in_channels && x.dim(2) == config_.image_size &&
                 x.dim(3) == config_.image_size,
             "unet: expected input [N, ", config_.in_channels, ", ", config_.image_size, ", ",
             config_.image_size, "], got ", x.shape().str());
  DUET_CHECK(t.rank() == 1 && t.dim(0) == x.dim(0) && y.rank() == 1 && y.dim(0) == x.dim(0),
             "unet: t and y must be [N] with N = ", x.dim(0), ", got ", t.shape().str(), " and ",
             y.shape().str());
  Encoding e;
  e.emb = time_embed->forward(timestep_embedding(t, config_.channels[0]));
  e.emb = ops::add(e.emb, class_embed->forward(y));

  // Training, and sampling at large batches, run on channel-blocked activations where they can
  // (trains_blocked, samples_blocked): the image goes in channel-major, the first conv writes
  // blocks, decode converts the last conv's output.
  Tensor h = trains_blocked() || samples_blocked(x.dim(0)) ? conv_in->forward_blocked(x)
                                                           : conv_in->forward(x);
  e.skips.push_back(h);
  for (auto& level : down_) {
    for (size_t b = 0; b < level->res->size(); ++b) {
      h = child_as<ResBlock>(*level->res, b).forward(h, e.emb);
      if (level->attn) h = child_as<AttentionBlock>(*level->attn, b).forward(h);
      e.skips.push_back(h);
    }
    if (level->resample) {
      h = level->resample->forward(h);
      e.skips.push_back(h);
    }
  }
  h = mid_res1_->forward(h, e.emb);
  if (mid_attn_) h = mid_attn_->forward(h);
  e.middle = mid_res2_->forward(h, e.emb);
  return e;
}

Tensor UNet::decode(Encoding e) {
  Tensor h = std::move(e.middle);
  for (int l = config_.levels() - 1; l >= 0; --l) {
    auto& level = up_[l];
    for (size_t b = 0; b < level->res->size(); ++b) {
      DUET_CHECK(!e.skips.empty(), "unet: decode ran out of skip connections");
      h = ops::concat({h, e.skips.back()}, 1);
      e.skips.pop_back();
      h = child_as<ResBlock>(*level->res, b).forward(h, e.emb);
      if (level->attn) h = child_as<AttentionBlock>(*level->attn, b).forward(h);
    }
    if (level->resample) h = level->resample->forward(ops::upsample_nearest2d(h, 2));
  }
  const Tensor out = conv_out->forward(norm_out->forward(h, ops::NormActivation::silu));
  return ops::is_blocked(out) ? ops::from_blocked(out, config_.in_channels) : out;
}

bool UNet::trains_blocked() {
  return is_training() && autograd::grad_enabled() && blockable();
}

bool UNet::samples_blocked(int64_t batch) {
  return !autograd::grad_enabled() && batch >= kBlockedSamplingMinBatch && blockable();
}

bool UNet::blockable() {
  if (nn::profiling() || !ops::use_blocked_training()) return false;
  // Concatenated skips must stay whole blocks.
  for (int ch : config_.channels)
    if (ch % 16 != 0) return false;
  // A calibration hook reads channel-major inputs; int8 stand-ins have a blocked form
  // (nn::InferenceConv::forward_blocked).
  for (const auto& [name, m] : named_modules())
    if (const auto* conv = dynamic_cast<const nn::Conv2d*>(m); conv && conv->on_input) return false;
  return true;
}

Tensor UNet::forward(const Tensor& x, const Tensor& t, const Tensor& y) {
  return decode(encode(x, t, y));
}

Tensor UNet::forward(const Tensor& x) {
  const int64_t n = x.dim(0);
  return forward(x, Tensor::full(Shape{n}, 0.5f),
                 Tensor::from_vector(std::vector<int32_t>(n, config_.null_class()), Shape{n}));
}

}  // namespace duet::models
