#include "duet/train/generate_step.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "duet/autograd/autograd.h"
#include "duet/data/pair_loader.h"
#include "duet/gen/reflow_pairs.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/models/unified.h"
#include "duet/ops/eltwise.h"
#include "duet/ops/loss.h"
#include "duet/tensor/error.h"
#include "duet/tensor/rng.h"
#include "duet/train/adamw.h"
#include "duet/train/metrics.h"
#include "duet/train/run_checkpoint.h"
#include "duet/train/trainer.h"

namespace duet::train {

namespace {

data::Dataset load_images(const GenerateRecipe& r, data::Split split) {
  data::DataOptions o;
  o.split = split;
  data::Dataset d = data::load_dataset(r.data, o);
  if (d.height != d.width) d = data::conform(d, 0, d.height, d.height);
  const int64_t limit = split == data::Split::train ? r.limit : r.test_limit;
  if (limit > 0 && limit < d.size()) {
    std::vector<int64_t> first(static_cast<size_t>(limit));
    for (int64_t i = 0; i < limit; ++i) first[static_cast<size_t>(i)] = i;
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
  // What classifier-side commands (eval, classify, gap) normalise a unified model's inputs with.
  if (r.unified()) s.config["preprocess"] = {{"mean", s.norm.mean}, {"std", s.norm.std}};
  Generator init_gen(static_cast<uint64_t>(r.seed));
  s.module = models::build_model(s.config, init_gen);
}

// Fine-tuning: the checkpoint's network and weights; the data must be what it was built for.
void unet_from_checkpoint(GenerateSetup& s, const GenerateRecipe& r, int64_t channels,
                          int64_t size) {
  models::LoadedModel loaded = models::load_model(r.init);
  const std::string family = loaded.config.value("family", std::string("?"));
  if (r.unified() && family != "unified")
    fail_usage("--init ", r.init, ": a ", family, " model is not a unified model (--task unified)");
  if (!r.unified() && family != "unet")
    fail_usage("--init ", r.init, ": a ", family, " model is not a generator",
               family == "unified" ? " of its own (fine-tune it with --task unified)" : "");
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
    s.train_set = load_images(r, data::Split::train);
    s.class_names = s.train_set.class_names;
    s.train_size = s.train_set.size();
    channels = s.train_set.channels;
    size = s.train_set.height;
  }
  s.norm.mean.assign(static_cast<size_t>(channels), 0.5f);
  s.norm.std.assign(static_cast<size_t>(channels), 0.5f);
  if (r.init.empty()) {
    fresh_unet(s, r, channels, size);
  } else {
    unet_from_checkpoint(s, r, channels, size);
  }
  s.unet = models::generator_network(*s.module);
  DUET_CHECK(s.unet != nullptr, "generation: the model is not a UNet");
  if (r.unified()) {
    s.unified = dynamic_cast<models::UnifiedNet*>(s.module.get());
    DUET_CHECK(s.unified != nullptr, "--task unified: the model is not a unified model");
    s.test_set = load_images(r, data::Split::test);
  }
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
    lcfg.norm = s.norm;
    lcfg.drop_last = drop_last;
    const data::AugmentConfig view = parse_augment(r.classify_augment);
    if (s.unified && r.classify_weight > 0 && view.any()) {
      // The head's view of each batch: its own augmentation, a pure function of the batch's
      // position like the batch itself, so --resume rebuilds it exactly.
      const uint64_t seed = static_cast<uint64_t>(r.seed) ^ 0x3c6ef372fe94f82bull;
      const int64_t batch_size = r.batch;
      const data::NormStats norm = s.norm;
      lcfg.on_batch = [view, norm, seed, batch_size](data::Batch& b) {
        b.classify_images =
            data::augment_normalised(b.images, view, norm, seed, static_cast<uint64_t>(b.epoch),
                                     static_cast<uint64_t>(b.index * batch_size));
      };
    }
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

GenerateStepLoss generate_train_step(GenerateSetup& s, const GenerateRecipe& r,
                                     const data::Batch& batch, int64_t step) {
  s.optim->set_lr(s.schedule.lr_at(step, s.total_steps));
  Generator g(static_cast<uint64_t>(r.seed) ^ 0x6a09e667f3bcc909ull, static_cast<uint64_t>(step)
                                                                         << 32);
  const int64_t n = batch.labels.numel();
  GenerateStepLoss out;
  Tensor loss;
  auto add_term = [&loss](const Tensor& term, double weight) {
    const Tensor weighted =
        weight == 1.0 ? term : ops::mul_scalar(term, static_cast<float>(weight));
    loss = loss.defined() ? ops::add(loss, weighted) : weighted;
  };
  // A separate-classifier baseline (weight 0) skips the generative pass and its draws entirely.
  if (!s.unified || r.generate_weight > 0) {
    std::vector<int32_t> labels(batch.labels.data<int32_t>(), batch.labels.data<int32_t>() + n);
    for (auto& y : labels)
      if (g.next_uniform() < r.cfg_dropout) y = s.unet->config().null_class();
    const gen::TrainingDraw d =
        gen::draw_training_example(s.objective, s.time_sampling, batch.images, g,
                                   batch.noise.defined() ? &batch.noise : nullptr);
    Tensor pred = s.unet->forward(d.x_t, d.t, Tensor::from_vector(labels, Shape{n}));
    Tensor mse = ops::mse_loss(pred, d.target);
    out.generate = mse.item();
    add_term(mse, s.unified ? r.generate_weight : 1.0);
  }
  if (s.unified && r.classify_weight > 0) {
    const Tensor& x = batch.classify_images.defined() ? batch.classify_images : batch.images;
    const Tensor logits = s.unified->forward(x);
    Tensor ce = ops::cross_entropy(logits, batch.labels);
    out.classify = ce.item();
    const std::vector<float> l = logits.to_vector();
    const int64_t k = logits.dim(1);
    const int32_t* y = batch.labels.data<int32_t>();
    for (int64_t i = 0; i < n; ++i) out.correct += argmax_row(l.data(), i, k) == y[i];
    add_term(ce, r.classify_weight);
  }
  out.total = loss.item();
  if (!std::isfinite(out.total)) return out;
  s.optim->zero_grad();
  autograd::backward(loss);
  s.optim->step();
  if (s.ema) s.ema->update(*s.module);
  return out;
}

}  // namespace duet::train
