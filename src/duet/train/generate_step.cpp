#include "duet/train/generate_step.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "duet/autograd/autograd.h"
#include "duet/models/registry.h"
#include "duet/ops/loss.h"
#include "duet/tensor/error.h"
#include "duet/tensor/rng.h"
#include "duet/train/adamw.h"

namespace duet::train {

GenerateSetup make_generate_setup(const GenerateRecipe& r) {
  GenerateSetup s;
  data::DataOptions o;
  o.split = data::Split::train;
  s.train_set = data::load_dataset(r.data, o);
  if (s.train_set.height != s.train_set.width)
    s.train_set = data::conform(s.train_set, 0, s.train_set.height, s.train_set.height);
  if (r.limit > 0 && r.limit < s.train_set.size()) {
    std::vector<int64_t> first(static_cast<size_t>(r.limit));
    for (int64_t i = 0; i < r.limit; ++i) first[static_cast<size_t>(i)] = i;
    s.train_set = data::subset(s.train_set, first);
  }
  s.objective = gen::parse_objective(r.objective);
  s.time_sampling = gen::parse_time_sampling(r.time_sampling);

  s.config = models::preset_config(r.arch);
  for (auto& [k, v] : r.model_overrides.items()) s.config[k] = v;
  s.config["in_channels"] = s.train_set.channels;
  s.config["image_size"] = s.train_set.height;
  s.config["num_classes"] = s.train_set.num_classes();
  s.config["class_names"] = s.train_set.class_names;
  s.config["objective"] = gen::objective_name(s.objective);
  s.config["value_range"] = {-1.0, 1.0};  // pixels 0..255 map linearly to [-1, 1]
  Generator init_gen(static_cast<uint64_t>(r.seed));
  s.module = models::build_model(s.config, init_gen);
  s.unet = static_cast<models::UNet*>(s.module.get());  // family checked by validate()
  s.module->train();

  data::LoaderConfig lcfg;
  lcfg.batch_size = r.batch;
  lcfg.seed = static_cast<uint64_t>(r.seed);
  lcfg.augment = parse_augment(r.augment);
  lcfg.norm.mean.assign(static_cast<size_t>(s.train_set.channels), 0.5f);
  lcfg.norm.std.assign(static_cast<size_t>(s.train_set.channels), 0.5f);
  lcfg.drop_last = s.train_set.size() > r.batch;  // keeps GroupNorm statistics on full batches
  s.loader = std::make_unique<data::Loader>(s.train_set, lcfg);
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
      gen::draw_training_example(s.objective, s.time_sampling, batch.images, g);
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
