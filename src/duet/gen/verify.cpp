#include "duet/gen/verify.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "duet/autograd/autograd.h"
#include "duet/gen/guidance.h"
#include "duet/tensor/error.h"
#include "duet/tensor/rng.h"

namespace duet::gen {

Scorer classifier_scorer(models::Classifier& verifier,
                         std::function<Tensor(const Tensor&)> to_input, int64_t batch) {
  DUET_CHECK(batch >= 1, "verify: scorer batch must be >= 1, got ", batch);
  return [&verifier, to_input = std::move(to_input), batch](const Tensor& images,
                                                            const std::vector<int32_t>& labels) {
    const int64_t n = images.dim(0);
    DUET_CHECK(std::ssize(labels) == n, "verify: ", n, " images for ", labels.size(), " labels");
    const bool was_training = verifier.is_training();
    verifier.eval();
    autograd::NoGradGuard no_grad;
    std::vector<float> out;
    out.reserve(static_cast<size_t>(n));
    try {
      for (int64_t b0 = 0; b0 < n; b0 += batch) {
        const int64_t b1 = std::min(n, b0 + batch);
        const Tensor logits = verifier.forward(to_input(images.slice(0, b0, b1)));
        DUET_CHECK(logits.rank() == 2 && logits.dim(0) == b1 - b0,
                   "verify: verifier logits have shape ", logits.shape().str());
        const int64_t k = logits.dim(1);
        const std::vector<float> z = logits.to_vector();
        for (int64_t i = 0; i < b1 - b0; ++i) {
          const float* row = z.data() + i * k;
          const int32_t y = labels[static_cast<size_t>(b0 + i)];
          DUET_CHECK(y >= 0 && y < k, "verify: label ", y, " outside the verifier's ", k,
                     " classes");
          // log-softmax in double: log p(y) = z_y - max - log(sum exp(z - max)).
          const double mx = *std::max_element(row, row + k);
          double sum = 0.0;
          for (int64_t j = 0; j < k; ++j) sum += std::exp(double(row[j]) - mx);
          out.push_back(static_cast<float>(double(row[y]) - mx - std::log(sum)));
        }
      }
    } catch (...) {
      verifier.train(was_training);
      throw;
    }
    verifier.train(was_training);
    return out;
  };
}

void validate_verifier(const models::UNetConfig& g, const nlohmann::json& v, int best_of) {
  if (best_of < 1 || best_of > 1024) fail_usage("--best-of must be in [1, 1024], got ", best_of);
  const int64_t vc = v.value("in_channels", 1), vs = v.value("image_size", 28),
                vk = v.value("num_classes", 10);
  if (vc != g.in_channels || vs != g.image_size)
    fail_usage("--verify-with: the verifier takes ", vc, "x", vs, "x", vs,
               " images, the generator makes ", g.in_channels, "x", g.image_size, "x",
               g.image_size);
  if (vk != g.num_classes)
    fail_usage("--verify-with: the verifier knows ", vk, " classes, the generator ", g.num_classes);
}

uint64_t candidate_seed(uint64_t seed, int k) {
  if (k == 0) return seed;
  constexpr uint64_t kVerifyStream = 0x76657269;  // "veri": apart from other derived seeds
  const auto w = philox4x32(static_cast<uint64_t>(k), kVerifyStream, seed);
  return (static_cast<uint64_t>(w[0]) << 32) | w[1];
}

int64_t passes_per_image(const SampleOptions& options, double cfg, int best_of) {
  const int64_t guided = (cfg == 0.0 || cfg == 1.0) ? 1 : 2;
  return static_cast<int64_t>(best_of) * evaluations(options) * guided;
}

Verified best_of_k(models::UNet& model, Objective objective, const Scorer& score,
                   const std::vector<int32_t>& labels, double cfg, const SampleOptions& options,
                   uint64_t seed, int best_of, const PredictorWrap& wrap) {
  DUET_CHECK(best_of >= 1, "verify: best_of must be >= 1, got ", best_of);
  validate(options, objective);
  const bool was_training = model.is_training();
  model.eval();
  const auto& c = model.config();
  const int64_t n = std::ssize(labels), k = best_of;
  const int64_t per = int64_t{c.in_channels} * c.image_size * c.image_size;
  // Candidate-major starting noise; candidate 0's generator also drives the sampler, as in
  // gen::generate.
  Generator gen(seed);
  Tensor x1 = Tensor::empty(Shape{k * n, c.in_channels, c.image_size, c.image_size});
  gen.normal(x1.data<float>(), n * per);
  for (int64_t j = 1; j < k; ++j) {
    Generator g(candidate_seed(seed, static_cast<int>(j)));
    g.normal(x1.data<float>() + j * n * per, n * per);
  }
  std::vector<int32_t> all;
  all.reserve(static_cast<size_t>(k * n));
  for (int64_t j = 0; j < k; ++j) all.insert(all.end(), labels.begin(), labels.end());

  Verified v;
  try {
    Predictor p = guided_predictor(model, all, cfg);
    if (wrap) p = wrap(std::move(p), all);
    v.candidates = sample(p, objective, x1, options, gen);
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  v.scores = score(v.candidates, all);
  DUET_CHECK(std::ssize(v.scores) == k * n, "verify: the scorer returned ", v.scores.size(),
             " scores for ", k * n, " candidates");
  v.images = Tensor::empty(Shape{n, c.in_channels, c.image_size, c.image_size});
  v.chosen.assign(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = 0;
    for (int64_t j = 1; j < k; ++j)
      if (v.scores[static_cast<size_t>(j * n + i)] > v.scores[static_cast<size_t>(best * n + i)])
        best = j;
    v.chosen[static_cast<size_t>(i)] = static_cast<int>(best);
    std::memcpy(v.images.data<float>() + i * per, v.candidates.data<float>() + (best * n + i) * per,
                static_cast<size_t>(per) * sizeof(float));
  }
  return v;
}

}  // namespace duet::gen
