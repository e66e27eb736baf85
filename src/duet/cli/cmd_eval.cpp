// `duet eval -m MODEL --data D [--json]`: accuracy, per-class accuracy, confusion matrix and
// expected calibration error (15 bins) of a classifier on a data set's test split, prepared
// exactly as in training (the model's size, channels and normalisation).
// `duet eval -m GENERATOR --classifier CLF [--per-class 100 --steps 20 --cfg 2 ...]`: the judge
// (eval/judge.h): conditional accuracy of generated images per class, confidence, and penultimate
// feature statistics of real vs generated images. `--verify-with V --best-of K` judges best-of-K
// verified samples (gen/verify.h) and the nested best-of-k for k = 1, 2, 4, ... from one pool.
// `--classifier-guidance S --guide-with NOISY_CLASSIFIER` judges classifier-guided samples
// (gen/classifier_guidance.h; composes with --cfg).
// `duet eval -m GENERATOR --generative --data D`: the generator as a classifier (lowest
// class-conditional loss, eval/generative_classifier.h), reported like a classifier.
// `--corrupt noise:3` (classifiers and --generative): the test images corrupted (data/corrupt.h).
// The judge also prints FID-ref, KID-ref, precision / recall and diversity per class and pooled,
// with the real-vs-real floor, in the features of `--reference R` (default: the judge;
// cli/eval_distribution.h).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "duet/cli/commands.h"
#include "duet/cli/eval_distribution.h"
#include "duet/cli/gap_tools.h"
#include "duet/cli/guide_tools.h"
#include "duet/compress/fold.h"
#include "duet/compress/quantize.h"
#include "duet/data/corrupt.h"
#include "duet/data/image.h"
#include "duet/data/image_grid.h"
#include "duet/eval/judge.h"
#include "duet/gen/guidance.h"
#include "duet/models/checkpoint.h"
#include "duet/models/unified.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"
#include "duet/tensor/rng.h"
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
  // Judging a generator (-m is a UNet, or a unified model with --classifier).
  std::string classifier;
  int64_t per_class = 100;
  int steps = 20;
  double cfg = 2.0;
  std::string sampler;  // empty: the objective's default
  double eta = 0.0;
  int64_t seed = -1;
  std::string grid;
  std::string reference;    // feature network of the distribution metrics (default: --classifier)
  std::string verify_with;  // best-of-K verified sampling
  int best_of = 1;
  double classifier_guidance = 0.0;  // with guide_with: classifier-guided sampling
  std::string guide_with;
  std::string corrupt;  // classifiers and --generative
  uint64_t corrupt_seed = 0;
  std::string tta = "none";  // classifiers: test-time augmentation (train::Tta)
  GenerativeFlags generative;
  CLI::App* app = nullptr;  // to tell which flags were given

  bool given(const char* flag) const { return app->count(flag) > 0; }
};

// Flags that only mean something when judging a generator.
constexpr const char* kJudgeFlags[] = {"--classifier", "--per-class", "--steps",
                                       "--cfg",        "--sampler",   "--eta",
                                       "--seed",       "--grid",      "--verify-with",
                                       "--best-of",    "--reference", "--classifier-guidance",
                                       "--guide-with"};

void print_confusion(const train::ClassifyMetrics& m, const char* rows) {
  const int64_t k = m.num_classes;
  std::printf("\nconfusion matrix (rows: %s, columns: predicted)\n%-6s", rows, "");
  for (int64_t p = 0; p < k; ++p) std::printf("%6lld", static_cast<long long>(p));
  std::printf("\n");
  for (int64_t t = 0; t < k; ++t) {
    std::printf("%-6lld", static_cast<long long>(t));
    for (int64_t p = 0; p < k; ++p)
      std::printf("%6lld", static_cast<long long>(m.confusion_at(t, p)));
    std::printf("\n");
  }
}

void run_judge(const EvalFlags& f, models::LoadedModel& generator) {
  if (f.classifier.empty())
    fail_usage("eval: -m ", f.model, " is a generator; judging it needs --classifier CLASSIFIER");
  if (f.given("--limit")) fail_usage("eval: --limit is for classifiers; use --per-class");
  if (f.given("--corrupt"))
    fail_usage("eval: --corrupt is for classifiers and --generative, not for judging a generator");
  if (f.given("--best-of") && f.verify_with.empty())
    fail_usage("eval: --best-of needs --verify-with CLASSIFIER");
  if (!f.grid.empty()) {  // a long run should not end on a path that cannot be written
    if (!data::image_format_for(f.grid))
      fail_usage("eval: --grid ", f.grid, ": expected a .png, .jpg or .jpeg file name");
    const auto dir = std::filesystem::path(f.grid).parent_path();
    if (!dir.empty() && !std::filesystem::is_directory(dir))
      fail_usage("eval: --grid ", f.grid, ": folder ", dir.string(), " does not exist");
  }
  auto& unet = *models::generator_network(*generator.model);
  auto clf = models::load_model(f.classifier);
  auto* classifier = dynamic_cast<models::Classifier*>(clf.model.get());
  if (!classifier)
    fail_usage("eval: --classifier ", f.classifier, " is not a classifier (family '",
               clf.config.value("family", ""), "')");
  const auto objective = gen::parse_objective(generator.config.value("objective", "flow"));
  eval::JudgeOptions o;
  o.per_class = f.per_class;
  o.batch = f.given("--batch") ? f.batch : 100;
  o.cfg = f.given("--cfg") ? f.cfg : gen::default_cfg(generator.config, f.cfg);
  o.sample = gen::sample_options(objective, f.sampler, f.steps, f.eta);
  o.seed = f.seed >= 0 ? static_cast<uint64_t>(f.seed) : random_seed() >> 1;
  o.data = f.data;
  o.split = f.split == "test" ? data::Split::test : data::Split::train;
  std::tie(o.lo, o.hi) = eval::value_range(generator.config);
  // Every check and the data load before the header, so a bad run fails with one line.
  eval::validate_judge(unet, objective, clf.config, o);
  const GuideClassifier guide =
      load_guide("eval", f.guide_with, f.classifier_guidance, f.given("--classifier-guidance"),
                 unet, objective, generator.config);
  models::LoadedModel ver;
  std::unique_ptr<VerifiedDraws> verified;
  bool judge_is_verifier = false;
  if (!f.verify_with.empty()) {
    ver = models::load_model(f.verify_with);
    auto* v = dynamic_cast<models::Classifier*>(ver.model.get());
    if (!v)
      fail_usage("eval: --verify-with ", f.verify_with, " is not a classifier (family '",
                 ver.config.value("family", ""), "')");
    // With classifier guidance, every candidate is a classifier-guided draw.
    verified = std::make_unique<VerifiedDraws>(
        unet, objective, *v, ver.config, *classifier, clf.config, o.cfg, o.sample, f.best_of, o.lo,
        o.hi, guide.on() ? guide_wrap(guide, objective) : gen::PredictorWrap{});
    o.draw = verified->draw();
    std::error_code ec;
    judge_is_verifier = std::filesystem::equivalent(f.verify_with, f.classifier, ec);
  } else if (guide.on()) {
    o.draw = [&guide, &unet, objective, &o](const std::vector<int32_t>& labels, uint64_t seed) {
      return gen::generate_classifier_guided(unet, objective, labels, o.cfg, *guide.classifier,
                                             guide.map, guide.scale, o.sample, seed);
    };
  }
  o.real = eval::load_real_images(o, unet.config().in_channels, unet.config().image_size,
                                  unet.config().num_classes);
  ReferenceSetup reference =
      prepare_reference(f.reference, f.classifier, o, unet.config().in_channels,
                        unet.config().image_size, unet.config().num_classes);
  const bool bar = ::isatty(2);
  o.on_batch = [bar](int64_t done, int64_t total) {
    if (bar)
      std::fprintf(stderr, "\rgenerated %lld/%lld ", static_cast<long long>(done),
                   static_cast<long long>(total));
  };
  std::fprintf(stderr,
               "judge: %lld images per class (%s, %s x %d steps, cfg %g, seed %llu, %d threads)\n",
               static_cast<long long>(o.per_class), gen::objective_name(objective).c_str(),
               gen::sampler_name(o.sample.kind).c_str(), o.sample.steps, o.cfg,
               static_cast<unsigned long long>(o.seed), num_threads());
  if (verified)
    std::fprintf(stderr, "judge: best-of-%d verified by %s (%lld network passes per image)%s\n",
                 f.best_of, f.verify_with.c_str(),
                 static_cast<long long>(gen::passes_per_image(o.sample, o.cfg, f.best_of)),
                 judge_is_verifier ? "; the judge IS the verifier: accuracy is optimistic" : "");
  if (guide.on())
    std::fprintf(stderr, "judge: %s\n", guide_summary(guide, o.sample, o.cfg, f.best_of).c_str());

  const auto t0 = std::chrono::steady_clock::now();
  const eval::Judgement j = eval::judge_generator(unet, objective, *classifier, clf.config, o);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto t1 = std::chrono::steady_clock::now();
  const eval::DistributionReport dist = distribution_for(reference, j, *classifier, clf.config, o);
  const double dist_secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  if (bar) std::fprintf(stderr, "\r\033[K");
  std::vector<std::string> names = train::model_class_names(generator.config);
  if (!generator.config.contains("class_names")) names = train::model_class_names(clf.config);

  if (!f.grid.empty()) {
    const int64_t columns = std::min<int64_t>(j.per_class, 10);
    data::write_image(f.grid,
                      data::image_grid(j.first_columns(columns), columns, 2, 255, o.lo, o.hi));
    if (!f.json)
      std::printf("wrote %s (first %lld samples of each class, one row per class)\n",
                  f.grid.c_str(), static_cast<long long>(columns));
  }
  if (f.json) {
    nlohmann::json out = j.to_json(names);
    out["generator"] = f.model;
    out["classifier"] = f.classifier;
    out["data"] = f.data;
    out["split"] = f.split;
    out["objective"] = gen::objective_name(objective);
    out["sampler"] = gen::sampler_name(o.sample.kind);
    out["steps"] = o.sample.steps;
    out["cfg"] = o.cfg;
    out["eta"] = o.sample.eta;
    out["threads"] = num_threads();
    out["seconds"] = secs;
    if (!f.grid.empty()) out["grid"] = f.grid;
    out["distribution"] = dist.to_json(names);
    out["distribution"]["seconds"] = dist_secs;
    out["passes_per_image"] = gen::passes_per_image(o.sample, o.cfg, f.best_of);
    if (guide.on()) {
      out["classifier_guidance"] = guide.scale;
      out["guide_with"] = guide.path;
      out["classifier_passes_per_image"] =
          guide.scale == 0.0 ? 0 : f.best_of * gen::evaluations(o.sample);
    }
    if (verified) {
      out["verifier"] = f.verify_with;
      out["best_of"] = f.best_of;
      out["judge_is_verifier"] = judge_is_verifier;
      nlohmann::json nested = nlohmann::json::array();
      for (const auto& r : verified->nested())
        nested.push_back({{"best_of", r.k},
                          {"accuracy", r.accuracy},
                          {"verifier_log_p", r.verifier_score},
                          {"passes_per_image", gen::passes_per_image(o.sample, o.cfg, r.k)}});
      out["nested"] = nested;
    }
    std::printf("%s\n", out.dump().c_str());
    return;
  }
  std::printf("generator %s judged by %s\n", f.model.c_str(), f.classifier.c_str());
  std::printf(
      "%lld images per class, %s x %d steps, cfg %g, seed %llu; real: %s %s; %lld-dim features\n",
      static_cast<long long>(j.per_class), gen::sampler_name(o.sample.kind).c_str(), o.sample.steps,
      o.cfg, static_cast<unsigned long long>(j.seed), f.data.c_str(), f.split.c_str(),
      static_cast<long long>(j.feature_dim));
  if (guide.on()) std::printf("%s\n", guide_summary(guide, o.sample, o.cfg, f.best_of).c_str());
  std::printf("%.1f s (%.1f images/s, %d threads)\n\n", secs,
              static_cast<double>(j.metrics.count) / secs, num_threads());
  std::printf("%-3s %-12s %8s %7s %7s | %5s %8s %7s | %8s %7s | %8s\n", "#", "class", "cond.acc",
              "p(req)", "conf", "real", "f.mean", "f.std", "f.mean", "f.std", "distance");
  std::printf("%-3s %-12s %8s %7s %7s | %5s %8s %7s | %8s %7s | %8s\n", "", "", "", "", "", "n",
              "real", "real", "gen", "gen", "|dmean|");
  for (int64_t c = 0; c < j.num_classes; ++c) {
    const auto& cj = j.classes[static_cast<size_t>(c)];
    std::printf("%-3lld %-12.12s %8.4f %7.4f %7.4f | %5lld %8.4f %7.4f | %8.4f %7.4f | %8.4f\n",
                static_cast<long long>(c), names[static_cast<size_t>(c)].c_str(), cj.accuracy,
                cj.mean_p_requested, cj.mean_confidence, static_cast<long long>(cj.real.count),
                cj.real.mean_of_means(), cj.real.mean_of_stds(), cj.generated.mean_of_means(),
                cj.generated.mean_of_stds(), cj.mean_distance);
  }
  std::printf("%-16s %8.4f %7.4f %7.4f   (%lld images; loss %.4f, ECE %.4f)\n", "overall",
              j.metrics.accuracy, j.mean_p_requested, j.mean_confidence,
              static_cast<long long>(j.metrics.count), j.metrics.mean_loss, j.metrics.ece);
  print_confusion(j.metrics, "requested class");
  print_distribution(dist, names, f.data + " " + f.split, dist_secs);
  if (verified) {
    std::printf(
        "\nbest-of-k from the same pool of %d candidates per image (first k kept by %s, "
        "judged by %s%s)\n",
        f.best_of, f.verify_with.c_str(), f.classifier.c_str(),
        judge_is_verifier ? "; judge = verifier, so optimistic" : "");
    std::printf("%6s %9s %14s %16s\n", "k", "cond.acc", "verifier logp", "passes/image");
    for (const auto& r : verified->nested())
      std::printf("%6d %9.4f %14.4f %16lld\n", r.k, r.accuracy, r.verifier_score,
                  static_cast<long long>(gen::passes_per_image(o.sample, o.cfg, r.k)));
  }
}

void run_eval(const EvalFlags& f) {
  if (f.model.empty()) fail_usage("eval: -m MODEL is required");
  if (f.split != "test" && f.split != "train")
    fail_usage("eval: --split must be test or train, got '", f.split, "'");
  // Classifiers come folded for inference (int8 checkpoints as stored); generators as saved.
  auto loaded = compress::load_inference_model(f.model);
  const bool is_generator = models::generator_network(*loaded.model) != nullptr;
  // A unified model is both: judging its samples needs --classifier, so without it, it is
  // evaluated as the classifier it also is.
  const bool is_classifier = dynamic_cast<models::Classifier*>(loaded.model.get()) != nullptr;
  const train::Tta tta = train::Tta::parse(f.tta, "eval: --tta");
  const bool judging =
      is_generator && !f.generative.on && (!is_classifier || f.given("--classifier"));
  if (tta.flip && (judging || f.generative.on))
    fail_usage("eval: --tta is for evaluating a classifier, not for ",
               judging ? "judging a generator" : "--generative");
  if (judging) return run_judge(f, loaded);
  if (f.generative.on && !is_generator)
    fail_usage("eval: --generative needs a generator for -m; ", f.model, " is a '",
               loaded.config.value("family", ""), "' classifier");
  for (const char* flag : kJudgeFlags)
    if (f.given(flag))
      fail_usage("eval: ", flag, " is for judging a generator; -m ", f.model, " is a '",
                 loaded.config.value("family", ""), "' ",
                 f.generative.on ? "generator used as a classifier (--generative)" : "classifier");
  const data::Corruption* corruption = nullptr;
  data::Corruption parsed;
  if (!f.corrupt.empty()) parsed = data::parse_corruption(f.corrupt), corruption = &parsed;
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
  data::match_classes(d, train::model_class_names(config), "eval: --data " + f.data);
  if (corruption) d = data::corrupt(d, *corruption, f.corrupt_seed);
  std::vector<float> probs;
  std::string generative_line;
  if (f.generative.on) {
    const GenerativeRun r = run_generative(loaded, f.model, d, f.generative, /*labelled=*/true);
    probs = r.probs;
    generative_line = generative_summary(r, d.size(), f.generative.options);
  } else {
    // Already in inference form (load_inference_model): BatchNorm folded, or int8.
    try {
      probs = train::predict_probs(*loaded.model, d, train::model_norm_stats(config), f.batch, tta);
    } catch (const Error& e) {  // e.g. logits that overflow: name the model
      throw Error(str(f.model, ": ", e.what()), e.kind());
    }
  }
  const auto m = train::classify_metrics(probs.data(), d.labels.data<int32_t>(), d.size(), k);
  const auto names = train::model_class_names(config);
  if (f.json) {
    nlohmann::json j = m.to_json(names);
    j["model"] = f.model;
    j["data"] = f.data;
    j["split"] = f.split;
    if (corruption) j["corrupt"] = data::corruption_name(*corruption);
    if (corruption) j["corrupt_seed"] = f.corrupt_seed;
    if (tta.flip) j["tta"] = tta.name();
    if (f.generative.on) j["generative"] = generative_line;
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("model %s on %s (%s, %lld images)%s%s%s\n", f.model.c_str(), f.data.c_str(),
              f.split.c_str(), static_cast<long long>(m.count), corruption ? ", corrupted " : "",
              corruption ? data::corruption_name(*corruption).c_str() : "",
              tta.flip ? ", flip test-time augmentation" : "");
  if (f.generative.on) std::printf("%s\n", generative_line.c_str());
  std::printf("accuracy %.4f  loss %.4f  ECE(%d bins) %.4f\n\n", m.accuracy, m.mean_loss,
              m.ece_bins, m.ece);
  std::printf("%-4s %-14s %7s %9s\n", "#", "class", "images", "accuracy");
  for (int64_t i = 0; i < k; ++i)
    std::printf("%-4lld %-14s %7lld %9.4f\n", static_cast<long long>(i),
                names[static_cast<size_t>(i)].c_str(),
                static_cast<long long>(m.class_count[static_cast<size_t>(i)]),
                m.class_accuracy[static_cast<size_t>(i)]);
  print_confusion(m, "true class");
}

}  // namespace

Action add_eval_command(CLI::App& app) {
  auto f = std::make_shared<EvalFlags>();
  CLI::App* sub = app.add_subcommand(
      "eval", "classifier: accuracy, per-class accuracy, confusion, ECE; generator: judge it");
  f->app = sub;
  sub->add_option("-m,--model", f->model,
                  "a classifier checkpoint, or a generator (judged by --classifier)")
      ->required();
  sub->add_option("--data", f->data,
                  "fashion-mnist[:DIR], idx:IMAGES,LABELS or folder:ROOT (generator: real images)")
      ->capture_default_str();
  sub->add_option("--split", f->split, "test | train")->capture_default_str();
  sub->add_option("--limit", f->limit, "the first N images only")->check(non_negative_number());
  sub->add_option("--batch", f->batch, "batch size (generator: images per sampler call, 100)")
      ->check(positive_number());
  sub->add_flag("--json", f->json, "one JSON object instead of tables");
  sub->add_option("--classifier", f->classifier, "generator: the classifier that judges it");
  sub->add_option("--per-class", f->per_class, "generator: images per class")
      ->check(CLI::Range(int64_t{1}, int64_t{100000}))
      ->capture_default_str();
  sub->add_option("--steps", f->steps, "generator: sampler steps")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  sub->add_option("--cfg", f->cfg, "generator: classifier-free guidance scale")
      ->capture_default_str();
  sub->add_option("--sampler", f->sampler, "generator: euler | heun (flow), ddim | ddpm");
  sub->add_option("--eta", f->eta, "generator: DDIM noise (0: deterministic)")
      ->capture_default_str();
  sub->add_option("-s,--seed", f->seed, "generator: random seed (negative or absent: random)");
  sub->add_option("--grid", f->grid,
                  "generator: image (.png, .jpg) of the first 10 samples of each class");
  sub->add_option("--reference", f->reference,
                  "generator: classifier whose features define FID-ref, KID-ref, precision / "
                  "recall and diversity (default: --classifier)");
  sub->add_option("--verify-with", f->verify_with,
                  "generator: best-of-K sampling verified by this classifier (use one other than "
                  "--classifier, else the judged accuracy is optimistic)");
  sub->add_option("--best-of", f->best_of, "generator: candidates per image with --verify-with")
      ->capture_default_str();
  sub->add_option("--corrupt", f->corrupt,
                  "classifier / --generative: corrupt the images, FAMILY:SEVERITY with FAMILY "
                  "noise | blur | contrast | occlusion and SEVERITY 1..5");
  sub->add_option("--classifier-guidance", f->classifier_guidance,
                  "generator: classifier guidance scale (with --guide-with; composes with --cfg)");
  sub->add_option("--guide-with", f->guide_with,
                  "generator: a noise-aware classifier (train --task classify --noised flow)");
  sub->add_option("--corrupt-seed", f->corrupt_seed, "seed of the corruptions' random draws")
      ->capture_default_str();
  sub->add_option("--tta", f->tta,
                  "classifier: test-time augmentation, none | flip (mean logits of the image and "
                  "its mirror; twice the passes)")
      ->capture_default_str();
  add_generative_flags(*sub, f->generative);
  return [f] { run_eval(*f); };
}

}  // namespace duet::cli
