#include "duet/train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>

#include "duet/autograd/autograd.h"
#include "duet/compress/fold.h"
#include "duet/data/augment.h"
#include "duet/data/loader.h"
#include "duet/io/safetensors.h"
#include "duet/io/tensor_io.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/ops/eltwise.h"
#include "duet/ops/loss.h"
#include "duet/ops/shape_ops.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"
#include "duet/tensor/rng.h"
#include "duet/train/classify_step.h"
#include "duet/train/distill_digest.h"
#include "duet/train/peak_memory.h"
#include "duet/train/qat_run.h"
#include "duet/train/run_checkpoint.h"
#include "duet/train/run_io.h"

namespace duet::train {
namespace fs = std::filesystem;

nlohmann::json ClassifyRecipe::to_json() const {
  nlohmann::json j = {{"arch", arch},
                      {"model", model_overrides},
                      {"data", data},
                      {"epochs", epochs},
                      {"batch", batch},
                      {"lr", lr},
                      {"optimizer", optimizer},
                      {"momentum", momentum},
                      {"nesterov", nesterov},
                      {"wd", weight_decay},
                      {"schedule", schedule},
                      {"warmup", warmup_epochs},
                      {"label_smoothing", label_smoothing},
                      {"augment", augment},
                      {"ema", ema_decay},
                      {"val", val},
                      {"limit", limit},
                      {"test_limit", test_limit},
                      {"seed", seed}};
  // Only runs that use other test or extra training data carry those fields.
  if (!test_data.empty()) j["test_data"] = test_data;
  if (!extra_data.empty()) j["extra_data"] = extra_data;
  if (!noised.empty()) j["noised"] = noised;
  // Only distillation runs carry the teacher fields, so other recipes stay as they were.
  if (!teacher.empty()) {
    j["teacher"] = teacher;
    j["kd_temperature"] = kd_temperature;
    j["kd_alpha"] = kd_alpha;
    j["teacher_sha256"] = teacher_sha256;
    j["teacher_bytes"] = teacher_bytes;
  }
  if (!init.empty()) {
    j["init"] = init;
    j["init_sha256"] = init_sha256;
    j["init_bytes"] = init_bytes;
  }
  if (!qat_from.empty()) {
    j["qat_from"] = qat_from;
    j["qat_sha256"] = qat_sha256;
    j["qat_bytes"] = qat_bytes;
    j["qat_calib"] = qat_calib;
    j["qat_method"] = qat_method;
    j["qat_keep_fp32"] = qat_keep_fp32;
    j["qat_ranges"] = qat_ranges;
    j["qat_max_layer_error"] = qat_max_layer_error;
  }
  return j;
}

ClassifyRecipe ClassifyRecipe::from_json(const nlohmann::json& j) {
  if (!j.is_object()) fail("training recipe: expected a JSON object, got ", j.dump());
  ClassifyRecipe r;
  read_recipe_field(j, "arch", r.arch);
  read_recipe_field(j, "model", r.model_overrides);
  read_recipe_field(j, "data", r.data);
  read_recipe_field(j, "test_data", r.test_data);
  read_recipe_field(j, "extra_data", r.extra_data);
  read_recipe_field(j, "epochs", r.epochs);
  read_recipe_field(j, "batch", r.batch);
  read_recipe_field(j, "lr", r.lr);
  read_recipe_field(j, "optimizer", r.optimizer);
  read_recipe_field(j, "momentum", r.momentum);
  read_recipe_field(j, "nesterov", r.nesterov);
  read_recipe_field(j, "wd", r.weight_decay);
  read_recipe_field(j, "schedule", r.schedule);
  read_recipe_field(j, "warmup", r.warmup_epochs);
  read_recipe_field(j, "label_smoothing", r.label_smoothing);
  read_recipe_field(j, "augment", r.augment);
  read_recipe_field(j, "ema", r.ema_decay);
  read_recipe_field(j, "val", r.val);
  read_recipe_field(j, "limit", r.limit);
  read_recipe_field(j, "test_limit", r.test_limit);
  read_recipe_field(j, "seed", r.seed);
  read_recipe_field(j, "teacher", r.teacher);
  read_recipe_field(j, "kd_temperature", r.kd_temperature);
  read_recipe_field(j, "kd_alpha", r.kd_alpha);
  read_recipe_field(j, "teacher_sha256", r.teacher_sha256);
  read_recipe_field(j, "teacher_bytes", r.teacher_bytes);
  read_recipe_field(j, "init", r.init);
  read_recipe_field(j, "init_sha256", r.init_sha256);
  read_recipe_field(j, "init_bytes", r.init_bytes);
  read_recipe_field(j, "noised", r.noised);
  read_recipe_field(j, "qat_from", r.qat_from);
  read_recipe_field(j, "qat_sha256", r.qat_sha256);
  read_recipe_field(j, "qat_bytes", r.qat_bytes);
  read_recipe_field(j, "qat_calib", r.qat_calib);
  read_recipe_field(j, "qat_method", r.qat_method);
  read_recipe_field(j, "qat_keep_fp32", r.qat_keep_fp32);
  read_recipe_field(j, "qat_ranges", r.qat_ranges);
  read_recipe_field(j, "qat_max_layer_error", r.qat_max_layer_error);
  return r;
}

void ClassifyRecipe::validate() const {
  // A fine-tuning run's network is the checkpoint's; `arch` then only names it in logs.
  if (init.empty() && qat_from.empty())
    models::preset_config(arch);  // usage Error listing the known names
  if (!model_overrides.is_object()) fail_usage("model overrides must be a JSON object");
  if (!init.empty() && !model_overrides.empty())
    fail_usage("--init: the network comes from ", init,
               "; --width and model overrides do not apply");
  if (epochs < 1) fail_usage("--epochs must be >= 1, got ", epochs);
  if (batch < 1) fail_usage("--batch must be >= 1, got ", batch);
  if (!(lr > 0.0) || !std::isfinite(lr)) fail_usage("--lr must be a positive number, got ", lr);
  if (optimizer != "sgd" && optimizer != "adamw")
    fail_usage("--optimizer must be sgd or adamw, got '", optimizer, "'");
  if (!(momentum >= 0.0 && momentum < 1.0))
    fail_usage("--momentum must be in [0, 1), got ", momentum);
  if (nesterov && (optimizer != "sgd" || momentum <= 0.0))
    fail_usage("--nesterov needs --optimizer sgd and a momentum > 0");
  if (!(weight_decay >= 0.0) || !std::isfinite(weight_decay))
    fail_usage("--wd must be a finite number >= 0, got ", weight_decay);
  schedule_kind_from_string(schedule);
  if (!(warmup_epochs >= 0.0) || warmup_epochs >= static_cast<double>(epochs))
    fail_usage("--warmup must be in [0, epochs), got ", warmup_epochs);
  if (!(label_smoothing >= 0.0 && label_smoothing < 1.0))
    fail_usage("--label-smoothing must be in [0, 1), got ", label_smoothing);
  parse_augment("--augment", augment, epochs);
  if (!(ema_decay >= 0.0 && ema_decay < 1.0))
    fail_usage("--ema must be in [0, 1), got ", ema_decay);
  if (val < 0) fail_usage("--val must be >= 0, got ", val);
  if (limit < 0) fail_usage("--limit must be >= 0, got ", limit);
  if (test_limit < 0) fail_usage("--test-limit must be >= 0, got ", test_limit);
  if (!(kd_temperature > 0.0) || !std::isfinite(kd_temperature))
    fail_usage("--kd-temperature must be > 0, got ", kd_temperature);
  if (!(kd_alpha >= 0.0 && kd_alpha <= 1.0))
    fail_usage("--kd-alpha must be in [0, 1], got ", kd_alpha);
  if (!noised.empty() && noised != "flow" && noised != "ddpm")
    fail_usage("--noised must be flow or ddpm, got '", noised, "'");
  if (!qat_from.empty()) {
    if (!init.empty())
      fail_usage("--qat-from and --init both name the starting checkpoint; give one");
    if (!model_overrides.empty())
      fail_usage("--qat-from: the network comes from ", qat_from, "; --width does not apply");
    if (!noised.empty()) fail_usage("--qat-from does not combine with --noised");
    if (qat_calib < 1 || qat_calib > 1'000'000)
      fail_usage("--calib wants 1..1000000 images, got ", qat_calib);
    if (!(qat_max_layer_error >= 0.0))
      fail_usage("--max-layer-error must be >= 0, got ", qat_max_layer_error);
    qat_options(*this);  // usage Error for a bad --method or --qat-ranges
  }
}

namespace {

// The number after "name:" in an --augment item such as "crop:2" or "until:12", when it is one
// in [1, max]; otherwise a usage Error saying what `meaning` the number has.
int64_t item_number(const std::string& item, int64_t max, const char* meaning) {
  const std::string digits = item.substr(item.find(':') + 1);
  const bool all_digits =
      !digits.empty() && digits.size() <= 7 &&
      std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  const int64_t v = all_digits ? std::stoll(digits) : 0;
  if (v < 1 || v > max)
    fail_usage("--augment: '", item, "' must give ", meaning, ", 1 to ", max, " (e.g. ",
               item.substr(0, item.find(':')), ":2)");
  return v;
}

}  // namespace

data::AugmentConfig parse_augment(const std::string& list) {
  data::AugmentConfig cfg;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item == "crop")
      cfg.crop_padding = 4;
    else if (item.rfind("crop:", 0) == 0)
      cfg.crop_padding = item_number(item, 64, "the crop padding in pixels");
    else if (item == "flip")
      cfg.hflip = true;
    else if (item == "erase")
      cfg.erase_prob = 0.5f;
    else if (item.rfind("until:", 0) == 0)
      cfg.epochs = item_number(item, 1'000'000, "the number of augmented epochs");
    else if (item != "none" && !item.empty())
      fail_usage("--augment: unknown augmentation '", item,
                 "' (expected crop, crop:P, flip, erase, until:E)");
  }
  return cfg;
}

data::AugmentConfig parse_augment(const std::string& flag, const std::string& list,
                                  int64_t epochs) {
  const data::AugmentConfig cfg = parse_augment(list);
  if (cfg.epochs > 0 && !cfg.any())
    fail_usage(flag, ": until:", cfg.epochs,
               " stops augmenting, but the list names no augmentation (crop, flip, erase)");
  if (cfg.epochs >= epochs)
    fail_usage(flag, ": until:", cfg.epochs, " leaves none of the ", epochs,
               " epochs plain; give a number below --epochs");
  return cfg;
}

data::NormStats model_norm_stats(const nlohmann::json& config) {
  data::NormStats s;
  if (!config.contains("preprocess")) return s;
  try {
    s.mean = config.at("preprocess").at("mean").get<std::vector<float>>();
    s.std = config.at("preprocess").at("std").get<std::vector<float>>();
  } catch (const nlohmann::json::exception& e) {
    fail("model config: 'preprocess' needs float arrays 'mean' and 'std' (", e.what(), ")");
  }
  const auto c = static_cast<size_t>(config.value("in_channels", 1));
  DUET_CHECK(s.mean.size() == c && s.std.size() == c, "model config: 'preprocess' has ",
             s.mean.size(), " means and ", s.std.size(), " stds for ", c, " input channels");
  for (float v : s.std) DUET_CHECK(v > 0.0f, "model config: 'preprocess' std must be > 0");
  return s;
}

std::vector<std::string> model_class_names(const nlohmann::json& config) {
  const int k = config.value("num_classes", 10);
  std::vector<std::string> names;
  if (config.contains("class_names") && config.at("class_names").is_array())
    for (const auto& n : config.at("class_names"))
      if (n.is_string()) names.push_back(n.get<std::string>());
  if (static_cast<int>(names.size()) == k) return names;
  names.clear();
  for (int i = 0; i < k; ++i) names.push_back(std::to_string(i));
  return names;
}

namespace {

// A copy of images [N, C, H, W] with every image mirrored left-right.
Tensor mirrored(const Tensor& images) {
  Tensor out = images.clone();
  const int64_t n = out.dim(0), c = out.dim(1), h = out.dim(2), w = out.dim(3);
  float* p = out.data<float>();
  parallel_for(n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) data::hflip(p + i * c * h * w, c, h, w);
  });
  return out;
}

}  // namespace

Tta Tta::parse(const std::string& text, const char* flag) {
  if (text != "none" && text != "flip") fail_usage(flag, " must be none or flip, got '", text, "'");
  Tta t;
  t.flip = text == "flip";
  return t;
}

std::vector<float> predict_probs(nn::Module& model, const data::Dataset& d,
                                 const data::NormStats& norm, int64_t batch, const Tta& tta) {
  if (d.size() == 0) return {};
  const bool was_training = model.is_training();
  model.eval();
  autograd::NoGradGuard no_grad;
  data::LoaderConfig cfg;
  cfg.batch_size = batch;
  cfg.shuffle = false;
  cfg.norm = norm;
  cfg.prefetch = 0;
  data::Loader loader(d, cfg);
  std::vector<float> probs;
  loader.start_epoch(0);
  data::Batch b;
  while (loader.next(b)) {
    Tensor logits = model.forward(b.images);
    if (tta.flip)
      logits = ops::mul_scalar(ops::add(logits, model.forward(mirrored(b.images))), 0.5f);
    // A softmax of NaN would print as some probability: refuse it instead (finite weights can
    // still overflow on an input).
    logits = ops::contiguous(logits);
    const int64_t classes = std::max<int64_t>(logits.dim(1), 1);
    if (const int64_t at = first_non_finite(logits); at >= 0)
      fail("the model's logits are NaN or infinite for image ",
           int64_t(probs.size()) / classes + at / classes,
           " (its weights overflow on this input); nothing is reported for a broken model");
    const std::vector<float> p = ops::softmax(logits).to_vector();
    probs.insert(probs.end(), p.begin(), p.end());
  }
  model.train(was_training);
  return probs;
}

ClassifyRecipe read_checkpoint_recipe(const std::string& last_path) {
  return ClassifyRecipe::from_json(
      read_resume_point(last_path).meta.value("recipe", nlohmann::json::object()));
}

TrainSummary train_classifier(const ClassifyRecipe& recipe_in, const TrainRunOptions& opt) {
  recipe_in.validate();
  if (opt.out_dir.empty()) fail_usage("train: an output folder (-o) is required");
  ClassifyRecipe recipe = recipe_in;
  const RunPaths paths(opt.out_dir);
  Progress progress(opt.progress, opt.lines_on_stderr ? stderr : stdout);

  // Resume: the checkpoint's recipe decides everything that shapes the data and the model.
  ResumePoint resume;
  if (opt.resume) {
    resume = read_resume_point(paths.last);
    const ClassifyRecipe saved =
        ClassifyRecipe::from_json(resume.meta.value("recipe", nlohmann::json::object()));
    require_same_on_resume("arch", recipe.arch, saved.arch);
    require_same_on_resume("model config", recipe.model_overrides, saved.model_overrides);
    require_same_on_resume("--data", recipe.data, saved.data);
    require_same_on_resume("--test-data", recipe.test_data, saved.test_data);
    require_same_on_resume("--extra-data", recipe.extra_data, saved.extra_data);
    require_same_on_resume("--noised", recipe.noised, saved.noised);
    require_same_on_resume("--batch", recipe.batch, saved.batch);
    require_same_on_resume("--val", recipe.val, saved.val);
    require_same_on_resume("--limit", recipe.limit, saved.limit);
    require_same_on_resume("--augment", recipe.augment, saved.augment);
    require_same_on_resume("--optimizer", recipe.optimizer, saved.optimizer);
    require_same_on_resume("--ema", recipe.ema_decay > 0, saved.ema_decay > 0);
    if (recipe.seed >= 0) require_same_on_resume("--seed", recipe.seed, saved.seed);
    recipe.seed = saved.seed;
    require_same_on_resume("--teacher", recipe.teacher, saved.teacher);
    recipe.teacher_sha256 = saved.teacher_sha256;
    recipe.teacher_bytes = saved.teacher_bytes;
    require_same_on_resume("--init", recipe.init, saved.init);
    recipe.init_sha256 = saved.init_sha256;
    recipe.init_bytes = saved.init_bytes;
    require_same_on_resume("--qat-from", recipe.qat_from, saved.qat_from);
    require_same_on_resume("--calib", recipe.qat_calib, saved.qat_calib);
    require_same_on_resume("--method", recipe.qat_method, saved.qat_method);
    require_same_on_resume("--keep-fp32", recipe.qat_keep_fp32, saved.qat_keep_fp32);
    require_same_on_resume("--qat-ranges", recipe.qat_ranges, saved.qat_ranges);
    require_same_on_resume("--max-layer-error", recipe.qat_max_layer_error,
                           saved.qat_max_layer_error);
    recipe.qat_sha256 = saved.qat_sha256;
    recipe.qat_bytes = saved.qat_bytes;
  }
  // The teacher and the starting checkpoint are part of the recipe: record which files they
  // were, and refuse to resume from different ones (the run would change).
  record_input_file("--teacher", recipe.teacher, opt.resume, recipe.teacher_sha256,
                    recipe.teacher_bytes);
  record_input_file("--init", recipe.init, opt.resume, recipe.init_sha256, recipe.init_bytes);
  record_input_file("--qat-from", recipe.qat_from, opt.resume, recipe.qat_sha256, recipe.qat_bytes);
  // Kept below 2^63 so the seed round-trips through the recipe's signed field.
  if (recipe.seed < 0) recipe.seed = static_cast<int64_t>(random_seed() & 0x7fffffffffffffffull);

  ClassifySetup setup = make_classify_setup(recipe);
  const data::Dataset& train_set = setup.train_set;
  const data::Dataset& val_set = setup.val_set;
  const data::Dataset& test_set = setup.test_set;
  const data::NormStats& norm = setup.norm;
  const nlohmann::json& config = setup.config;
  nn::Module* model = setup.model.get();
  data::Loader& loader = *setup.loader;
  Optimizer* optim = setup.optim.get();
  Ema* ema = setup.ema.get();
  const int64_t bpe = setup.batches_per_epoch;
  const int64_t total_steps = setup.total_steps;
  fs::create_directories(paths.dir);  // only now: a bad --data or model leaves nothing behind

  int64_t start_epoch = 0, step = 0;
  if (opt.resume) {
    std::tie(start_epoch, step) = restore_run(resume, paths.last, *model, *optim, ema, bpe);
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
  // QAT: the run starts from the post-training int8 model, written next to the run's files.
  auto* qat = dynamic_cast<compress::QatClassifier*>(model);
  if (qat) {
    save_ptq_int8((paths.dir / "ptq.safetensors").string(), *qat, config);
    progress.note(str("quantisation-aware training from ", recipe.qat_from, " (sha256 ",
                      recipe.qat_sha256.substr(0, 12), "): ", qat->ptq_report.int8_layers(), " of ",
                      qat->ptq_report.layers.size(), " convs fake-quantised, ", recipe.qat_method,
                      " ranges from ", qat->ptq_report.calibration_images, " images, range update ",
                      recipe.qat_ranges, "; its post-training int8 in ",
                      (paths.dir / "ptq.safetensors").string()));
  }
  progress.note(str("train ", recipe.arch, " on ", recipe.data, ": ", train_set.size(), " images (",
                    val_set.size(), " val, ", test_set.size(), " test), ", model->parameter_count(),
                    " parameters, seed ", recipe.seed, ", ", num_threads(), " threads"));
  if (!recipe.extra_data.empty())
    progress.note(str("the training images include --extra-data ", recipe.extra_data));
  if (!recipe.test_data.empty())
    progress.note(str("test split from --test-data ", recipe.test_data));
  if (!recipe.noised.empty())
    progress.note(str("noise-aware: training images become ", recipe.noised,
                      " x_t at a uniform t per image (train loss / acc are on x_t); evaluation "
                      "is on clean images (t = 0)"));
  if (setup.teacher)
    progress.note(str("distilling from teacher ", recipe.teacher, " (",
                      setup.teacher->config().value("family", std::string("?")), ", ",
                      setup.teacher->parameter_count(), " parameters, sha256 ",
                      recipe.teacher_sha256.substr(0, 12), "), temperature ", recipe.kd_temperature,
                      ", alpha ", recipe.kd_alpha));

  // Evaluation with the weights that ship (EMA when enabled); the model's mode is restored. It
  // runs the folded inference form where the family has one: what `duet eval` runs on the saved
  // model, and faster than the training graph in eval mode (ResNet-20, 250 images: 54 vs 84 ms).
  auto evaluate = [&](const data::Dataset& d) {
    std::unique_ptr<EmaScope> scope;
    if (ema) scope = std::make_unique<EmaScope>(*ema, *model);
    const auto probs = predict_probs(*compress::inference_model(setup.model), d, norm);
    return classify_metrics(probs.data(), d.labels.data<int32_t>(), d.size(),
                            train_set.num_classes());
  };
  auto save_checkpoints = [&](int64_t epochs_done) {
    const nlohmann::json meta = {{"recipe", recipe.to_json()},
                                 {"epoch", epochs_done},
                                 {"step", step},
                                 {"seed", recipe.seed},
                                 {"total_steps", total_steps},
                                 {"data", {{"epoch", epochs_done}, {"batch", 0}}}};
    // A QAT run ships int8: its model.safetensors is the export of the trained twin.
    std::function<void(const std::string&)> write_int8;
    if (qat)
      write_int8 = [&](const std::string& path) {
        save_qat_int8(path, *qat, ema, config, recipe, epochs_done);
      };
    save_run_checkpoints(paths, *model, *optim, ema, config, meta, epochs_done, write_int8);
  };

  TrainSummary summary;
  summary.seed = static_cast<uint64_t>(recipe.seed);
  summary.epochs_done = start_epoch;
  int64_t run_epochs = 0;
  for (int64_t epoch = start_epoch; epoch < recipe.epochs; ++epoch) {
    if (opt.stop_after > 0 && run_epochs >= opt.stop_after) break;
    const auto t0 = std::chrono::steady_clock::now();
    loader.start_epoch(epoch);
    data::Batch batch;
    double loss_sum = 0.0, lr = 0.0;
    int64_t seen = 0, correct = 0;
    for (int64_t b = 0; loader.next(batch); ++b, ++step) {
      lr = setup.schedule.lr_at(step, total_steps);
      const StepStats st = train_step(setup, batch, step);
      if (!std::isfinite(st.loss))
        fail("epoch ", epoch + 1, " step ", step + 1, ": the loss is ", st.loss,
             " (diverged; try a lower --lr); stopping. The last good checkpoint is kept (",
             fs::exists(paths.last) ? paths.last.string() : "none written yet", ")");
      correct += st.correct;
      loss_sum += static_cast<double>(st.loss) * static_cast<double>(st.images);
      seen += st.images;
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
    summary.train_loss = loss_sum / static_cast<double>(seen);
    summary.train_acc = static_cast<double>(correct) / static_cast<double>(seen);
    summary.images_per_second = static_cast<double>(seen) / std::max(secs, 1e-9);

    save_checkpoints(epoch + 1);
    nlohmann::json log = {{"epoch", epoch + 1},
                          {"epochs", recipe.epochs},
                          {"step", step},
                          {"loss", summary.train_loss},
                          {"acc", summary.train_acc},
                          {"lr", lr},
                          {"img_per_s", summary.images_per_second},
                          {"seconds", secs}};
    std::string line =
        str("epoch ", epoch + 1, "/", recipe.epochs, " loss ",
            format_number("%.3f", summary.train_loss), " acc ",
            format_number("%.3f", summary.train_acc), " lr ", format_number("%.3g", lr), " ",
            format_number("%.0f", summary.images_per_second), " img/s");
    if (val_set.size() > 0) {
      const auto vm = evaluate(val_set);
      summary.val_acc = vm.accuracy;
      log["val_acc"] = vm.accuracy;
      line += " val_acc " + format_number("%.4f", vm.accuracy);
    }
    if (test_set.size() > 0) {
      const auto tm = evaluate(test_set);
      summary.test_acc = tm.accuracy;
      log["test_acc"] = tm.accuracy;
      log["test_loss"] = tm.mean_loss;
      line += " test_acc " + format_number("%.4f", tm.accuracy);
    }
    append_log_line(paths.log, log.dump());
    progress.line(line);
  }
  summary.finished = summary.epochs_done >= recipe.epochs;

  if (summary.finished) {
    nlohmann::json m = {{"arch", recipe.arch},
                        {"config", config},
                        {"recipe", recipe.to_json()},
                        {"seed", recipe.seed},
                        {"epochs", summary.epochs_done},
                        {"steps", step},
                        {"parameters", model->parameter_count()},
                        {"train_loss", summary.train_loss},
                        {"train_acc", summary.train_acc},
                        {"img_per_s", summary.images_per_second},
                        {"threads", num_threads()},
                        {"ema", recipe.ema_decay > 0}};
    if (test_set.size() > 0) m["test"] = evaluate(test_set).to_json(train_set.class_names);
    if (val_set.size() > 0) m["val"] = evaluate(val_set).to_json(train_set.class_names);
    summary.peak = peak_memory();  // after the final evaluations: the whole run's peak
    m["memory"] = summary.peak.to_json();
    write_json_atomically(paths.metrics, m);
    progress.note(str("wrote ", paths.model.string(), " and ", paths.metrics.string()));
  } else {
    summary.peak = peak_memory();
  }
  progress.line(summary.peak.str());
  return summary;
}

}  // namespace duet::train
