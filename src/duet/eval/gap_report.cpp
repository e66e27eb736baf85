#include "duet/eval/gap_report.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <sstream>

#include "duet/data/image_grid.h"
#include "duet/gen/classifier_guidance.h"
#include "duet/gen/verify.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"
#include "duet/train/trainer.h"

namespace duet::eval {
namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void say(const GapOptions& o, const std::string& line) {
  if (o.progress) o.progress(line);
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << v;
  return s.str();
}

std::string shortest(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

std::string family_name(data::CorruptionKind k) {
  const std::string s = data::corruption_name({k, 1});
  return s.substr(0, s.find(':'));
}

// The independent judge on images already generated: the judge run with a draw that replays them
// batch by batch (same batch size, so the same rows), instead of sampling again.
Judgement judge_replay(const GapInputs& in, gen::Objective objective, const JudgeOptions& base,
                       const Tensor& images) {
  JudgeOptions o = base;
  o.on_batch = nullptr;
  auto next = std::make_shared<int64_t>(0);
  o.draw = [&images, next](const std::vector<int32_t>& labels, uint64_t) {
    const int64_t b0 = *next, b1 = b0 + std::ssize(labels);
    *next = b1;
    return images.slice(0, b0, b1).clone();
  };
  return judge_generator(*in.generator, objective, *in.judge, in.judge_config, o);
}

train::ClassifyMetrics classifier_metrics(models::Classifier& c, const nlohmann::json& config,
                                          const data::Dataset& d, int64_t batch, int64_t k) {
  const std::vector<float> probs =
      train::predict_probs(c, d, train::model_norm_stats(config), batch);
  return train::classify_metrics(probs.data(), d.labels.data<int32_t>(), d.size(), k);
}

// The generative classifier over every image of `d`, 100 images per call as `duet eval
// --generative` runs it (an image's result does not depend on the chunking).
train::ClassifyMetrics generative_metrics(models::UNet& unet, gen::Objective objective,
                                          const data::Dataset& d, const GenerativeOptions& o,
                                          int64_t& passes, int64_t& full_passes) {
  const int64_t n = d.size(), k = unet.config().num_classes;
  std::vector<float> probs;
  probs.reserve(static_cast<size_t>(n * k));
  for (int64_t b0 = 0; b0 < n; b0 += 100) {
    const int64_t b1 = std::min(n, b0 + 100);
    const Tensor x =
        u8_to_generator_input(d.image(b0), b1 - b0, d.channels, d.height, d.width, o.lo, o.hi);
    const GenerativeResult r = classify_generative(unet, objective, x, o);
    probs.insert(probs.end(), r.probs.begin(), r.probs.end());
    passes += r.passes, full_passes += r.full_passes;
  }
  return train::classify_metrics(probs.data(), d.labels.data<int32_t>(), n, k);
}

nlohmann::json sampling_summary(const GapSampling& s) {
  const auto& d = s.distribution.overall;
  nlohmann::json j = {
      {"name", s.name},
      {"label", s.label},
      {"cfg", s.cfg},
      {"best_of", s.best_of},
      {"passes_per_image", s.passes_per_image},
      {"classifier_guidance", s.classifier_guidance},
      {"classifier_passes_per_image", s.classifier_passes_per_image},
      {"images", s.by_classifier.metrics.count},
      {"cond_acc_classifier", s.by_classifier.metrics.accuracy},
      {"cond_acc_judge", nullptr},
      {"fid_ref", d.fid.fid},
      {"kid_ref", d.kid.kid},
      {"kid_ref_se", d.kid.std_error},
      {"precision", d.pr.precision},
      {"recall", d.pr.recall},
      {"diversity", d.diversity_candidate},
      {"diversity_real", d.diversity_reference},
      {"seconds", s.seconds},
      {"seconds_per_image", s.by_classifier.metrics.count > 0
                                ? s.seconds / static_cast<double>(s.by_classifier.metrics.count)
                                : 0.0}};
  if (s.by_judge) j["cond_acc_judge"] = s.by_judge->metrics.accuracy;
  return j;
}

}  // namespace

std::vector<int64_t> robust_subset(int64_t n, int64_t count, uint64_t seed) {
  constexpr uint64_t kRobustStream = 0x726f6275;  // "robu": apart from other Philox uses
  std::vector<int64_t> p = data::seeded_permutation(n, seed, kRobustStream);
  p.resize(static_cast<size_t>(std::clamp<int64_t>(count, 0, n)));
  std::sort(p.begin(), p.end());
  return p;
}

void validate_gap(const GapInputs& in, const GapOptions& o) {
  DUET_CHECK(in.generator && in.classifier, "gap: a generator and a classifier are required");
  if (o.best_of < 1) fail_usage("gap: --best-of must be >= 1, got ", o.best_of);
  if (o.robust_images < 1) fail_usage("gap: --robust-images must be >= 1, got ", o.robust_images);
  if (o.grid_columns < 1 || o.grid_columns > o.per_class)
    fail_usage("gap: --grid-columns must be in [1, --per-class = ", o.per_class, "], got ",
               o.grid_columns);
  for (int s : o.severities)
    if (s < 1 || s > 5) fail_usage("gap: severities must be in 1..5, got ", s);
  models::UNet& unet = *in.generator;
  const auto objective = gen::parse_objective(in.generator_config.value("objective", "flow"));
  const int64_t k = unet.config().num_classes;
  GenerativeOptions gopt = o.generative;
  std::tie(gopt.lo, gopt.hi) = value_range(in.generator_config);
  validate_generative(gopt);
  JudgeOptions jo;
  jo.per_class = o.per_class;
  jo.batch = o.batch;
  jo.sample = o.sample;
  std::tie(jo.lo, jo.hi) = value_range(in.generator_config);
  validate_judge(unet, objective, in.classifier_config, jo);
  if (in.judge) validate_judge(unet, objective, in.judge_config, jo);
  gen::validate_verifier(unet.config(), in.classifier_config, o.best_of);
  if (in.guide)
    gen::validate_guide_classifier(unet.config(), objective, in.guide_config, o.classifier_guidance,
                                   "--guide-with " + in.guide_path);
  if (in.test.num_classes() != k)
    fail_usage("gap: the test data has ", in.test.num_classes(), " classes; the generator has ", k);
  if (in.unified) {
    const std::string mine = in.unified_config.value("objective", "flow"),
                      theirs = in.generator_config.value("objective", "flow");
    if (mine != theirs)
      fail_usage("gap: --unified was trained for --objective ", mine, ", the generator for ",
                 theirs, "; they must sample alike to be compared");
    if (value_range(in.unified_config) != value_range(in.generator_config))
      fail_usage("gap: --unified and the generator have different pixel ranges (value_range)");
    validate_judge(in.unified->unet(), objective, in.classifier_config, jo);
  }
}

GapReport gap_report(GapInputs& in, const GapOptions& o) {
  validate_gap(in, o);
  models::UNet& unet = *in.generator;
  const auto objective = gen::parse_objective(in.generator_config.value("objective", "flow"));
  const int64_t k = unet.config().num_classes;
  GenerativeOptions gopt = o.generative;
  std::tie(gopt.lo, gopt.hi) = value_range(in.generator_config);
  JudgeOptions jo;
  jo.per_class = o.per_class;
  jo.batch = o.batch;
  jo.sample = o.sample;
  jo.seed = o.seed;
  jo.real = in.test;
  std::tie(jo.lo, jo.hi) = value_range(in.generator_config);

  GapReport r;
  r.class_names = train::model_class_names(
      in.generator_config.contains("class_names") ? in.generator_config : in.classifier_config);
  r.class_names.resize(static_cast<size_t>(k));
  nlohmann::json families = nlohmann::json::array();
  for (auto f : o.families) families.push_back(family_name(f));
  r.settings = {
      {"per_class", o.per_class},
      {"batch", o.batch},
      {"sampler", gen::sampler_name(o.sample.kind)},
      {"steps", o.sample.steps},
      {"eta", o.sample.eta},
      {"objective", gen::objective_name(objective)},
      {"cfg", o.cfg},
      {"best_of", o.best_of},
      {"classifier_guidance", in.guide ? nlohmann::json(o.classifier_guidance) : nlohmann::json()},
      {"guide_cfg", in.guide ? nlohmann::json(o.guide_cfg) : nlohmann::json()},
      {"guide_with", in.guide ? nlohmann::json(in.guide_path) : nlohmann::json()},
      {"seed", o.seed},
      {"robust_images", std::min(o.robust_images, in.test.size())},
      {"robust_seed", o.robust_seed},
      {"corrupt_seed", o.corrupt_seed},
      {"families", families},
      {"severities", o.severities},
      {"generative",
       {{"times", gopt.times},
        {"t_min", gopt.t_min},
        {"t_max", gopt.t_max},
        {"signal_power", gopt.signal_power},
        {"prune_after", gopt.prune_after},
        {"prune_margin", std::isfinite(gopt.prune_margin) ? nlohmann::json(gopt.prune_margin)
                                                          : nlohmann::json("inf")},
        {"scale", gopt.scale},
        {"seed", gopt.seed}}},
      {"grid_columns", o.grid_columns},
      {"test_images", in.test.size()},
      {"threads", num_threads()},
      {"judge_is_classifier", in.judge_is_classifier}};
  const auto t_all = Clock::now();
  say(o, "seed " + std::to_string(o.seed) + ", " + std::to_string(o.per_class) + " per class, " +
             gen::sampler_name(o.sample.kind) + " x " + std::to_string(o.sample.steps) +
             " steps, cfg " + shortest(o.cfg) + ", best-of-" + std::to_string(o.best_of) + ", " +
             std::to_string(std::min(o.robust_images, in.test.size())) + " robustness images, " +
             std::to_string(num_threads()) + " threads");

  // 1. Understanding: the classifier (and the judge) on the whole real test set.
  auto t0 = Clock::now();
  say(o, "understanding: classifier on " + std::to_string(in.test.size()) + " test images");
  r.understanding =
      classifier_metrics(*in.classifier, in.classifier_config, in.test, o.classifier_batch, k);
  if (in.judge)
    r.judge_accuracy =
        classifier_metrics(*in.judge, in.judge_config, in.test, o.classifier_batch, k);
  if (in.unified) {
    r.unified_accuracy =
        classifier_metrics(*in.unified, in.unified_config, in.test, o.classifier_batch, k);
    r.separate_parameters = in.classifier->parameter_count() + unet.parameter_count();
    r.unified_parameters = in.unified->parameter_count();
  }
  r.timings["understanding"] = since(t0);
  say(o,
      "understanding: accuracy " + fixed(r.understanding.accuracy, 4) + ", ECE " +
          fixed(r.understanding.ece, 4) +
          (r.judge_accuracy ? ", judge accuracy " + fixed(r.judge_accuracy->accuracy, 4) : "") +
          (r.unified_accuracy ? ", unified model " + fixed(r.unified_accuracy->accuracy, 4) : "") +
          " (" + fixed(since(t0), 1) + " s)");

  // 2. Generation: plain (CFG 1), guided (CFG), verified best-of-K at the same guidance; all three
  // from the same seed, so candidate 0 of the verified mode is the guided mode's image.
  struct Mode {
    const char* name;
    std::string label;
    double cfg;
    int best_of;
    double guidance = 0.0;        // classifier guidance scale
    models::UNet* net = nullptr;  // the network sampled; null: the generator
  };
  std::vector<Mode> modes = {
      {"plain", "plain, CFG 1", 1.0, 1},
      {"cfg", "CFG " + shortest(o.cfg), o.cfg, 1},
      {"verified", "best-of-" + std::to_string(o.best_of) + " verified, CFG " + shortest(o.cfg),
       o.cfg, o.best_of}};
  // Classifier guidance next to them: at guide_cfg 1 it spends one classifier forward+backward
  // where CFG spends a second generator pass, the comparison at (roughly) equal compute.
  if (in.guide)
    modes.push_back(
        {"classifier-guided",
         "classifier-guided " + shortest(o.classifier_guidance) + ", CFG " + shortest(o.guide_cfg),
         o.guide_cfg, 1, o.classifier_guidance});
  // The unified model's UNet in the generator's CFG mode: the same seed, sampler and judge.
  if (in.unified)
    modes.push_back(
        {"unified", "unified model, CFG " + shortest(o.cfg), o.cfg, 1, 0.0, &in.unified->unet()});
  gen::InputMap guide_map;
  if (in.guide) {
    const data::NormStats gn = train::model_norm_stats(in.guide_config);
    guide_map = gen::classifier_input_map(gn.mean, gn.std, jo.lo, jo.hi, unet.config().in_channels);
  }
  const data::NormStats verifier_norm = train::model_norm_stats(in.classifier_config);
  const gen::Scorer verifier = gen::classifier_scorer(
      *in.classifier, [verifier_norm, lo = jo.lo, hi = jo.hi](const Tensor& x) {
        return to_classifier_input(x, verifier_norm, lo, hi);
      });
  for (size_t m = 0; m < modes.size(); ++m) {
    const Mode& mode = modes[m];
    models::UNet& net = mode.net ? *mode.net : unet;
    t0 = Clock::now();
    GapSampling s;
    s.name = mode.name, s.label = mode.label, s.cfg = mode.cfg, s.best_of = mode.best_of;
    s.passes_per_image = gen::passes_per_image(o.sample, mode.cfg, mode.best_of);
    s.classifier_guidance = mode.guidance;
    s.classifier_passes_per_image = mode.guidance > 0 ? gen::evaluations(o.sample) : 0;
    JudgeOptions mo = jo;
    mo.cfg = mode.cfg;
    const std::string tag = "generation " + std::to_string(m + 1) + "/" +
                            std::to_string(modes.size()) + " (" + mode.label + ")";
    mo.on_batch = [&](int64_t done, int64_t total) {
      say(o, tag + ": " + std::to_string(done) + "/" + std::to_string(total) + " images");
    };
    if (mode.best_of > 1) {
      mo.draw = [&](const std::vector<int32_t>& labels, uint64_t seed) {
        return gen::best_of_k(unet, objective, verifier, labels, mode.cfg, o.sample, seed,
                              mode.best_of)
            .images;
      };
    } else if (mode.guidance > 0) {
      mo.draw = [&](const std::vector<int32_t>& labels, uint64_t seed) {
        return gen::generate_classifier_guided(unet, objective, labels, mode.cfg, *in.guide,
                                               guide_map, mode.guidance, o.sample, seed);
      };
    }
    say(o, tag + ": " + std::to_string(k * o.per_class) + " images, " +
               std::to_string(s.passes_per_image) + " network passes per image" +
               (s.classifier_passes_per_image > 0
                    ? " + " + std::to_string(s.classifier_passes_per_image) +
                          " classifier forward+backward passes"
                    : ""));
    s.by_classifier = judge_generator(net, objective, *in.classifier, in.classifier_config, mo);
    if (in.judge) s.by_judge = judge_replay(in, objective, jo, s.by_classifier.images);
    DistributionReportOptions dopt;
    dopt.seed = o.seed;
    dopt.batch = o.batch;
    dopt.floor_skip = in.floor_skip;
    s.distribution =
        distribution_report(s.by_classifier, *in.classifier, in.classifier_config, in.test,
                            in.floor_set, dopt, &s.by_classifier.features, jo.lo, jo.hi);
    s.distribution.reference_is_judge = true;  // the classifier's features, as `duet eval`
    s.distribution.reference_path = in.classifier_path;
    s.distribution.reference_sha256 = in.classifier_sha256;
    s.distribution.floor_source = in.floor_source;
    const data::Image grid = data::image_grid(s.by_classifier.first_columns(o.grid_columns),
                                              o.grid_columns, 2, 255, jo.lo, jo.hi);
    s.grid = data::label_grid_rows(grid, r.class_names, unet.config().image_size);
    s.seconds = since(t0);
    say(o, tag + ": conditional accuracy " + fixed(s.by_classifier.metrics.accuracy, 4) +
               (s.by_judge ? " (judge " + fixed(s.by_judge->metrics.accuracy, 4) + ")" : "") +
               ", FID-ref " + fixed(s.distribution.overall.fid.fid, 3) + " (" +
               fixed(s.seconds, 1) + " s)");
    r.timings[std::string("generation_") + mode.name] = s.seconds;
    r.sampling.push_back(std::move(s));
  }

  // 3. Robustness: discriminative vs generative classifier on a seeded subset of the test set.
  r.robust_indices = robust_subset(in.test.size(), o.robust_images, o.robust_seed);
  const data::Dataset subset = data::subset(in.test, r.robust_indices);
  std::vector<std::pair<std::string, data::Corruption>> conditions = {{"clean", {}}};
  for (auto f : o.families)
    for (int sev : o.severities) conditions.push_back({family_name(f), {f, sev}});
  for (size_t i = 0; i < conditions.size(); ++i) {
    t0 = Clock::now();
    const auto& [family, c] = conditions[i];
    GapRobustPoint p;
    p.family = family;
    p.severity = family == "clean" ? 0 : c.severity;
    const data::Dataset d = family == "clean" ? subset : data::corrupt(subset, c, o.corrupt_seed);
    p.discriminative =
        classifier_metrics(*in.classifier, in.classifier_config, d, o.classifier_batch, k);
    p.generative =
        generative_metrics(unet, objective, d, gopt, p.generative_passes, p.generative_full_passes);
    p.seconds = since(t0);
    say(o, "robustness " + std::to_string(i + 1) + "/" + std::to_string(conditions.size()) + " (" +
               (family == "clean" ? "clean" : data::corruption_name(c)) + ", " +
               std::to_string(d.size()) + " images): classifier " +
               fixed(p.discriminative.accuracy, 4) + ", generative " +
               fixed(p.generative.accuracy, 4) + " (" + fixed(p.seconds, 1) + " s)");
    r.robustness.push_back(std::move(p));
  }
  double robust_seconds = 0.0;
  for (const auto& p : r.robustness) robust_seconds += p.seconds;
  r.timings["robustness"] = robust_seconds;
  r.timings["total"] = since(t_all);
  return r;
}

nlohmann::json gap_targets(const GapReport& r) {
  nlohmann::json rows = nlohmann::json::array();
  auto row = [&](const std::string& target, double threshold, double measured,
                 const std::string& detail) {
    rows.push_back({{"target", target},
                    {"threshold", threshold},
                    {"measured", measured},
                    {"met", measured >= threshold},
                    {"margin", measured - threshold},
                    {"detail", detail}});
  };
  for (const auto& s : r.sampling)
    if (s.name == "verified") {
      const bool judged = s.by_judge.has_value();
      row("conditional accuracy with verifier >= 98 %", 0.98,
          judged ? s.by_judge->metrics.accuracy : s.by_classifier.metrics.accuracy,
          s.label + (!judged ? ", judged by the verifier itself (no --judge: optimistic)"
                     : (r.settings.is_object() && r.settings.value("judge_is_classifier", false))
                         ? ", judged by --judge, which is the verifier's own file: optimistic"
                         : ", judged by the independent judge"));
    }
  const GapRobustPoint* clean = nullptr;
  for (const auto& p : r.robustness)
    if (p.family == "clean") clean = &p;
  if (clean)
    row("generative classifier >= 88 % clean test accuracy", 0.88, clean->generative.accuracy,
        std::to_string(clean->generative.count) + " seeded test images");
  // Mean accuracy over the severities of each family: generative minus discriminative.
  std::vector<std::string> families;
  for (const auto& p : r.robustness)
    if (p.family != "clean" &&
        std::find(families.begin(), families.end(), p.family) == families.end())
      families.push_back(p.family);
  if (!families.empty()) {
    double best = -2.0;
    std::string best_family, detail;
    for (const auto& f : families) {
      double g = 0.0, d = 0.0;
      int n = 0;
      for (const auto& p : r.robustness)
        if (p.family == f) g += p.generative.accuracy, d += p.discriminative.accuracy, ++n;
      const double diff = (g - d) / n;
      detail += (detail.empty() ? "" : ", ") + f + " " + (diff >= 0 ? "+" : "") +
                fixed(100.0 * diff, 2) + " points";
      if (diff > best) best = diff, best_family = f;
    }
    rows.push_back({{"target",
                     "generative classifier more robust than the discriminative one on >= 1 "
                     "corruption family"},
                    {"threshold", 0.0},
                    {"measured", best},
                    {"met", best > 0.0},
                    {"margin", best},
                    {"difference", true},
                    {"detail", "best family " + best_family +
                                   "; mean accuracy over severities, generative minus "
                                   "discriminative: " +
                                   detail}});
  }
  if (r.unified_accuracy) {
    const double diff = r.unified_accuracy->accuracy - r.understanding.accuracy;
    rows.push_back(
        {{"target", "unified model within 1 point of the separate classifier's accuracy"},
         {"threshold", -0.01},
         {"measured", diff},
         {"met", diff >= -0.01},
         {"margin", diff + 0.01},
         {"difference", true},
         {"detail", "unified " + fixed(100.0 * r.unified_accuracy->accuracy, 2) +
                        " % vs classifier " + fixed(100.0 * r.understanding.accuracy, 2) +
                        " % on " + std::to_string(r.understanding.count) + " test images; " +
                        std::to_string(r.unified_parameters) + " parameters vs " +
                        std::to_string(r.separate_parameters) + " for classifier + generator"}});
  }
  const GapSampling *cfg = nullptr, *unified = nullptr;
  for (const auto& s : r.sampling) {
    if (s.name == "cfg") cfg = &s;
    if (s.name == "unified") unified = &s;
  }
  if (cfg && unified) {
    // 1 - unified / separate: >= -0.10 means at most 10 % worse.
    const double a = unified->distribution.overall.fid.fid, b = cfg->distribution.overall.fid.fid;
    const double measured = b > 0 ? 1.0 - a / b : (a <= b ? 0.0 : -1.0);
    row("unified model's FID-ref no worse than 10 % above the generator's", -0.10, measured,
        "FID-ref " + fixed(a, 3) + " (unified) vs " + fixed(b, 3) + " (generator), both " +
            cfg->label + "; measured = 1 - unified / generator");
  }
  return rows;
}

nlohmann::json GapReport::to_json() const {
  const auto& names = class_names;
  nlohmann::json j;
  j["provenance"] = provenance;
  j["settings"] = settings;
  j["class_names"] = names;

  // The gap table: the headline numbers side by side.
  nlohmann::json gen_rows = nlohmann::json::array();
  for (const auto& s : sampling) gen_rows.push_back(sampling_summary(s));
  nlohmann::json floor = nullptr;
  if (!sampling.empty()) {
    const auto& f = sampling.front().distribution.floor;
    floor = {{"source", sampling.front().distribution.floor_source},
             {"fid_ref", f.fid.fid},
             {"kid_ref", f.kid.kid},
             {"kid_ref_se", f.kid.std_error},
             {"precision", f.pr.precision},
             {"recall", f.pr.recall},
             {"diversity", f.diversity_candidate},
             {"diversity_real", f.diversity_reference}};
  }
  j["gap"] = {{"understanding",
               {{"accuracy", understanding.accuracy},
                {"ece", understanding.ece},
                {"images", understanding.count},
                {"judge_accuracy",
                 judge_accuracy ? nlohmann::json(judge_accuracy->accuracy) : nlohmann::json()},
                {"unified_accuracy",
                 unified_accuracy ? nlohmann::json(unified_accuracy->accuracy) : nlohmann::json()},
                {"unified_parameters",
                 unified_accuracy ? nlohmann::json(unified_parameters) : nlohmann::json()},
                {"separate_parameters",
                 unified_accuracy ? nlohmann::json(separate_parameters) : nlohmann::json()}}},
              {"generation", gen_rows},
              {"floor", floor}};

  j["understanding"] = {
      {"classifier", understanding.to_json(names)},
      {"judge", judge_accuracy ? judge_accuracy->to_json(names) : nlohmann::json()},
      {"unified", unified_accuracy ? unified_accuracy->to_json(names) : nlohmann::json()}};
  nlohmann::json gen = nlohmann::json::array();
  for (const auto& s : sampling) {
    nlohmann::json g = sampling_summary(s);
    g["by_classifier"] = s.by_classifier.to_json(names);
    g["by_judge"] = s.by_judge ? s.by_judge->to_json(names) : nlohmann::json();
    g["distribution"] = s.distribution.to_json(names);
    g["grid"] = {{"width", s.grid.width},
                 {"height", s.grid.height},
                 {"rows", names.size()},
                 {"columns", settings.value("grid_columns", 0)}};
    gen.push_back(g);
  }
  j["generation"] = gen;

  nlohmann::json per = nlohmann::json::array();
  for (size_t c = 0; c < names.size(); ++c) {
    nlohmann::json row = {
        {"class", c},
        {"name", names[c]},
        {"classifier_accuracy", understanding.class_accuracy[c]},
        {"unified_accuracy",
         unified_accuracy ? nlohmann::json(unified_accuracy->class_accuracy[c]) : nlohmann::json()},
        {"judge_accuracy",
         judge_accuracy ? nlohmann::json(judge_accuracy->class_accuracy[c]) : nlohmann::json()}};
    for (const auto& s : sampling) {
      row["cond_acc_classifier"][s.name] = s.by_classifier.classes[c].accuracy;
      row["cond_acc_judge"][s.name] =
          s.by_judge ? nlohmann::json(s.by_judge->classes[c].accuracy) : nlohmann::json();
      row["fid_ref"][s.name] = s.distribution.classes[c].fid.fid;
    }
    if (!sampling.empty())
      row["fid_ref_floor"] = sampling.front().distribution.floor_classes[c].fid.fid;
    per.push_back(row);
  }
  j["per_class"] = per;

  nlohmann::json points = nlohmann::json::array();
  for (const auto& p : robustness) {
    const double saved = p.generative_full_passes
                             ? 1.0 - double(p.generative_passes) / double(p.generative_full_passes)
                             : 0.0;
    points.push_back({{"family", p.family},
                      {"severity", p.severity},
                      {"images", p.discriminative.count},
                      {"discriminative",
                       {{"accuracy", p.discriminative.accuracy}, {"ece", p.discriminative.ece}}},
                      {"generative",
                       {{"accuracy", p.generative.accuracy},
                        {"ece", p.generative.ece},
                        {"passes", p.generative_passes},
                        {"full_passes", p.generative_full_passes},
                        {"pruning_saved", saved}}},
                      {"seconds", p.seconds}});
  }
  j["robustness"] = {{"indices", robust_indices}, {"points", points}};
  j["targets"] = gap_targets(*this);
  j["timings"] = timings;
  return j;
}

}  // namespace duet::eval
