// The generative classifier (eval/generative_classifier.h) on a tiny random UNet against a plain
// twin loop that computes every class's loss one (image, class, time) at a time with batch 1:
// same (signal-weighted) losses, probabilities and argmax without pruning, for flow and DDPM;
// with pruning the surviving classes keep their exact losses, passes are counted, and the
// prediction is a survivor. Also the documented time order and batch-size independence.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "duet/autograd/autograd.h"
#include "duet/eval/generative_classifier.h"
#include "duet/models/registry.h"
#include "duet/tensor/error.h"

#include "../harness/tiny_unet.h"

using namespace duet;

namespace {

constexpr int64_t kClasses = 4, kSize = 8, kImages = 5;

nlohmann::json unet_config() {
  return test::tiny_unet_config(kClasses, kSize);
}

struct Fixture {
  Generator gen{3};
  std::shared_ptr<nn::Module> module = models::build_model(unet_config(), gen);
  models::UNet& unet = static_cast<models::UNet&>(*module);
  Tensor images;
  Fixture() {
    // Fresh random weights everywhere (the UNet zero-initialises its output conv, which would
    // make every class score the same).
    Generator w(21);
    for (auto& [name, p] : unet.named_parameters())
      w.normal(p->data<float>(), p->numel(), 0.0f, 0.3f);
    Generator g(8);
    std::vector<uint8_t> px(kImages * kSize * kSize);
    for (auto& p : px) p = static_cast<uint8_t>(g.next_below(256));
    images = eval::u8_to_generator_input(px.data(), kImages, 1, kSize, kSize, -1.0f, 1.0f);
  }
};

// Mean over the grid of the per-element squared error, one forward per (image, class, time); the
// grid noise recomputed from its documented derivation via a one-image run of the classifier is
// avoided: the twin draws it the same way, Philox keyed by the grid index.
std::vector<double> twin_losses(models::UNet& unet, gen::Objective obj, const Tensor& x0,
                                const eval::GenerativeOptions& o) {
  autograd::NoGradGuard ng;
  unet.eval();
  const int64_t n = x0.dim(0), per = kSize * kSize;
  std::vector<double> loss(size_t(n * kClasses), 0.0);
  double weight_sum = 0.0;
  const auto xv = x0.to_vector();
  for (int m = 0; m < o.times; ++m) {
    const double t = o.t_min + (o.t_max - o.t_min) * (m + 0.5) / o.times;
    const auto w = philox4x32(uint64_t(m), 0x67636c73, o.seed);
    Generator g((uint64_t(w[0]) << 32) | w[1]);
    std::vector<float> eps(static_cast<size_t>(per));
    g.normal(eps.data(), per);
    const auto k = gen::noise_level(obj, t);
    const float a = float(k.a), b = float(k.b);
    const double weight = std::pow(k.a, o.signal_power);
    weight_sum += weight;
    for (int64_t i = 0; i < n; ++i)
      for (int32_t c = 0; c < kClasses; ++c) {
        std::vector<float> xt(static_cast<size_t>(per));
        for (int64_t e = 0; e < per; ++e)
          xt[size_t(e)] = a * xv[size_t(i * per + e)] + b * eps[size_t(e)];
        const auto p = unet.forward(Tensor::from_vector(xt, Shape{1, 1, kSize, kSize}),
                                    Tensor::full(Shape{1}, float(t)),
                                    Tensor::from_vector(std::vector<int32_t>{c}, Shape{1}))
                           .to_vector();
        double se = 0;
        for (int64_t e = 0; e < per; ++e) {
          const float x = xv[size_t(i * per + e)], ep = eps[size_t(e)];
          const double target = obj == gen::Objective::flow       ? double(ep - x)
                                : obj == gen::Objective::ddpm_eps ? double(ep)
                                                                  : double(a * ep - b * x);
          se += (p[size_t(e)] - target) * (p[size_t(e)] - target);
        }
        loss[size_t(i * kClasses + c)] += weight * se / per;
      }
  }
  for (double& l : loss) l /= weight_sum;
  return loss;
}

}  // namespace

TEST(GenerativeClassifier, EqualsATwinLoopWithoutPruning) {
  Fixture fx;
  for (auto obj : {gen::Objective::flow, gen::Objective::ddpm_eps, gen::Objective::ddpm_v}) {
    SCOPED_TRACE(gen::objective_name(obj));
    eval::GenerativeOptions o;
    o.times = 6;
    o.seed = 17;
    o.prune_margin = std::numeric_limits<double>::infinity();
    o.batch = 7;                                                 // batches cut across images
    o.signal_power = obj == gen::Objective::ddpm_v ? 0.0 : 1.5;  // weighted and plain means
    const auto r = eval::classify_generative(fx.unet, obj, fx.images, o);
    const auto twin = twin_losses(fx.unet, obj, fx.images, o);
    EXPECT_EQ(r.passes, kImages * kClasses * 6);
    EXPECT_EQ(r.full_passes, r.passes);
    int distinct_predictions = 0;
    std::vector<int> seen(kClasses, 0);
    for (int64_t i = 0; i < kImages; ++i) {
      double z = 0, lmin = 1e30;
      for (int64_t c = 0; c < kClasses; ++c) lmin = std::min(lmin, twin[size_t(i * kClasses + c)]);
      for (int64_t c = 0; c < kClasses; ++c) {
        EXPECT_NEAR(r.loss[size_t(i * kClasses + c)], twin[size_t(i * kClasses + c)],
                    1e-5 * twin[size_t(i * kClasses + c)]);
        EXPECT_EQ(r.times_used[size_t(i * kClasses + c)], 6);
        z += std::exp(-o.scale * (twin[size_t(i * kClasses + c)] - lmin));
      }
      const auto* row = twin.data() + i * kClasses;
      const int32_t want = int32_t(std::min_element(row, row + kClasses) - row);
      EXPECT_EQ(r.predicted(i), want);
      distinct_predictions += seen[size_t(want)]++ == 0;
      for (int64_t c = 0; c < kClasses; ++c)
        EXPECT_NEAR(r.probs[size_t(i * kClasses + c)],
                    std::exp(-o.scale * (twin[size_t(i * kClasses + c)] - lmin)) / z, 2e-3);
    }
    EXPECT_GE(distinct_predictions, 1);
    // A non-trivial case: per image the class losses are far apart compared to the tolerance.
    for (int64_t i = 0; i < kImages; ++i) {
      const double* l = twin.data() + i * kClasses;
      EXPECT_GT(*std::max_element(l, l + kClasses) - *std::min_element(l, l + kClasses),
                1e-3 * *std::min_element(l, l + kClasses));
    }
  }
}

TEST(GenerativeClassifier, PruningKeepsSurvivorsExactAndCountsPasses) {
  Fixture fx;
  eval::GenerativeOptions o;
  o.times = 6;
  o.seed = 17;
  o.prune_after = 2;
  const auto full = [&] {
    auto f = o;
    f.prune_margin = std::numeric_limits<double>::infinity();
    return eval::classify_generative(fx.unet, gen::Objective::flow, fx.images, f);
  }();
  // A margin at a quarter of the smallest per-image spread of the class losses prunes some
  // classes but not all.
  double spread = 1e30;
  for (int64_t i = 0; i < kImages; ++i) {
    const double* l = full.loss.data() + i * kClasses;
    spread =
        std::min(spread, *std::max_element(l, l + kClasses) - *std::min_element(l, l + kClasses));
  }
  o.prune_margin = spread / 4;
  const auto r = eval::classify_generative(fx.unet, gen::Objective::flow, fx.images, o);
  int64_t used = 0, pruned = 0;
  for (int64_t i = 0; i < kImages; ++i) {
    for (int64_t c = 0; c < kClasses; ++c) {
      const size_t j = size_t(i * kClasses + c);
      used += r.times_used[j];
      if (r.times_used[j] == o.times) {
        EXPECT_NEAR(r.loss[j], full.loss[j], 1e-6 * full.loss[j]);
      } else {
        ++pruned;
        EXPECT_GE(r.times_used[j], o.prune_after);
        EXPECT_GT(r.probs[j], -1.0f);
      }
    }
    EXPECT_EQ(r.times_used[size_t(i * kClasses + r.predicted(i))], o.times);
  }
  EXPECT_EQ(used, r.passes);
  EXPECT_GT(pruned, 0);
  EXPECT_LT(r.passes, r.full_passes);
  EXPECT_EQ(r.full_passes, full.passes);
}

TEST(GenerativeClassifier, TimeOrderAndBatchIndependence) {
  eval::GenerativeOptions unit;
  unit.t_min = 0.0, unit.t_max = 1.0;
  const auto m = eval::generative_grid_order(10);
  const std::vector<double> want = {0.05, 0.85, 0.45, 0.25, 0.65, 0.15, 0.95, 0.55, 0.35, 0.75};
  ASSERT_EQ(m.size(), want.size());
  for (size_t i = 0; i < m.size(); ++i)
    EXPECT_NEAR(eval::generative_time(unit, m[i]), want[i], 1e-12);
  EXPECT_NEAR(eval::generative_time(eval::GenerativeOptions{}, 0), 0.14, 1e-12);  // [0.1, 0.9]
  Fixture fx;
  eval::GenerativeOptions o;
  o.times = 4;
  o.batch = 3;
  const auto a = eval::classify_generative(fx.unet, gen::Objective::flow, fx.images, o);
  o.batch = 1000;
  const auto b = eval::classify_generative(fx.unet, gen::Objective::flow, fx.images, o);
  for (size_t j = 0; j < a.loss.size(); ++j) EXPECT_NEAR(a.loss[j], b.loss[j], 1e-6 * b.loss[j]);
  EXPECT_TRUE(fx.unet.is_training());  // the mode comes back
  o.times = 0;
  EXPECT_THROW(eval::classify_generative(fx.unet, gen::Objective::flow, fx.images, o), Error);
  o.times = 4;
  o.signal_power = -1.0;
  EXPECT_THROW(eval::classify_generative(fx.unet, gen::Objective::flow, fx.images, o), Error);
}
