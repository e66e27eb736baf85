// `duet quantize -m IN --calib fashion-mnist:1000 --method kl -o OUT`: post-training int8 of a
// classifier (a generator goes to cli/quantize_generator.h). Folds BatchNorm, calibrates every
// conv's input range on seeded training images, keeps in float what cannot or should not be int8
// (grouped convs, --keep-fp32, layers above
// --max-layer-error), saves the int8 checkpoint atomically, reloads it, and prints the one table
// every compress command prints: parameters, MACs, file size, float vs int8 accuracy on the test
// set, and the measured speed ratio of the two in one alternating run (bench infer --vs).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_row.h"
#include "bench/model_macs.h"
#include "duet/cli/commands.h"
#include "duet/cli/compress_report.h"
#include "duet/cli/quantize_generator.h"
#include "duet/compress/fold.h"
#include "duet/compress/quantize.h"
#include "duet/data/dataset.h"
#include "duet/eval/judge.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/models/unified.h"
#include "duet/tensor/error.h"
#include "duet/train/trainer.h"

namespace duet::cli {
namespace {

namespace fs = std::filesystem;

struct QuantizeFlags {
  std::string in, out;
  std::string calib = "fashion-mnist:1000";
  std::string method = "percentile";
  double percentile = 99.99;
  std::vector<std::string> keep_fp32;
  double max_layer_error = 0.05;
  int weight_bits = compress::kMaxWeightBits;
  uint64_t seed = 0;
  std::string eval_data;  // default: the calibration data set's test split
  int64_t eval_limit = 0;
  std::string bench = "quick";  // quick | full | none
  bool json = false;
  // Generators: the judge of float vs int8 samples.
  std::string classifier;
  int64_t per_class = 50;
  int steps = 20;
  std::string sampler;
  double cfg = 2.0;
  CLI::App* app = nullptr;  // to tell which flags were given
};

// "SPEC:N" -> (SPEC, N); a plain SPEC means 1000 images. SPEC itself may contain ':'
// (fashion-mnist:DIR, idx:A,B), so only a trailing all-digit part counts as N.
std::pair<std::string, int64_t> parse_calib(const std::string& s) {
  const size_t colon = s.rfind(':');
  if (colon != std::string::npos && colon + 1 < s.size() &&
      s.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
    const int64_t n = std::stoll(s.substr(colon + 1));
    if (n < 1 || n > 1'000'000)
      fail_usage("quantize: --calib wants 1..1000000 images, got ", s.substr(colon + 1));
    return {s.substr(0, colon), n};
  }
  return {s, 1000};
}

void run_quantize(const QuantizeFlags& f) {
  const auto method = compress::parse_calibration_method(f.method);
  if (!method)
    fail_usage("quantize: --method must be minmax, percentile or kl, got '", f.method, "'");
  check_bench_mode("quantize", f.bench);
  if (!(f.percentile > 0 && f.percentile <= 100))  // NaN too
    fail_usage("quantize: --percentile must be in (0, 100], got ", f.percentile);
  if (fs::exists(f.out) && fs::equivalent(f.in, f.out))
    fail_usage("quantize: -o must differ from -m (the float model is kept)");
  auto loaded = models::load_model(f.in);
  const auto [calib_spec, calib_n] = parse_calib(f.calib);
  compress::QuantizeOptions qo;
  qo.method = *method;
  qo.percentile = f.percentile;
  qo.keep_fp32 = f.keep_fp32;
  qo.max_layer_error = f.max_layer_error;
  qo.weight_bits = f.weight_bits;
  if (models::generator_network(*loaded.model)) {
    for (const char* flag : {"--eval", "--eval-limit"})
      if (f.app->count(flag) > 0)
        fail_usage("quantize: ", flag, " is for classifiers; a generator is judged with ",
                   "--classifier C --per-class N");
    GeneratorQuantizeRequest r;
    r.in = f.in, r.out = f.out, r.calib_spec = calib_spec, r.calib_images = calib_n;
    r.seed = f.seed, r.options = qo, r.classifier = f.classifier, r.per_class = f.per_class;
    r.steps = f.steps, r.sampler = f.sampler, r.cfg = f.cfg, r.bench = f.bench, r.json = f.json;
    quantize_generator_command(r, loaded);
    return;
  }
  for (const char* flag : {"--classifier", "--per-class", "--steps", "--sampler", "--cfg"})
    if (f.app->count(flag) > 0) fail_usage("quantize: ", flag, " is for generators");
  if (!compress::foldable(*loaded.model))
    fail_usage("quantize: ", f.in, " is a ", loaded.model->type_name(),
               "; int8 covers the folded classifier families (resnet, imagenet_resnet, ",
               "shufflenet_v2, repvgg) and generators (unet, unified)");
  std::FILE* out = f.json ? stderr : stdout;
  std::fprintf(out, "quantize %s: calibrating on %lld images of %s (seed %llu, method %s)\n",
               f.in.c_str(), static_cast<long long>(calib_n), calib_spec.c_str(),
               static_cast<unsigned long long>(f.seed), f.method.c_str());
  std::fflush(out);
  const auto batches =
      training_batches("quantize: --calib", calib_spec, calib_n, f.seed, loaded.config);

  auto int8_model = compress::fold_for_inference(*loaded.model);
  const compress::QuantizeReport report = compress::quantize_model(*int8_model, batches, qo);
  compress::save_quantized_model(f.out, *int8_model, loaded.config, report);

  // Everything below runs on what was written: the file is the product.
  auto reloaded = compress::load_inference_model(f.out);
  auto float_model = compress::fold_for_inference(*loaded.model);

  if (!f.json) print_layer_table(report);

  // Accuracy on the test split of the evaluation data (default: the calibration data set).
  const std::string eval_spec = f.eval_data.empty() ? calib_spec : f.eval_data;
  const data::Dataset test = load_test_split(eval_spec, loaded.config, f.eval_limit);
  std::fprintf(out, "evaluating float and int8 on %lld test images of %s\n",
               static_cast<long long>(test.size()), eval_spec.c_str());
  std::fflush(out);
  const double acc_float = test_accuracy(*float_model, test, loaded.config);
  const double acc_int8 = test_accuracy(*reloaded.model, test, reloaded.config);

  const double bytes_in = double(fs::file_size(f.in)), bytes_out = double(fs::file_size(f.out));
  const int64_t params = loaded.model->parameter_count();
  const double macs = bench::forward_macs_per_image(loaded.config);

  // Speed: the int8 file against the float one, alternating (ratio > 1: int8 is faster).
  const std::vector<bench::BenchRow> rows = time_against(f.out, f.in, f.bench, f.seed, out);

  nlohmann::json j = {{"model", f.in},
                      {"output", f.out},
                      {"parameters", params},
                      {"macs_per_image", macs},
                      {"file_bytes", {{"float", bytes_in}, {"int8", bytes_out}}},
                      {"accuracy", {{"float", acc_float}, {"int8", acc_int8}}},
                      {"test_images", test.size()},
                      {"quantization", report.to_json()}};
  nlohmann::json speed = nlohmann::json::array();
  for (const auto& r : rows)
    if (r.batch > 0)
      speed.push_back(
          {{"batch", r.batch}, {"int8_ms", r.ours}, {"float_ms", r.theirs}, {"speedup", r.ratio}});
  j["speed"] = speed;
  if (f.json) {
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  print_size_rows(16, params, "MMACs/image", macs, bytes_in, bytes_out);
  std::printf("%-16s %13.2f%% %13.2f%%   (%+.2f points, %lld test images)\n", "accuracy",
              100 * acc_float, 100 * acc_int8, 100 * (acc_int8 - acc_float),
              static_cast<long long>(test.size()));
  for (const auto& r : rows)
    if (r.batch > 0)
      std::printf("%-16s %11.3f ms %11.3f ms   (int8 %.2fx the float speed)\n",
                  ("batch " + std::to_string(r.batch)).c_str(), r.theirs, r.ours, r.ratio);
  std::printf("int8 layers: %lld of %zu convs, %d-bit weights; wrote %s\n",
              static_cast<long long>(report.int8_layers()), report.layers.size(),
              report.weight_bits, f.out.c_str());
}

}  // namespace

Action add_quantize_command(CLI::App& app) {
  auto f = std::make_shared<QuantizeFlags>();
  CLI::App* sub = app.add_subcommand(
      "quantize", "post-training int8 quantisation of a classifier or generator");
  sub->add_option("-m,--model", f->in, "the float classifier or generator (.safetensors)")
      ->required();
  sub->add_option("-o,--output", f->out, "the int8 checkpoint to write")->required();
  sub->add_option("--calib", f->calib, "calibration images: DATA[:N] (training split)")
      ->capture_default_str();
  sub->add_option("--method", f->method, "activation ranges: minmax | percentile | kl")
      ->capture_default_str();
  sub->add_option("--percentile", f->percentile, "for --method percentile")->capture_default_str();
  sub->add_option("--keep-fp32", f->keep_fp32, "convs kept in float: first, last or layer names")
      ->delimiter(',');
  sub->add_option("--max-layer-error", f->max_layer_error,
                  "a conv whose int8 output is off by more than this relative L2 error tries "
                  "the other --method rules' input ranges, then stays float (0: never checked)")
      ->capture_default_str()
      ->check(non_negative_number());
  sub->add_option("--weight-bits", f->weight_bits,
                  "bits of the weight codes: 8, or 7 for CPUs without VNNI (AVX2), whose direct "
                  "int8 convs (stride 2, 1x1) then sum two taps in int16 (faster, slightly less "
                  "precise; 3x3 stride-1 convs run as integer Winograd at any width)")
      ->capture_default_str()
      ->check(CLI::Range(compress::kMinWeightBits, compress::kMaxWeightBits));
  sub->add_option("-s,--seed", f->seed, "which calibration images are drawn")
      ->capture_default_str();
  sub->add_option("--eval", f->eval_data, "test data for the accuracy check (default: --calib's)");
  sub->add_option("--eval-limit", f->eval_limit, "the first N test images only (0: all)")
      ->check(non_negative_number());
  sub->add_option("--bench", f->bench, "speed check int8 vs float: quick | full | none")
      ->capture_default_str();
  sub->add_flag("--json", f->json, "one JSON object instead of tables");
  sub->add_option("--classifier", f->classifier,
                  "generator: judge float and int8 samples with this classifier (conditional "
                  "accuracy, FID-ref)");
  sub->add_option("--per-class", f->per_class, "generator: samples per class to judge")
      ->capture_default_str();
  sub->add_option("--steps", f->steps, "generator: sampler steps of the judged samples")
      ->capture_default_str();
  sub->add_option("--sampler", f->sampler,
                  "generator: sampler of the judged samples (default: the objective's)");
  sub->add_option("--cfg", f->cfg, "generator: guidance scale of the judged and timed samples")
      ->capture_default_str();
  f->app = sub;
  return [f, sub] {
    if (sub->parsed()) run_quantize(*f);
  };
}

}  // namespace duet::cli
