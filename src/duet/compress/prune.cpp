#include "duet/compress/prune.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "duet/models/registry.h"
#include "duet/nn/layers.h"
#include "duet/tensor/error.h"
#include "duet/tensor/rng.h"

namespace duet::compress {
namespace {

// Basic blocks per stage of the two ResNet families (their configs are validated when built).
std::vector<int> blocks_per_stage(const nlohmann::json& config, std::string* shortcut) {
  const std::string family = config.value("family", std::string());
  const int depth = config.value("depth", 0);
  if (family == "resnet") {
    *shortcut = "shortcut";
    const int n = (depth - 2) / 6;
    return {n, n, n};
  }
  if (family == "imagenet_resnet") {
    *shortcut = "downsample";
    if (depth == 18) return {2, 2, 2, 2};
    return {3, 4, 6, 3};
  }
  fail_usage(
      "prune: structured pruning supports the basic-block ResNets (resnet20/32/56, "
      "resnet18/34); this model's family is '",
      family, "'");
}

void add_bn(PruneLayout& l, const std::string& bn, int group) {
  for (const char* t : {"weight", "bias", "running_mean", "running_var"})
    l.tensors[bn + "." + t].out = group;
}

// conv (+ its BN) writes `out_group` and reads `in_group` (-1: the input image).
void add_conv_bn(PruneLayout& l, const std::string& conv, const std::string& bn, int out_group,
                 int in_group) {
  l.tensors[conv + ".weight"] = TensorChannels{out_group, in_group};
  add_bn(l, bn, out_group);
  l.groups[size_t(out_group)].producers.emplace_back(conv, bn);
}

nn::Module* find_module(nn::Module& model, const std::string& path) {
  for (auto& [name, m] : model.named_modules())
    if (name == path) return m;
  fail("prune: the model has no module '", path, "'");
}

// Rows of `src` [d0, d1, rest...] at `rows` (dim 0) and `cols` (dim 1) into `dst`.
void gather_channels(const Tensor& src, const std::vector<int64_t>& rows,
                     const std::vector<int64_t>& cols, Tensor& dst) {
  DUET_CHECK(src.dtype() == DType::f32 && dst.dtype() == DType::f32 && src.is_contiguous(),
             "prune: channel tensors must be contiguous float32");
  const Shape& s = src.shape();
  const int64_t d1 = s.rank() >= 2 ? s[1] : 1;
  int64_t rest = 1;
  for (int i = 2; i < s.rank(); ++i) rest *= s[i];
  const float* in = src.data<float>();
  float* out = dst.data<float>();
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < cols.size(); ++j)
      std::memcpy(out + (int64_t(i) * int64_t(cols.size()) + int64_t(j)) * rest,
                  in + (rows[i] * d1 + cols[j]) * rest, size_t(rest) * sizeof(float));
}

std::vector<int64_t> all_channels(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

// The kept channel count of a group of `c` channels at fraction `f`.
int64_t kept_count(int64_t c, double f, int64_t multiple) {
  int64_t k = std::llround(f * double(c));
  if (multiple > 1) k = (k + multiple / 2) / multiple * multiple;
  return std::clamp<int64_t>(k, std::min<int64_t>(c, std::max<int64_t>(multiple, 1)), c);
}

// The config of the network whose groups have `counts` channels.
nlohmann::json pruned_config(const nlohmann::json& config, const PruneLayout& layout,
                             const std::vector<int64_t>& counts) {
  nlohmann::json c = config;
  std::vector<int> stages, blocks;
  for (size_t g = 0; g < layout.groups.size(); ++g)
    (layout.groups[g].residual ? stages : blocks).push_back(int(counts[g]));
  c["stage_widths"] = stages;
  c["block_widths"] = blocks;
  return c;
}

}  // namespace

PruneCriterion prune_criterion_from_string(const std::string& s) {
  if (s == "l1") return PruneCriterion::l1;
  if (s == "bn") return PruneCriterion::bn;
  fail_usage("prune: --criterion must be l1 or bn, got '", s, "'");
}
PruneBudget prune_budget_from_string(const std::string& s) {
  if (s == "macs") return PruneBudget::macs;
  if (s == "params") return PruneBudget::params;
  fail_usage("prune: --budget must be macs or params, got '", s, "'");
}
PruneScope prune_scope_from_string(const std::string& s) {
  if (s == "all") return PruneScope::all;
  if (s == "inner") return PruneScope::inner;
  fail_usage("prune: --scope must be all or inner, got '", s, "'");
}
const char* to_string(PruneCriterion c) {
  return c == PruneCriterion::l1 ? "l1" : "bn";
}
const char* to_string(PruneBudget b) {
  return b == PruneBudget::macs ? "macs" : "params";
}
const char* to_string(PruneScope s) {
  return s == PruneScope::all ? "all" : "inner";
}

PruneLayout resnet_prune_layout(const nlohmann::json& config) {
  std::string shortcut;
  const std::vector<int> blocks = blocks_per_stage(config, &shortcut);
  // The widths the network was built with (explicit or default): one build tells them.
  Generator gen(0);
  const auto model = models::build_model(config, gen);
  auto state = model->state_dict();
  auto channels_of = [&](const std::string& tensor) { return state.at(tensor).shape()[0]; };

  PruneLayout l;
  auto new_group = [&](std::string name, int64_t channels, bool residual) {
    l.groups.push_back(ChannelGroup{std::move(name), channels, residual, {}});
    return int(l.groups.size()) - 1;
  };
  // Residual streams first, in stage order (pruned_config relies on this order).
  std::vector<int> stream;
  for (size_t s = 0; s < blocks.size(); ++s) {
    const std::string first = "layer" + std::to_string(s + 1) + ".0.conv2.weight";
    stream.push_back(new_group("stage" + std::to_string(s + 1), channels_of(first), true));
  }
  add_conv_bn(l, "conv1", "bn1", stream[0], -1);
  for (size_t s = 0; s < blocks.size(); ++s)
    for (int b = 0; b < blocks[s]; ++b) {
      const std::string p = "layer" + std::to_string(s + 1) + "." + std::to_string(b) + ".";
      const int in_stream = (b == 0 && s > 0) ? stream[s - 1] : stream[s];
      const int inner = new_group(p + "inner", channels_of(p + "conv1.weight"), false);
      add_conv_bn(l, p + "conv1", p + "bn1", inner, in_stream);
      add_conv_bn(l, p + "conv2", p + "bn2", stream[s], inner);
      if (state.count(p + shortcut + ".0.weight"))
        add_conv_bn(l, p + shortcut + ".0", p + shortcut + ".1", stream[s], in_stream);
    }
  l.tensors["fc.weight"] = TensorChannels{-1, stream.back()};
  // Every channel tensor of the model must be covered, or the shrunk copy would be wrong.
  for (auto& [name, t] : state)
    if (t.rank() >= 1 && t.dtype() == DType::f32 && !l.tensors.count(name) && name != "fc.bias")
      fail("prune: no channel group covers ", name, " of the ", config.value("family", ""),
           " model");
  return l;
}

std::vector<std::vector<double>> channel_importance(nn::Module& model, const PruneLayout& layout,
                                                    PruneCriterion criterion) {
  std::vector<std::vector<double>> score;
  for (const ChannelGroup& g : layout.groups) {
    std::vector<double> total(size_t(g.channels), 0.0);
    for (const auto& [conv_path, bn_path] : g.producers) {
      auto* conv = dynamic_cast<nn::Conv2d*>(find_module(model, conv_path));
      auto* bn = dynamic_cast<nn::BatchNorm2d*>(find_module(model, bn_path));
      DUET_CHECK(conv && bn, "prune: ", conv_path, " / ", bn_path,
                 " are not a Conv2d + BatchNorm2d");
      const Tensor& w = conv->weight;
      const int64_t per = w.numel() / w.shape()[0];
      DUET_CHECK(w.shape()[0] == g.channels, "prune: ", conv_path, " writes ", w.shape()[0],
                 " channels, group ", g.name, " has ", g.channels);
      const float* wp = w.data<float>();
      const float* gamma = bn->weight.data<float>();
      const float* var = bn->running_var.data<float>();
      std::vector<double> s(size_t(g.channels));
      for (int64_t c = 0; c < g.channels; ++c) {
        const double gain = std::fabs(double(gamma[c])) / std::sqrt(double(var[c]) + bn->eps);
        if (criterion == PruneCriterion::bn) {
          s[size_t(c)] = std::fabs(double(gamma[c]));
        } else {
          double l1 = 0;
          for (int64_t i = 0; i < per; ++i) l1 += std::fabs(double(wp[c * per + i]));
          s[size_t(c)] = gain * l1;
        }
      }
      // Producers are summed after scaling each to mean 1: a channel that matters to one of the
      // blocks writing a residual stream matters, whatever that block's weight scale.
      const double mean = std::accumulate(s.begin(), s.end(), 0.0) / double(g.channels);
      for (int64_t c = 0; c < g.channels; ++c)
        total[size_t(c)] += mean > 0 ? s[size_t(c)] / mean : 0.0;
    }
    score.push_back(std::move(total));
  }
  return score;
}

std::shared_ptr<nn::Module> shrink_model(nn::Module& model, const PruneLayout& layout,
                                         const std::vector<std::vector<int64_t>>& keep,
                                         const nlohmann::json& pruned_config) {
  DUET_CHECK(keep.size() == layout.groups.size(), "prune: ", keep.size(), " keep lists for ",
             layout.groups.size(), " groups");
  Generator gen(0);
  auto small = models::build_model(pruned_config, gen);
  auto from = model.state_dict();
  for (auto& [name, dst] : small->state_dict()) {
    auto it = from.find(name);
    DUET_CHECK(it != from.end(), "prune: the pruned network has ", name, ", the original not");
    const Tensor& src = it->second;
    const auto ch = layout.tensors.find(name);
    if (ch == layout.tensors.end()) {
      DUET_CHECK(src.shape() == dst.shape() && src.dtype() == dst.dtype(), "prune: ", name,
                 " is not in a channel group but changed shape");
      std::memcpy(dst.raw_data(), src.raw_data(), src.nbytes());
      continue;
    }
    const std::vector<int64_t> rows =
        ch->second.out >= 0 ? keep[size_t(ch->second.out)] : all_channels(src.shape()[0]);
    const std::vector<int64_t> cols = ch->second.in >= 0
                                          ? keep[size_t(ch->second.in)]
                                          : all_channels(src.rank() >= 2 ? src.shape()[1] : 1);
    Shape want = src.shape();
    want[0] = int64_t(rows.size());
    if (want.rank() >= 2) want[1] = int64_t(cols.size());
    DUET_CHECK(want == dst.shape(), "prune: ", name, " would become ", want.str(),
               ", the pruned network wants ", dst.shape().str());
    gather_channels(src, rows, cols, dst);
  }
  small->eval();
  return small;
}

PruneResult prune_channels(nn::Module& model, const nlohmann::json& config, const PruneOptions& o) {
  if (!(o.keep > 0.0 && o.keep <= 1.0)) fail_usage("prune: --keep must be in (0, 1], got ", o.keep);
  if (o.multiple < 1 || o.multiple > 64)
    fail_usage("prune: --multiple must be in 1..64, got ", o.multiple);
  const PruneLayout layout = resnet_prune_layout(config);
  const auto score = channel_importance(model, layout, o.criterion);

  PruneResult r;
  const models::NetworkCost before = models::network_cost(config);
  r.macs_before = before.macs;
  r.params_before = before.parameters;
  const double limit =
      o.keep * (o.budget == PruneBudget::macs ? r.macs_before : double(r.params_before));
  auto counts_at = [&](double f) {
    std::vector<int64_t> counts;
    for (const ChannelGroup& g : layout.groups)
      counts.push_back(g.residual && o.scope == PruneScope::inner
                           ? g.channels
                           : kept_count(g.channels, f, o.multiple));
    return counts;
  };
  auto cost_at = [&](double f) {
    const models::NetworkCost c = models::network_cost(pruned_config(config, layout, counts_at(f)));
    return o.budget == PruneBudget::macs ? c.macs : double(c.parameters);
  };
  // Cost grows with f: bisect for the largest fraction within the budget.
  double lo = 0.0, hi = 1.0;
  if (cost_at(hi) > limit) {
    if (cost_at(lo) > limit)
      fail_usage("prune: --keep ", o.keep, " is below what the smallest network allowed (",
                 o.scope == PruneScope::inner ? "whole residual streams, " : "", "at least ",
                 o.multiple, " channel(s) per group) costs",
                 o.scope == PruneScope::inner ? "; --scope all prunes the streams too" : "");
    for (int it = 0; it < 30; ++it) {
      const double mid = 0.5 * (lo + hi);
      (cost_at(mid) <= limit ? lo : hi) = mid;
    }
  } else {
    lo = 1.0;
  }
  r.fraction = lo;
  const std::vector<int64_t> counts = counts_at(lo);

  // Per group, its most important channels, in their original order.
  std::vector<std::vector<int64_t>> keep;
  for (size_t g = 0; g < layout.groups.size(); ++g) {
    std::vector<int64_t> order = all_channels(layout.groups[g].channels);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return score[g][size_t(a)] > score[g][size_t(b)];
    });
    order.resize(size_t(counts[g]));
    std::sort(order.begin(), order.end());
    keep.push_back(std::move(order));
    r.groups.push_back(PrunedGroup{layout.groups[g].name, layout.groups[g].channels, counts[g]});
  }
  r.config = pruned_config(config, layout, counts);
  r.model = shrink_model(model, layout, keep, r.config);
  const models::NetworkCost after = models::network_cost(r.config);
  r.macs_after = after.macs;
  r.params_after = after.parameters;
  return r;
}

}  // namespace duet::compress
