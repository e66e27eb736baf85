// Best-of-K verified sampling (gen/verify.h) on a real tiny UNet (random init) and a real tiny
// ResNet verifier: K = 1 is plain sampling bit for bit (ODE and stochastic samplers), the kept
// candidate is the argmax of scores computed here independently (each candidate sampled on its
// own, scored by the classifier directly), more candidates never lower the kept score, and the
// checks on the verifier are usage errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "../harness/error_capture.h"
#include "duet/autograd/autograd.h"
#include "duet/eval/judge.h"
#include "duet/gen/classifier_guidance.h"
#include "duet/gen/guidance.h"
#include "duet/gen/verify.h"
#include "duet/models/registry.h"
#include "duet/models/resnet.h"
#include "duet/tensor/error.h"

#include "../harness/tiny_unet.h"

using namespace duet;
using namespace duet::gen;

namespace {

constexpr int64_t kClasses = 3, kSize = 8;

nlohmann::json unet_config() {
  return test::tiny_unet_config(kClasses, kSize);
}

struct Fixture {
  Generator gen{7};
  std::shared_ptr<nn::Module> module = models::build_model(unet_config(), gen);
  models::UNet& unet = static_cast<models::UNet&>(*module);
  Generator cgen{9};
  models::CifarResNet net{
      cgen, models::ResNetConfig{.depth = 8, .width = 4, .num_classes = 3, .image_size = kSize}};
  data::NormStats norm{{0.3f}, {0.4f}};
  Scorer score = classifier_scorer(
      net, [this](const Tensor& x) { return eval::to_classifier_input(x, norm); }, 4);
  std::vector<int32_t> labels{0, 1, 2, 2, 1};

  SampleOptions euler(int steps = 3) const {
    SampleOptions o;
    o.kind = SamplerKind::euler;
    o.steps = steps;
    return o;
  }
  // log p(label | image) straight from the classifier's logits, in double.
  double log_p(const Tensor& image, int32_t label) {
    autograd::NoGradGuard ng;
    net.eval();
    const auto z = net.forward(eval::to_classifier_input(image, norm)).to_vector();
    double mx = *std::max_element(z.begin(), z.end()), s = 0;
    for (float v : z) s += std::exp(v - mx);
    return z[size_t(label)] - mx - std::log(s);
  }
};

using duet::test::exit_code;

}  // namespace

TEST(Verify, BestOfOneIsPlainSamplingBitForBit) {
  Fixture fx;
  for (double cfg : {1.0, 2.0}) {
    const Tensor plain = generate(fx.unet, Objective::flow, fx.labels, cfg, fx.euler(), 11);
    const Verified v =
        best_of_k(fx.unet, Objective::flow, fx.score, fx.labels, cfg, fx.euler(), 11, 1);
    EXPECT_EQ(v.images.to_vector(), plain.to_vector()) << cfg;
    EXPECT_EQ(v.candidates.to_vector(), plain.to_vector());
    EXPECT_EQ(v.chosen, std::vector<int>(fx.labels.size(), 0));
  }
  // A stochastic sampler draws its step noise from the same generator as plain sampling.
  SampleOptions ddpm;
  ddpm.kind = SamplerKind::ddpm;
  ddpm.steps = 3;
  const Tensor plain = generate(fx.unet, Objective::ddpm_eps, fx.labels, 2.0, ddpm, 12);
  const Verified v = best_of_k(fx.unet, Objective::ddpm_eps, fx.score, fx.labels, 2.0, ddpm, 12, 1);
  EXPECT_EQ(v.images.to_vector(), plain.to_vector());
}

// With classifier guidance wrapped around every candidate's predictor, K = 1 is exactly
// generate_classifier_guided, and candidate 0 of a larger K is that image too.
TEST(Verify, ClassifierGuidedCandidatesStartFromTheGuidedDraw) {
  Fixture fx;
  const InputMap map = classifier_input_map({0.3f}, {0.4f}, -1.0f, 1.0f, 1);
  const Tensor guided = generate_classifier_guided(fx.unet, Objective::flow, fx.labels, 2.0, fx.net,
                                                   map, 3.0, fx.euler(), 13);
  const Tensor plain = generate(fx.unet, Objective::flow, fx.labels, 2.0, fx.euler(), 13);
  ASSERT_NE(guided.to_vector(), plain.to_vector());  // the guidance does something here
  const PredictorWrap wrap = [&](Predictor base, const std::vector<int32_t>& labels) {
    return classifier_guided_predictor(std::move(base), Objective::flow, fx.net, map, labels, 3.0);
  };
  const Verified one =
      best_of_k(fx.unet, Objective::flow, fx.score, fx.labels, 2.0, fx.euler(), 13, 1, wrap);
  EXPECT_EQ(one.images.to_vector(), guided.to_vector());
  const Verified three =
      best_of_k(fx.unet, Objective::flow, fx.score, fx.labels, 2.0, fx.euler(), 13, 3, wrap);
  const int64_t n = std::ssize(fx.labels);
  const std::vector<float> first = three.candidates.slice(0, 0, n).to_vector();
  const std::vector<float> want = guided.to_vector();
  ASSERT_EQ(first.size(), want.size());
  // The 3N-row batch runs the classifier over more rows at once; equal up to float reassociation.
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(first[i], want[i], 1e-4f) << i;
}

TEST(Verify, KeepsTheArgmaxOfIndependentlyComputedScores) {
  Fixture fx;
  constexpr int kK = 4;
  const int64_t n = std::ssize(fx.labels), per = kSize * kSize;
  const Verified v =
      best_of_k(fx.unet, Objective::flow, fx.score, fx.labels, 2.0, fx.euler(), 21, kK);
  ASSERT_EQ(v.candidates.shape(), (Shape{kK * n, 1, kSize, kSize}));
  ASSERT_EQ(v.scores.size(), size_t(kK * n));
  int not_first = 0;
  for (int k = 0; k < kK; ++k) {
    // Candidate k on its own: its noise, the sampler on a batch of n, the classifier directly.
    Generator g(candidate_seed(21, k));
    const Tensor x1 = Tensor::normal(Shape{n, 1, kSize, kSize}, g);
    const Tensor xk =
        sample(guided_predictor(fx.unet, fx.labels, 2.0), Objective::flow, x1, fx.euler(), g);
    const auto xv = xk.to_vector(), cv = v.candidates.to_vector();
    for (int64_t e = 0; e < n * per; ++e)
      ASSERT_NEAR(cv[size_t(k * n * per + e)], xv[size_t(e)], 1e-5) << k;
    for (int64_t i = 0; i < n; ++i)
      EXPECT_NEAR(v.scores[size_t(k * n + i)], fx.log_p(xk.slice(0, i, i + 1), fx.labels[i]), 1e-4);
  }
  for (int64_t i = 0; i < n; ++i) {
    int best = 0;
    for (int k = 1; k < kK; ++k)
      if (v.scores[size_t(k * n + i)] > v.scores[size_t(best * n + i)]) best = k;
    EXPECT_EQ(v.chosen[size_t(i)], best);
    not_first += best != 0;
    const auto img = v.images.slice(0, i, i + 1).to_vector();
    const auto cand = v.candidates.slice(0, best * n + i, best * n + i + 1).to_vector();
    EXPECT_EQ(img, cand);
    // The kept image scores as the best of the independently computed scores.
    double best_direct = -1e30;
    for (int k = 0; k < kK; ++k)
      best_direct = std::max(best_direct, fx.log_p(v.candidates.slice(0, k * n + i, k * n + i + 1),
                                                   fx.labels[size_t(i)]));
    EXPECT_NEAR(fx.log_p(v.images.slice(0, i, i + 1), fx.labels[size_t(i)]), best_direct, 1e-4);
  }
  EXPECT_GE(not_first, 1);  // a non-trivial draw: some image keeps a later candidate
}

TEST(Verify, MoreCandidatesNeverLowerTheKeptScore) {
  Fixture fx;
  const int64_t n = std::ssize(fx.labels);
  std::vector<double> prev(size_t(n), -1e30);
  for (int k : {1, 2, 4, 8}) {
    const Verified v =
        best_of_k(fx.unet, Objective::flow, fx.score, fx.labels, 1.0, fx.euler(2), 5, k);
    for (int64_t i = 0; i < n; ++i) {
      const double kept = v.scores[size_t(v.chosen[size_t(i)] * n + i)];
      EXPECT_GE(kept, prev[size_t(i)] - 1e-5) << k << " " << i;  // nested candidate pools
      EXPECT_GE(kept, v.scores[size_t(i)]);                      // never below candidate 0
      prev[size_t(i)] = kept;
    }
  }
}

TEST(Verify, ChecksAndComputeAccounting) {
  Fixture fx;
  const auto& g = fx.unet.config();
  nlohmann::json ok = {{"in_channels", 1}, {"image_size", kSize}, {"num_classes", kClasses}};
  EXPECT_EQ(exit_code([&] { validate_verifier(g, ok, 4); }), 0);
  EXPECT_EQ(exit_code([&] { validate_verifier(g, ok, 0); }), 2);
  auto size = ok, chans = ok, classes = ok;
  size["image_size"] = 28, chans["in_channels"] = 3, classes["num_classes"] = 10;
  EXPECT_EQ(exit_code([&] { validate_verifier(g, size, 2); }), 2);
  EXPECT_EQ(exit_code([&] { validate_verifier(g, chans, 2); }), 2);
  EXPECT_EQ(exit_code([&] { validate_verifier(g, classes, 2); }), 2);
  SampleOptions heun;
  heun.kind = SamplerKind::heun;
  heun.steps = 20;
  EXPECT_EQ(passes_per_image(heun, 2.0), 80);
  EXPECT_EQ(passes_per_image(heun, 1.0, 2), 80);  // best-of-2 at CFG 1 = plain CFG 2
  EXPECT_EQ(passes_per_image(heun, 2.0, 4), 320);
  EXPECT_EQ(candidate_seed(77, 0), 77u);
  EXPECT_NE(candidate_seed(77, 1), candidate_seed(77, 2));
}
