#include "duet/cli/gap_tools.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "duet/autograd/autograd.h"
#include "duet/models/unified.h"
#include "duet/tensor/error.h"
#include "duet/train/trainer.h"

namespace duet::cli {

// The --gen-* and --prune-* options need --generative: without it they would do nothing.
void add_generative_flags(CLI::App& sub, GenerativeFlags& g) {
  auto& o = g.options;
  CLI::Option* generative = sub.add_flag(
      "--generative", g.on,
      "-m is a generator: classify by the lowest class-conditional flow/diffusion loss");
  sub.add_option("--gen-times", o.times,
                 "generative: times on the fixed t grid (30 for accuracy: 88.87 % of the "
                 "Fashion-MNIST test set, docs/gap.md, at 3x the passes of 10)")
      ->capture_default_str()
      ->needs(generative);
  sub.add_option("--gen-t-min", o.t_min, "generative: start of the t range")
      ->capture_default_str()
      ->needs(generative);
  sub.add_option("--gen-t-max", o.t_max, "generative: end of the t range")
      ->capture_default_str()
      ->needs(generative);
  sub.add_option("--gen-signal-power", o.signal_power,
                 "generative: weight each time's loss by a_t^P (a_t: the signal coefficient, 1 - t "
                 "for flow); 0: the plain mean")
      ->capture_default_str()
      ->needs(generative);
  sub.add_option("--prune-after", o.prune_after,
                 "generative: times evaluated before hopeless classes are dropped")
      ->capture_default_str()
      ->needs(generative);
  sub.add_option("--prune-margin", o.prune_margin,
                 "generative: drop a class whose running mean loss exceeds the best by this "
                 "(inf: never)")
      ->capture_default_str()
      ->needs(generative);
  sub.add_option("--gen-scale", o.scale, "generative: probabilities = softmax(-scale * loss)")
      ->capture_default_str()
      ->needs(generative);
  sub.add_option("--gen-seed", o.seed, "generative: seed of the fixed noises")
      ->capture_default_str()
      ->needs(generative);
}

GenerativeRun run_generative(models::LoadedModel& generator, const std::string& path,
                             const data::Dataset& d, const GenerativeFlags& g, bool labelled) {
  auto* unet = models::generator_network(*generator.model);
  if (!unet)
    fail_usage("--generative: -m ", path, " is not a generator (family '",
               generator.config.value("family", ""), "')");
  eval::GenerativeOptions o = g.options;
  std::tie(o.lo, o.hi) = eval::value_range(generator.config);
  eval::validate_generative(o);
  const auto objective = gen::parse_objective(generator.config.value("objective", "flow"));
  const int64_t n = d.size(), k = unet->config().num_classes;
  GenerativeRun r;
  r.probs.reserve(static_cast<size_t>(n * k));
  const bool bar = ::isatty(2);
  const auto t0 = std::chrono::steady_clock::now();
  constexpr int64_t kChunk = 100;      // images per call: every live (image, class) pair of a chunk
  constexpr int64_t kLogEvery = 1000;  // images between progress lines when not on a terminal
  int64_t right = 0;
  for (int64_t b0 = 0; b0 < n; b0 += kChunk) {
    const int64_t b1 = std::min(n, b0 + kChunk);
    const Tensor x = eval::u8_to_generator_input(d.image(b0), b1 - b0, d.channels, d.height,
                                                 d.width, o.lo, o.hi);
    const eval::GenerativeResult res = eval::classify_generative(*unet, objective, x, o);
    r.probs.insert(r.probs.end(), res.probs.begin(), res.probs.end());
    r.passes += res.passes, r.full_passes += res.full_passes;
    if (labelled)
      for (int64_t i = b0; i < b1; ++i) right += res.predicted(i - b0) == d.label(i);
    // Long runs (minutes to an hour) report as they go: a bar on a terminal, else a line per
    // kLogEvery images; with labels, the accuracy so far.
    if (!bar && b1 % kLogEvery != 0) continue;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char so_far[64] = "";
    if (labelled)
      std::snprintf(so_far, sizeof so_far, ", %.2f %% right so far",
                    100.0 * double(right) / double(b1));
    std::fprintf(stderr, "%sgenerative %lld/%lld images%s, %.0f s%s", bar ? "\r" : "",
                 static_cast<long long>(b1), static_cast<long long>(n), so_far, seconds,
                 bar ? " " : "\n");
  }
  if (bar) std::fprintf(stderr, "\r\033[K");
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::string generative_summary(const GenerativeRun& r, int64_t images,
                               const eval::GenerativeOptions& o) {
  char line[400];
  const double saved = r.full_passes ? 1.0 - double(r.passes) / double(r.full_passes) : 0.0;
  std::snprintf(
      line, sizeof line,
      "generative classifier: %d times in [%g, %g] weighted by a_t^%g, prune after %d at margin "
      "%g, scale %g, seed %llu; %lld of %lld network passes (pruning saved %.1f %%); %.1f s, "
      "%.1f ms per image",
      o.times, o.t_min, o.t_max, o.signal_power, o.prune_after, o.prune_margin, o.scale,
      static_cast<unsigned long long>(o.seed), static_cast<long long>(r.passes),
      static_cast<long long>(r.full_passes), 100.0 * saved, r.seconds,
      images ? 1e3 * r.seconds / double(images) : 0.0);
  return line;
}

VerifiedDraws::VerifiedDraws(models::UNet& generator, gen::Objective objective,
                             models::Classifier& verifier, const nlohmann::json& verifier_config,
                             models::Classifier& judge, const nlohmann::json& judge_config,
                             double cfg, gen::SampleOptions sample, int best_of, float lo, float hi,
                             gen::PredictorWrap wrap)
    : generator_(generator),
      objective_(objective),
      judge_(judge),
      judge_norm_(train::model_norm_stats(judge_config)),
      cfg_(cfg),
      sample_(std::move(sample)),
      best_of_(best_of),
      lo_(lo),
      hi_(hi),
      wrap_(std::move(wrap)) {
  gen::validate_verifier(generator.config(), verifier_config, best_of);
  const auto norm = train::model_norm_stats(verifier_config);
  score_ = gen::classifier_scorer(verifier, [norm, this](const Tensor& x) {
    return eval::to_classifier_input(x, norm, lo_, hi_);
  });
}

std::function<Tensor(const std::vector<int32_t>&, uint64_t)> VerifiedDraws::draw() {
  return [this](const std::vector<int32_t>& labels, uint64_t seed) {
    const gen::Verified v = gen::best_of_k(generator_, objective_, score_, labels, cfg_, sample_,
                                           seed, best_of_, wrap_);
    // The judge's verdict on every candidate (it runs on the kept ones again inside the judge).
    const int64_t n = std::ssize(labels), rows = v.candidates.dim(0);
    std::vector<int32_t> pred(static_cast<size_t>(rows));
    {
      const bool was_training = judge_.is_training();
      judge_.eval();
      autograd::NoGradGuard no_grad;
      for (int64_t b0 = 0; b0 < rows; b0 += 500) {
        const int64_t b1 = std::min(rows, b0 + 500);
        const auto z = judge_
                           .forward(eval::to_classifier_input(v.candidates.slice(0, b0, b1),
                                                              judge_norm_, lo_, hi_))
                           .to_vector();
        const int64_t k = static_cast<int64_t>(z.size()) / (b1 - b0);
        for (int64_t i = 0; i < b1 - b0; ++i)
          pred[static_cast<size_t>(b0 + i)] = static_cast<int32_t>(
              std::max_element(z.begin() + i * k, z.begin() + (i + 1) * k) - (z.begin() + i * k));
      }
      judge_.train(was_training);
    }
    for (int64_t i = 0; i < n; ++i) {
      std::vector<float> s;
      std::vector<int32_t> p;
      for (int j = 0; j < best_of_; ++j) {
        s.push_back(v.scores[static_cast<size_t>(j * n + i)]);
        p.push_back(pred[static_cast<size_t>(j * n + i)]);
      }
      scores_.push_back(std::move(s));
      judged_.push_back(std::move(p));
      labels_.push_back(labels[static_cast<size_t>(i)]);
    }
    return v.images;
  };
}

std::vector<VerifiedDraws::Nested> VerifiedDraws::nested() const {
  std::vector<Nested> out;
  std::vector<int> ks;
  for (int k = 1; k < best_of_; k *= 2) ks.push_back(k);
  ks.push_back(best_of_);
  const double n = static_cast<double>(labels_.size());
  for (int k : ks) {
    Nested r{k, 0.0, 0.0};
    for (size_t i = 0; i < labels_.size(); ++i) {
      // The same rule as gen::best_of_k: the first of the highest scores.
      const auto& s = scores_[i];
      const size_t best =
          static_cast<size_t>(std::max_element(s.begin(), s.begin() + k) - s.begin());
      r.accuracy += (judged_[i][best] == labels_[i]) / n;
      r.verifier_score += s[best] / n;
    }
    out.push_back(r);
  }
  return out;
}

}  // namespace duet::cli
