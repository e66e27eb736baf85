// `duet train --task classify|generate|unified --arch A --data D --epochs N -o DIR`: the recipe
// from flags, handed to train::train_classifier or train::train_generator. Each task has its own
// defaults; a flag changes them only when given. With --resume the recipe comes from
// DIR/last.safetensors and only the flags given on this command line override it.
// `duet distill --teacher T ...` is the classify trainer with a teacher (the same flags).
#include <memory>
#include <string>

#include "duet/cli/commands.h"
#include "duet/cli/compress_report.h"
#include "duet/cli/qat_report.h"
#include "duet/io/safetensors.h"
#include "duet/models/checkpoint.h"
#include "duet/tensor/error.h"
#include "duet/train/generate_trainer.h"
#include "duet/train/run_checkpoint.h"
#include "duet/train/trainer.h"

namespace duet::cli {
namespace {

struct TrainFlags {
  std::string task = "classify";
  train::ClassifyRecipe recipe;
  int width = 0;
  std::string out;
  bool resume = false;
  int64_t stop_after = 0;
  std::string bench = "quick";  // --qat-from: speed check of the int8 result
  // Generation-only flags (their defaults live in train::GenerateRecipe).
  train::GenerateRecipe gen;
};

// The recipe a generation run starts from: the checkpoint's with --resume, the defaults otherwise;
// then every flag given on this command line.
train::GenerateRecipe generate_recipe(const TrainFlags& f, CLI::App* sub) {
  train::GenerateRecipe g;
  if (f.task == "unified") g.arch = "unified-xs";
  if (f.resume)
    g = train::GenerateRecipe::from_json(train::read_resume_point(train::RunPaths(f.out).last)
                                             .meta.value("recipe", nlohmann::json::object()));
  g.task = f.task;  // on --resume, the trainer refuses a task other than the checkpoint's
  const train::ClassifyRecipe& r = f.recipe;
  auto given = [&](const char* name) { return sub->count(name) > 0; };
  if (given("--arch")) g.arch = r.arch;
  if (given("--data")) g.data = r.data;
  if (given("--epochs")) g.epochs = r.epochs;
  if (given("--batch")) g.batch = r.batch;
  if (given("--lr")) g.lr = r.lr;
  if (given("--wd")) g.weight_decay = r.weight_decay;
  if (given("--schedule")) g.schedule = r.schedule;
  if (given("--warmup")) g.warmup_epochs = r.warmup_epochs;
  if (given("--augment")) g.augment = r.augment;
  if (given("--ema")) g.ema_decay = r.ema_decay;
  if (given("--limit")) g.limit = r.limit;
  if (given("--seed")) g.seed = r.seed;
  if (given("--width")) g.model_overrides["channels"] = {f.width, 2 * f.width, 4 * f.width};
  if (given("--objective")) g.objective = f.gen.objective;
  if (given("--time-sampling")) g.time_sampling = f.gen.time_sampling;
  if (given("--cfg-dropout")) g.cfg_dropout = f.gen.cfg_dropout;
  if (given("--sample-every")) g.sample_every = f.gen.sample_every;
  if (given("--sample-steps")) g.sample_steps = f.gen.sample_steps;
  if (given("--sample-cfg")) g.sample_cfg = f.gen.sample_cfg;
  if (given("--sample-sampler")) g.sample_sampler = f.gen.sample_sampler;
  if (given("--reflow-pairs")) g.reflow_pairs = f.gen.reflow_pairs;
  if (given("--generate-weight")) g.generate_weight = f.gen.generate_weight;
  if (given("--classify-weight")) g.classify_weight = f.gen.classify_weight;
  if (given("--classify-augment")) g.classify_augment = f.gen.classify_augment;
  if (given("--test-limit")) g.test_limit = r.test_limit;
  if (!g.unified())
    for (const char* flag :
         {"--generate-weight", "--classify-weight", "--classify-augment", "--test-limit"})
      if (given(flag)) fail_usage(flag, " applies to --task unified only");
  if (given("--init")) {
    if (!f.resume && (given("--arch") || given("--width")))
      fail_usage("--init ", r.init, ": the network comes from the checkpoint; drop --arch/--width");
    g.init = r.init;
  }
  for (const char* flag :
       {"--optimizer", "--momentum", "--nesterov", "--label-smoothing", "--val", "--teacher",
        "--kd-temperature", "--kd-alpha", "--test-data", "--extra-data", "--noised"})
    if (given(flag)) fail_usage(flag, " applies to --task classify only");
  for (const char* flag : {"--qat-from", "--calib", "--method", "--keep-fp32", "--qat-ranges",
                           "--max-layer-error", "--bench"})  // int8 covers classifiers only
    if (given(flag)) fail_usage(flag, " applies to --task classify only");
  return g;
}

// True when `name` is an option of `sub` and was given (distill lacks the generate-only flags).
bool given_on(CLI::App* sub, const char* name) {
  const CLI::Option* opt = sub->get_option_no_throw(name);
  return opt != nullptr && opt->count() > 0;
}

// The name a fine-tuning run logs for its network: the checkpoint's "arch" (its family otherwise).
std::string init_arch_name(const std::string& path) {
  const nlohmann::json config = models::read_model_config(io::SafetensorsFile::load(path));
  return config.value("arch", config.value("family", std::string("model")));
}

void run_train(const TrainFlags& f, CLI::App* sub) {
  if (f.task != "classify" && f.task != "generate" && f.task != "unified")
    fail_usage("unknown --task '", f.task, "' (known: classify, generate, unified)");
  if (f.out.empty()) fail_usage("train: -o DIR is required");
  train::TrainRunOptions o;
  o.out_dir = f.out;
  o.resume = f.resume;
  o.stop_after = f.stop_after;
  if (f.task == "generate" || f.task == "unified") {
    train::train_generator(generate_recipe(f, sub), o);
    return;
  }
  for (const char* flag : {"--objective", "--time-sampling", "--cfg-dropout", "--sample-every",
                           "--sample-steps", "--sample-cfg", "--sample-sampler", "--reflow-pairs"})
    if (given_on(sub, flag)) fail_usage(flag, " applies to --task generate (and unified) only");
  for (const char* flag : {"--generate-weight", "--classify-weight", "--classify-augment"})
    if (given_on(sub, flag)) fail_usage(flag, " applies to --task unified only");
  train::ClassifyRecipe r = f.recipe;
  if (f.width > 0) r.model_overrides["width"] = f.width;
  if (f.resume) {
    // Flags not given on this command line come from the checkpoint, so `--resume -o DIR` is
    // enough; the trainer rejects overrides that would change the data or the model.
    train::ClassifyRecipe saved = train::read_checkpoint_recipe(f.out + "/last.safetensors");
    auto given = [&](const char* name) { return given_on(sub, name); };
    if (given("--arch")) saved.arch = r.arch;
    if (given("--width")) saved.model_overrides = r.model_overrides;
    if (given("--data")) saved.data = r.data;
    if (given("--test-data")) saved.test_data = r.test_data;
    if (given("--extra-data")) saved.extra_data = r.extra_data;
    if (given("--noised")) saved.noised = r.noised;
    if (given("--epochs")) saved.epochs = r.epochs;
    if (given("--batch")) saved.batch = r.batch;
    if (given("--lr")) saved.lr = r.lr;
    if (given("--optimizer")) saved.optimizer = r.optimizer;
    if (given("--momentum")) saved.momentum = r.momentum;
    if (given("--nesterov")) saved.nesterov = r.nesterov;
    if (given("--wd")) saved.weight_decay = r.weight_decay;
    if (given("--schedule")) saved.schedule = r.schedule;
    if (given("--warmup")) saved.warmup_epochs = r.warmup_epochs;
    if (given("--label-smoothing")) saved.label_smoothing = r.label_smoothing;
    if (given("--augment")) saved.augment = r.augment;
    if (given("--ema")) saved.ema_decay = r.ema_decay;
    if (given("--val")) saved.val = r.val;
    if (given("--limit")) saved.limit = r.limit;
    if (given("--test-limit")) saved.test_limit = r.test_limit;
    if (given("--seed")) saved.seed = r.seed;
    if (given("--teacher")) saved.teacher = r.teacher;
    if (given("--kd-temperature")) saved.kd_temperature = r.kd_temperature;
    if (given("--kd-alpha")) saved.kd_alpha = r.kd_alpha;
    if (given("--init")) saved.init = r.init;
    if (given("--qat-from")) saved.qat_from = r.qat_from;
    if (given("--calib")) saved.qat_calib = r.qat_calib;
    if (given("--method")) saved.qat_method = r.qat_method;
    if (given("--keep-fp32")) saved.qat_keep_fp32 = r.qat_keep_fp32;
    if (given("--qat-ranges")) saved.qat_ranges = r.qat_ranges;
    if (given("--max-layer-error")) saved.qat_max_layer_error = r.qat_max_layer_error;
    r = saved;
  } else if (!r.qat_from.empty()) {
    if (given_on(sub, "--arch") || given_on(sub, "--width"))
      fail_usage("--qat-from ", r.qat_from,
                 ": the network comes from the checkpoint; drop --arch/--width");
    r.arch = init_arch_name(r.qat_from);
  } else if (!r.init.empty()) {
    if (given_on(sub, "--arch") || given_on(sub, "--width"))
      fail_usage("--init ", r.init, ": the network comes from the checkpoint; drop --arch/--width");
    r.arch = init_arch_name(r.init);
  }
  if (r.qat_from.empty())
    for (const char* flag :
         {"--calib", "--method", "--keep-fp32", "--qat-ranges", "--max-layer-error", "--bench"})
      if (given_on(sub, flag))
        fail_usage(flag, " applies to quantisation-aware training only (--qat-from)");
  check_bench_mode("train", f.bench);
  const train::TrainSummary done = train::train_classifier(r, o);
  if (!r.qat_from.empty() && done.finished) print_qat_report(r, f.out, f.bench);
}

// The flags `train` and `distill` share: the classification recipe, the run folder, the teacher.
void add_classify_flags(CLI::App* sub, TrainFlags* f) {
  auto& r = f->recipe;
  sub->add_option("--arch", r.arch,
                  "architecture (classify: resnet20 ...; generate: unet-xs, unet-s; default "
                  "resnet20 / unet-xs)");
  // A UNet's levels take 1, 2 and 4 times the width: the bound keeps them in a config's range.
  sub->add_option("--width", f->width, "override the model's base width (channels)")
      ->check(CLI::Range(1, 1 << 18));
  sub->add_option("--data", r.data, "fashion-mnist[:DIR], idx:IMAGES,LABELS or folder:ROOT")
      ->capture_default_str();
  sub->add_option("--test-data", r.test_data,
                  "classify: test on this data set's test split instead of --data's (e.g. "
                  "fashion-mnist for a model trained on generated images)");
  sub->add_option("--extra-data", r.extra_data,
                  "classify: append this data set to the training images (same class names), "
                  "e.g. idx:DIR/train-images-idx3-ubyte,DIR/train-labels-idx1-ubyte from duet "
                  "synth");
  sub->add_option("--noised", r.noised,
                  "classify: noise-aware classifier for classifier guidance: train on x_t of "
                  "this schedule (flow | ddpm) at a uniform t per image, inputs in [-1, 1]");
  sub->add_option("--epochs", r.epochs, "epochs")->capture_default_str();
  sub->add_option("--batch", r.batch, "batch size")->capture_default_str();
  sub->add_option("--lr", r.lr, "peak learning rate")->capture_default_str();
  sub->add_option("--optimizer", r.optimizer, "sgd | adamw")->capture_default_str();
  sub->add_option("--momentum", r.momentum, "SGD momentum")->capture_default_str();
  sub->add_flag("--nesterov", r.nesterov, "Nesterov momentum (SGD)");
  sub->add_option("--wd", r.weight_decay, "weight decay (not on biases and norms)")
      ->capture_default_str();
  sub->add_option("--schedule", r.schedule, "onecycle | cosine | constant")->capture_default_str();
  sub->add_option("--warmup", r.warmup_epochs, "linear warm-up, in epochs")->capture_default_str();
  sub->add_option("--label-smoothing", r.label_smoothing, "label smoothing")->capture_default_str();
  sub->add_option("--augment", r.augment,
                  "comma list of crop (pad 4, then crop at random; crop:P pads P), flip, erase; "
                  "until:E augments the first E epochs only (the rest see plain images)");
  sub->add_option("--ema", r.ema_decay, "keep an EMA of the weights with this decay (0: off)");
  sub->add_option("--val", r.val, "hold out N training images for validation");
  sub->add_option("--limit", r.limit, "train on the first N images only");
  sub->add_option("--test-limit", r.test_limit, "evaluate on the first N test images only");
  sub->add_option("-s,--seed", r.seed, "random seed (negative or absent: random, logged)");
  sub->add_option("-o,--output", f->out, "run folder (model.safetensors, last.safetensors, logs)");
  sub->add_flag("--resume", f->resume, "continue from the run folder's last.safetensors");
  sub->add_option("--stop-after", f->stop_after,
                  "stop after N epochs of this invocation (resume later)");
  sub->add_option("--teacher", r.teacher,
                  "classify: distil from this trained classifier checkpoint (same classes, "
                  "channels and image size)");
  sub->add_option("--kd-temperature", r.kd_temperature,
                  "distillation: softmax temperature of teacher and student")
      ->capture_default_str();
  sub->add_option("--init", r.init,
                  "fine-tune this checkpoint (its network and weights; a classifier's input "
                  "normalisation) instead of training a fresh --arch");
  sub->add_option("--qat-from", r.qat_from,
                  "classify: quantisation-aware training of this float classifier's int8 form; "
                  "model.safetensors is the int8 checkpoint");
  sub->add_option("--calib", r.qat_calib,
                  "--qat-from: calibration images of --data (as duet quantize --calib DATA:N)")
      ->capture_default_str();
  sub->add_option("--method", r.qat_method,
                  "--qat-from: activation ranges: minmax | percentile | kl")
      ->capture_default_str();
  sub->add_option("--keep-fp32", r.qat_keep_fp32,
                  "--qat-from: convs kept in float: first, last or layer names")
      ->delimiter(',');
  sub->add_option("--qat-ranges", r.qat_ranges,
                  "--qat-from: activation ranges during training: ema (follow the batches' "
                  "min / max) | fixed (as calibrated)")
      ->capture_default_str();
  sub->add_option("--max-layer-error", r.qat_max_layer_error,
                  "--qat-from: a conv whose post-training int8 output is off by more than this "
                  "relative L2 error tries the other rules' ranges, then stays float (0: never "
                  "checked), as in duet quantize")
      ->capture_default_str();
  sub->add_option("--bench", f->bench,
                  "--qat-from: speed check of the int8 result: quick | full | none")
      ->capture_default_str();
  sub->add_option("--kd-alpha", r.kd_alpha,
                  "distillation: weight of the soft (teacher) term; 1 - alpha weighs the labels")
      ->capture_default_str();
}

}  // namespace

Action add_train_command(CLI::App& app) {
  auto f = std::make_shared<TrainFlags>();
  CLI::App* sub = app.add_subcommand("train", "train a classifier or a generator");
  sub->add_option("--task", f->task,
                  "what to learn: classify | generate | unified (one UNet that does both, "
                  "models/unified.h)")
      ->capture_default_str();
  add_classify_flags(sub, f.get());
  auto& g = f->gen;
  sub->add_option("--objective", g.objective, "generate: flow | ddpm-eps | ddpm-v (default flow)");
  sub->add_option("--time-sampling", g.time_sampling,
                  "generate: uniform | logit-normal (default logit-normal)");
  sub->add_option("--cfg-dropout", g.cfg_dropout,
                  "generate: probability a label becomes 'no class' (default 0.1)");
  sub->add_option(
      "--sample-every", g.sample_every,
      "generate: epochs between sample grids in DIR/samples (default 1; 0: at the end)");
  sub->add_option("--sample-steps", g.sample_steps, "generate: sampler steps of the grids (20)");
  sub->add_option("--sample-cfg", g.sample_cfg, "generate: guidance scale of the grids (2)");
  sub->add_option("--sample-sampler", g.sample_sampler,
                  "generate: sampler of the grids (default: heun for flow, ddim for diffusion)");
  sub->add_option("--reflow-pairs", g.reflow_pairs,
                  "generate: train on these (noise, image) pairs instead of --data (a reflow; "
                  "`duet reflow` makes them)");
  sub->add_option("--generate-weight", g.generate_weight,
                  "unified: weight of the generative (flow / diffusion) loss; 0 trains the "
                  "classifier alone (default 1)");
  sub->add_option("--classify-weight", g.classify_weight,
                  "unified: weight of the head's cross-entropy on clean images; 0 trains the "
                  "generator alone (default 1)");
  sub->add_option("--classify-augment", g.classify_augment,
                  "unified: augmentation of the head's view of each batch, comma list of crop, "
                  "flip, erase; '' for none (default crop,flip)");
  return [f, sub] { run_train(*f, sub); };
}

Action add_distill_command(CLI::App& app) {
  auto f = std::make_shared<TrainFlags>();
  CLI::App* sub = app.add_subcommand(
      "distill",
      "train a classifier from a teacher's soft targets and the labels (knowledge "
      "distillation); the flags of train --task classify");
  add_classify_flags(sub, f.get());
  return [f, sub] {
    if (f->recipe.teacher.empty() && !f->resume)
      fail_usage("distill: --teacher CHECKPOINT is required");
    run_train(*f, sub);
  };
}

}  // namespace duet::cli
