// Structured (channel) pruning: removes whole output channels of convolutions, so the network
// physically shrinks (fewer parameters, fewer MACs, an ordinary smaller config) instead of
// holding zeros. Channels that must disappear together form a group: every conv + BN that writes
// a residual stream and every layer that reads it share one set of channel indices, so identity
// shortcuts stay consistent. Supported: the basic-block ResNets ("resnet", "imagenet_resnet").
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "duet/nn/module.h"

namespace duet::compress {

// How a channel's importance is scored.
enum class PruneCriterion {
  l1,  // L1 norm of the BN-folded filter (|gamma| / sqrt(var + eps) * sum |w|): what the channel
       // contributes after normalisation, so raw weight scale that BN undoes does not count
  bn,  // |gamma| of the BatchNorm after the conv ("network slimming", Liu et al. 2017)
};

// What --keep is a fraction of.
enum class PruneBudget { macs, params };

// Which groups may shrink.
enum class PruneScope {
  all,    // residual streams and block interiors
  inner,  // block interiors only (conv1's outputs); the residual streams keep every channel
};

PruneCriterion prune_criterion_from_string(const std::string& s);  // usage Error otherwise
PruneBudget prune_budget_from_string(const std::string& s);
PruneScope prune_scope_from_string(const std::string& s);
const char* to_string(PruneCriterion c);
const char* to_string(PruneBudget b);
const char* to_string(PruneScope s);

struct PruneOptions {
  double keep = 0.5;  // the pruned network's MACs (or parameters) / the original's, in (0, 1]
  PruneCriterion criterion = PruneCriterion::l1;
  PruneBudget budget = PruneBudget::macs;
  // Block interiors only by default: on ResNet-20 at half the MACs it kept more accuracy (before
  // and after fine-tuning) and ran faster than pruning the residual streams too
  // (docs/compression.md).
  PruneScope scope = PruneScope::inner;
  int64_t multiple = 1;  // kept channel counts are rounded to a multiple of this (SIMD width)
};

// One set of channel indices that is kept or removed as a whole.
struct ChannelGroup {
  std::string name;       // "stage1" (a residual stream) or "layer2.0.inner" (a block interior)
  int64_t channels = 0;   // before pruning
  bool residual = false;  // a residual stream (PruneScope::inner leaves it whole)
  // The convs whose output channels are the group's, each with the BatchNorm that follows it
  // (module paths): they score the channels.
  std::vector<std::pair<std::string, std::string>> producers;
};

// Which group indexes dimension 0 (output channels) and 1 (input channels) of each state tensor;
// -1: that dimension is kept whole. Tensors not listed are copied as they are.
struct TensorChannels {
  int out = -1, in = -1;
};

struct PruneLayout {
  std::vector<ChannelGroup> groups;
  std::map<std::string, TensorChannels> tensors;
};

// The layout of a basic-block ResNet config; usage Error naming the family otherwise.
PruneLayout resnet_prune_layout(const nlohmann::json& config);

// Per group, the importance of each channel (higher: more important) by `criterion`.
std::vector<std::vector<double>> channel_importance(nn::Module& model, const PruneLayout& layout,
                                                    PruneCriterion criterion);

struct PrunedGroup {
  std::string name;
  int64_t before = 0, after = 0;
};

struct PruneResult {
  std::shared_ptr<nn::Module> model;  // the smaller network with the kept weights, eval mode
  nlohmann::json config;              // with explicit "stage_widths" / "block_widths"
  std::vector<PrunedGroup> groups;
  double fraction = 1.0;  // the channel fraction every prunable group keeps (before rounding)
  double macs_before = 0, macs_after = 0;
  int64_t params_before = 0, params_after = 0;
};

// Prunes `model` (built from `config`) to the budget: every prunable group keeps the same fraction
// of its channels (its most important ones), the largest fraction whose network fits the budget.
// The original model is not modified.
PruneResult prune_channels(nn::Module& model, const nlohmann::json& config,
                           const PruneOptions& options);

// Builds the network of `config` (its parameters and buffers; eval mode) with the channels
// `keep[g]` (sorted indices) of every group of `layout`, copied from `model`.
std::shared_ptr<nn::Module> shrink_model(nn::Module& model, const PruneLayout& layout,
                                         const std::vector<std::vector<int64_t>>& keep,
                                         const nlohmann::json& pruned_config);

}  // namespace duet::compress
