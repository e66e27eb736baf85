#include "duet/compress/quantize.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "duet/autograd/autograd.h"
#include "duet/compress/fold.h"
#include "duet/compress/fused_blocks.h"
#include "duet/compress/fused_conv.h"
#include "duet/compress/generator_int8.h"
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
    if (!l.range_rule.empty()) j["range_rule"] = l.range_rule;
    if (l.method_error >= 0.0) j["method_error"] = l.method_error;
    ls.push_back(j);
  }
  return {{"method", method},
          {"weight_bits", weight_bits},
          {"calibration_images", calibration_images},
          {"int8_layers", int8_layers()},
          {"layers", ls}};
}

QuantizeReport quantize_layers(std::vector<QuantLayer>& layers, int64_t batches, int64_t images,
                               const std::function<void(int64_t)>& run, const QuantizeOptions& o) {
  DUET_CHECK(!layers.empty(), "quantize: the model has no convolutions to quantise");
  DUET_CHECK(batches > 0, "quantize: no calibration images");
  // Which layers the user keeps in float; unknown names are a usage error, not a silent no-op.
  std::set<std::string> keep;
  for (const std::string& k : o.keep_fp32) {
    if (k == "first") {
      keep.insert(layers.front().name);
    } else if (k == "last") {
      keep.insert(layers.back().name);
    } else {
      if (std::none_of(layers.begin(), layers.end(),
                       [&](const QuantLayer& l) { return l.name == k; }))
        fail_usage("quantize: --keep-fp32 names '", k, "', which is no convolution of the model ",
                   "(first, last, or a name like ", layers.front().name, ")");
      keep.insert(k);
    }
  }
  // Every batch through the model with `hook` on every layer; hooks come off on any exit.
  auto pass = [&](int64_t count, const std::function<void(size_t, const Tensor&)>& hook) {
    auto remove = [&] {
      for (auto& l : layers) l.set_hook(nullptr);
    };
    for (size_t i = 0; i < layers.size(); ++i)
      layers[i].set_hook([&hook, i](const Tensor& x) { hook(i, x); });
    try {
      for (int64_t b = 0; b < count; ++b) run(b);
    } catch (...) {
      remove();
      throw;
    }
    remove();
  };

  QuantizeReport report;
  report.method = calibration_method_name(o.method);
  report.weight_bits = o.weight_bits;
  report.calibration_images = images;
  std::vector<RangeObserver> observers(layers.size());
  pass(batches, [&](size_t i, const Tensor& x) {
    const Tensor c = ops::contiguous(x);
    observers[i].observe_range(c.data<float>(), c.numel());
  });
  if (o.method != CalibrationMethod::minmax)
    pass(batches, [&](size_t i, const Tensor& x) {
      const Tensor c = ops::contiguous(x);
      observers[i].observe_histogram(c.data<float>(), c.numel());
    });
  // Each layer's input on the first batch, for the isolated error check.
  std::vector<Tensor> first_inputs(layers.size());
  if (o.max_layer_error > 0.0)
    pass(1, [&](size_t i, const Tensor& x) {
      if (!first_inputs[i].defined()) first_inputs[i] = ops::contiguous(x).clone();
    });

  for (size_t i = 0; i < layers.size(); ++i) {
    QuantLayer& layer = layers[i];
    LayerQuantization lq;
    lq.name = layer.name;
    lq.shape = layer.weight->shape().str();
    lq.error = -1.0;
    if (layer.groups != 1) {
      lq.reason = "grouped convolution";
    } else if (keep.count(lq.name)) {
      lq.reason = "--keep-fp32";
    } else if (!observers[i].seen()) {
      lq.reason = "never ran on the calibration images";
    } else {
      auto take = [&](CalibrationMethod rule) {
        std::tie(lq.lo, lq.hi) = observers[i].choose(rule, o.percentile);
        lq.input = kernels::ActivationQuant::from_range(lq.lo, lq.hi);
        lq.range_rule = calibration_method_name(rule);
      };
      take(o.method);
      if (o.max_layer_error > 0.0 && first_inputs[i].defined()) {
        const Tensor& x = first_inputs[i];
        const Tensor want = layer.run_float(x);
        auto error_of = [&] { return relative_l2(layer.run_int8(x, lq.input), want); };
        lq.error = error_of();
        if (!(lq.error <= o.max_layer_error)) {
          // Another rule's range may suit this layer's inputs (kl and percentile clip |x|
          // symmetrically, which can cut off the larger side of a skewed signed input): the
          // lowest error among them, in a fixed order so ties resolve the same way every time.
          const LayerQuantization by_method = lq;
          LayerQuantization best = lq;
          const bool histograms = o.method != CalibrationMethod::minmax;
          for (CalibrationMethod rule :
               {CalibrationMethod::minmax, CalibrationMethod::percentile, CalibrationMethod::kl}) {
            if (rule == o.method || (rule != CalibrationMethod::minmax && !histograms)) continue;
            take(rule);
            lq.error = error_of();
            if (lq.error < best.error || !std::isfinite(best.error)) best = lq;
          }
          lq = best;
          if (lq.range_rule != by_method.range_rule) lq.method_error = by_method.error;
          if (!(lq.error <= o.max_layer_error)) {
            lq = by_method;  // the report shows the method's range and error
            lq.reason = "error above --max-layer-error";
          }
        }
      }
      lq.int8 = lq.reason.empty();
    }
    report.layers.push_back(lq);
  }
  for (size_t i = 0; i < layers.size(); ++i)
    if (report.layers[i].int8) layers[i].make_int8(report.layers[i].input);
  return report;
}

QuantizeReport quantize_model(nn::Module& folded, const std::vector<Tensor>& batches,
                              const QuantizeOptions& o) {
  auto convs = fused_convs(folded);
  DUET_CHECK(!convs.empty(), "quantize: ", folded.type_name(),
             " has no folded convolutions (fold the model first)");
  std::vector<QuantLayer> layers;
  for (auto& c : convs) {
    DUET_CHECK(!c.conv->is_int8(), "quantize: layer ", c.name, " is int8 already");
    FusedConv* conv = c.conv;
    layers.push_back(
        {c.name, &conv->weight, conv->options().groups,
         [conv](std::function<void(const Tensor&)> hook) { conv->on_input = std::move(hook); },
         [conv](const Tensor& x) { return conv->forward(x); },
         [conv, bits = o.weight_bits](const Tensor& x, const kernels::ActivationQuant& q) {
           return conv->int8_kernel(q, bits).forward(x, Tensor());
         },
         [conv, bits = o.weight_bits](const kernels::ActivationQuant& q) {
           conv->quantize(q, bits);
         }});
  }
  int64_t images = 0;
  for (const Tensor& b : batches) images += b.dim(0);

  const bool was_training = folded.is_training();
  folded.eval();
  autograd::NoGradGuard no_grad;
  // A FoldedClassifier runs layer by layer meanwhile (no image chunks on worker threads), so each
  // hook sees whole batches, in order, on this thread: what it records cannot depend on timing.
  auto* classifier = dynamic_cast<FoldedClassifier*>(&folded);
  const int64_t chunk = classifier ? classifier->chunk_images : 0;
  if (classifier) classifier->chunk_images = 0;
  QuantizeReport report;
  try {
    report = quantize_layers(
        layers, std::ssize(batches), images,
        [&](int64_t b) { folded.forward(batches[static_cast<size_t>(b)]); }, o);
  } catch (...) {
    if (classifier) classifier->chunk_images = chunk;
    folded.train(was_training);
    throw;
  }
  if (classifier) classifier->chunk_images = chunk;
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
                       {"weight_bits", report.weight_bits},
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
    if (q.value("format", "") == "int8-generator") {
      out.model = load_int8_generator(file, out.config);
      return out;
    }
    DUET_CHECK(q.value("format", "") == "int8-folded", "field quantization.format: expected ",
               "\"int8-folded\" or \"int8-generator\"");
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
