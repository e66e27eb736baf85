#include "duet/cli/compress_report.h"

#include <algorithm>
#include <string>

#include "bench/infer_bench.h"
#include "duet/eval/judge.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"
#include "duet/train/metrics.h"
#include "duet/train/trainer.h"

namespace duet::cli {

data::Dataset load_test_split(const std::string& spec, const nlohmann::json& config,
                              int64_t limit) {
  data::DataOptions o;
  o.split = data::Split::test;
  o.channels = config.value("in_channels", 1);
  o.height = o.width = config.value("image_size", 28);
  data::Dataset test = data::load_dataset(spec, o);
  if (limit > 0 && limit < test.size()) {
    std::vector<int64_t> first(static_cast<size_t>(limit));
    for (int64_t i = 0; i < limit; ++i) first[size_t(i)] = i;
    test = data::subset(test, first);
  }
  return test;
}

std::vector<Tensor> training_batches(const char* what, const std::string& spec, int64_t n,
                                     uint64_t seed, const nlohmann::json& config) {
  data::DataOptions o;
  o.split = data::Split::train;
  o.channels = config.value("in_channels", 1);
  o.height = o.width = config.value("image_size", 28);
  const data::Dataset all = data::load_dataset(spec, o);
  if (all.size() == 0) fail_usage(what, " ", spec, " has no images");
  n = std::min(n, all.size());
  std::vector<int64_t> pick = data::seeded_permutation(all.size(), seed, /*stream=*/7);
  pick.resize(size_t(n));
  const data::Dataset d = data::subset(all, pick);
  const data::NormStats norm = train::model_norm_stats(config);
  std::vector<Tensor> batches;
  for (int64_t b = 0; b < n; b += 100) {
    const int64_t m = std::min<int64_t>(100, n - b);
    batches.push_back(
        eval::u8_to_classifier_input(d.image(b), m, d.channels, d.height, d.width, norm));
  }
  return batches;
}

double test_accuracy(nn::Module& model, const data::Dataset& d, const nlohmann::json& config) {
  const auto probs = train::predict_probs(model, d, train::model_norm_stats(config));
  return train::classify_metrics(probs.data(), d.labels.data<int32_t>(), d.size(),
                                 int64_t(train::model_class_names(config).size()))
      .accuracy;
}

void print_layer_table(const compress::QuantizeReport& report) {
  std::printf("\n%-22s %-16s %-6s %10s %12s %12s  %s\n", "layer", "weight", "int8", "error",
              "input lo", "input hi", "note");
  for (const auto& l : report.layers) {
    char err[16] = "-";
    if (l.error >= 0) std::snprintf(err, sizeof err, "%.4f", l.error);
    std::string note = l.reason;
    if (l.method_error >= 0) {  // the method's range failed the limit; another rule's passed
      char buf[96];
      std::snprintf(buf, sizeof buf, "range by %s (%s: error %.4f)", l.range_rule.c_str(),
                    report.method.c_str(), l.method_error);
      note = buf;
    }
    std::printf("%-22s %-16s %-6s %10s %12.4g %12.4g  %s\n", l.name.c_str(), l.shape.c_str(),
                l.int8 ? "yes" : "no", err, l.lo, l.hi, note.c_str());
  }
}

void print_size_rows(int w, int64_t parameters, const char* macs_label, double macs,
                     double bytes_float, double bytes_int8) {
  std::printf("\n%-*s %14s %14s\n", w, "", "float", "int8");
  std::printf("%-*s %14lld %14lld\n", w, "parameters", static_cast<long long>(parameters),
              static_cast<long long>(parameters));
  std::printf("%-*s %14.2f %14.2f\n", w, macs_label, macs / 1e6, macs / 1e6);
  std::printf("%-*s %14s %14s\n", w, "file", mib(bytes_float).c_str(), mib(bytes_int8).c_str());
}

std::string mib(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f MiB", bytes / (1024.0 * 1024.0));
  return b;
}

void check_bench_mode(const char* command, const std::string& mode) {
  if (mode != "quick" && mode != "full" && mode != "none")
    fail_usage(command, ": --bench must be quick, full or none, got '", mode, "'");
}

std::vector<bench::BenchRow> time_against(const std::string& model, const std::string& vs,
                                          const std::string& mode, uint64_t seed, std::FILE* log) {
  if (mode == "none") return {};
  bench::InferBenchOptions bo;
  bo.model = model;
  bo.vs = vs;
  bo.threads = num_threads();
  bo.quick = mode == "quick";
  bo.seed = seed;
  return bench::bench_infer(bo, [&](const std::string& line) {
    std::fprintf(log, "%s\n", line.c_str());
    std::fflush(log);
  });
}

}  // namespace duet::cli
