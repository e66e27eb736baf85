// Samplers and objectives against closed forms: for Gaussian data N(mu, sigma^2) the exact flow
// velocity and diffusion noise predictor are known, and so is where the ODE takes each noise
// value; DDPM's ancestral sampler must reproduce the data's mean and spread. Guidance identities
// and seeded bit-identity on a real (small) UNet.
#include <gtest/gtest.h>

#include <cmath>

#include "duet/autograd/autograd.h"
#include "duet/gen/guidance.h"
#include "duet/gen/objective.h"
#include "duet/gen/sampler.h"
#include "duet/tensor/error.h"

using namespace duet;
using namespace duet::gen;

namespace {

constexpr double kMu = 0.5, kSigma = 0.3;

// x_t = a x0 + b eps with x0 ~ N(mu, sigma^2): x_t ~ N(a mu, a^2 sigma^2 + b^2). The posterior
// means give the exact predictions.
Tensor exact_prediction(Objective o, const Tensor& x, double t) {
  const NoiseLevel k = noise_level(o, t);
  const double var = k.a * k.a * kSigma * kSigma + k.b * k.b;
  auto v = x.to_vector();
  for (float& e : v) {
    const double centred = e - k.a * kMu;
    const double eps = k.b * centred / var;                         // E[eps | x_t]
    const double x0 = kMu + k.a * kSigma * kSigma * centred / var;  // E[x0 | x_t]
    double p = 0;
    switch (o) {
      case Objective::flow:
        p = eps - x0;
        break;
      case Objective::ddpm_eps:
        p = eps;
        break;
      case Objective::ddpm_v:
        p = k.a * eps - k.b * x0;
        break;
    }
    e = static_cast<float>(p);
  }
  return Tensor::from_vector(v, x.shape());
}

// Where the probability-flow ODE takes x1: the same quantile of the data distribution.
double ode_endpoint(Objective o, double x1) {
  const NoiseLevel k = noise_level(o, 1.0);
  return kMu + kSigma * (x1 - k.a * kMu) / std::sqrt(k.a * k.a * kSigma * kSigma + k.b * k.b);
}

double max_endpoint_error(Objective o, SamplerKind kind, int steps) {
  Generator gen(5);
  const Tensor x1 = Tensor::normal(Shape{256}, gen);
  SampleOptions opt;
  opt.kind = kind;
  opt.steps = steps;
  const Tensor x0 =
      sample([o](const Tensor& x, double t) { return exact_prediction(o, x, t); }, o, x1, opt, gen);
  const auto a = x1.to_vector(), b = x0.to_vector();
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(b[i] - ode_endpoint(o, a[i])));
  return m;
}

}  // namespace

TEST(Sampler, EulerIsFirstOrderAndHeunSecondOrder) {
  // Doubling the steps halves Euler's error and quarters Heun's.
  for (int steps : {20, 40, 80}) {
    SCOPED_TRACE(steps);
    const double e1 = max_endpoint_error(Objective::flow, SamplerKind::euler, steps);
    const double e2 = max_endpoint_error(Objective::flow, SamplerKind::euler, 2 * steps);
    EXPECT_NEAR(e2 / e1, 0.5, 0.05);
    const double h1 = max_endpoint_error(Objective::flow, SamplerKind::heun, steps);
    const double h2 = max_endpoint_error(Objective::flow, SamplerKind::heun, 2 * steps);
    EXPECT_NEAR(h2 / h1, 0.25, 0.04);
    EXPECT_LT(h1 * 10, e1);
  }
  EXPECT_LT(max_endpoint_error(Objective::flow, SamplerKind::heun, 80), 5e-4);
}

// A prediction that overflows ends the sampling with an error, never an image of NaN.
TEST(Sampler, RefusesImagesThatAreNotFinite) {
  Generator gen(2);
  const Tensor x1 = Tensor::normal(Shape{2, 1, 4, 4}, gen);
  SampleOptions opt;
  opt.kind = SamplerKind::euler;
  opt.steps = 3;
  for (float bad : {NAN, INFINITY}) {
    int calls = 0;
    const Predictor p = [&](const Tensor& x, double) {
      return ++calls == 2 ? Tensor::full(x.shape(), bad) : Tensor::zeros(x.shape());
    };
    try {
      sample(p, Objective::flow, x1, opt, gen);
      ADD_FAILURE() << bad << " went through";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("the images hold NaN or infinity after 3 steps"),
                std::string::npos)
          << e.what();
    }
  }
  const Predictor fine = [](const Tensor& x, double) { return Tensor::zeros(x.shape()); };
  EXPECT_EQ(sample(fine, Objective::flow, x1, opt, gen).to_vector(), x1.to_vector());
}

TEST(Sampler, DeterministicDdimFollowsTheProbabilityFlow) {
  EXPECT_LT(max_endpoint_error(Objective::ddpm_eps, SamplerKind::ddim, 500), 2e-2);
  EXPECT_LT(max_endpoint_error(Objective::ddpm_v, SamplerKind::ddim, 500), 2e-2);
}

TEST(Sampler, AncestralDdpmMatchesTheDataMoments) {
  Generator gen(11);
  const Tensor x1 = Tensor::normal(Shape{20000}, gen);
  SampleOptions opt;
  opt.kind = SamplerKind::ddpm;
  opt.steps = 1000;  // ancestral steps shrink the spread a little at coarse grids
  const auto v =
      sample([](const Tensor& x, double t) { return exact_prediction(Objective::ddpm_eps, x, t); },
             Objective::ddpm_eps, x1, opt, gen)
          .to_vector();
  double mean = 0, sq = 0;
  for (float e : v) mean += e;
  mean /= v.size();
  for (float e : v) sq += (e - mean) * (e - mean);
  EXPECT_NEAR(mean, kMu, 0.01);
  EXPECT_NEAR(std::sqrt(sq / v.size()), kSigma, 0.01);
}

TEST(Objective, DecomposeInvertsEveryTarget) {
  for (Objective o : {Objective::flow, Objective::ddpm_eps, Objective::ddpm_v}) {
    SCOPED_TRACE(objective_name(o));
    Generator gen(2);
    const Tensor x0 = Tensor::uniform(Shape{1, 2, 3, 3}, gen, -1, 1);
    const TrainingDraw d = draw_training_example(o, TimeSampling::logit_normal, x0, gen);
    const double t = d.t.to_vector()[0];
    const Decomposition back = decompose(o, d.x_t, d.target, t);
    const auto want = x0.to_vector(), got = back.x0.to_vector();
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4);
    // And x_t = a x0 + b eps with the recovered noise.
    const NoiseLevel k = noise_level(o, t);
    const auto xt = d.x_t.to_vector(), eps = back.eps.to_vector();
    for (size_t i = 0; i < xt.size(); ++i) EXPECT_NEAR(k.a * want[i] + k.b * eps[i], xt[i], 1e-4);
  }
}

TEST(Objective, CosineScheduleEndsAndNames) {
  EXPECT_NEAR(cosine_alpha_bar(0.0), 1.0, 1e-12);
  EXPECT_NEAR(cosine_alpha_bar(1.0), 1e-4, 1e-12);  // floored
  EXPECT_GT(cosine_alpha_bar(0.3), cosine_alpha_bar(0.6));
  EXPECT_EQ(parse_objective("ddpm-v"), Objective::ddpm_v);
  EXPECT_THROW(parse_objective("gan"), Error);
  EXPECT_THROW(parse_sampler("rk4"), Error);
}

TEST(Sampler, RejectsSamplersThatDoNotFitTheObjective) {
  SampleOptions o;
  o.kind = SamplerKind::heun;
  EXPECT_THROW(validate(o, Objective::ddpm_eps), Error);
  o.kind = SamplerKind::ddim;
  EXPECT_THROW(validate(o, Objective::flow), Error);
  o.steps = 0;
  EXPECT_THROW(validate(o, Objective::ddpm_v), Error);
  o.steps = 4;
  EXPECT_NO_THROW(validate(o, Objective::ddpm_v));
  for (double eta : {-0.1, 1.5, double(NAN)}) {  // NaN fails every comparison: refused too
    o.eta = eta;
    EXPECT_THROW(validate(o, Objective::ddpm_v), Error) << eta;
  }
}

namespace {

std::unique_ptr<models::UNet> small_unet() {
  models::UNetConfig c;
  c.in_channels = 1;
  c.image_size = 8;
  c.num_classes = 3;
  c.channels = {8, 16};
  c.blocks_down = 1;
  c.blocks_up = 2;
  c.heads = 2;
  c.embed_dim = 16;
  c.groups = 4;
  Generator gen(4);
  auto m = std::make_unique<models::UNet>(gen, c);
  for (auto& [name, p] : m->named_parameters())  // wake the zero-initialised output conv
    if (name.rfind("conv_out", 0) == 0) p->copy_from(Tensor::normal(p->shape(), gen, 0, 0.1f));
  m->eval();
  return m;
}

}  // namespace

TEST(Guidance, ScaleOneIsConditionalAndZeroIsUnconditional) {
  auto model = small_unet();
  Generator gen(9);
  const Tensor x = Tensor::normal(Shape{2, 1, 8, 8}, gen);
  const std::vector<int32_t> labels = {0, 2};
  const double t = 0.4;
  const auto run = [&](double scale) { return guided_predictor(*model, labels, scale)(x, t); };
  // Sampling's forward (no gradients: the fused residual blocks) on both sides.
  autograd::NoGradGuard no_grad;
  const Tensor cond = model->forward(x, Tensor::full(Shape{2}, 0.4f),
                                     Tensor::from_vector(std::vector<int32_t>{0, 2}, Shape{2}));
  const Tensor uncond = model->forward(x, Tensor::full(Shape{2}, 0.4f),
                                       Tensor::from_vector(std::vector<int32_t>{3, 3}, Shape{2}));
  const auto c = cond.to_vector(), u = uncond.to_vector();
  const auto s1 = run(1.0).to_vector(), s0 = run(0.0).to_vector(), s3 = run(3.0).to_vector();
  double spread = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    EXPECT_EQ(s1[i], c[i]);
    EXPECT_EQ(s0[i], u[i]);
    // The batched 2N pass agrees with separate passes up to rounding.
    EXPECT_NEAR(s3[i], u[i] + 3 * (c[i] - u[i]), 1e-4);
    spread = std::max(spread, double(std::fabs(c[i] - u[i])));
  }
  EXPECT_GT(spread, 1e-3);  // the class actually changes the prediction
  for (double bad : {double(NAN), double(INFINITY)}) {
    try {
      guided_predictor(*model, labels, bad);
      ADD_FAILURE() << "--cfg " << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.exit_code(), 2);
      EXPECT_NE(std::string(e.what()).find("--cfg must be a finite number"), std::string::npos);
    }
  }
}

TEST(Guidance, SameSeedSameImages) {
  auto model = small_unet();
  SampleOptions opt;
  opt.kind = SamplerKind::heun;
  opt.steps = 2;
  const std::vector<int32_t> labels = {1, 0, 2};
  const auto a = generate(*model, Objective::flow, labels, 2.0, opt, 7).to_vector();
  const auto b = generate(*model, Objective::flow, labels, 2.0, opt, 7).to_vector();
  const auto c = generate(*model, Objective::flow, labels, 2.0, opt, 8).to_vector();
  ASSERT_EQ(a.size(), 3u * 64u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}
