// `duet reflow -m TEACHER -o STUDENT --pairs 10000 --epochs 4 --classifier C`: few-step
// generation by rectified-flow reflow (Liu et al. 2022). The teacher's guided sampler (Heun,
// 20 steps, CFG 2 by default) carries seeded noise to images; those (noise, image, label) pairs
// are kept in the run folder; the student starts from the teacher's weights and trains on the
// straight line between each pair (`duet train --task generate --init --reflow-pairs`, so logs,
// checkpoints, --resume and sample grids are the trainer's); STUDENT is written with a "reflow"
// section in its config. With --classifier it then prints the table the issue asks for:
// conditional accuracy and FID-ref of teacher and student at 1, 2, 4, 8 and 20 Euler steps, with
// the network passes and measured seconds per image, on the same seeds.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "duet/cli/commands.h"
#include "duet/cli/eval_distribution.h"
#include "duet/eval/judge.h"
#include "duet/gen/reflow_pairs.h"
#include "duet/gen/verify.h"
#include "duet/models/checkpoint.h"
#include "duet/models/classifier.h"
#include "duet/models/unified.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"
#include "duet/train/distill_digest.h"
#include "duet/train/generate_trainer.h"
#include "duet/train/run_checkpoint.h"

namespace duet::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct ReflowFlags {
  std::string teacher, out, run_dir;
  // The pairs: the teacher's sampler at its best setting, the one the student should match.
  gen::ReflowPairOptions pairs = [] {
    gen::ReflowPairOptions p;
    p.count = 10000;
    p.cfg = 2.0;
    return p;
  }();
  std::string pair_sampler = "heun";
  int pair_steps = 20;
  // The student's training: a fine-tune from the teacher's weights, so a low rate and few epochs.
  // Uniform t, as in the reflow paper: the few-step sampler needs the whole path, t = 1 included.
  // No label dropout: the pairs carry the guided flow, which the student learns as its
  // conditional one (sample it at --cfg 1).
  train::GenerateRecipe recipe = [] {
    train::GenerateRecipe r;
    r.epochs = 4;
    r.lr = 5e-4;
    r.warmup_epochs = 0.1;
    r.time_sampling = "uniform";
    r.cfg_dropout = 0.0;
    r.sample_every = 1;
    r.sample_steps = 2;
    r.sample_sampler = "euler";
    r.sample_cfg = 1.0;
    r.seed = 0;
    return r;
  }();
  bool resume = false;
  // The comparison.
  std::string classifier, reference, data = "fashion-mnist", eval_steps = "1,2,4,8,20";
  int64_t per_class = 50;
  bool json = false;
};

std::vector<int> parse_steps(const std::string& list) {
  std::vector<int> steps;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      const int k = std::stoi(item, &used);
      if (used != item.size() || k < 1) throw std::invalid_argument(item);
      steps.push_back(k);
    } catch (const std::exception&) {
      fail_usage("--eval-steps: expected a comma list of step counts >= 1, got '", list, "'");
    }
  }
  if (steps.empty()) fail_usage("--eval-steps: expected at least one step count");
  return steps;
}

std::string default_run_dir(const std::string& out) {
  fs::path p(out);
  return (p.parent_path() / (p.stem().string() + ".reflow")).string();
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// What decides the pairs; an existing pair file is reused only when it matches.
nlohmann::json pair_provenance(const ReflowFlags& f, const std::string& teacher_sha) {
  return {{"teacher", f.teacher},      {"teacher_sha256", teacher_sha},
          {"sampler", f.pair_sampler}, {"steps", f.pair_steps},
          {"cfg", f.pairs.cfg},        {"seed", f.pairs.seed},
          {"count", f.pairs.count}};
}

// The pairs of the run folder: reused when the file holds exactly what these flags ask for,
// otherwise drawn (with a progress line) and written atomically before training starts.
std::string ensure_pairs(const ReflowFlags& f, models::UNet& teacher, gen::Objective objective,
                         const std::vector<std::string>& names, const std::string& teacher_sha,
                         std::FILE* log) {
  const std::string path = (fs::path(f.run_dir) / "pairs.safetensors").string();
  const nlohmann::json want = pair_provenance(f, teacher_sha);
  if (fs::exists(path)) {
    const gen::ReflowPairs existing = gen::load_reflow_pairs(path);
    if (existing.provenance == want) {
      std::fprintf(log, "reflow: reusing %lld pairs from %s\n",
                   static_cast<long long>(existing.size()), path.c_str());
      return path;
    }
    if (f.resume)
      fail_usage("reflow --resume: ", path,
                 " was drawn with other settings than these flags ask for (",
                 existing.provenance.dump(), ")");
    std::fprintf(log, "reflow: %s was drawn with other settings; drawing new pairs\n",
                 path.c_str());
  }
  std::fprintf(log,
               "reflow: drawing %lld pairs with the teacher (%s x %d steps, cfg %g, seed %llu, "
               "%d threads)\n",
               static_cast<long long>(f.pairs.count), f.pair_sampler.c_str(), f.pair_steps,
               f.pairs.cfg, static_cast<unsigned long long>(f.pairs.seed), num_threads());
  std::fflush(log);
  gen::ReflowPairOptions o = f.pairs;
  const bool bar = ::isatty(2);
  const auto t0 = Clock::now();
  o.on_batch = [&](int64_t done, int64_t total) {
    const double secs = seconds_since(t0);
    if (bar || done == total || (done * 10 / total) != ((done - o.batch) * 10 / total))
      std::fprintf(stderr, "%spairs %lld/%lld, %.1f s, %.2f pairs/s%s", bar ? "\r" : "",
                   static_cast<long long>(done), static_cast<long long>(total), secs,
                   static_cast<double>(done) / std::max(secs, 1e-9), bar ? " " : "\n");
  };
  gen::ReflowPairs pairs = gen::make_reflow_pairs(teacher, objective, names, o);
  if (bar) std::fprintf(stderr, "\n");
  pairs.provenance = want;
  fs::create_directories(f.run_dir);
  gen::save_reflow_pairs(path, pairs);
  std::fprintf(log, "reflow: wrote %s (%.1f s)\n", path.c_str(), seconds_since(t0));
  return path;
}

struct Row {
  std::string model;
  std::string sampler;
  int steps = 0;
  double cfg = 1.0;
  int64_t passes = 0;  // network passes per image
  double accuracy = 0.0, fid = 0.0, seconds_per_image = 0.0;
};

// Judges one generator setting: conditional accuracy by the classifier, FID-ref in the
// reference's features, and the measured sampling time per image.
Row judge_row(const std::string& name, models::UNet& unet, gen::Objective objective,
              models::LoadedModel& clf, ReferenceSetup& reference, eval::JudgeOptions o,
              const std::string& sampler, int steps, double cfg) {
  auto& classifier = static_cast<models::Classifier&>(*clf.model);
  o.cfg = cfg;
  o.sample = gen::sample_options(objective, sampler, steps);
  const auto t0 = Clock::now();
  const eval::Judgement j = eval::judge_generator(unet, objective, classifier, clf.config, o);
  Row row;
  row.seconds_per_image = seconds_since(t0) / static_cast<double>(j.labels.size());
  const eval::DistributionReport d = distribution_for(reference, j, classifier, clf.config, o);
  row.model = name;
  row.sampler = sampler;
  row.steps = steps;
  row.cfg = cfg;
  row.passes = gen::passes_per_image(o.sample, cfg);
  row.accuracy = j.metrics.accuracy;
  row.fid = d.overall.fid.fid;
  return row;
}

void run_reflow(ReflowFlags f) {
  if (fs::exists(f.out) && fs::exists(f.teacher) && fs::equivalent(f.teacher, f.out))
    fail_usage("reflow: -o must differ from -m (the teacher is kept for the comparison)");
  if (f.run_dir.empty()) f.run_dir = default_run_dir(f.out);
  const std::vector<int> eval_steps = parse_steps(f.eval_steps);
  if (f.per_class < 1) fail_usage("reflow: --per-class must be at least 1, got ", f.per_class);
  if (!f.reference.empty() && f.classifier.empty())
    fail_usage("reflow: --reference needs --classifier (the comparison's judge)");
  std::FILE* log = f.json ? stderr : stdout;

  models::LoadedModel teacher = models::load_model(f.teacher);
  auto* unet = models::generator_network(*teacher.model);
  if (!unet)
    fail_usage("reflow: -m ", f.teacher, " is a ", teacher.config.value("family", std::string("?")),
               " model, not a generator");
  const auto objective = gen::parse_objective(teacher.config.value("objective", "flow"));
  gen::validate(f.pairs, objective);  // a flow teacher first: its samplers are checked next
  f.pairs.sample = gen::sample_options(objective, f.pair_sampler, f.pair_steps);
  // The student's recipe is checked before any work (the teacher stands in for the pairs).
  train::GenerateRecipe recipe = f.recipe;
  recipe.init = f.teacher;
  recipe.objective = gen::objective_name(objective);
  recipe.validate();

  // The judge and its real images are loaded before the long work, so a bad flag fails at once.
  models::LoadedModel clf;
  eval::JudgeOptions judge;
  std::unique_ptr<ReferenceSetup> reference;
  if (!f.classifier.empty()) {
    clf = models::load_model(f.classifier);
    if (dynamic_cast<models::Classifier*>(clf.model.get()) == nullptr)
      fail_usage("reflow: --classifier ", f.classifier, " is not a classifier (family '",
                 clf.config.value("family", ""), "')");
    judge.per_class = f.per_class;
    judge.seed = f.pairs.seed + 1;  // other noise than the pairs': the student never saw it
    judge.data = f.data;
    judge.sample = gen::sample_options(objective, "euler", 1);
    std::tie(judge.lo, judge.hi) = eval::value_range(teacher.config);
    eval::validate_judge(*unet, objective, clf.config, judge);
    const auto& c = unet->config();
    judge.real = eval::load_real_images(judge, c.in_channels, c.image_size, c.num_classes);
    reference = std::make_unique<ReferenceSetup>(prepare_reference(
        f.reference, f.classifier, judge, c.in_channels, c.image_size, c.num_classes));
  }

  const std::string teacher_sha = train::sha256_file(f.teacher);
  std::vector<std::string> names = teacher.config.value("class_names", std::vector<std::string>{});
  if (names.empty())
    for (int i = 0; i < unet->config().num_classes; ++i) names.push_back(std::to_string(i));
  const std::string pairs_path = ensure_pairs(f, *unet, objective, names, teacher_sha, log);

  recipe.reflow_pairs = pairs_path;
  train::TrainRunOptions o;
  o.out_dir = f.run_dir;
  o.resume = f.resume && fs::exists(train::RunPaths(f.run_dir).last);
  o.lines_on_stderr = f.json;
  std::fprintf(log, "reflow: training the student for %lld epochs in %s (lr %g, %s t)\n",
               static_cast<long long>(recipe.epochs), f.run_dir.c_str(), recipe.lr,
               recipe.time_sampling.c_str());
  std::fflush(log);
  const auto t_train = Clock::now();
  const train::GenerateSummary summary = train::train_generator(recipe, o);
  const double train_secs = seconds_since(t_train);
  if (!summary.finished) fail("reflow: the student's training stopped early");

  models::LoadedModel student = models::load_model(train::RunPaths(f.run_dir).model.string());
  nlohmann::json config = student.config;
  config["reflow"] = {{"from", f.teacher},          {"from_sha256", teacher_sha},
                      {"pairs", f.pairs.count},     {"pair_sampler", f.pair_sampler},
                      {"pair_steps", f.pair_steps}, {"pair_cfg", f.pairs.cfg},
                      {"epochs", recipe.epochs},    {"lr", recipe.lr},
                      {"seed", f.pairs.seed},       {"sample_cfg", 1.0}};
  models::save_model(f.out, *student.model, config);
  std::fprintf(log, "reflow: wrote %s (student of %s; sample it with --cfg 1)\n", f.out.c_str(),
               f.teacher.c_str());

  nlohmann::json j = {{"teacher", f.teacher},
                      {"student", f.out},
                      {"run", f.run_dir},
                      {"pairs", pair_provenance(f, teacher_sha)},
                      {"train_seconds", train_secs},
                      {"train_loss", summary.train_loss}};
  if (f.classifier.empty()) {
    if (f.json) std::printf("%s\n", j.dump().c_str());
    return;
  }

  // The comparison: the teacher at its pair setting, then both at each step count (Euler, so a
  // step is one network evaluation; the teacher's guidance doubles its passes).
  std::vector<Row> rows;
  auto add = [&](Row r) {
    std::fprintf(log,
                 "  %-8s %-5s %3d steps cfg %-3g %4lld passes/img  accuracy %6.2f%%  FID-ref "
                 "%8.3f  %.4f s/img\n",
                 r.model.c_str(), r.sampler.c_str(), r.steps, r.cfg,
                 static_cast<long long>(r.passes), 100 * r.accuracy, r.fid, r.seconds_per_image);
    std::fflush(log);
    rows.push_back(std::move(r));
  };
  std::fprintf(log, "reflow: judging by %s, %lld images per class, seed %llu\n",
               f.classifier.c_str(), static_cast<long long>(f.per_class),
               static_cast<unsigned long long>(judge.seed));
  add(judge_row("teacher", *unet, objective, clf, *reference, judge, f.pair_sampler, f.pair_steps,
                f.pairs.cfg));
  auto* student_unet = models::generator_network(*student.model);
  for (int k : eval_steps) {
    add(judge_row("teacher", *unet, objective, clf, *reference, judge, "euler", k, f.pairs.cfg));
    add(judge_row("student", *student_unet, objective, clf, *reference, judge, "euler", k, 1.0));
  }

  nlohmann::json table = nlohmann::json::array();
  for (const Row& r : rows)
    table.push_back({{"model", r.model},
                     {"sampler", r.sampler},
                     {"steps", r.steps},
                     {"cfg", r.cfg},
                     {"passes_per_image", r.passes},
                     {"conditional_accuracy", r.accuracy},
                     {"fid_ref", r.fid},
                     {"seconds_per_image", r.seconds_per_image}});
  j["classifier"] = f.classifier;
  j["reference"] = reference->path;
  j["per_class"] = f.per_class;
  j["judge_seed"] = judge.seed;
  j["table"] = table;
  if (f.json) {
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  const Row& best = rows.front();
  std::printf(
      "\nteacher at its pair setting (%s x %d steps, cfg %g): %.2f%% conditional "
      "accuracy, FID-ref %.3f\n",
      best.sampler.c_str(), best.steps, best.cfg, 100 * best.accuracy, best.fid);
  std::printf("%-6s | %-29s | %-29s\n", "euler", "teacher (cfg 2 = 2 passes/step)",
              "student (cfg 1, 1 pass/step)");
  std::printf("%-6s | %9s %9s %9s | %9s %9s %9s\n", "steps", "accuracy", "FID-ref", "s/img",
              "accuracy", "FID-ref", "s/img");
  for (size_t i = 1; i + 1 < rows.size(); i += 2) {
    const Row &t = rows[i], &s = rows[i + 1];
    std::printf("%-6d | %8.2f%% %9.3f %9.4f | %8.2f%% %9.3f %9.4f\n", t.steps, 100 * t.accuracy,
                t.fid, t.seconds_per_image, 100 * s.accuracy, s.fid, s.seconds_per_image);
  }
  std::printf("judged by %s (%lld per class, seed %llu); FID-ref in %s's features\n",
              f.classifier.c_str(), static_cast<long long>(f.per_class),
              static_cast<unsigned long long>(judge.seed), reference->path.c_str());
}

}  // namespace

Action add_reflow_command(CLI::App& app) {
  auto f = std::make_shared<ReflowFlags>();
  CLI::App* sub = app.add_subcommand(
      "reflow", "few-step generation: reflow a flow generator into a student for 1-4 steps");
  sub->add_option("-m,--model", f->teacher, "the teacher: a flow-matching generator")->required();
  sub->add_option("-o,--output", f->out, "the student checkpoint to write")->required();
  sub->add_option("--run", f->run_dir,
                  "run folder: pairs, logs, checkpoints (default: OUT's stem + .reflow)");
  sub->add_flag("--resume", f->resume, "continue the student's training in the run folder");
  sub->add_option("--pairs", f->pairs.count, "(noise, image) pairs the teacher draws")
      ->capture_default_str();
  sub->add_option("--pair-steps", f->pair_steps, "the teacher's sampler steps for the pairs")
      ->capture_default_str();
  sub->add_option("--pair-sampler", f->pair_sampler, "the teacher's sampler: euler | heun")
      ->capture_default_str();
  sub->add_option("--cfg", f->pairs.cfg, "the teacher's guidance scale (the student learns it)")
      ->capture_default_str();
  sub->add_option("--pair-batch", f->pairs.batch, "pairs per teacher call")->capture_default_str();
  auto& r = f->recipe;
  sub->add_option("--epochs", r.epochs, "student training epochs over the pairs")
      ->capture_default_str();
  sub->add_option("--lr", r.lr, "AdamW peak learning rate")->capture_default_str();
  sub->add_option("--batch", r.batch, "student batch size")->capture_default_str();
  sub->add_option("--ema", r.ema_decay, "EMA decay of the student's weights (0: none)")
      ->capture_default_str();
  sub->add_option("--time-sampling", r.time_sampling, "uniform | logit-normal")
      ->capture_default_str();
  sub->add_option("-s,--seed", f->pairs.seed, "seed of the pairs, the training and the judge")
      ->capture_default_str();
  sub->add_option("--classifier", f->classifier,
                  "judge teacher and student with this classifier (conditional accuracy)");
  sub->add_option("--reference", f->reference,
                  "FID-ref features from this classifier (default: --classifier)");
  sub->add_option("--data", f->data, "real images for FID-ref")->capture_default_str();
  sub->add_option("--per-class", f->per_class, "judged images per class and setting")
      ->capture_default_str();
  sub->add_option("--eval-steps", f->eval_steps, "Euler step counts to compare")
      ->capture_default_str();
  sub->add_flag("--json", f->json, "one JSON object on stdout instead of tables");
  return [f] {
    f->recipe.seed = static_cast<int64_t>(f->pairs.seed & 0x7fffffffffffffffull);
    run_reflow(*f);
  };
}

}  // namespace duet::cli
