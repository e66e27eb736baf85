#include "duet/models/vit.h"

#include <cmath>
#include <vector>

#include "duet/models/config_fields.h"
#include "duet/nn/profile.h"
#include "duet/ops/attention.h"
#include "duet/ops/eltwise.h"
#include "duet/ops/shape_ops.h"

namespace duet::models {
namespace {

// The checks from_json makes, repeated for configs built in code (before anything is sized).
const ViTConfig& validated(const ViTConfig& c) {
  if (c.patch < 1 || c.image_size < c.patch || c.image_size % c.patch != 0)
    fail("model config: field 'image_size' (", c.image_size, ") must be a multiple of 'patch' (",
         c.patch, ")");
  if (c.heads < 1 || c.dim < 1 || c.dim % c.heads != 0)
    fail("model config: field 'dim' (", c.dim, ") must be a multiple of 'heads' (", c.heads, ")");
  if (c.depth < 1) fail("model config: field 'depth' must be >= 1, got ", c.depth);
  if (!(c.mlp_ratio > 0.0) || c.mlp_ratio > 64.0 || c.mlp_hidden() < 1)
    fail("model config: field 'mlp_ratio' must be in (0, 64] with dim * mlp_ratio >= 1, got ",
         c.mlp_ratio);
  return c;
}

// Normal(0, std) truncated to [-2 std, 2 std] by redrawing the values outside (timm's trunc_normal_
// with std 0.02); draws come from the model generator, so a seed fixes them. Redraws go in batches
// (about 5% of the values per round) because each draw call is a parallel region.
Tensor trunc_normal(const Shape& shape, Generator& gen, float stddev) {
  Tensor t = Tensor::normal(shape, gen, 0.0f, stddev);
  float* p = t.data<float>();
  const float bound = 2 * stddev;
  std::vector<int64_t> outside;
  for (int64_t i = 0; i < t.numel(); ++i)
    if (std::fabs(p[i]) > bound) outside.push_back(i);
  std::vector<float> fresh;
  while (!outside.empty()) {
    fresh.resize(outside.size());
    gen.normal(fresh.data(), static_cast<int64_t>(fresh.size()), 0.0f, stddev);
    std::vector<int64_t> still;
    for (size_t j = 0; j < outside.size(); ++j) {
      if (std::fabs(fresh[j]) > bound)
        still.push_back(outside[j]);
      else
        p[outside[j]] = fresh[j];
    }
    outside.swap(still);
  }
  return t;
}

// timm's init for the transformer's linear layers: trunc-normal(0.02) weights, zero biases.
std::shared_ptr<nn::Linear> make_linear(Generator& gen, int64_t in, int64_t out) {
  auto l = std::make_shared<nn::Linear>(gen, in, out);
  l->weight.copy_from(trunc_normal(l->weight.shape(), gen, 0.02f));
  l->bias->fill(0.0f);
  return l;
}

constexpr float kLayerNormEps = 1e-6f;

}  // namespace

nlohmann::json ViTConfig::to_json() const {
  return {{"family", "vit"},
          {"patch", patch},
          {"dim", dim},
          {"depth", depth},
          {"heads", heads},
          {"mlp_ratio", mlp_ratio},
          {"in_channels", in_channels},
          {"num_classes", num_classes},
          {"image_size", image_size}};
}

ViTConfig ViTConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) fail("model config: expected a JSON object, got ", j.dump());
  ViTConfig c;
  c.patch = config_int(j, "patch", c.patch, 1);
  c.dim = config_int(j, "dim", c.dim, 1);
  c.depth = config_int(j, "depth", c.depth, 1);
  c.heads = config_int(j, "heads", c.heads, 1);
  if (j.contains("mlp_ratio")) {
    if (!j.at("mlp_ratio").is_number())
      fail("model config: field 'mlp_ratio' must be a number, got ", j.at("mlp_ratio").dump());
    c.mlp_ratio = j.at("mlp_ratio").get<double>();
  }
  c.in_channels = config_int(j, "in_channels", c.in_channels, 1);
  c.num_classes = config_int(j, "num_classes", c.num_classes, 2);
  c.image_size = config_int(j, "image_size", c.image_size, 1);
  return validated(c);
}

Tensor AttentionCore::attend(const Tensor& q, const Tensor& k, const Tensor& v) {
  Tensor y = ops::scaled_dot_product_attention(q, k, v);
  // q k^T and probs v: B H L S D multiply-accumulates each.
  const double macs = 2.0 * static_cast<double>(q.dim(0) * q.dim(1) * q.dim(2)) *
                      static_cast<double>(k.dim(2) * q.dim(3));
  nn::record_layer(this, y, macs);
  return y;
}

Attention::Attention(Generator& gen, int64_t dim, int64_t heads_)
    : Module("Attention"), heads(heads_) {
  qkv = register_module("qkv", make_linear(gen, dim, 3 * dim));
  sdpa = register_module("sdpa", std::make_shared<AttentionCore>());
  proj = register_module("proj", make_linear(gen, dim, dim));
}

Tensor Attention::forward(const Tensor& x) {
  const int64_t B = x.dim(0), L = x.dim(1), C = x.dim(2), D = C / heads;
  // [B, L, 3C] -> [3, B, H, L, D], timm's layout: q, k, v each split into heads.
  const Tensor t =
      ops::permute(ops::reshape(qkv->forward(x), {B, L, 3, heads, D}), {2, 0, 3, 1, 4});
  auto part = [&](int64_t i) { return ops::reshape(ops::slice(t, 0, i, i + 1), {B, heads, L, D}); };
  const Tensor y = sdpa->attend(part(0), part(1), part(2));
  return proj->forward(ops::reshape(ops::transpose(y, 1, 2), {B, L, C}));
}

Mlp::Mlp(Generator& gen, int64_t dim, int64_t hidden) : Module("Mlp") {
  fc1 = register_module("fc1", make_linear(gen, dim, hidden));
  act = register_module("act", std::make_shared<nn::Activation>(nn::ActivationKind::gelu));
  fc2 = register_module("fc2", make_linear(gen, hidden, dim));
}

Tensor Mlp::forward(const Tensor& x) {
  return fc2->forward(act->forward(fc1->forward(x)));
}

ViTBlock::ViTBlock(Generator& gen, int64_t dim, int64_t heads, int64_t hidden) : Module("Block") {
  norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(dim, kLayerNormEps));
  attn = register_module("attn", std::make_shared<Attention>(gen, dim, heads));
  norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(dim, kLayerNormEps));
  mlp = register_module("mlp", std::make_shared<Mlp>(gen, dim, hidden));
}

Tensor ViTBlock::forward(const Tensor& x) {
  const Tensor y = ops::add(x, attn->forward(norm1->forward(x)));
  return ops::add(y, mlp->forward(norm2->forward(y)));
}

PatchEmbed::PatchEmbed(Generator& gen, int64_t in_channels, int64_t dim, int64_t patch)
    : Module("PatchEmbed") {
  // PyTorch's default conv init, as timm leaves it.
  proj = register_module("proj",
                         std::make_shared<nn::Conv2d>(gen, in_channels, dim, patch,
                                                      ops::Conv2dOptions{patch, 0, 1, 1}, true));
}

Tensor PatchEmbed::forward(const Tensor& x) {
  const Tensor y = proj->forward(x);  // [B, dim, h, w]
  return ops::transpose(ops::reshape(y, {y.dim(0), y.dim(1), y.dim(2) * y.dim(3)}), 1, 2);
}

VisionTransformer::VisionTransformer(Generator& gen, const ViTConfig& config)
    : Classifier("VisionTransformer"),
      cls_token(
          register_parameter("cls_token", trunc_normal({1, 1, validated(config).dim}, gen, 0.02f))),
      pos_embed(register_parameter(
          "pos_embed", trunc_normal({1, config.num_patches() + 1, config.dim}, gen, 0.02f))),
      config_(config) {
  patch_embed = register_module(
      "patch_embed",
      std::make_shared<PatchEmbed>(gen, config.in_channels, config.dim, config.patch));
  blocks = register_module("blocks", std::make_shared<nn::Sequential>());
  for (int i = 0; i < config.depth; ++i)
    blocks->push_back(
        std::make_shared<ViTBlock>(gen, config.dim, config.heads, config.mlp_hidden()));
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(config.dim, kLayerNormEps));
  head = register_module("head", make_linear(gen, config.dim, config.num_classes));
}

Tensor VisionTransformer::features(const Tensor& x) {
  const int64_t B = x.dim(0);
  const Tensor patches = patch_embed->forward(x);  // [B, P, dim]
  DUET_CHECK(patches.dim(1) + 1 == pos_embed.dim(1), "vit: input ", x.shape().str(), " gives ",
             patches.dim(1), " patches, the model was built for ", pos_embed.dim(1) - 1);
  // One class token per image: concatenating B references sums their gradients into one.
  const Tensor cls =
      B == 1 ? cls_token : ops::concat(std::vector<Tensor>(static_cast<size_t>(B), cls_token), 0);
  Tensor t = ops::add(ops::concat({cls, patches}, 1), pos_embed);
  t = norm->forward(blocks->forward(t));
  return ops::reshape(ops::slice(t, 1, 0, 1), {B, config_.dim});
}

Tensor VisionTransformer::logits(const Tensor& features) {
  return head->forward(features);
}

}  // namespace duet::models
