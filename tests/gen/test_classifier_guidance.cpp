// Classifier guidance (gen/classifier_guidance.h) on a real tiny ResNet (random init) and a real
// tiny UNet: the input gradient equals central finite differences of log p(y | x) through a
// non-trivial input map; the classifier's weights keep their gradients and mode; the guided
// prediction moves the implied noise by exactly -scale * b(t) * grad for every objective
// (gen::decompose is the reference); scale 0 is unguided sampling bit for bit; guidance raises the
// classifier's log-probability of the requested class, after one step and at the end of sampling;
// and the checks on the guiding classifier are usage errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "../harness/error_capture.h"
#include "duet/autograd/autograd.h"
#include "duet/gen/classifier_guidance.h"
#include "duet/gen/guidance.h"
#include "duet/models/registry.h"
#include "duet/models/resnet.h"
#include "duet/tensor/error.h"

#include "../harness/tiny_unet.h"

using namespace duet;
using namespace duet::gen;

namespace {

constexpr int64_t kClasses = 3, kSize = 8;

struct Fixture {
  Generator cgen{9};
  models::CifarResNet net{
      cgen, models::ResNetConfig{.depth = 8, .width = 4, .num_classes = 3, .image_size = kSize}};
  // A classifier normalisation that is not the identity, so the chain rule through it is tested.
  InputMap map = classifier_input_map({0.3f}, {0.4f}, -1.0f, 1.0f, 1);
  std::vector<int32_t> labels{0, 1, 2, 2};

  Tensor images(uint64_t seed) const {
    Generator g(seed);
    return Tensor::normal(Shape{std::ssize(labels), 1, kSize, kSize}, g);
  }
  // log p(labels[i] | x[i]) computed independently: the map by hand, logits, log-softmax.
  std::vector<double> log_p(const Tensor& x) {
    autograd::NoGradGuard ng;
    const bool was = net.is_training();
    net.eval();
    std::vector<float> v = x.to_vector();
    for (float& e : v) e = e * map.scale[0] + map.shift[0];
    const auto z = net.forward(Tensor::from_vector(v, x.shape())).to_vector();
    net.train(was);
    std::vector<double> out;
    for (size_t i = 0; i < labels.size(); ++i) {
      const float* row = z.data() + i * kClasses;
      double mx = *std::max_element(row, row + kClasses), s = 0;
      for (int64_t j = 0; j < kClasses; ++j) s += std::exp(double(row[j]) - mx);
      out.push_back(row[labels[i]] - mx - std::log(s));
    }
    return out;
  }
  double mean_log_p(const Tensor& x) {
    const auto l = log_p(x);
    double s = 0;
    for (double v : l) s += v;
    return s / static_cast<double>(l.size());
  }
};

// Flow velocity of data N(0, s^2 I), exact: x_t ~ N(0, ((1 - t)^2 s^2 + t^2) I) and
// v = E[eps - x0 | x_t] = (t - (1 - t) s^2) x_t / sigma_t^2. A smooth field for every t in [0, 1].
Predictor gaussian_flow(double s) {
  return [s](const Tensor& x, double t) {
    const double var = (1 - t) * (1 - t) * s * s + t * t;
    std::vector<float> v = x.to_vector();
    for (float& e : v) e = static_cast<float>((t - (1 - t) * s * s) * e / var);
    return Tensor::from_vector(v, x.shape());
  };
}

using duet::test::exit_code;

}  // namespace

TEST(ClassifierGuidance, InputMapMatchesThePreprocessing) {
  // ((x + 1) / 2 - 0.5) / 0.5 = x: a noise-aware classifier takes x_t as it is.
  const InputMap id = classifier_input_map({0.5f}, {0.5f}, -1.0f, 1.0f, 1);
  EXPECT_FLOAT_EQ(id.scale[0], 1.0f);
  EXPECT_FLOAT_EQ(id.shift[0], 0.0f);
  const InputMap m = classifier_input_map({0.3f, 0.1f}, {0.4f, 0.2f}, -1.0f, 1.0f, 2);
  EXPECT_NEAR(0.25f * m.scale[1] + m.shift[1], ((0.25 + 1) / 2 - 0.1) / 0.2, 1e-6);
  const InputMap raw = classifier_input_map({}, {}, 0.0f, 1.0f, 1);  // no preprocess: x01
  EXPECT_FLOAT_EQ(raw.scale[0], 1.0f);
  EXPECT_FLOAT_EQ(raw.shift[0], 0.0f);
}

TEST(ClassifierGuidance, GradientMatchesFiniteDifferences) {
  Fixture fx;
  const Tensor x = fx.images(3);
  const ClassGradient g = class_log_prob_gradient(fx.net, fx.map, x, fx.labels);
  const auto lp = fx.log_p(x);
  for (size_t i = 0; i < fx.labels.size(); ++i) EXPECT_NEAR(g.log_p[i], lp[i], 1e-5);
  // Every image's gradient comes from its own log p: perturbing image i moves only log p_i.
  const std::vector<float> gv = g.grad.to_vector();
  const int64_t per = kSize * kSize;
  double norm = 0;
  for (float v : gv) norm += double(v) * v;
  EXPECT_GT(std::sqrt(norm), 1e-3) << "a zero gradient would pass any comparison";
  const double h = 1e-2;
  int checked = 0;
  for (int64_t idx = 5; idx < x.numel(); idx += 13) {
    std::vector<float> up = x.to_vector(), down = up;
    up[static_cast<size_t>(idx)] += static_cast<float>(h);
    down[static_cast<size_t>(idx)] -= static_cast<float>(h);
    const auto lu = fx.log_p(Tensor::from_vector(up, x.shape()));
    const auto ld = fx.log_p(Tensor::from_vector(down, x.shape()));
    const size_t img = static_cast<size_t>(idx / per);
    const double fd = (lu[img] - ld[img]) / (2 * h);
    const double an = gv[static_cast<size_t>(idx)];
    EXPECT_NEAR(an, fd, 2e-3 + 2e-2 * std::max(std::abs(an), std::abs(fd)))
        << "element " << idx << " of image " << img;
    for (size_t other = 0; other < fx.labels.size(); ++other)
      if (other != img) {
        EXPECT_NEAR(lu[other], lp[other], 1e-6);
      }
    ++checked;
  }
  EXPECT_GE(checked, 15);
}

TEST(ClassifierGuidance, LeavesTheClassifiersWeightsModeAndGradModeAlone) {
  Fixture fx;
  fx.net.train();
  {
    autograd::NoGradGuard ng;  // a judge samples without gradients; guidance still needs one
    const ClassGradient g = class_log_prob_gradient(fx.net, fx.map, fx.images(4), fx.labels);
    EXPECT_TRUE(g.grad.defined());
    EXPECT_FALSE(autograd::grad_enabled());
  }
  EXPECT_TRUE(autograd::grad_enabled());
  EXPECT_TRUE(fx.net.is_training());
  for (Tensor* p : fx.net.parameters()) {
    EXPECT_TRUE(autograd::requires_grad(*p));
    EXPECT_FALSE(autograd::grad(*p).defined());
  }
  // BatchNorm in eval mode: its running statistics did not move.
  const std::vector<float> before = fx.net.named_buffers().front().second->to_vector();
  class_log_prob_gradient(fx.net, fx.map, fx.images(5), fx.labels);
  EXPECT_EQ(fx.net.named_buffers().front().second->to_vector(), before);
}

TEST(ClassifierGuidance, ImpliedNoiseMovesByMinusScaleTimesBTimesGradient) {
  Fixture fx;
  const Tensor x = fx.images(6);
  const double scale = 1.5;
  const ClassGradient g = class_log_prob_gradient(fx.net, fx.map, x, fx.labels);
  const std::vector<float> gv = g.grad.to_vector();
  Generator pg(12);
  const Tensor base_pred = Tensor::normal(x.shape(), pg);
  const Predictor base = [&](const Tensor&, double) { return base_pred.clone(); };
  for (Objective o : {Objective::flow, Objective::ddpm_eps, Objective::ddpm_v}) {
    const Predictor guided = classifier_guided_predictor(base, o, fx.net, fx.map, fx.labels, scale);
    for (double t : {0.2, 0.5, 0.8}) {
      const Tensor p = guided(x, t);
      const auto e_base = decompose(o, x, base_pred, t).eps.to_vector();
      const auto e_guided = decompose(o, x, p, t).eps.to_vector();
      const double b = noise_level(o, t).b;
      double max_err = 0, max_shift = 0;
      for (size_t i = 0; i < gv.size(); ++i) {
        const double want = -scale * b * gv[i];
        max_err = std::max(max_err, std::abs((e_guided[i] - e_base[i]) - want));
        max_shift = std::max(max_shift, std::abs(want));
      }
      EXPECT_LT(max_err, 1e-4 + 1e-3 * max_shift) << objective_name(o) << " t " << t;
      EXPECT_GT(max_shift, 1e-4);
    }
  }
  // The floor on the signal keeps t = 1 finite for flow: factor -1 / kMinSignal there.
  EXPECT_DOUBLE_EQ(guidance_factor(Objective::flow, 1.0), -1.0 / kMinSignal);
  EXPECT_NEAR(guidance_factor(Objective::flow, 0.5), -1.0, 1e-12);
}

TEST(ClassifierGuidance, ScaleZeroIsUnguidedSamplingBitForBit) {
  Fixture fx;
  Generator ug(7);
  auto module = models::build_model(test::tiny_unet_config(kClasses, kSize), ug);
  auto& unet = static_cast<models::UNet&>(*module);
  SampleOptions o;
  o.kind = SamplerKind::heun;
  o.steps = 3;
  for (double cfg : {1.0, 2.0}) {
    const Tensor plain = generate(unet, Objective::flow, fx.labels, cfg, o, 21);
    const Tensor cg0 = generate_classifier_guided(unet, Objective::flow, fx.labels, cfg, fx.net,
                                                  fx.map, 0.0, o, 21);
    EXPECT_EQ(cg0.to_vector(), plain.to_vector()) << "cfg " << cfg;
    const Tensor cg = generate_classifier_guided(unet, Objective::flow, fx.labels, cfg, fx.net,
                                                 fx.map, 2.0, o, 21);
    EXPECT_NE(cg.to_vector(), plain.to_vector()) << "guidance must change the samples";
  }
}

TEST(ClassifierGuidance, OneStepRaisesTheRequestedClassProbability) {
  Fixture fx;
  const Tensor x = fx.images(8);
  const Predictor base = gaussian_flow(0.5);
  const double t = 0.5, dt = -0.05;
  auto step = [&](const Predictor& p) {
    std::vector<float> v = x.to_vector();
    const auto pv = p(x, t).to_vector();
    for (size_t i = 0; i < v.size(); ++i) v[i] += static_cast<float>(dt) * pv[i];
    return fx.log_p(Tensor::from_vector(v, x.shape()));
  };
  const auto plain = step(base);
  const auto guided =
      step(classifier_guided_predictor(base, Objective::flow, fx.net, fx.map, fx.labels, 1.0));
  // A small step along +grad log p raises log p of every image (first order).
  for (size_t i = 0; i < fx.labels.size(); ++i) EXPECT_GT(guided[i], plain[i]) << "image " << i;
}

TEST(ClassifierGuidance, SamplingRaisesTheFinalLogProbability) {
  Fixture fx;
  // A random tiny ResNet is nearly flat (log p within 0.01 of log 1/3 everywhere); sharper logits
  // give guidance something to climb.
  for (auto& [name, p] : fx.net.named_parameters())
    if (p->rank() == 2) {
      float* w = p->data<float>();
      for (int64_t i = 0; i < p->numel(); ++i) w[i] *= 30.0f;
    }
  SampleOptions o;
  o.kind = SamplerKind::heun;
  o.steps = 10;
  std::vector<double> means;
  for (double scale : {0.0, 0.5, 2.0, 10.0}) {
    Generator g(31);
    const Tensor x1 = Tensor::normal(Shape{std::ssize(fx.labels), 1, kSize, kSize}, g);
    const Predictor p = classifier_guided_predictor(gaussian_flow(0.5), Objective::flow, fx.net,
                                                    fx.map, fx.labels, scale);
    means.push_back(fx.mean_log_p(sample(p, Objective::flow, x1, o, g)));
  }
  // Measured: -1.179, -1.062, -0.917, -0.723 (chance is log 1/3 = -1.099).
  for (size_t i = 1; i < means.size(); ++i)
    EXPECT_GT(means[i], means[i - 1] + 0.05) << "scale step " << i;
}

TEST(ClassifierGuidance, UsageErrorsOnTheGuidingClassifier) {
  const auto g = models::UNetConfig::from_json(test::tiny_unet_config(kClasses, kSize));
  nlohmann::json c = {{"in_channels", 1},
                      {"image_size", kSize},
                      {"num_classes", kClasses},
                      {"noised", {{"schedule", "flow"}}}};
  EXPECT_EQ(exit_code([&] { validate_guide_classifier(g, Objective::flow, c, 1.0); }), 0);
  EXPECT_EQ(exit_code([&] { validate_guide_classifier(g, Objective::flow, c, -1.0); }), 2);
  EXPECT_EQ(exit_code([&] { validate_guide_classifier(g, Objective::flow, c, NAN); }), 2);
  EXPECT_EQ(exit_code([&] { validate_guide_classifier(g, Objective::ddpm_eps, c, 1.0); }), 2);
  auto bad = c;
  bad.erase("noised");  // a classifier trained on clean images
  EXPECT_EQ(exit_code([&] { validate_guide_classifier(g, Objective::flow, bad, 1.0); }), 2);
  bad = c, bad["num_classes"] = kClasses + 1;
  EXPECT_EQ(exit_code([&] { validate_guide_classifier(g, Objective::flow, bad, 1.0); }), 2);
  bad = c, bad["image_size"] = kSize * 2;
  EXPECT_EQ(exit_code([&] { validate_guide_classifier(g, Objective::flow, bad, 1.0); }), 2);
  bad = c, bad["noised"]["schedule"] = "ddpm";
  EXPECT_EQ(exit_code([&] { validate_guide_classifier(g, Objective::flow, bad, 1.0); }), 2);
  EXPECT_EQ(exit_code([&] { validate_guide_classifier(g, Objective::ddpm_v, bad, 1.0); }), 0);
}
