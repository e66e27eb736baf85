#include "duet/train/qat_run.h"

#include <algorithm>

#include "duet/compress/fold.h"
#include "duet/compress/quantize.h"
#include "duet/data/dataset.h"
#include "duet/models/checkpoint.h"
#include "duet/models/classifier.h"
#include "duet/tensor/error.h"
#include "duet/train/run_checkpoint.h"

namespace duet::train {
namespace {

// The seed and permutation stream of quantize's calibration draw (cli/compress_report.cpp):
// QAT starts from the post-training quantisation `duet quantize` makes by default.
constexpr uint64_t kCalibrationSeed = 0;
constexpr uint64_t kCalibrationStream = 7;

}  // namespace

std::vector<Tensor> qat_calibration_batches(const std::string& spec, int64_t n, uint64_t seed,
                                            const nlohmann::json& config) {
  data::DataOptions o;
  o.split = data::Split::train;
  o.channels = config.value("in_channels", 1);
  o.height = o.width = config.value("image_size", 28);
  const data::Dataset all = data::load_dataset(spec, o);
  if (all.size() == 0) fail_usage("--calib: ", spec, " has no training images");
  n = std::min(n, all.size());
  std::vector<int64_t> pick = data::seeded_permutation(all.size(), seed, kCalibrationStream);
  pick.resize(size_t(n));
  const data::Dataset d = data::subset(all, pick);
  const data::NormStats norm = model_norm_stats(config);
  const int64_t c = d.channels, hw = d.height * d.width;
  std::vector<Tensor> batches;
  for (int64_t b = 0; b < n; b += 100) {
    const int64_t m = std::min<int64_t>(100, n - b);
    Tensor t = Tensor::empty(Shape{m, c, d.height, d.width});
    const uint8_t* px = d.image(b);
    float* x = t.data<float>();
    // The same float operations as quantize's input (p / 255, then (x - mean) / std).
    for (int64_t i = 0; i < t.numel(); ++i) x[i] = static_cast<float>(px[i]) / 255.0f;
    if (!norm.mean.empty())
      for (int64_t i = 0; i < m * c; ++i) {
        const float mean = norm.mean[size_t(i % c)], sd = norm.std[size_t(i % c)];
        for (int64_t j = 0; j < hw; ++j) x[i * hw + j] = (x[i * hw + j] - mean) / sd;
      }
    batches.push_back(t);
  }
  return batches;
}

compress::QatOptions qat_options(const ClassifyRecipe& r) {
  compress::QatOptions o;
  const auto method = compress::parse_calibration_method(r.qat_method);
  if (!method) fail_usage("--method must be minmax, percentile or kl, got '", r.qat_method, "'");
  o.quantize.method = *method;
  o.quantize.keep_fp32 = r.qat_keep_fp32;
  o.quantize.max_layer_error = r.qat_max_layer_error;
  const auto ranges = compress::parse_range_update(r.qat_ranges);
  if (!ranges) fail_usage("--qat-ranges must be fixed or ema, got '", r.qat_ranges, "'");
  o.ranges = *ranges;
  return o;
}

void start_from_qat(ClassifySetup& s) {
  const std::string& path = s.recipe.qat_from;
  if (compress::is_quantized_checkpoint(path))
    fail_usage("--qat-from ", path,
               " is an int8 checkpoint; give the float model it was made from");
  models::LoadedModel loaded = models::load_model(path);
  if (dynamic_cast<models::Classifier*>(loaded.model.get()) == nullptr ||
      !compress::foldable(*loaded.model))
    fail_usage("--qat-from ", path, ": a ", loaded.config.value("family", std::string("?")),
               " model has no int8 form (QAT takes a float classifier of a folded family: resnet, ",
               "imagenet_resnet, shufflenet_v2, repvgg)");
  require_fits("--qat-from", path, loaded.config, s.train_set.channels, s.train_set.height,
               s.train_set.num_classes(), str("the data (--data ", s.recipe.data, ")"));
  s.config = loaded.config;
  s.norm = model_norm_stats(s.config);
  const auto batches =
      qat_calibration_batches(s.recipe.data, s.recipe.qat_calib, kCalibrationSeed, s.config);
  s.model = compress::make_qat_model(loaded.model, batches, qat_options(s.recipe));
}

void save_qat_int8(const std::string& path, compress::QatClassifier& qat, Ema* ema,
                   const nlohmann::json& config, const ClassifyRecipe& r, int64_t epochs_done) {
  compress::Int8Export e;
  if (ema) {
    EmaScope scope(*ema, qat);
    e = compress::export_int8(qat);
  } else {
    e = compress::export_int8(qat);
  }
  nlohmann::json c = config;
  c["qat"] = {{"from", r.qat_from},
              {"from_sha256", r.qat_sha256},
              {"ranges", r.qat_ranges},
              {"epochs", epochs_done}};
  compress::save_quantized_model(path, *e.model, c, e.report);
}

void save_ptq_int8(const std::string& path, compress::QatClassifier& qat,
                   const nlohmann::json& config) {
  compress::save_quantized_model(path, *qat.ptq_model, config, qat.ptq_report);
}

}  // namespace duet::train
