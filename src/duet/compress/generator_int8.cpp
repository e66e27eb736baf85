#include "duet/compress/generator_int8.h"

#include <algorithm>
#include <set>

#include "duet/autograd/autograd.h"
#include "duet/compress/int8_conv.h"
#include "duet/io/tensor_io.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/models/unified.h"
#include "duet/nn/layers.h"
#include "duet/ops/shape_ops.h"
#include "duet/tensor/error.h"

namespace duet::compress {
namespace {

struct NamedConv {
  std::string name;
  nn::Conv2d* conv;
};

// Every convolution of the model in state_dict order (conv_in first, conv_out last).
std::vector<NamedConv> convolutions(nn::Module& model) {
  std::vector<NamedConv> out;
  for (auto& [name, m] : model.named_modules())
    if (auto* c = dynamic_cast<nn::Conv2d*>(m)) out.push_back({name, c});
  return out;
}

Tensor bias_of(const nn::Conv2d& conv) {
  return conv.bias ? *conv.bias : Tensor();
}

// The int8 kernel the conv's current float weights would make with input quantisation q.
Int8ConvKernel trial_kernel(const nn::Conv2d& conv, const kernels::ActivationQuant& q,
                            int weight_bits) {
  const QuantizedWeights w =
      quantize_weights_per_channel(ops::contiguous(conv.weight), weight_bits);
  const Tensor bias = conv.bias ? *conv.bias : Tensor::zeros(Shape{conv.weight.dim(0)});
  return Int8ConvKernel(w.codes, w.scale, bias, q, conv.options(), kernels::Activation::none);
}

void attach_int8(nn::Conv2d& conv) {
  conv.inference = std::make_shared<const Int8InferenceConv>(stored_int8_kernel(
      conv, conv.weight, bias_of(conv), conv.options(), kernels::Activation::none));
}

}  // namespace

QuantizeReport quantize_generator(nn::Module& model, const std::vector<GeneratorBatch>& batches,
                                  const QuantizeOptions& o) {
  models::UNet* unet = models::generator_network(model);
  DUET_CHECK(unet != nullptr, "quantize: ", model.type_name(), " is not a generator");
  DUET_CHECK(!batches.empty(), "quantize: no calibration batches");
  std::vector<QuantLayer> layers;
  for (auto& [name, conv] : convolutions(model)) {
    DUET_CHECK(!conv->inference, "quantize: layer ", name, " is int8 already");
    nn::Conv2d* c = conv;
    QuantLayer layer;
    layer.name = name;
    layer.weight = &c->weight;
    layer.groups = c->options().groups;
    layer.set_hook = [c](std::function<void(const Tensor&)> hook) {
      c->on_input = std::move(hook);
    };
    layer.run_float = [c](const Tensor& x) { return c->forward(x); };
    layer.run_int8 = [c, bits = o.weight_bits](const Tensor& x, const kernels::ActivationQuant& q) {
      return trial_kernel(*c, q, bits).forward(ops::contiguous(x), Tensor());
    };
    layer.make_int8 = [c, bits = o.weight_bits](const kernels::ActivationQuant& q) {
      const QuantizedWeights w = quantize_weights_per_channel(ops::contiguous(c->weight), bits);
      add_int8_slots(*c, c->weight);
      store_int8(*c, c->weight, w, q);
      attach_int8(*c);
    };
    layers.push_back(std::move(layer));
  }
  int64_t images = 0;
  for (const auto& b : batches) images += b.x_t.dim(0);

  const bool was_training = model.is_training();
  model.eval();
  autograd::NoGradGuard no_grad;
  QuantizeReport report;
  try {
    report = quantize_layers(
        layers, std::ssize(batches), images,
        [&](int64_t i) {
          const GeneratorBatch& b = batches[static_cast<size_t>(i)];
          unet->forward(b.x_t, b.t, b.y);
        },
        o);
  } catch (...) {
    model.train(was_training);
    throw;
  }
  // Int8 convolutions have no backward: the model stays in eval mode.
  return report;
}

void save_quantized_generator(const std::string& path, nn::Module& model,
                              const nlohmann::json& config, const QuantizeReport& report) {
  nlohmann::json c = config;
  nlohmann::json names = nlohmann::json::array();
  for (const auto& l : report.layers)
    if (l.int8) names.push_back(l.name);
  c["quantization"] = {{"format", "int8-generator"},
                       {"method", report.method},
                       {"weight_bits", report.weight_bits},
                       {"calibration_images", report.calibration_images},
                       {"int8_layers", names}};
  models::save_model(path, model, c);
}

std::shared_ptr<nn::Module> load_int8_generator(const io::SafetensorsFile& file,
                                                const nlohmann::json& config) {
  Generator gen(0);  // every weight is overwritten by the file
  std::shared_ptr<nn::Module> model = models::build_model(config, gen);
  DUET_CHECK(models::generator_network(*model) != nullptr,
             "field quantization.format: ", "\"int8-generator\" needs a generator family, got '",
             config.value("family", ""), "'");
  const auto convs = convolutions(*model);
  std::set<std::string> int8;
  for (const auto& name : config.at("quantization").at("int8_layers")) {
    const std::string n = name.get<std::string>();
    auto it =
        std::find_if(convs.begin(), convs.end(), [&](const NamedConv& c) { return c.name == n; });
    DUET_CHECK(it != convs.end(), "field quantization.int8_layers: '", n,
               "' is no convolution of the model");
    add_int8_slots(*it->conv, it->conv->weight);
    int8.insert(n);
  }
  model->load_state_dict(io::tensors_from_file(file));
  for (const auto& c : convs)
    if (int8.count(c.name)) attach_int8(*c.conv);
  model->eval();
  return model;
}

}  // namespace duet::compress
