// Structured pruning: the channel groups cover every tensor, keeping every channel changes
// nothing, removing channels that carry nothing (BN gamma = beta = 0: the channel is exactly zero
// after ReLU) leaves the logits unchanged in both ResNet families, the budget is met with a
// network whose config alone rebuilds it, importance ranks known channels last, and the pruned
// checkpoint round-trips through save/load.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <string>

#include "duet/autograd/autograd.h"
#include "duet/compress/bn_recalibrate.h"
#include "duet/compress/prune.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/nn/layers.h"
#include "duet/tensor/error.h"
#include "duet/tensor/rng.h"

using namespace duet;

namespace {

nlohmann::json cifar_config(int depth = 8, int width = 8) {
  nlohmann::json c = models::preset_config("resnet20");
  c["depth"] = depth;
  c["width"] = width;
  c["image_size"] = 12;
  return c;
}

nlohmann::json imagenet_config() {
  nlohmann::json c = models::preset_config("resnet18");
  c["width"] = 4;
  c["image_size"] = 16;
  return c;
}

// A model with random BN statistics and affine parameters (so BN is not the identity), eval mode.
std::shared_ptr<nn::Module> random_model(const nlohmann::json& config, uint64_t seed) {
  Generator gen(seed);
  auto m = models::build_model(config, gen);
  for (auto& [name, mod] : m->named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(mod)) {
      const int64_t c = bn->weight.numel();
      bn->weight.copy_from(Tensor::uniform({c}, gen, 0.5f, 1.5f));
      bn->bias.copy_from(Tensor::uniform({c}, gen, -0.2f, 0.2f));
      bn->running_mean.copy_from(Tensor::uniform({c}, gen, -0.1f, 0.1f));
      bn->running_var.copy_from(Tensor::uniform({c}, gen, 0.5f, 2.0f));
    }
  m->eval();
  return m;
}

std::vector<float> logits(nn::Module& m, const nlohmann::json& config, uint64_t seed) {
  Shape s = models::input_shape(config);
  s[0] = 3;
  Generator gen(seed);
  autograd::NoGradGuard no_grad;
  return m.forward(Tensor::normal(s, gen)).to_vector();
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    d = std::max(d, std::fabs(double(a[i]) - double(b[i])));
  return d;
}

nn::BatchNorm2d& bn_at(nn::Module& m, const std::string& path) {
  for (auto& [name, mod] : m.named_modules())
    if (name == path) return *dynamic_cast<nn::BatchNorm2d*>(mod);
  throw std::runtime_error("no module " + path);
}

// Makes channel c of a group exactly zero after its ReLU: every BN that writes it outputs 0.
void silence(nn::Module& m, const compress::ChannelGroup& g, int64_t c) {
  for (const auto& [conv, bn] : g.producers) {
    nn::BatchNorm2d& b = bn_at(m, bn);
    b.weight.data<float>()[c] = 0.0f;
    b.bias.data<float>()[c] = 0.0f;
  }
}

int group_index(const compress::PruneLayout& l, const std::string& name) {
  for (size_t g = 0; g < l.groups.size(); ++g)
    if (l.groups[g].name == name) return int(g);
  ADD_FAILURE() << "no group " << name;
  return 0;
}

// Every channel except the listed ones, per group.
std::vector<std::vector<int64_t>> keep_all_but(const compress::PruneLayout& l,
                                               const std::map<std::string, int64_t>& drop) {
  std::vector<std::vector<int64_t>> keep;
  for (const auto& g : l.groups) {
    std::vector<int64_t> k;
    for (int64_t c = 0; c < g.channels; ++c)
      if (!drop.count(g.name) || drop.at(g.name) != c) k.push_back(c);
    keep.push_back(k);
  }
  return keep;
}

nlohmann::json config_with(const nlohmann::json& config, const compress::PruneLayout& l,
                           const std::vector<std::vector<int64_t>>& keep) {
  nlohmann::json c = config;
  std::vector<int> stages, blocks;
  for (size_t g = 0; g < l.groups.size(); ++g)
    (l.groups[g].residual ? stages : blocks).push_back(int(keep[g].size()));
  c["stage_widths"] = stages;
  c["block_widths"] = blocks;
  return c;
}

}  // namespace

TEST(PruneLayout, GroupsOfResNet20) {
  const auto config = models::preset_config("resnet20");
  const compress::PruneLayout l = compress::resnet_prune_layout(config);
  ASSERT_EQ(l.groups.size(), 3u + 9u);  // three residual streams, nine block interiors
  EXPECT_EQ(l.groups[0].name, "stage1");
  EXPECT_EQ(l.groups[2].channels, 64);
  EXPECT_TRUE(l.groups[2].residual);
  // stage2 is written by its three blocks' conv2 and by the first block's shortcut.
  EXPECT_EQ(l.groups[1].producers.size(), 4u);
  // stage1 also by the stem.
  EXPECT_EQ(l.groups[0].producers.size(), 4u);
  const auto& t = l.tensors.at("layer2.0.shortcut.0.weight");
  EXPECT_EQ(t.out, 1);
  EXPECT_EQ(t.in, 0);
  EXPECT_EQ(l.tensors.at("fc.weight").in, 2);
  EXPECT_EQ(l.tensors.at("fc.weight").out, -1);
}

TEST(PruneLayout, RejectsOtherFamilies) {
  try {
    compress::resnet_prune_layout(models::preset_config("shufflenet_v2_x0_5"));
    FAIL() << "expected a usage error";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_NE(std::string(e.what()).find("shufflenet_v2"), std::string::npos) << e.what();
  }
}

TEST(Prune, KeepingEveryChannelChangesNothing) {
  for (const auto& config : {cifar_config(), imagenet_config()}) {
    auto m = random_model(config, 1);
    compress::PruneOptions o;
    o.keep = 1.0;
    const auto r = compress::prune_channels(*m, config, o);
    EXPECT_EQ(r.fraction, 1.0);
    EXPECT_EQ(r.params_after, r.params_before);
    EXPECT_EQ(max_diff(logits(*m, config, 5), logits(*r.model, r.config, 5)), 0.0) << config.dump();
  }
}

// Channels that are exactly zero contribute nothing: removing them (one block interior and one
// whole residual stream channel, across its identity shortcuts, 1x1 shortcut convs and the head)
// must leave the logits as they were.
TEST(Prune, RemovingSilentChannelsKeepsTheLogits) {
  for (const auto& config : {cifar_config(), imagenet_config()}) {
    auto m = random_model(config, 2);
    const compress::PruneLayout l = compress::resnet_prune_layout(config);
    std::string last_stage;
    for (const auto& g : l.groups)
      if (g.residual) last_stage = g.name;
    const std::map<std::string, int64_t> drop = {
        {"layer1.0.inner", 2}, {"stage1", 1}, {"stage2", 0}, {last_stage, 3}};
    for (const auto& [group, c] : drop) silence(*m, l.groups[size_t(group_index(l, group))], c);
    const auto keep = keep_all_but(l, drop);
    const auto pruned_config = config_with(config, l, keep);
    auto small = compress::shrink_model(*m, l, keep, pruned_config);
    EXPECT_LT(small->parameter_count(), m->parameter_count());
    EXPECT_LE(max_diff(logits(*m, config, 9), logits(*small, pruned_config, 9)), 1e-5)
        << config.dump();
    // And the importance criteria rank exactly those channels last (score 0).
    for (auto crit : {compress::PruneCriterion::l1, compress::PruneCriterion::bn}) {
      const auto score = compress::channel_importance(*m, l, crit);
      for (const auto& [group, c] : drop) {
        const auto& s = score[size_t(group_index(l, group))];
        EXPECT_EQ(s[size_t(c)], 0.0) << group;
        for (size_t i = 0; i < s.size(); ++i) {
          if (int64_t(i) == c) continue;
          EXPECT_GT(s[i], 0.0) << group << " channel " << i;
        }
      }
    }
  }
}

TEST(Prune, MeetsTheBudgetWithAConsistentNetwork) {
  const auto config = cifar_config(14, 16);
  auto m = random_model(config, 3);
  for (auto budget : {compress::PruneBudget::macs, compress::PruneBudget::params})
    for (auto scope : {compress::PruneScope::all, compress::PruneScope::inner}) {
      compress::PruneOptions o;
      o.keep = 0.6;
      o.budget = budget;
      o.scope = scope;
      const auto r = compress::prune_channels(*m, config, o);
      const double before =
          budget == compress::PruneBudget::macs ? r.macs_before : double(r.params_before);
      const double after =
          budget == compress::PruneBudget::macs ? r.macs_after : double(r.params_after);
      EXPECT_LE(after, 0.6 * before);
      EXPECT_GT(after, 0.45 * before);  // the largest fraction that fits, not a needless cut
      // The config alone rebuilds the same network (what a checkpoint stores).
      const models::NetworkCost cost = models::network_cost(r.config);
      EXPECT_EQ(cost.parameters, r.model->parameter_count());
      EXPECT_EQ(cost.macs, r.macs_after);
      const auto out = logits(*r.model, r.config, 4);
      EXPECT_EQ(out.size(), 3u * 10u);
      for (float v : out) EXPECT_TRUE(std::isfinite(v));
      for (const auto& g : r.groups) {
        EXPECT_GE(g.after, 1);
        EXPECT_LE(g.after, g.before);
        if (scope == compress::PruneScope::inner && g.name.rfind("stage", 0) == 0) {
          EXPECT_EQ(g.after, g.before) << g.name;
        }
      }
    }
}

TEST(Prune, MultipleRoundsKeptCounts) {
  const auto config = cifar_config(8, 16);
  auto m = random_model(config, 4);
  compress::PruneOptions o;
  o.keep = 0.5;
  o.multiple = 4;
  const auto r = compress::prune_channels(*m, config, o);
  for (const auto& g : r.groups) EXPECT_EQ(g.after % 4, 0) << g.name << " " << g.after;
}

TEST(Prune, UsageErrors) {
  const auto config = cifar_config();
  auto m = random_model(config, 5);
  compress::PruneOptions o;
  for (double keep : {0.0, -0.5, 1.5}) {
    o.keep = keep;
    EXPECT_THROW(compress::prune_channels(*m, config, o), Error) << keep;
  }
  // Whole residual streams cost more than a tiny budget allows.
  o.keep = 0.01;
  o.scope = compress::PruneScope::inner;
  EXPECT_THROW(compress::prune_channels(*m, config, o), Error);
  EXPECT_THROW(compress::prune_criterion_from_string("l2"), Error);
  // Explicit width lists of the wrong length name the field.
  nlohmann::json bad = config;
  bad["stage_widths"] = {4, 4};
  try {
    Generator gen(0);
    models::build_model(bad, gen);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stage_widths"), std::string::npos) << e.what();
  }
}

TEST(Prune, PrunedCheckpointRoundTrips) {
  const auto config = cifar_config();
  auto m = random_model(config, 6);
  compress::PruneOptions o;
  o.keep = 0.5;
  const auto r = compress::prune_channels(*m, config, o);
  const auto path = std::filesystem::temp_directory_path() /
                    ("duet_prune_" + std::to_string(::getpid()) + ".safetensors");
  models::save_model(path.string(), *r.model, r.config);
  auto loaded = models::load_model(path.string());
  std::filesystem::remove(path);
  EXPECT_EQ(loaded.config.at("stage_widths"), r.config.at("stage_widths"));
  loaded.model->eval();
  EXPECT_EQ(max_diff(logits(*r.model, r.config, 8), logits(*loaded.model, loaded.config, 8)), 0.0);
}

// Recalibration makes the running statistics the average of the batches' own (PyTorch's unbiased
// variance), whatever they were before, and leaves the momentum and the mode as they were.
TEST(BnRecalibrate, RunningStatisticsAreTheBatchAverage) {
  nn::BatchNorm2d bn(2);
  bn.running_mean.fill(7.0f);
  bn.running_var.fill(9.0f);
  Generator gen(3);
  const std::vector<Tensor> batches = {Tensor::normal({4, 2, 3, 3}, gen, 1.0f, 2.0f),
                                       Tensor::normal({4, 2, 3, 3}, gen, -1.0f, 0.5f),
                                       Tensor::normal({4, 2, 3, 3}, gen, 0.0f, 1.0f)};
  compress::recalibrate_batchnorm(bn, batches);
  EXPECT_FALSE(bn.is_training());
  EXPECT_FLOAT_EQ(bn.momentum, 0.1f);
  for (int64_t c = 0; c < 2; ++c) {
    double mean = 0, var = 0;
    for (const Tensor& x : batches) {
      const auto v = x.to_vector();
      double s = 0, ss = 0;
      const int64_t m = 4 * 9;
      for (int64_t n = 0; n < 4; ++n)
        for (int64_t i = 0; i < 9; ++i) s += v[size_t((n * 2 + c) * 9 + i)];
      const double mu = s / m;
      for (int64_t n = 0; n < 4; ++n)
        for (int64_t i = 0; i < 9; ++i) {
          const double d = v[size_t((n * 2 + c) * 9 + i)] - mu;
          ss += d * d;
        }
      mean += mu / 3;
      var += ss / (m - 1) / 3;
    }
    EXPECT_NEAR(bn.running_mean.data<float>()[c], mean, 1e-5);
    EXPECT_NEAR(bn.running_var.data<float>()[c], var, 1e-5);
  }
}
