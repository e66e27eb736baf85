// Folding is one recursive walk over the module tree with one rule per block type: a rule turns
// a block into its fused inference form (fused_blocks.h), containers fold their children, and
// the classifier families all become a FoldedClassifier (body, pooling, head). Adding a
// family means adding its block rules and one model rule here, not a new mechanism.
#include "duet/compress/fold.h"

#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "duet/autograd/autograd.h"
#include "duet/compress/fused_blocks.h"
#include "duet/models/imagenet_resnet.h"
#include "duet/models/imagenet_stem.h"
#include "duet/models/repvgg.h"
#include "duet/models/resnet.h"
#include "duet/models/shufflenet_v2.h"
#include "duet/tensor/error.h"

namespace duet::compress {
namespace {

using kernels::Activation;
using ModulePtr = std::shared_ptr<nn::Module>;

// The epilogue form of a pointwise activation layer; nullopt when the kernel has none.
std::optional<Activation> epilogue_activation(const nn::Module& m) {
  const auto* a = dynamic_cast<const nn::Activation*>(&m);
  if (!a) return std::nullopt;
  switch (a->kind) {
    case nn::ActivationKind::relu:
      return Activation::relu;
    case nn::ActivationKind::silu:
      return Activation::silu;
    case nn::ActivationKind::gelu:
      return Activation::gelu;
    case nn::ActivationKind::identity:
      return Activation::none;
    default:
      return std::nullopt;
  }
}

std::shared_ptr<FusedConv> fuse(const nn::Conv2d& conv, const nn::BatchNorm2d* bn, Activation act) {
  const FoldedWeights f = fold_batch_norm(conv, bn);
  return std::make_shared<FusedConv>(f.weight, f.bias, conv.options(), act);
}

std::shared_ptr<nn::Linear> copy_linear(const nn::Linear& src) {
  Generator gen(0);  // the initial values are overwritten
  auto out =
      std::make_shared<nn::Linear>(gen, src.weight.dim(1), src.weight.dim(0), src.bias != nullptr);
  out->weight.copy_from(autograd::detached(src.weight));
  if (src.bias) out->bias->copy_from(autograd::detached(*src.bias));
  return out;
}

ModulePtr fold_module(nn::Module& m);

// Conv2d [BatchNorm2d] [activation] runs become one FusedConv; other children fold on their own.
std::shared_ptr<nn::Sequential> fold_sequence(nn::Sequential& seq) {
  auto out = std::make_shared<nn::Sequential>();
  const auto& ch = seq.children();
  for (size_t i = 0; i < ch.size(); ++i) {
    const auto* conv = dynamic_cast<const nn::Conv2d*>(ch[i].second.get());
    if (!conv) {
      out->push_back(fold_module(*ch[i].second));
      continue;
    }
    const nn::BatchNorm2d* bn = nullptr;
    if (i + 1 < ch.size() && (bn = dynamic_cast<const nn::BatchNorm2d*>(ch[i + 1].second.get())))
      ++i;
    Activation act = Activation::none;
    if (i + 1 < ch.size())
      if (const auto a = epilogue_activation(*ch[i + 1].second)) {
        act = *a;
        ++i;
      }
    out->push_back(fuse(*conv, bn, act));
  }
  return out;
}

// A shortcut / downsample Sequential (conv + BN) as the single FusedConv it folds into.
std::shared_ptr<FusedConv> fold_shortcut(nn::Sequential& seq) {
  const auto folded = fold_sequence(seq);
  if (folded->size() == 1)
    if (auto conv = std::dynamic_pointer_cast<FusedConv>(folded->children()[0].second)) return conv;
  fail("fold_for_inference: a residual shortcut is not a conv + BatchNorm (", seq.size(),
       " layers)");
}

ModulePtr fold_basic_block(const nn::Conv2d& conv1, const nn::BatchNorm2d& bn1,
                           const nn::Conv2d& conv2, const nn::BatchNorm2d& bn2,
                           nn::Sequential* shortcut) {
  return std::make_shared<FusedBasicBlock>(fuse(conv1, &bn1, Activation::relu),
                                           fuse(conv2, &bn2, Activation::relu),
                                           shortcut ? fold_shortcut(*shortcut) : nullptr);
}

// RepVGG: the block's branches sum into one 3x3 conv with bias (its own re-parameterisation,
// the step reparameterize_repvgg takes per block), then the block's ReLU joins the epilogue.
ModulePtr fold_repvgg_block(models::RepVGGBlock& b) {
  if (b.rbr_reparam) return fuse(*b.rbr_reparam, nullptr, Activation::relu);
  const auto [kernel, bias] = b.fused_kernel_bias();
  return std::make_shared<FusedConv>(kernel, bias, ops::Conv2dOptions{b.stride, 1, 1, 1},
                                     Activation::relu);
}

// The shared shape of folded classifiers; `body` is already folded.
ModulePtr classifier(const nn::Module& original, std::vector<ModulePtr> body,
                     const std::string& head_name, const nn::Linear& head) {
  return std::make_shared<FoldedClassifier>("Folded" + original.type_name(),
                                            std::make_shared<nn::Sequential>(std::move(body)),
                                            head_name, copy_linear(head));
}

ModulePtr stem_pool() {
  return std::make_shared<FnModule>("MaxPool2d", models::stem_max_pool);
}

struct Rule {
  std::function<bool(const nn::Module&)> matches;
  std::function<ModulePtr(nn::Module&)> fold;
};

template <class T, class F>
Rule rule(F f) {
  return {[](const nn::Module& m) { return dynamic_cast<const T*>(&m) != nullptr; },
          [f](nn::Module& m) -> ModulePtr { return f(static_cast<T&>(m)); }};
}

// Blocks and layers that may appear inside a model.
const std::vector<Rule>& block_rules() {
  static const std::vector<Rule> rules = {
      rule<nn::Sequential>([](nn::Sequential& s) { return fold_sequence(s); }),
      rule<nn::Conv2d>([](nn::Conv2d& c) { return fuse(c, nullptr, Activation::none); }),
      rule<models::BasicBlock>([](models::BasicBlock& b) {
        return fold_basic_block(*b.conv1, *b.bn1, *b.conv2, *b.bn2, b.shortcut.get());
      }),
      rule<models::ImageNetBasicBlock>([](models::ImageNetBasicBlock& b) {
        return fold_basic_block(*b.conv1, *b.bn1, *b.conv2, *b.bn2, b.downsample.get());
      }),
      rule<models::ShuffleUnit>([](models::ShuffleUnit& u) {
        return std::make_shared<FusedShuffleUnit>(u.branch1 ? fold_sequence(*u.branch1) : nullptr,
                                                  fold_sequence(*u.branch2));
      }),
      rule<models::RepVGGBlock>(fold_repvgg_block),
      rule<nn::Linear>([](nn::Linear& l) { return copy_linear(l); }),
      rule<nn::Activation>(
          [](nn::Activation& a) { return std::make_shared<nn::Activation>(a.kind); }),
  };
  return rules;
}

// Whole models: each becomes a FoldedClassifier.
const std::vector<Rule>& model_rules() {
  static const std::vector<Rule> rules = {
      rule<models::CifarResNet>([](models::CifarResNet& m) {
        return classifier(m,
                          {fuse(*m.conv1, m.bn1.get(), Activation::relu), fold_module(*m.layer1),
                           fold_module(*m.layer2), fold_module(*m.layer3)},
                          "fc", *m.fc);
      }),
      rule<models::ImageNetResNet>([](models::ImageNetResNet& m) {
        std::vector<ModulePtr> f = {fuse(*m.conv1, m.bn1.get(), Activation::relu)};
        if (m.config().stem == "imagenet") f.push_back(stem_pool());
        for (auto* stage : {&m.layer1, &m.layer2, &m.layer3, &m.layer4})
          f.push_back(fold_module(**stage));
        return classifier(m, std::move(f), "fc", *m.fc);
      }),
      rule<models::ShuffleNetV2>([](models::ShuffleNetV2& m) {
        std::vector<ModulePtr> f = {fold_module(*m.conv1)};
        if (m.config().stem == "imagenet") f.push_back(stem_pool());
        for (auto* stage : {&m.stage2, &m.stage3, &m.stage4, &m.conv5})
          f.push_back(fold_module(**stage));
        return classifier(m, std::move(f), "fc", *m.fc);
      }),
      rule<models::RepVGG>([](models::RepVGG& m) {
        std::vector<ModulePtr> f = {fold_module(*m.stage0)};
        for (auto* stage : {&m.stage1, &m.stage2, &m.stage3, &m.stage4})
          f.push_back(fold_module(**stage));
        return classifier(m, std::move(f), "linear", *m.linear);
      }),
  };
  return rules;
}

ModulePtr fold_module(nn::Module& m) {
  for (const Rule& r : block_rules())
    if (r.matches(m)) return r.fold(m);
  fail("fold_for_inference: no folding rule for a ", m.type_name(), " inside the model");
}

}  // namespace

FoldedWeights fold_batch_norm(const nn::Conv2d& conv, const nn::BatchNorm2d* bn) {
  const Tensor w = autograd::detached(conv.weight).clone();
  const int64_t k = w.dim(0), per = w.numel() / k;
  Tensor b = conv.bias ? autograd::detached(*conv.bias).clone() : Tensor::zeros({k});
  if (!bn) return {w, b};
  DUET_CHECK(bn->weight.numel() == k, "fold_batch_norm: BatchNorm2d has ", bn->weight.numel(),
             " channels, the conv before it ", k, " outputs");
  const float *gamma = bn->weight.data<float>(), *beta = bn->bias.data<float>(),
              *mean = bn->running_mean.data<float>(), *var = bn->running_var.data<float>();
  float *pw = w.data<float>(), *pb = b.data<float>();
  for (int64_t o = 0; o < k; ++o) {
    const double t = double(gamma[o]) / std::sqrt(double(var[o]) + double(bn->eps));
    for (int64_t i = 0; i < per; ++i) pw[o * per + i] = float(double(pw[o * per + i]) * t);
    pb[o] = float(double(beta[o]) + (double(pb[o]) - double(mean[o])) * t);
  }
  return {w, b};
}

bool foldable(const nn::Module& model) {
  for (const Rule& r : model_rules())
    if (r.matches(model)) return true;
  return false;
}

std::shared_ptr<nn::Module> fold_for_inference(nn::Module& model) {
  for (const Rule& r : model_rules()) {
    if (!r.matches(model)) continue;
    ModulePtr out = r.fold(model);
    out->eval();
    for (Tensor* p : out->parameters()) autograd::set_requires_grad(*p, false);
    return out;
  }
  fail("fold_for_inference: no folding rule for ", model.type_name(),
       " (folded families: resnet, imagenet_resnet, shufflenet_v2, repvgg)");
}

std::shared_ptr<nn::Module> inference_model(std::shared_ptr<nn::Module> model) {
  return model && foldable(*model) ? fold_for_inference(*model) : model;
}

}  // namespace duet::compress
