// `duet info --arch NAME | -m MODEL`: the layers of a model with output shapes, parameters and
// multiply-accumulates per layer, and the totals (parameters, MACs, fp32 size).
#include <cstdio>
#include <map>
#include <numeric>
#include <set>
#include <string>

#include "duet/autograd/autograd.h"
#include "duet/cli/commands.h"
#include "duet/compress/fused_conv.h"
#include "duet/compress/quantize.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/models/unified.h"
#include "duet/nn/layers.h"
#include "duet/nn/profile.h"
#include "duet/tensor/error.h"

namespace duet::cli {
namespace {

struct InfoOptions {
  std::string arch;
  std::string model;
  bool config_only = false;
};

std::string human(double v) {
  char buf[32];
  if (v >= 1e9)
    std::snprintf(buf, sizeof buf, "%.2f G", v / 1e9);
  else if (v >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2f M", v / 1e6);
  else if (v >= 1e3)
    std::snprintf(buf, sizeof buf, "%.1f k", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

void run_info(const InfoOptions& o) {
  if (o.arch.empty() == o.model.empty()) fail_usage("info: give exactly one of --arch or -m");
  nlohmann::json config;
  std::shared_ptr<nn::Module> model;
  if (!o.model.empty()) {
    // An int8 checkpoint holds the folded inference form; everything else the model as trained.
    auto loaded = compress::is_quantized_checkpoint(o.model)
                      ? compress::load_inference_model(o.model)
                      : models::load_model(o.model);
    config = loaded.config;
    model = loaded.model;
  } else {
    config = models::preset_config(o.arch);
    Generator gen(0);
    model = models::build_model(config, gen);
  }
  if (o.config_only) {  // for scripts, e.g. bench/peers/torch_models.py builds the PyTorch twin
    std::printf("%s\n", config.dump().c_str());
    return;
  }
  model->eval();
  const std::string label = o.model.empty() ? o.arch : o.model;

  std::map<const nn::Module*, std::string> names;
  for (auto& [name, m] : model->named_modules()) names[m] = name;

  nn::ProfileScope scope;
  {
    autograd::NoGradGuard no_grad;
    model->forward(Tensor::zeros(models::input_shape(config)));
  }
  std::printf("model %s (%s), input %s\n", label.c_str(), config.dump().c_str(),
              models::input_shape(config).str().c_str());
  std::printf("%-28s %-12s %-18s %10s %10s\n", "layer", "type", "output", "params", "MACs");
  double total_macs = 0;
  std::set<const Tensor*> used;  // parameters of the layers this forward ran, each once
  for (const auto& r : scope.records()) {
    nn::Module* m = const_cast<nn::Module*>(r.module);
    int64_t params = 0;
    for (auto& [n, t] : m->named_parameters()) params += t->numel(), used.insert(t);
    total_macs += r.macs;
    std::printf("%-28s %-12s %-18s %10s %10s\n", names[r.module].c_str(), m->type_name().c_str(),
                r.output.str().c_str(), human(static_cast<double>(params)).c_str(),
                r.macs > 0 ? human(r.macs).c_str() : "-");
  }
  const int64_t params = model->parameter_count();
  std::printf("total: %lld parameters (%s), %s MACs per image, %.2f MiB as fp32\n",
              static_cast<long long>(params), human(static_cast<double>(params)).c_str(),
              human(total_macs).c_str(), static_cast<double>(params) * 4 / (1 << 20));
  if (models::UNet* unet = models::generator_network(*model);
      unet && dynamic_cast<models::Classifier*>(model.get())) {
    // A unified model: the table is its classification pass; generation runs the whole UNet.
    nn::ProfileScope unet_scope;
    {
      autograd::NoGradGuard no_grad;
      unet->forward(Tensor::zeros(models::input_shape(config)));
    }
    double unet_macs = 0;
    for (const auto& r : unet_scope.records()) unet_macs += r.macs;
    std::printf(
        "unified: classifying (the table) uses %lld of the parameters (%s MACs per image); "
        "generating runs the whole UNet, %lld parameters and %s MACs per image and network "
        "pass\n",
        static_cast<long long>(
            std::accumulate(used.begin(), used.end(), int64_t{0},
                            [](int64_t sum, const Tensor* t) { return sum + t->numel(); })),
        human(total_macs).c_str(), static_cast<long long>(unet->parameter_count()),
        human(unet_macs).c_str());
  }
  if (compress::is_quantized_config(config)) {
    int64_t int8 = 0, convs = 0;
    for (auto& [name, m] : model->named_modules()) {
      if (const auto* c = dynamic_cast<const compress::FusedConv*>(m)) {
        ++convs;
        int8 += c->is_int8();
      }
      if (const auto* c = dynamic_cast<const nn::Conv2d*>(m)) {  // an int8 generator's
        ++convs;
        int8 += c->inference != nullptr;
      }
    }
    size_t stored = 0;
    for (auto& [name, t] : model->named_parameters()) stored += t->nbytes();
    for (auto& [name, t] : model->named_buffers()) stored += t->nbytes();
    // Files written before --weight-bits existed hold 8-bit weights.
    std::printf(
        "int8: %lld of %lld convs int8 (calibration: %s, %d-bit weights), %.2f MiB of tensors "
        "stored\n",
        static_cast<long long>(int8), static_cast<long long>(convs),
        config["quantization"].value("method", "?").c_str(),
        config["quantization"].value("weight_bits", compress::kMaxWeightBits),
        static_cast<double>(stored) / (1 << 20));
  }
  if (config.contains("pruned") && config["pruned"].is_object()) {
    const auto& p = config["pruned"];
    std::printf(
        "pruned from %s: keep %s of the %s (%s criterion, scope %s), %s fine-tuning "
        "epochs; stage widths %s, block widths %s\n",
        p.value("from", std::string("?")).c_str(), p.value("keep", nlohmann::json()).dump().c_str(),
        p.value("budget", std::string("?")).c_str(), p.value("criterion", std::string("?")).c_str(),
        p.value("scope", std::string("?")).c_str(),
        p.value("finetune_epochs", nlohmann::json()).dump().c_str(),
        config.value("stage_widths", nlohmann::json()).dump().c_str(),
        config.value("block_widths", nlohmann::json()).dump().c_str());
  }
  if (config.contains("reflow") && config["reflow"].is_object()) {
    const auto& r = config["reflow"];
    std::printf(
        "reflowed from %s: %s pairs (%s x %s steps, cfg %s), %s epochs; the guidance is learnt, "
        "sample it with --cfg 1 and a few Euler steps\n",
        r.value("from", std::string("?")).c_str(),
        r.value("pairs", nlohmann::json()).dump().c_str(),
        r.value("pair_sampler", std::string("?")).c_str(),
        r.value("pair_steps", nlohmann::json()).dump().c_str(),
        r.value("pair_cfg", nlohmann::json()).dump().c_str(),
        r.value("epochs", nlohmann::json()).dump().c_str());
  }
}

}  // namespace

Action add_info_command(CLI::App& app) {
  auto o = std::make_shared<InfoOptions>();
  CLI::App* sub = app.add_subcommand("info", "layers, parameters, MACs and size of a model");
  sub->add_option("--arch", o->arch,
                  "a built-in architecture (see the error of --arch x for the list)");
  sub->add_option("-m,--model", o->model, "a checkpoint (.safetensors)");
  sub->add_flag("--config", o->config_only, "print only the model's JSON config, one line");
  return [o] { run_info(*o); };
}

}  // namespace duet::cli
