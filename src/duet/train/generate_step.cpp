#include "duet/train/generate_step.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "duet/autograd/autograd.h"
#include "duet/data/pair_loader.h"
#include "duet/gen/reflow_pairs.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/ops/loss.h"
#include "duet/tensor/error.h"
#include "duet/tensor/rng.h"
#include "duet/train/adamw.h"
#include "duet/train/run_checkpoint.h"

namespace duet::train {

namespace {

data::Dataset load_training_images(const GenerateRecipe& r) {
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

// A fresh network of the recipe's preset, sized for the data.
void fresh_unet(GenerateSetup& s, const GenerateRecipe& r, int64_t channels, int64_t size) {
  s.config = models::preset_config(r.arch);
  for (auto& [k, v] : r.model_overrides.items()) s.config[k] = v;
  s.config["in_channels"] = channels;
  s.config["image_size"] = size;
  s.config["num_classes"] = static_cast<int64_t>(s.class_names.size());
  s.config["class_names"] = s.class_names;
  s.config["objective"] = gen::objective_name(s.objective);
  s.config["value_range"] = {-1.0, 1.0};  // pixels 0..255 map linearly to [-1, 1]
  Generator init_gen(static_cast<uint64_t>(r.seed));
  s.module = models::build_model(s.config, init_gen);
}

// Fine-tuning: the checkpoint's network and weights; the data must be what it was built for.
void unet_from_checkpoint(GenerateSetup& s, const GenerateRecipe& r, int64_t channels,
                          int64_t size) {
  models::LoadedModel loaded = models::load_model(r.init);
  const std::string family = loaded.config.value("family", std::string("?"));
  if (family != "unet") fail_usage("--init ", r.init, ": a ", family, " model is not a generator");
  const std::string objective = loaded.config.value("objective", std::string("flow"));
  if (objective != r.objective)
    fail_usage("--init ", r.init, ": the generator was trained for --objective ", objective,
               ", the run asks for ", r.objective);
  require_fits("--init", r.init, loaded.config, channels, size,
               static_cast<int64_t>(s.class_names.size()), "the training data");
  s.config = loaded.config;
  s.module = loaded.model;
}

}  // namespace

GenerateSetup make_generate_setup(const GenerateRecipe& r) {
  DUET_CHECK(r.seed >= 0, "make_generate_setup: the recipe's seed must be resolved, got ", r.seed);
  GenerateSetup s;
  s.objective = gen::parse_objective(r.objective);
  s.time_sampling = gen::parse_time_sampling(r.time_sampling);

  int64_t channels = 0, size = 0;
  gen::ReflowPairs pairs;
  if (!r.reflow_pairs.empty()) {
    pairs = gen::load_reflow_pairs(r.reflow_pairs);
    if (pairs.noise.dim(2) != pairs.noise.dim(3))
      fail(r.reflow_pairs, ": pairs of ", pairs.noise.dim(2), "x", pairs.noise.dim(3),
           " images; the UNet needs square ones");
    s.class_names = pairs.class_names;
    s.train_size = pairs.size();
    channels = pairs.noise.dim(1);
    size = pairs.noise.dim(2);
  } else {
    s.train_set = load_training_images(r);
    s.class_names = s.train_set.class_names;
    s.train_size = s.train_set.size();
    channels = s.train_set.channels;
    size = s.train_set.height;
  }
  if (r.init.empty()) {
    fresh_unet(s, r, channels, size);
  } else {
    unet_from_checkpoint(s, r, channels, size);
  }
  s.unet = dynamic_cast<models::UNet*>(s.module.get());
  DUET_CHECK(s.unet != nullptr, "generation: the model is not a UNet");
  s.module->train();

  // Full batches keep GroupNorm statistics steady.
  const bool drop_last = s.train_size > r.batch;
  if (!r.reflow_pairs.empty()) {
    s.loader = std::make_unique<data::PairLoader>(pairs.images, pairs.noise, pairs.labels, r.batch,
                                                  static_cast<uint64_t>(r.seed), drop_last);
  } else {
    data::LoaderConfig lcfg;
    lcfg.batch_size = r.batch;
    lcfg.seed = static_cast<uint64_t>(r.seed);
    lcfg.augment = parse_augment(r.augment);
    lcfg.norm.mean.assign(static_cast<size_t>(channels), 0.5f);
    lcfg.norm.std.assign(static_cast<size_t>(channels), 0.5f);
    lcfg.drop_last = drop_last;
    s.loader = std::make_unique<data::Loader>(s.train_set, lcfg);
  }
  s.batches_per_epoch = s.loader->batches_per_epoch();
  s.total_steps = r.epochs * s.batches_per_epoch;

  s.schedule.kind = schedule_kind_from_string(r.schedule);
  s.schedule.lr = r.lr;
  s.schedule.warmup_steps = std::min<int64_t>(
      s.total_steps - 1, std::llround(r.warmup_epochs * static_cast<double>(s.batches_per_epoch)));
  AdamWOptions a;
  a.lr = r.lr;
  s.optim = std::make_unique<AdamW>(split_decay_groups(*s.module, r.weight_decay), a);
  if (r.ema_decay > 0) s.ema = std::make_unique<Ema>(*s.module, r.ema_decay, true);
  return s;
}

float generate_train_step(GenerateSetup& s, const GenerateRecipe& r, const data::Batch& batch,
                          int64_t step) {
  s.optim->set_lr(s.schedule.lr_at(step, s.total_steps));
  Generator g(static_cast<uint64_t>(r.seed) ^ 0x6a09e667f3bcc909ull, static_cast<uint64_t>(step)
                                                                         << 32);
  const int64_t n = batch.labels.numel();
  std::vector<int32_t> labels(batch.labels.data<int32_t>(), batch.labels.data<int32_t>() + n);
  for (auto& y : labels)
    if (g.next_uniform() < r.cfg_dropout) y = s.unet->config().null_class();
  const gen::TrainingDraw d =
      gen::draw_training_example(s.objective, s.time_sampling, batch.images, g,
                                 batch.noise.defined() ? &batch.noise : nullptr);
  Tensor pred = s.unet->forward(d.x_t, d.t, Tensor::from_vector(labels, Shape{n}));
  Tensor loss = ops::mse_loss(pred, d.target);
  const float value = loss.item();
  if (!std::isfinite(value)) return value;
  s.optim->zero_grad();
  autograd::backward(loss);
  s.optim->step();
  if (s.ema) s.ema->update(*s.module);
  return value;
}

}  // namespace duet::train
