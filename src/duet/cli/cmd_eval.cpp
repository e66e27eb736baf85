// `duet eval -m MODEL --data D [--json]`: accuracy, per-class accuracy, confusion matrix and
// expected calibration error (15 bins) of a classifier on a data set's test split, prepared
// exactly as in training (the model's size, channels and normalisation).
#include <cstdio>
#include <memory>
#include <string>

#include "duet/cli/commands.h"
#include "duet/models/checkpoint.h"
#include "duet/tensor/error.h"
#include "duet/train/metrics.h"
#include "duet/train/trainer.h"

namespace duet::cli {
namespace {

struct EvalFlags {
  std::string model;
  std::string data = "fashion-mnist";
  std::string split = "test";
  int64_t limit = 0;
  int64_t batch = 256;
  bool json = false;
};

void run_eval(const EvalFlags& f) {
  if (f.model.empty()) fail_usage("eval: -m MODEL is required");
  if (f.split != "test" && f.split != "train")
    fail_usage("eval: --split must be test or train, got '", f.split, "'");
  auto loaded = models::load_model(f.model);
  const auto& config = loaded.config;
  const int c = config.value("in_channels", 1), s = config.value("image_size", 28);
  const int64_t k = config.value("num_classes", 10);
  data::DataOptions o;
  o.split = f.split == "test" ? data::Split::test : data::Split::train;
  o.channels = c, o.height = s, o.width = s;
  data::Dataset d = data::load_dataset(f.data, o);
  if (f.limit > 0 && f.limit < d.size()) {
    std::vector<int64_t> first(static_cast<size_t>(f.limit));
    for (int64_t i = 0; i < f.limit; ++i) first[static_cast<size_t>(i)] = i;
    d = data::subset(d, first);
  }
  if (d.num_classes() > k)
    fail("eval: --data ", f.data, " has ", d.num_classes(), " classes; the model knows ", k);
  const auto probs =
      train::predict_probs(*loaded.model, d, train::model_norm_stats(config), f.batch);
  const auto m = train::classify_metrics(probs.data(), d.labels.data<int32_t>(), d.size(), k);
  const auto names = train::model_class_names(config);
  if (f.json) {
    nlohmann::json j = m.to_json(names);
    j["model"] = f.model;
    j["data"] = f.data;
    j["split"] = f.split;
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("model %s on %s (%s, %lld images)\n", f.model.c_str(), f.data.c_str(),
              f.split.c_str(), static_cast<long long>(m.count));
  std::printf("accuracy %.4f  loss %.4f  ECE(%d bins) %.4f\n\n", m.accuracy, m.mean_loss,
              m.ece_bins, m.ece);
  std::printf("%-4s %-14s %7s %9s\n", "#", "class", "images", "accuracy");
  for (int64_t i = 0; i < k; ++i)
    std::printf("%-4lld %-14s %7lld %9.4f\n", static_cast<long long>(i),
                names[static_cast<size_t>(i)].c_str(),
                static_cast<long long>(m.class_count[static_cast<size_t>(i)]),
                m.class_accuracy[static_cast<size_t>(i)]);
  std::printf("\nconfusion matrix (rows: true class, columns: predicted)\n%-6s", "");
  for (int64_t p = 0; p < k; ++p) std::printf("%6lld", static_cast<long long>(p));
  std::printf("\n");
  for (int64_t t = 0; t < k; ++t) {
    std::printf("%-6lld", static_cast<long long>(t));
    for (int64_t p = 0; p < k; ++p)
      std::printf("%6lld", static_cast<long long>(m.confusion_at(t, p)));
    std::printf("\n");
  }
}

}  // namespace

Action add_eval_command(CLI::App& app) {
  auto f = std::make_shared<EvalFlags>();
  CLI::App* sub = app.add_subcommand("eval", "accuracy, per-class accuracy, confusion, ECE");
  sub->add_option("-m,--model", f->model, "a classifier checkpoint (.safetensors)")->required();
  sub->add_option("--data", f->data, "fashion-mnist[:DIR], idx:IMAGES,LABELS or folder:ROOT")
      ->capture_default_str();
  sub->add_option("--split", f->split, "test | train")->capture_default_str();
  sub->add_option("--limit", f->limit, "the first N images only")->check(CLI::NonNegativeNumber);
  sub->add_option("--batch", f->batch, "batch size")->check(CLI::PositiveNumber);
  sub->add_flag("--json", f->json, "one JSON object instead of tables");
  return [f] { run_eval(*f); };
}

}  // namespace duet::cli
