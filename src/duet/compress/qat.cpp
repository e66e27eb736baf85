// Why the twin starts from the folded model (BatchNorm folded into the convs) rather than from
// conv + BatchNorm: the int8 file quantises the folded weights w * gamma / sqrt(var + eps), per
// output channel, and its convs see no BatchNorm. Fake-quantising the unfolded weights would
// train against other codes and scales than the ones that ship, and a BatchNorm in training
// mode would normalise by batch statistics the deployed model never computes. Training the
// folded conv directly is training conv + BatchNorm with the statistics frozen (what PyTorch's
// QAT recipe switches to after its first epochs); a short fine-tune of a trained model loses
// nothing by freezing them from the start. The twin is converted by one walk over the folded
// module tree, one rule per fused block type, mirroring fold.cpp.
#include "duet/compress/qat.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "duet/autograd/autograd.h"
#include "duet/compress/fake_quant.h"
#include "duet/compress/fold.h"
#include "duet/compress/fused_blocks.h"
#include "duet/models/shufflenet_v2.h"
#include "duet/ops/activation.h"
#include "duet/ops/conv.h"
#include "duet/ops/eltwise.h"
#include "duet/ops/pool.h"
#include "duet/ops/shape_ops.h"
#include "duet/tensor/error.h"

namespace duet::compress {
namespace {

using ModulePtr = std::shared_ptr<nn::Module>;
using LayerMap = std::map<std::string, const LayerQuantization*>;

std::string child_path(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

std::shared_ptr<QatConv> convert_conv(const FusedConv& c, const std::string& path,
                                      const LayerMap& layers) {
  std::optional<std::pair<float, float>> range;
  const auto it = layers.find(path);
  if (it != layers.end() && it->second->int8)
    range = std::make_pair(it->second->lo, it->second->hi);
  return std::make_shared<QatConv>(c, range);
}

ModulePtr convert(const ModulePtr& m, const std::string& path, const LayerMap& layers);

std::shared_ptr<nn::Sequential> convert_sequential(const nn::Sequential& s, const std::string& path,
                                                   const LayerMap& layers) {
  auto out = std::make_shared<nn::Sequential>();
  for (const auto& [name, child] : s.children())
    out->push_back(convert(child, child_path(path, name), layers));
  return out;
}

ModulePtr convert(const ModulePtr& m, const std::string& path, const LayerMap& layers) {
  if (auto* c = dynamic_cast<FusedConv*>(m.get())) return convert_conv(*c, path, layers);
  if (auto* s = dynamic_cast<nn::Sequential*>(m.get())) return convert_sequential(*s, path, layers);
  if (auto* b = dynamic_cast<FusedBasicBlock*>(m.get()))
    return std::make_shared<QatBasicBlock>(
        convert_conv(*b->conv1, child_path(path, "conv1"), layers),
        convert_conv(*b->conv2, child_path(path, "conv2"), layers),
        b->shortcut ? convert_conv(*b->shortcut, child_path(path, "shortcut"), layers) : nullptr);
  if (auto* u = dynamic_cast<FusedShuffleUnit*>(m.get()))
    return std::make_shared<QatShuffleUnit>(
        u->branch1 ? convert_sequential(*u->branch1, child_path(path, "branch1"), layers) : nullptr,
        convert_sequential(*u->branch2, child_path(path, "branch2"), layers));
  if (auto* a = dynamic_cast<nn::Activation*>(m.get()))
    return std::make_shared<nn::Activation>(a->kind);
  // Parameter-free steps made of differentiable ops (the stem's max-pool) are shared as they are.
  if (dynamic_cast<FnModule*>(m.get())) return m;
  fail("make_qat_model: no QAT rule for a ", m->type_name(), " (at '", path,
       "') in the folded model");
}

std::shared_ptr<nn::Linear> trainable_copy(const nn::Linear& src) {
  Generator gen(0);  // overwritten below
  auto out =
      std::make_shared<nn::Linear>(gen, src.weight.dim(1), src.weight.dim(0), src.bias != nullptr);
  out->weight.copy_from(autograd::detached(src.weight));
  if (src.bias) out->bias->copy_from(autograd::detached(*src.bias));
  return out;
}

std::string head_name(const FoldedClassifier& f) {
  for (const auto& [name, child] : f.children())
    if (child.get() == f.head.get()) return name;
  fail("make_qat_model: the folded classifier's head is not one of its children");
}

}  // namespace

std::optional<RangeUpdate> parse_range_update(const std::string& name) {
  if (name == "fixed") return RangeUpdate::fixed;
  if (name == "ema") return RangeUpdate::ema;
  return std::nullopt;
}

std::string range_update_name(RangeUpdate r) {
  return r == RangeUpdate::ema ? "ema" : "fixed";
}

QatConv::QatConv(const FusedConv& src, std::optional<std::pair<float, float>> range)
    : Module("QatConv"),
      weight(register_parameter("weight", autograd::detached(src.weight).clone())),
      bias(register_parameter("bias", autograd::detached(src.bias).clone())),
      options_(src.options()),
      act_(src.activation()) {
  DUET_CHECK(weight.dtype() == DType::f32, "QatConv: the source conv is int8 already");
  if (range) {
    DUET_CHECK(options_.groups == 1, "QatConv: grouped convolutions stay in float");
    range_ = &register_buffer(
        "input_range",
        Tensor::from_vector(std::vector<float>{range->first, range->second}, Shape{2}));
  }
}

std::pair<float, float> QatConv::range() const {
  DUET_CHECK(range_ != nullptr, "QatConv: a float layer has no input range");
  return {range_->data<float>()[0], range_->data<float>()[1]};
}

kernels::ActivationQuant QatConv::input_quant() const {
  const auto [lo, hi] = range();
  return kernels::ActivationQuant::from_range(lo, hi);
}

Tensor QatConv::forward(const Tensor& x) {
  return forward(x, Tensor());
}

Tensor QatConv::forward(const Tensor& x, const Tensor& residual) {
  Tensor in = x, w = weight;
  if (range_) {
    if (range_update == RangeUpdate::ema && is_training() && autograd::grad_enabled()) {
      // The batch's extremes (an order-free reduction, so the same for any thread count).
      const Tensor c = ops::contiguous(autograd::detached(x));
      const float* p = c.data<float>();
      const auto [mn, mx] = std::minmax_element(p, p + c.numel());
      if (c.numel() > 0 && std::isfinite(*mn) && std::isfinite(*mx)) {
        float* r = range_->data<float>();
        r[0] += range_momentum * (*mn - r[0]);
        r[1] += range_momentum * (*mx - r[1]);
      }
    }
    in = fake_quant_activation(x, input_quant());
    w = fake_quant_weight(weight);
  }
  Tensor y = ops::conv2d(in, w, bias, options_);
  if (residual.defined()) y = ops::add(y, residual);
  switch (act_) {
    case kernels::Activation::none:
      return y;
    case kernels::Activation::relu:
      return ops::relu(y);
    case kernels::Activation::silu:
      return ops::silu(y);
    case kernels::Activation::gelu:
      return ops::gelu(y);
  }
  return y;
}

QatBasicBlock::QatBasicBlock(std::shared_ptr<QatConv> c1, std::shared_ptr<QatConv> c2,
                             std::shared_ptr<QatConv> sc)
    : Module("QatBasicBlock") {
  DUET_CHECK(c1 && c2, "QatBasicBlock: conv1 and conv2 are required");
  conv1 = register_module("conv1", std::move(c1));
  conv2 = register_module("conv2", std::move(c2));
  if (sc) shortcut = register_module("shortcut", std::move(sc));
}

Tensor QatBasicBlock::forward(const Tensor& x) {
  const Tensor identity = shortcut ? shortcut->forward(x) : x;
  return conv2->forward(conv1->forward(x), identity);
}

QatShuffleUnit::QatShuffleUnit(std::shared_ptr<nn::Sequential> b1,
                               std::shared_ptr<nn::Sequential> b2)
    : Module("QatShuffleUnit") {
  DUET_CHECK(b2, "QatShuffleUnit: branch2 is required");
  if (b1) branch1 = register_module("branch1", std::move(b1));
  branch2 = register_module("branch2", std::move(b2));
}

Tensor QatShuffleUnit::forward(const Tensor& x) {
  Tensor out;
  if (branch1) {
    out = ops::concat({branch1->forward(x), branch2->forward(x)}, 1);
  } else {
    const int64_t half = x.dim(1) / 2;
    out = ops::concat(
        {ops::slice(x, 1, 0, half), branch2->forward(ops::slice(x, 1, half, 2 * half))}, 1);
  }
  return models::channel_shuffle(out, 2);
}

QatClassifier::QatClassifier(const std::string& type_name, std::shared_ptr<nn::Sequential> b,
                             const std::string& head_name, std::shared_ptr<nn::Linear> h)
    : Classifier(type_name) {
  body = register_module("body", std::move(b));
  head = register_module(head_name, std::move(h));
}

Tensor QatClassifier::features(const Tensor& x) {
  return ops::global_avg_pool2d(body->forward(x));
}

Tensor QatClassifier::logits(const Tensor& f) {
  return head->forward(f);
}

std::shared_ptr<QatClassifier> make_qat_model(std::shared_ptr<nn::Module> float_model,
                                              const std::vector<Tensor>& batches,
                                              const QatOptions& o) {
  DUET_CHECK(float_model != nullptr, "make_qat_model: no model");
  if (!foldable(*float_model))
    fail_usage("QAT: a ", float_model->type_name(), " has no folded int8 form (QAT covers the ",
               "folded classifier families: resnet, imagenet_resnet, shufflenet_v2, repvgg)");
  float_model->eval();
  auto ptq = fold_for_inference(*float_model);
  QuantizeReport report = quantize_model(*ptq, batches, o.quantize);

  const auto folded = fold_for_inference(*float_model);
  const auto* fc = dynamic_cast<const FoldedClassifier*>(folded.get());
  DUET_CHECK(fc != nullptr, "make_qat_model: the folded ", float_model->type_name(),
             " is not a folded classifier");
  LayerMap layers;
  for (const auto& l : report.layers) layers[l.name] = &l;
  auto qat = std::make_shared<QatClassifier>("Qat" + float_model->type_name(),
                                             convert_sequential(*fc->body, "body", layers),
                                             head_name(*fc), trainable_copy(*fc->head));
  int64_t int8_convs = 0;
  for (auto& [name, m] : qat->named_modules())
    if (auto* c = dynamic_cast<QatConv*>(m)) {
      c->range_update = o.ranges;
      c->range_momentum = o.range_momentum;
      int8_convs += c->is_int8();
    }
  DUET_CHECK(int8_convs == report.int8_layers(), "make_qat_model: ", int8_convs,
             " fake-quantised convs for ", report.int8_layers(), " int8 layers");
  qat->float_model = std::move(float_model);
  qat->ptq_model = std::move(ptq);
  qat->ptq_report = std::move(report);
  qat->train();
  return qat;
}

Int8Export export_int8(QatClassifier& qat) {
  DUET_CHECK(qat.float_model != nullptr, "export_int8: the QAT model has no float model");
  Int8Export out;
  out.model = fold_for_inference(*qat.float_model);
  // The twin's parameters by name; the folded model must have exactly these.
  std::map<std::string, Tensor*> trained;
  for (auto& [name, t] : qat.named_parameters()) trained[name] = t;
  size_t copied = 0;
  for (auto& [name, t] : out.model->named_parameters()) {
    const auto it = trained.find(name);
    DUET_CHECK(it != trained.end() && it->second->shape() == t->shape(), "export_int8: parameter '",
               name, "' of the folded model has no counterpart of its shape in the QAT model");
    t->copy_from(autograd::detached(*it->second));
    ++copied;
  }
  DUET_CHECK(copied == trained.size(), "export_int8: the QAT model has ", trained.size(),
             " parameters, the folded model ", copied);
  std::map<std::string, QatConv*> convs;
  for (auto& [name, m] : qat.named_modules())
    if (auto* c = dynamic_cast<QatConv*>(m)) convs[name] = c;
  std::map<std::string, FusedConv*> targets;
  for (auto& [name, m] : out.model->named_modules())
    if (auto* c = dynamic_cast<FusedConv*>(m)) targets[name] = c;
  out.report = qat.ptq_report;
  for (auto& l : out.report.layers) {
    if (!l.int8) continue;
    DUET_CHECK(convs.count(l.name) && targets.count(l.name) && convs.at(l.name)->is_int8(),
               "export_int8: int8 layer '", l.name, "' is missing from the QAT or folded model");
    std::tie(l.lo, l.hi) = convs.at(l.name)->range();
    l.input = kernels::ActivationQuant::from_range(l.lo, l.hi);
    l.error = -1.0;  // measured for PTQ only
    targets.at(l.name)->quantize(l.input);
  }
  return out;
}

}  // namespace duet::compress
