#include "duet/compress/quantize.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "duet/autograd/autograd.h"
#include "duet/compress/fold.h"
#include "duet/compress/fused_blocks.h"
#include "duet/compress/fused_conv.h"
#include "duet/io/tensor_io.h"
#include "duet/models/registry.h"
#include "duet/ops/shape_ops.h"
#include "duet/tensor/error.h"

namespace duet::compress {
namespace {

struct Layer {
  std::string name;
  FusedConv* conv;
};

std::vector<Layer> fused_convs(nn::Module& model) {
  std::vector<Layer> out;
  for (auto& [name, m] : model.named_modules())
    if (auto* c = dynamic_cast<FusedConv*>(m)) out.push_back({name, c});
  return out;
}

// Runs every batch through the model with `hook` installed on every conv. A FoldedClassifier
// runs layer by layer meanwhile (no image chunks on worker threads), so each hook sees whole
// batches, in order, on this thread: what it records cannot depend on thread timing.
void run_with_hooks(nn::Module& model, std::vector<Layer>& layers,
                    const std::vector<Tensor>& batches,
                    const std::function<void(size_t, const Tensor&)>& hook) {
  auto* classifier = dynamic_cast<FoldedClassifier*>(&model);
  const int64_t chunk = classifier ? classifier->chunk_images : 0;
  auto restore = [&] {
    for (auto& l : layers) l.conv->on_input = nullptr;
    if (classifier) classifier->chunk_images = chunk;
  };
  if (classifier) classifier->chunk_images = 0;
  for (size_t i = 0; i < layers.size(); ++i)
    layers[i].conv->on_input = [&hook, i](const Tensor& x) { hook(i, x); };
  try {
    for (const Tensor& b : batches) model.forward(b);
  } catch (...) {
    restore();
    throw;
  }
  restore();
}

double relative_l2(const Tensor& a, const Tensor& b) {
  const float *pa = a.data<float>(), *pb = b.data<float>();
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = double(pa[i]) - double(pb[i]);
    num += d * d;
    den += double(pb[i]) * double(pb[i]);
  }
  return den > 0.0 ? std::sqrt(num / den) : (num > 0.0 ? INFINITY : 0.0);
}

}  // namespace

int64_t QuantizeReport::int8_layers() const {
  return std::count_if(layers.begin(), layers.end(), [](const auto& l) { return l.int8; });
}

nlohmann::json QuantizeReport::to_json() const {
  nlohmann::json ls = nlohmann::json::array();
  for (const auto& l : layers) {
    nlohmann::json j = {{"name", l.name}, {"shape", l.shape}, {"int8", l.int8}};
    if (!l.reason.empty()) j["reason"] = l.reason;
    j["range"] = {l.lo, l.hi};
    if (l.int8) j["input"] = {{"scale", l.input.scale}, {"zero_point", l.input.zero_point}};
    if (l.error >= 0.0) j["error"] = l.error;
    ls.push_back(j);
  }
  return {{"method", method},
          {"calibration_images", calibration_images},
          {"int8_layers", int8_layers()},
          {"layers", ls}};
}

QuantizeReport quantize_model(nn::Module& folded, const std::vector<Tensor>& batches,
                              const QuantizeOptions& o) {
  auto layers = fused_convs(folded);
  DUET_CHECK(!layers.empty(), "quantize: ", folded.type_name(),
             " has no folded convolutions (fold the model first)");
  DUET_CHECK(!batches.empty(), "quantize: no calibration images");
  for (auto& l : layers)
    DUET_CHECK(!l.conv->is_int8(), "quantize: layer ", l.name, " is int8 already");
  // Which layers the user keeps in float; unknown names are a usage error, not a silent no-op.
  std::set<std::string> keep;
  for (const std::string& k : o.keep_fp32) {
    if (k == "first") {
      keep.insert(layers.front().name);
    } else if (k == "last") {
      keep.insert(layers.back().name);
    } else {
      if (std::none_of(layers.begin(), layers.end(), [&](const Layer& l) { return l.name == k; }))
        fail_usage("quantize: --keep-fp32 names '", k, "', which is no convolution of the model ",
                   "(first, last, or a name like ", layers.front().name, ")");
      keep.insert(k);
    }
  }

  const bool was_training = folded.is_training();
  folded.eval();
  autograd::NoGradGuard no_grad;
  QuantizeReport report;
  report.method = calibration_method_name(o.method);
  for (const Tensor& b : batches) report.calibration_images += b.dim(0);

  std::vector<RangeObserver> observers(layers.size());
  run_with_hooks(folded, layers, batches, [&](size_t i, const Tensor& x) {
    const Tensor c = ops::contiguous(x);
    observers[i].observe_range(c.data<float>(), c.numel());
  });
  if (o.method != CalibrationMethod::minmax)
    run_with_hooks(folded, layers, batches, [&](size_t i, const Tensor& x) {
      const Tensor c = ops::contiguous(x);
      observers[i].observe_histogram(c.data<float>(), c.numel());
    });
  // Each layer's input on the first batch, for the isolated error check.
  std::vector<Tensor> first_inputs(layers.size());
  if (o.max_layer_error > 0.0)
    run_with_hooks(folded, layers, {batches.front()}, [&](size_t i, const Tensor& x) {
      if (!first_inputs[i].defined()) first_inputs[i] = ops::contiguous(x).clone();
    });

  for (size_t i = 0; i < layers.size(); ++i) {
    FusedConv& conv = *layers[i].conv;
    LayerQuantization lq;
    lq.name = layers[i].name;
    lq.shape = conv.weight.shape().str();
    lq.error = -1.0;
    if (conv.options().groups != 1) {
      lq.reason = "grouped convolution";
    } else if (keep.count(lq.name)) {
      lq.reason = "--keep-fp32";
    } else if (!observers[i].seen()) {
      lq.reason = "never ran on the calibration images";
    } else {
      std::tie(lq.lo, lq.hi) = observers[i].choose(o.method, o.percentile);
      lq.input = kernels::ActivationQuant::from_range(lq.lo, lq.hi);
      if (o.max_layer_error > 0.0 && first_inputs[i].defined()) {
        const Tensor& x = first_inputs[i];
        const Tensor want = conv.forward(x);
        const Tensor got = conv.int8_kernel(lq.input).forward(x, Tensor());
        lq.error = relative_l2(got, want);
        if (!(lq.error <= o.max_layer_error)) lq.reason = "error above --max-layer-error";
      }
      lq.int8 = lq.reason.empty();
    }
    report.layers.push_back(lq);
  }
  for (size_t i = 0; i < layers.size(); ++i)
    if (report.layers[i].int8) layers[i].conv->quantize(report.layers[i].input);
  folded.train(was_training);
  return report;
}

bool is_quantized_config(const nlohmann::json& config) {
  return config.is_object() && config.contains("quantization");
}

bool is_quantized_checkpoint(const std::string& path) {
  return is_quantized_config(models::read_model_config(io::SafetensorsFile::load(path)));
}

void save_quantized_model(const std::string& path, nn::Module& folded, const nlohmann::json& config,
                          const QuantizeReport& report) {
  nlohmann::json c = config;
  nlohmann::json names = nlohmann::json::array();
  for (const auto& l : report.layers)
    if (l.int8) names.push_back(l.name);
  c["quantization"] = {{"format", "int8-folded"},
                       {"method", report.method},
                       {"calibration_images", report.calibration_images},
                       {"int8_layers", names}};
  models::save_model(path, folded, c);
}

models::LoadedModel load_inference_model(const std::string& path) {
  const auto file = io::SafetensorsFile::load(path);
  models::LoadedModel out;
  out.config = models::read_model_config(file);
  if (!is_quantized_config(out.config)) {
    out = models::load_model(path);
    out.model = inference_model(out.model);
    return out;
  }
  try {
    const auto& q = out.config.at("quantization");
    DUET_CHECK(q.value("format", "") == "int8-folded", "field quantization.format: expected ",
               "\"int8-folded\"");
    Generator gen(0);  // every weight is overwritten by the file
    auto model = models::build_model(out.config, gen);
    DUET_CHECK(foldable(*model), "the model family has no folded form");
    out.model = fold_for_inference(*model);
    auto layers = fused_convs(*out.model);
    for (const auto& name : q.at("int8_layers")) {
      const std::string n = name.get<std::string>();
      auto it =
          std::find_if(layers.begin(), layers.end(), [&](const Layer& l) { return l.name == n; });
      DUET_CHECK(it != layers.end(), "field quantization.int8_layers: '", n,
                 "' is no convolution of the folded model");
      it->conv->make_int8_slots();
    }
    out.model->load_state_dict(io::tensors_from_file(file));
    for (auto& l : layers)
      if (l.conv->weight.dtype() == DType::i8) l.conv->prepare_int8();
    out.model->eval();
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": field quantization: ", e.what());
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  return out;
}

}  // namespace duet::compress
