#include "duet/cli/quantize_generator.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <vector>

#include "duet/autograd/autograd.h"
#include "duet/cli/compress_report.h"
#include "duet/cli/eval_distribution.h"
#include "duet/compress/generator_int8.h"
#include "duet/data/dataset.h"
#include "duet/eval/generative_classifier.h"
#include "duet/eval/judge.h"
#include "duet/gen/guidance.h"
#include "duet/gen/objective.h"
#include "duet/models/unified.h"
#include "duet/nn/profile.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"
#include "duet/tensor/rng.h"

namespace duet::cli {
namespace {

namespace fs = std::filesystem;

// `n` seeded training images, noised at a uniform t per image as training does, half of the
// labels replaced by "no class": the inputs classifier-free guided sampling feeds the network.
std::vector<compress::GeneratorBatch> calibration_batches(const GeneratorQuantizeRequest& r,
                                                          const nlohmann::json& config,
                                                          const models::UNetConfig& unet) {
  data::DataOptions o;
  o.split = data::Split::train;
  o.channels = unet.in_channels;
  o.height = o.width = unet.image_size;
  const data::Dataset all = data::load_dataset(r.calib_spec, o);
  if (all.size() == 0) fail_usage("quantize: --calib ", r.calib_spec, " has no images");
  const int64_t n = std::min(r.calib_images, all.size());
  std::vector<int64_t> pick = data::seeded_permutation(all.size(), r.seed, /*stream=*/7);
  pick.resize(static_cast<size_t>(n));
  const data::Dataset d = data::subset(all, pick);
  const auto objective = gen::parse_objective(config.value("objective", "flow"));
  const auto [lo, hi] = eval::value_range(config);
  std::vector<compress::GeneratorBatch> batches;
  for (int64_t b = 0; b < n; b += 100) {
    const int64_t m = std::min<int64_t>(100, n - b);
    Generator g(r.seed ^ 0x9e3779b97f4a7c15ull, static_cast<uint64_t>(b) << 32);
    const Tensor x0 =
        eval::u8_to_generator_input(d.image(b), m, d.channels, d.height, d.width, lo, hi);
    const gen::TrainingDraw draw =
        gen::draw_training_example(objective, gen::TimeSampling::uniform, x0, g);
    std::vector<int32_t> y(d.labels.data<int32_t>() + b, d.labels.data<int32_t>() + b + m);
    for (auto& label : y)
      if (g.next_uniform() < 0.5) label = unet.null_class();
    batches.push_back({draw.x_t, draw.t, Tensor::from_vector(y, Shape{m})});
  }
  return batches;
}

// Multiply-accumulates of one network pass per image (the whole UNet, also for a unified model,
// whose forward(x) is its classification).
double macs_per_pass(models::UNet& unet) {
  nn::ProfileScope scope;
  autograd::NoGradGuard no_grad;
  unet.forward(Tensor::zeros(
      Shape{1, unet.config().in_channels, unet.config().image_size, unet.config().image_size}));
  double macs = 0;
  for (const auto& rec : scope.records()) macs += rec.macs;
  return macs;
}

struct Quality {
  double accuracy = 0.0, fid = 0.0;
};

Quality judge(models::UNet& unet, const nlohmann::json& config, models::LoadedModel& clf,
              ReferenceSetup& reference, const eval::JudgeOptions& o) {
  const auto objective = gen::parse_objective(config.value("objective", "flow"));
  auto* classifier = dynamic_cast<models::Classifier*>(clf.model.get());
  const eval::Judgement j = eval::judge_generator(unet, objective, *classifier, clf.config, o);
  const eval::DistributionReport d = distribution_for(reference, j, *classifier, clf.config, o);
  return {j.metrics.accuracy, d.overall.fid.fid};
}

// Milliseconds per sampler step of `unet` drawing `batch` images (Euler, 4 steps, at `cfg`).
double step_ms(models::UNet& unet, gen::Objective objective, int64_t batch, double cfg) {
  gen::SampleOptions o = gen::sample_options(objective, "euler", 4);
  const std::vector<int32_t> labels(static_cast<size_t>(batch), 0);
  const auto t0 = std::chrono::steady_clock::now();
  gen::generate(unet, objective, labels, cfg, o, 1);
  return 1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 4;
}

}  // namespace

void quantize_generator_command(const GeneratorQuantizeRequest& r, models::LoadedModel& loaded) {
  models::UNet* unet = models::generator_network(*loaded.model);
  DUET_CHECK(unet != nullptr, "quantize: not a generator");
  const auto objective = gen::parse_objective(loaded.config.value("objective", "flow"));
  std::FILE* log = r.json ? stderr : stdout;

  // Everything that can fail on bad flags before the calibration work.
  models::LoadedModel clf;
  eval::JudgeOptions jo;
  std::optional<ReferenceSetup> reference;
  if (!r.classifier.empty()) {
    clf = models::load_model(r.classifier);
    if (!dynamic_cast<models::Classifier*>(clf.model.get()))
      fail_usage("quantize: --classifier ", r.classifier, " is not a classifier");
    if (r.per_class < 2) fail_usage("quantize: --per-class must be >= 2, got ", r.per_class);
    jo.per_class = r.per_class;
    jo.cfg = r.cfg;
    jo.sample = gen::sample_options(objective, r.sampler, r.steps);
    jo.seed = r.seed;
    std::tie(jo.lo, jo.hi) = eval::value_range(loaded.config);
    eval::validate_judge(*unet, objective, clf.config, jo);
    const auto& c = unet->config();
    jo.real = eval::load_real_images(jo, c.in_channels, c.image_size, c.num_classes);
    reference = prepare_reference("", r.classifier, jo, c.in_channels, c.image_size, c.num_classes);
  }

  std::fprintf(log, "quantize %s: calibrating on %lld noised images of %s (seed %llu, method %s)\n",
               r.in.c_str(), static_cast<long long>(r.calib_images), r.calib_spec.c_str(),
               static_cast<unsigned long long>(r.seed),
               compress::calibration_method_name(r.options.method).c_str());
  std::fflush(log);
  const auto batches = calibration_batches(r, loaded.config, unet->config());
  const compress::QuantizeReport report =
      compress::quantize_generator(*loaded.model, batches, r.options);
  compress::save_quantized_generator(r.out, *loaded.model, loaded.config, report);

  // Everything below runs on what was written: the file is the product.
  models::LoadedModel int8 = compress::load_inference_model(r.out);
  models::LoadedModel fp32 = models::load_model(r.in);
  models::UNet& int8_unet = *models::generator_network(*int8.model);
  models::UNet& fp32_unet = *models::generator_network(*fp32.model);
  if (!r.json) print_layer_table(report);

  const double bytes_in = double(fs::file_size(r.in)), bytes_out = double(fs::file_size(r.out));
  const int64_t params = fp32.model->parameter_count();
  const double macs = macs_per_pass(fp32_unet);
  nlohmann::json j = {{"model", r.in},
                      {"output", r.out},
                      {"parameters", params},
                      {"macs_per_pass", macs},
                      {"file_bytes", {{"float", bytes_in}, {"int8", bytes_out}}},
                      {"quantization", report.to_json()}};

  std::optional<Quality> q_fp32, q_int8;
  if (reference) {
    std::fprintf(log, "judging float and int8 samples by %s: %lld per class, %s x %d, cfg %g\n",
                 r.classifier.c_str(), static_cast<long long>(r.per_class),
                 gen::sampler_name(jo.sample.kind).c_str(), jo.sample.steps, jo.cfg);
    std::fflush(log);
    q_fp32 = judge(fp32_unet, fp32.config, clf, *reference, jo);
    q_int8 = judge(int8_unet, int8.config, clf, *reference, jo);
    j["quality"] = {{"classifier", r.classifier},
                    {"per_class", r.per_class},
                    {"steps", jo.sample.steps},
                    {"cfg", jo.cfg},
                    {"seed", jo.seed},
                    {"cond_acc", {{"float", q_fp32->accuracy}, {"int8", q_int8->accuracy}}},
                    {"fid_ref", {{"float", q_fp32->fid}, {"int8", q_int8->fid}}}};
  }

  // Speed: float and int8 sampling alternately, the median of the rounds per batch size.
  nlohmann::json speed = nlohmann::json::array();
  if (r.bench != "none") {
    const int rounds = r.bench == "full" ? 7 : 3;
    for (int64_t batch : {int64_t{64}, int64_t{1}}) {
      std::vector<double> f_ms, i_ms;
      step_ms(fp32_unet, objective, batch, r.cfg);  // warm-up: allocations, packing
      step_ms(int8_unet, objective, batch, r.cfg);
      for (int k = 0; k < rounds; ++k) {
        f_ms.push_back(step_ms(fp32_unet, objective, batch, r.cfg));
        i_ms.push_back(step_ms(int8_unet, objective, batch, r.cfg));
      }
      std::sort(f_ms.begin(), f_ms.end());
      std::sort(i_ms.begin(), i_ms.end());
      const double f = f_ms[f_ms.size() / 2], i = i_ms[i_ms.size() / 2];
      speed.push_back({{"batch", batch},
                       {"float_ms_per_step", f},
                       {"int8_ms_per_step", i},
                       {"speedup", f / i},
                       {"cfg", r.cfg},
                       {"threads", num_threads()}});
    }
  }
  j["speed"] = speed;
  if (r.json) {
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  print_size_rows(22, params, "MMACs/image/pass", macs, bytes_in, bytes_out);
  if (q_fp32) {
    std::printf("%-22s %13.2f%% %13.2f%%   (%+.2f points, %lld per class)\n", "conditional acc.",
                100 * q_fp32->accuracy, 100 * q_int8->accuracy,
                100 * (q_int8->accuracy - q_fp32->accuracy), static_cast<long long>(r.per_class));
    std::printf("%-22s %14.3f %14.3f\n", "FID-ref", q_fp32->fid, q_int8->fid);
  }
  for (const auto& s : speed)
    std::printf("%-22s %11.2f ms %11.2f ms   (int8 %.2fx the float speed)\n",
                ("step, batch " + std::to_string(s["batch"].get<int64_t>())).c_str(),
                s["float_ms_per_step"].get<double>(), s["int8_ms_per_step"].get<double>(),
                s["speedup"].get<double>());
  std::printf("int8 layers: %lld of %zu convs, %d-bit weights; wrote %s\n",
              static_cast<long long>(report.int8_layers()), report.layers.size(),
              report.weight_bits, r.out.c_str());
}

}  // namespace duet::cli
