#include "duet/train/generate_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "duet/autograd/autograd.h"
#include "duet/data/image_grid.h"
#include "duet/data/loader.h"
#include "duet/gen/guidance.h"
#include "duet/io/safetensors.h"
#include "duet/io/tensor_io.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/ops/loss.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"
#include "duet/train/adamw.h"
#include "duet/train/ema.h"
#include "duet/train/generate_step.h"
#include "duet/train/metrics.h"
#include "duet/train/run_checkpoint.h"
#include "duet/train/run_io.h"
#include "duet/train/schedule.h"

namespace duet::train {
namespace fs = std::filesystem;

nlohmann::json GenerateRecipe::to_json() const {
  nlohmann::json j = {{"task", task},
                      {"arch", arch},
                      {"model_overrides", model_overrides},
                      {"data", data},
                      {"epochs", epochs},
                      {"batch", batch},
                      {"lr", lr},
                      {"weight_decay", weight_decay},
                      {"schedule", schedule},
                      {"warmup_epochs", warmup_epochs},
                      {"objective", objective},
                      {"time_sampling", time_sampling},
                      {"cfg_dropout", cfg_dropout},
                      {"ema_decay", ema_decay},
                      {"augment", augment},
                      {"limit", limit},
                      {"sample_every", sample_every},
                      {"sample_steps", sample_steps},
                      {"sample_cfg", sample_cfg},
                      {"sample_sampler", sample_sampler},
                      {"seed", seed}};
  // Only fine-tuning and reflow runs carry their input files, so other recipes stay as they were.
  if (!init.empty()) {
    j["init"] = init;
    j["init_sha256"] = init_sha256;
    j["init_bytes"] = init_bytes;
  }
  if (!reflow_pairs.empty()) {
    j["reflow_pairs"] = reflow_pairs;
    j["reflow_pairs_sha256"] = reflow_pairs_sha256;
    j["reflow_pairs_bytes"] = reflow_pairs_bytes;
  }
  if (unified()) {
    j["generate_weight"] = generate_weight;
    j["classify_weight"] = classify_weight;
    j["classify_augment"] = classify_augment;
    j["test_limit"] = test_limit;
  }
  return j;
}

GenerateRecipe GenerateRecipe::from_json(const nlohmann::json& j) {
  if (!j.is_object()) fail("training recipe: expected a JSON object, got ", j.dump());
  GenerateRecipe r;
  read_recipe_field(j, "arch", r.arch);
  read_recipe_field(j, "model_overrides", r.model_overrides);
  read_recipe_field(j, "data", r.data);
  read_recipe_field(j, "epochs", r.epochs);
  read_recipe_field(j, "batch", r.batch);
  read_recipe_field(j, "lr", r.lr);
  read_recipe_field(j, "weight_decay", r.weight_decay);
  read_recipe_field(j, "schedule", r.schedule);
  read_recipe_field(j, "warmup_epochs", r.warmup_epochs);
  read_recipe_field(j, "objective", r.objective);
  read_recipe_field(j, "time_sampling", r.time_sampling);
  read_recipe_field(j, "cfg_dropout", r.cfg_dropout);
  read_recipe_field(j, "ema_decay", r.ema_decay);
  read_recipe_field(j, "augment", r.augment);
  read_recipe_field(j, "limit", r.limit);
  read_recipe_field(j, "sample_every", r.sample_every);
  read_recipe_field(j, "sample_steps", r.sample_steps);
  read_recipe_field(j, "sample_cfg", r.sample_cfg);
  read_recipe_field(j, "sample_sampler", r.sample_sampler);
  read_recipe_field(j, "seed", r.seed);
  read_recipe_field(j, "init", r.init);
  read_recipe_field(j, "init_sha256", r.init_sha256);
  read_recipe_field(j, "init_bytes", r.init_bytes);
  read_recipe_field(j, "reflow_pairs", r.reflow_pairs);
  read_recipe_field(j, "reflow_pairs_sha256", r.reflow_pairs_sha256);
  read_recipe_field(j, "reflow_pairs_bytes", r.reflow_pairs_bytes);
  read_recipe_field(j, "task", r.task);
  read_recipe_field(j, "generate_weight", r.generate_weight);
  read_recipe_field(j, "classify_weight", r.classify_weight);
  read_recipe_field(j, "classify_augment", r.classify_augment);
  read_recipe_field(j, "test_limit", r.test_limit);
  return r;
}

void GenerateRecipe::validate() const {
  if (epochs < 1) fail_usage("--epochs must be at least 1, got ", epochs);
  if (batch < 1 || batch > 65536) fail_usage("--batch must be in [1, 65536], got ", batch);
  if (!(lr > 0) || !std::isfinite(lr)) fail_usage("--lr must be positive, got ", lr);
  if (!(weight_decay >= 0) || !std::isfinite(weight_decay))
    fail_usage("--wd must be a finite number >= 0, got ", weight_decay);
  if (!(warmup_epochs >= 0) || warmup_epochs >= static_cast<double>(epochs))
    fail_usage("--warmup must be in [0, epochs), got ", warmup_epochs);
  if (!(cfg_dropout >= 0 && cfg_dropout < 1))
    fail_usage("--cfg-dropout must be in [0, 1), got ", cfg_dropout);
  if (!(ema_decay >= 0 && ema_decay < 1)) fail_usage("--ema must be in [0, 1), got ", ema_decay);
  if (limit < 0) fail_usage("--limit must be >= 0, got ", limit);
  if (test_limit < 0) fail_usage("--test-limit must be >= 0, got ", test_limit);
  if (sample_every < 0) fail_usage("--sample-every must be >= 0, got ", sample_every);
  if (sample_steps < 1) fail_usage("--sample-steps must be at least 1, got ", sample_steps);
  // Checked now, not when the first grid is drawn at the end of an epoch.
  if (!std::isfinite(sample_cfg))
    fail_usage("--sample-cfg must be a finite number, got ", sample_cfg);
  (void)gen::parse_objective(objective);
  (void)gen::parse_time_sampling(time_sampling);
  (void)schedule_kind_from_string(schedule);
  (void)parse_augment("--augment", augment, epochs);
  if (!sample_sampler.empty())
    (void)gen::sample_options(gen::parse_objective(objective), sample_sampler,
                              static_cast<int>(sample_steps));
  if (!init.empty() && !model_overrides.empty())
    fail_usage("--init: the network comes from ", init,
               "; model options (--width and the like) cannot change it");
  if (!reflow_pairs.empty() && !augment.empty())
    fail_usage(
        "--augment cannot change reflow pairs: each image must stay the one its noise "
        "led to");
  if (task != "generate" && task != "unified")
    fail_usage("unknown --task '", task, "' for a generation run (known: generate, unified)");
  if (unified()) {
    for (const auto& [flag, w] : {std::pair{"--generate-weight", generate_weight},
                                  std::pair{"--classify-weight", classify_weight}})
      if (!(w >= 0) || !std::isfinite(w)) fail_usage(flag, " must be >= 0, got ", w);
    if (generate_weight == 0 && classify_weight == 0)
      fail_usage("--generate-weight and --classify-weight are both 0: nothing to learn");
    (void)parse_augment("--classify-augment", classify_augment, epochs);
    if (!reflow_pairs.empty())
      fail_usage("--reflow-pairs trains a generator alone; it does not go with --task unified");
  }
  if (init.empty()) {
    const std::string family = models::preset_config(arch).value("family", "");
    if (unified() && family != "unified")
      fail_usage("--task unified needs a unified architecture (unified-xs), got '", arch, "'");
    if (!unified() && family != "unet")
      fail_usage("--task generate needs a generator architecture (unet-xs, unet-s), got '", arch,
                 "'", family == "unified" ? " (a unified model trains with --task unified)" : "");
  }
}

namespace {

// One row per class, `per_class` samples each, with the EMA weights, written as a PNG grid.
void write_sample_grid(GenerateSetup& s, const GenerateRecipe& r, const fs::path& path,
                       int64_t per_class) {
  std::unique_ptr<EmaScope> scope;
  if (s.ema) scope = std::make_unique<EmaScope>(*s.ema, *s.module);
  std::vector<int32_t> labels;
  for (int32_t c = 0; c < s.unet->config().num_classes; ++c)
    labels.insert(labels.end(), per_class, c);
  const gen::SampleOptions opt =
      gen::sample_options(s.objective, r.sample_sampler, static_cast<int>(r.sample_steps));
  const Tensor images =
      gen::generate(*s.unet, s.objective, labels, r.sample_cfg, opt, static_cast<uint64_t>(r.seed));
  s.module->train();
  fs::create_directories(path.parent_path());
  data::write_png(path.string(), data::label_grid_rows(data::image_grid(images, per_class),
                                                       s.class_names, s.unet->config().image_size));
}

// Unified runs: the head's accuracy on the test split with the weights sampling uses (EMA).
double head_test_accuracy(GenerateSetup& s) {
  std::unique_ptr<EmaScope> scope;
  if (s.ema) scope = std::make_unique<EmaScope>(*s.ema, *s.module);
  const std::vector<float> probs = predict_probs(*s.module, s.test_set, s.norm, 250);
  const int64_t k = s.unified->unet().config().num_classes;
  const ClassifyMetrics m =
      classify_metrics(probs.data(), s.test_set.labels.data<int32_t>(), s.test_set.size(), k);
  return m.accuracy;
}

}  // namespace

GenerateSummary train_generator(const GenerateRecipe& recipe_in, const TrainRunOptions& opt) {
  recipe_in.validate();
  if (opt.out_dir.empty()) fail_usage("train: an output folder (-o) is required");
  GenerateRecipe recipe = recipe_in;
  const RunPaths paths(opt.out_dir);
  Progress progress(opt.progress, opt.lines_on_stderr ? stderr : stdout);

  ResumePoint resume;
  if (opt.resume) {
    resume = read_resume_point(paths.last);
    const GenerateRecipe saved =
        GenerateRecipe::from_json(resume.meta.value("recipe", nlohmann::json::object()));
    require_same_on_resume("arch", recipe.arch, saved.arch);
    require_same_on_resume("model config", recipe.model_overrides, saved.model_overrides);
    require_same_on_resume("--data", recipe.data, saved.data);
    require_same_on_resume("--batch", recipe.batch, saved.batch);
    require_same_on_resume("--limit", recipe.limit, saved.limit);
    require_same_on_resume("--augment", recipe.augment, saved.augment);
    require_same_on_resume("--objective", recipe.objective, saved.objective);
    require_same_on_resume("--task", recipe.task, saved.task);
    require_same_on_resume("--classify-augment", recipe.classify_augment, saved.classify_augment);
    require_same_on_resume("--ema", recipe.ema_decay > 0, saved.ema_decay > 0);
    if (recipe.seed >= 0) require_same_on_resume("--seed", recipe.seed, saved.seed);
    recipe.seed = saved.seed;
    require_same_on_resume("--init", recipe.init, saved.init);
    recipe.init_sha256 = saved.init_sha256;
    recipe.init_bytes = saved.init_bytes;
    require_same_on_resume("--reflow-pairs", recipe.reflow_pairs, saved.reflow_pairs);
    recipe.reflow_pairs_sha256 = saved.reflow_pairs_sha256;
    recipe.reflow_pairs_bytes = saved.reflow_pairs_bytes;
  }
  record_input_file("--init", recipe.init, opt.resume, recipe.init_sha256, recipe.init_bytes);
  record_input_file("--reflow-pairs", recipe.reflow_pairs, opt.resume, recipe.reflow_pairs_sha256,
                    recipe.reflow_pairs_bytes);
  if (recipe.seed < 0) recipe.seed = static_cast<int64_t>(random_seed() & 0x7fffffffffffffffull);

  GenerateSetup s = make_generate_setup(recipe);
  const int64_t bpe = s.batches_per_epoch;
  fs::create_directories(paths.dir);

  int64_t start_epoch = 0, step = 0;
  if (opt.resume) {
    std::tie(start_epoch, step) =
        restore_run(resume, paths.last, *s.module, *s.optim, s.ema.get(), bpe);
    truncate_log(paths.log, start_epoch);
    progress.note(
        str("resuming ", paths.dir.string(), " after epoch ", start_epoch, "/", recipe.epochs));
  } else {
    std::error_code ec;
    fs::remove(paths.log, ec);
  }
  if (!recipe.init.empty())
    progress.note(
        str("starting from ", recipe.init, " (sha256 ", recipe.init_sha256.substr(0, 12), ")"));
  const std::string what =
      recipe.reflow_pairs.empty()
          ? str(recipe.data, ": ", s.train_size, " images")
          : str("reflow pairs ", recipe.reflow_pairs, ": ", s.train_size, " (noise, image) pairs");
  progress.note(str("train ", s.config.value("arch", recipe.arch), " (", recipe.objective, ", ",
                    recipe.time_sampling, " t) on ", what, ", ", s.module->parameter_count(),
                    " parameters, seed ", recipe.seed, ", ", num_threads(), " threads"));

  auto save_checkpoints = [&](int64_t epochs_done) {
    const nlohmann::json meta = {{"recipe", recipe.to_json()},
                                 {"epoch", epochs_done},
                                 {"step", step},
                                 {"seed", recipe.seed},
                                 {"total_steps", s.total_steps}};
    save_run_checkpoints(paths, *s.module, *s.optim, s.ema.get(), s.config, meta, epochs_done);
  };

  GenerateSummary summary;
  summary.seed = static_cast<uint64_t>(recipe.seed);
  summary.epochs_done = start_epoch;
  int64_t run_epochs = 0;
  for (int64_t epoch = start_epoch; epoch < recipe.epochs; ++epoch) {
    if (opt.stop_after > 0 && run_epochs >= opt.stop_after) break;
    const auto t0 = std::chrono::steady_clock::now();
    s.loader->start_epoch(epoch);
    data::Batch batch;
    double loss_sum = 0.0, generate_sum = 0.0, classify_sum = 0.0, lr = 0.0;
    int64_t seen = 0, correct = 0;
    for (int64_t b = 0; s.loader->next(batch); ++b, ++step) {
      lr = s.schedule.lr_at(step, s.total_steps);
      const GenerateStepLoss loss = generate_train_step(s, recipe, batch, step);
      if (!std::isfinite(loss.total))
        fail("epoch ", epoch + 1, " step ", step + 1, ": the loss is ", loss.total,
             " (diverged; try a lower --lr); stopping. The last good checkpoint is kept (",
             fs::exists(paths.last) ? paths.last.string() : "none written yet", ")");
      const int64_t images = batch.labels.numel();
      loss_sum += static_cast<double>(loss.total) * static_cast<double>(images);
      generate_sum += static_cast<double>(loss.generate) * static_cast<double>(images);
      classify_sum += static_cast<double>(loss.classify) * static_cast<double>(images);
      correct += loss.correct;
      seen += images;
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      progress.update(epoch + 1, recipe.epochs, b, bpe, loss_sum / static_cast<double>(seen),
                      static_cast<double>(seen) / std::max(secs, 1e-9));
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++run_epochs;
    summary.epochs_done = epoch + 1;
    summary.steps = step;
    summary.train_loss = loss_sum / static_cast<double>(std::max<int64_t>(seen, 1));
    summary.images_per_second = static_cast<double>(seen) / std::max(secs, 1e-9);
    save_checkpoints(epoch + 1);

    nlohmann::json log = {{"epoch", epoch + 1}, {"epochs", recipe.epochs},
                          {"step", step},       {"loss", summary.train_loss},
                          {"lr", lr},           {"img_per_s", summary.images_per_second},
                          {"seconds", secs}};
    std::string line =
        str("epoch ", epoch + 1, "/", recipe.epochs, " loss ",
            format_number("%.4f", summary.train_loss), " lr ", format_number("%.3g", lr), " ",
            format_number("%.0f", summary.images_per_second), " img/s");
    if (s.unified) {
      const double denom = static_cast<double>(std::max<int64_t>(seen, 1));
      summary.test_accuracy = head_test_accuracy(s);
      log["generate_loss"] = generate_sum / denom;
      log["classify_loss"] = classify_sum / denom;
      log["train_acc"] = static_cast<double>(correct) / denom;
      log["test_acc"] = summary.test_accuracy;
      line += str(" | mse ", format_number("%.4f", generate_sum / denom), " ce ",
                  format_number("%.4f", classify_sum / denom), " train-acc ",
                  format_number("%.2f", 100.0 * static_cast<double>(correct) / denom),
                  "% test-acc ", format_number("%.2f", 100.0 * summary.test_accuracy), "%");
    }
    const bool last_epoch = epoch + 1 == recipe.epochs;
    const bool draws = !s.unified || recipe.generate_weight > 0;  // a classifier-only baseline
    if (draws &&
        (last_epoch || (recipe.sample_every > 0 && (epoch + 1) % recipe.sample_every == 0))) {
      const fs::path grid = paths.dir / "samples" / str("epoch-", epoch + 1, ".png");
      write_sample_grid(s, recipe, grid, 8);
      log["samples"] = grid.string();
      line += " samples " + grid.string();
    }
    append_log_line(paths.log, log.dump());
    progress.line(line);
  }
  summary.finished = summary.epochs_done >= recipe.epochs;
  summary.peak = peak_memory();
  if (summary.finished) {
    nlohmann::json metrics = {{"arch", s.config.value("arch", recipe.arch)},
                              {"config", s.config},
                              {"recipe", recipe.to_json()},
                              {"seed", recipe.seed},
                              {"epochs", summary.epochs_done},
                              {"steps", step},
                              {"parameters", s.module->parameter_count()},
                              {"train_loss", summary.train_loss},
                              {"img_per_s", summary.images_per_second},
                              {"threads", num_threads()},
                              {"memory", summary.peak.to_json()}};
    if (s.unified) metrics["test_acc"] = summary.test_accuracy;
    write_json_atomically(paths.metrics, metrics);
    progress.note(str("wrote ", paths.model.string(), " and ", paths.metrics.string()));
  }
  progress.line(summary.peak.str());
  return summary;
}

}  // namespace duet::train
