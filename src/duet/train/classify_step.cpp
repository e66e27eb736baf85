#include "duet/train/classify_step.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "duet/autograd/autograd.h"
#include "duet/gen/objective.h"
#include "duet/models/checkpoint.h"
#include "duet/models/classifier.h"
#include "duet/models/registry.h"
#include "duet/ops/loss.h"
#include "duet/tensor/error.h"
#include "duet/tensor/rng.h"
#include "duet/train/adamw.h"
#include "duet/train/metrics.h"
#include "duet/train/qat_run.h"
#include "duet/train/run_checkpoint.h"

namespace duet::train {
namespace {

// The training images after --limit, as the model sees them (square, so one image_size fits).
data::Dataset load_train_set(const ClassifyRecipe& r) {
  data::DataOptions o;
  o.split = data::Split::train;
  data::Dataset d = data::load_dataset(r.data, o);
  if (d.height != d.width) d = data::conform(d, 0, d.height, d.height);
  if (r.limit > 0 && r.limit < d.size()) {
    std::vector<int64_t> first(static_cast<size_t>(r.limit));
    for (int64_t i = 0; i < r.limit; ++i) first[static_cast<size_t>(i)] = i;
    d = data::subset(d, first);
  }
  return d;
}

std::string joined(const std::vector<std::string>& names) {
  std::string s = "[";  // built by appends: GCC 12 misreads "[" + string (-Wrestrict)
  s += data::joined_class_names(names);
  return s + "]";
}

// The training images followed by --extra-data's (brought to their channels and size): extra
// data only ever joins the training part, never validation or test.
data::Dataset append_extra(const data::Dataset& train, const ClassifyRecipe& r) {
  data::DataOptions o;
  o.split = data::Split::train;
  o.channels = train.channels, o.height = train.height, o.width = train.width;
  const data::Dataset extra = data::load_dataset(r.extra_data, o);
  if (extra.class_names != train.class_names)
    fail_usage("--extra-data ", r.extra_data, ": class names ", joined(extra.class_names),
               " differ from --data ", r.data, "'s ", joined(train.class_names),
               " (an IDX pair takes its names from a meta.json next to the images)");
  data::Dataset d = train;
  const int64_t n = train.size(), m = extra.size();
  d.images = Tensor::empty(Shape{n + m, d.channels, d.height, d.width}, DType::u8);
  d.labels = Tensor::empty(Shape{n + m}, DType::i32);
  std::copy_n(train.images.data<uint8_t>(), train.images.nbytes(), d.images.data<uint8_t>());
  std::copy_n(extra.images.data<uint8_t>(), extra.images.nbytes(),
              d.images.data<uint8_t>() + train.images.nbytes());
  std::copy_n(train.labels.data<int32_t>(), n, d.labels.data<int32_t>());
  std::copy_n(extra.labels.data<int32_t>(), m, d.labels.data<int32_t>() + n);
  return d;
}

data::Dataset first_n(const data::Dataset& d, int64_t n) {
  if (n <= 0 || n >= d.size()) return d;
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = i;
  return data::subset(d, idx);
}

// A fresh network: the preset, the overrides, the data's shape, and how to prepare inputs.
void fresh_model(ClassifySetup& s) {
  const ClassifyRecipe& recipe = s.recipe;
  s.config = models::preset_config(recipe.arch);
  for (auto& [k, v] : recipe.model_overrides.items()) s.config[k] = v;
  s.config["in_channels"] = s.train_set.channels;
  s.config["image_size"] = s.train_set.height;
  s.config["num_classes"] = s.train_set.num_classes();
  s.config["preprocess"] = {{"mean", s.norm.mean}, {"std", s.norm.std}};
  s.config["class_names"] = s.train_set.class_names;
  // Recorded so that classifier guidance can check it was trained on the generator's x_t. The
  // network gets no t input: the noise level is visible in x_t itself (Fashion-MNIST's flat
  // background shows b(t) eps almost alone), and an unchanged architecture keeps eval, quantize,
  // info and the PyTorch twin working on noise-aware classifiers as on any other.
  if (!recipe.noised.empty())
    s.config["noised"] = {
        {"schedule", recipe.noised}, {"t", "uniform"}, {"value_range", {-1.0, 1.0}}};
  Generator init_gen(static_cast<uint64_t>(recipe.seed));
  s.model = models::build_model(s.config, init_gen);
}

// Fine-tuning: the checkpoint's network, weights and input normalisation (so its weights see the
// inputs they were trained on); the data must match what it was built for.
void start_from_checkpoint(ClassifySetup& s) {
  const std::string& path = s.recipe.init;
  models::LoadedModel loaded = models::load_model(path);
  if (dynamic_cast<models::Classifier*>(loaded.model.get()) == nullptr)
    fail_usage("--init ", path, ": a ", loaded.config.value("family", std::string("?")),
               " model is not a classifier");
  require_fits("--init", path, loaded.config, s.train_set.channels, s.train_set.height,
               s.train_set.num_classes(), str("the data (--data ", s.recipe.data, ")"));
  s.config = loaded.config;
  s.norm = model_norm_stats(s.config);
  s.model = loaded.model;
  // Noise-aware fine-tuning needs a start trained on the same x_t (its inputs are in the
  // generator's range); clean fine-tuning of a noise-aware start is no longer noise-aware.
  const std::string was = s.config.contains("noised") && s.config["noised"].is_object()
                              ? s.config["noised"].value("schedule", std::string())
                              : std::string();
  if (!s.recipe.noised.empty() && was != s.recipe.noised)
    fail_usage(
        "--init ", path, ": --noised ", s.recipe.noised,
        " fine-tuning needs a checkpoint trained with --noised ", s.recipe.noised,
        was.empty() ? " (this one was trained on clean images)" : " (this one: " + was + ")");
  if (s.recipe.noised.empty()) s.config.erase("noised");
}

}  // namespace

ClassifySetup make_classify_setup(const ClassifyRecipe& recipe, bool load_test) {
  DUET_CHECK(recipe.seed >= 0, "make_classify_setup: the recipe's seed must be resolved, got ",
             recipe.seed);
  ClassifySetup s;
  s.recipe = recipe;

  // Data: training part (after --limit, minus the validation split), and the test split.
  data::Dataset full = load_train_set(recipe);
  DUET_CHECK(recipe.val < full.size(), "--val ", recipe.val, " leaves no training images out of ",
             full.size());
  s.train_set = full;
  if (recipe.val > 0) {
    auto split = data::split_validation(full, recipe.val, static_cast<uint64_t>(recipe.seed));
    s.train_set = std::move(split.train);
    s.val_set = std::move(split.val);
  }
  if (!recipe.extra_data.empty()) s.train_set = append_extra(s.train_set, recipe);
  s.norm = recipe.noised.empty() ? data::compute_norm_stats(s.train_set)
                                 : noised_norm(s.train_set.channels);
  if (load_test) {
    data::DataOptions test_opts;
    test_opts.split = data::Split::test;
    test_opts.channels = s.train_set.channels;
    test_opts.height = s.train_set.height;
    test_opts.width = s.train_set.width;
    const std::string& spec = recipe.test_data.empty() ? recipe.data : recipe.test_data;
    s.test_set = first_n(data::load_dataset(spec, test_opts), recipe.test_limit);
    DUET_CHECK(s.test_set.num_classes() == s.train_set.num_classes(), "--data ", spec,
               ": the test split has ", s.test_set.num_classes(), " classes, the training split ",
               s.train_set.num_classes());
    // Other test data must mean the same classes by the same labels.
    if (!recipe.test_data.empty() && s.test_set.class_names != s.train_set.class_names)
      fail_usage("--test-data ", recipe.test_data, ": class names ", joined(s.test_set.class_names),
                 " differ from --data ", recipe.data, "'s ", joined(s.train_set.class_names),
                 " (an IDX pair takes its names from a meta.json next to the images)");
  }

  if (!recipe.qat_from.empty()) {
    start_from_qat(s);  // train/qat_run.h: the int8 twin of the float checkpoint
  } else if (!recipe.init.empty()) {
    start_from_checkpoint(s);
  } else {
    fresh_model(s);
  }
  s.model->train();

  data::LoaderConfig lcfg;
  lcfg.batch_size = recipe.batch;
  lcfg.seed = static_cast<uint64_t>(recipe.seed);
  lcfg.augment = parse_augment(recipe.augment);
  lcfg.norm = s.norm;
  if (!recipe.noised.empty())
    lcfg.on_batch = noised_batch_hook(recipe.noised, static_cast<uint64_t>(recipe.seed));
  s.loader = std::make_unique<data::Loader>(s.train_set, lcfg);
  s.batches_per_epoch = s.loader->batches_per_epoch();
  s.total_steps = recipe.epochs * s.batches_per_epoch;

  s.schedule.kind = schedule_kind_from_string(recipe.schedule);
  s.schedule.lr = recipe.lr;
  s.schedule.warmup_steps = std::min<int64_t>(
      s.total_steps - 1,
      std::llround(recipe.warmup_epochs * static_cast<double>(s.batches_per_epoch)));

  auto groups = split_decay_groups(*s.model, recipe.weight_decay);
  if (recipe.optimizer == "sgd") {
    auto sgd = std::make_unique<Sgd>(std::move(groups),
                                     SgdOptions{recipe.lr, recipe.momentum, recipe.nesterov});
    s.sgd = sgd.get();
    s.optim = std::move(sgd);
  } else {
    AdamWOptions a;
    a.lr = recipe.lr;
    s.optim = std::make_unique<AdamW>(std::move(groups), a);
  }
  if (recipe.ema_decay > 0) s.ema = std::make_unique<Ema>(*s.model, recipe.ema_decay, true);
  if (!recipe.teacher.empty())
    s.teacher = std::make_unique<Teacher>(recipe.teacher, s.config, s.norm);
  return s;
}

data::NormStats noised_norm(int64_t channels) {
  data::NormStats n;
  n.mean.assign(static_cast<size_t>(channels), 0.5f);
  n.std.assign(static_cast<size_t>(channels), 0.5f);
  return n;
}

std::function<void(data::Batch&)> noised_batch_hook(const std::string& schedule, uint64_t seed) {
  // Uniform t: guidance asks the classifier at every time of the sampler's grid, so every time
  // gets the same training weight. Near t = 1 nothing is learnable and the network learns the
  // prior there, which is the right answer (its gradient then vanishes).
  const gen::Objective o = schedule == "ddpm" ? gen::Objective::ddpm_eps : gen::Objective::flow;
  return [o, seed](data::Batch& b) {
    constexpr uint64_t kNoisedStream = 0x6e6f6973;  // "nois": apart from other derived seeds
    const auto w = philox4x32(static_cast<uint64_t>(b.index),
                              (kNoisedStream << 32) | static_cast<uint64_t>(b.epoch), seed);
    Generator g((static_cast<uint64_t>(w[0]) << 32) | w[1]);
    b.images = gen::draw_training_example(o, gen::TimeSampling::uniform, b.images, g).x_t;
  };
}

StepStats train_step(ClassifySetup& s, const data::Batch& batch, int64_t step) {
  s.optim->set_lr(s.schedule.lr_at(step, s.total_steps));
  if (s.sgd) s.sgd->set_momentum(s.schedule.momentum_at(step, s.total_steps, s.recipe.momentum));
  Tensor logits = s.model->forward(batch.images);
  // With a teacher: its eval-mode logits on this very (augmented) batch are the soft targets.
  Tensor loss = s.teacher ? kd_loss(logits, s.teacher->logits(batch.images), batch.labels,
                                    KdOptions{static_cast<float>(s.recipe.kd_temperature),
                                              static_cast<float>(s.recipe.kd_alpha),
                                              static_cast<float>(s.recipe.label_smoothing)})
                          : ops::cross_entropy(logits, batch.labels,
                                               static_cast<float>(s.recipe.label_smoothing));
  StepStats st;
  st.loss = loss.item();
  if (!std::isfinite(st.loss)) return st;
  s.optim->zero_grad();
  autograd::backward(loss);
  s.optim->step();
  if (s.ema) s.ema->update(*s.model);

  st.images = batch.labels.numel();
  const int64_t k = s.train_set.num_classes();
  const std::vector<float> lg = autograd::detached(logits).to_vector();
  const int32_t* y = batch.labels.data<int32_t>();
  for (int64_t i = 0; i < st.images; ++i) st.correct += argmax_row(lg.data(), i, k) == y[i];
  return st;
}

}  // namespace duet::train
