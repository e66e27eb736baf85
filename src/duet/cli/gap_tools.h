// The gap-closing options that `duet classify`, `eval` and `sample` share: the generative
// classifier's flags and its run over a data set (eval/generative_classifier.h), and best-of-K
// verified drawing for the judge with every candidate recorded, for nested best-of-k numbers.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "duet/data/dataset.h"
#include "duet/eval/generative_classifier.h"
#include "duet/eval/judge.h"
#include "duet/gen/verify.h"
#include "duet/models/checkpoint.h"
#include "duet/models/classifier.h"

namespace duet::cli {

struct GenerativeFlags {
  bool on = false;
  eval::GenerativeOptions options;
};

// --generative, --gen-times, --prune-after, --prune-margin (inf: off), --gen-scale, --gen-seed.
void add_generative_flags(CLI::App& sub, GenerativeFlags& g);

struct GenerativeRun {
  std::vector<float> probs;  // [N, K]
  int64_t passes = 0, full_passes = 0;
  double seconds = 0.0;
};

// The generative classifier over every image of `d` (already at the generator's channels and
// size), in chunks of 100 images, with progress on stderr: a bar on a terminal, else a line per
// 1,000 images; `labelled` adds the accuracy so far. Usage Error when -m is not a generator.
GenerativeRun run_generative(models::LoadedModel& generator, const std::string& path,
                             const data::Dataset& d, const GenerativeFlags& g, bool labelled);

// One line: images, times, passes run of full, compute saved by pruning, ms per image.
std::string generative_summary(const GenerativeRun& r, int64_t images,
                               const eval::GenerativeOptions& o);

// Best-of-K for the judge (candidates optionally classifier-guided through `wrap`): draw() makes
// options.draw; each batch's candidates are also classified
// by the judge on the spot, so that afterwards nested() tells the judged accuracy of best-of-k for
// every k = 1, 2, 4, ... <= K using the first k candidates of the same pool.
class VerifiedDraws {
 public:
  VerifiedDraws(models::UNet& generator, gen::Objective objective, models::Classifier& verifier,
                const nlohmann::json& verifier_config, models::Classifier& judge,
                const nlohmann::json& judge_config, double cfg, gen::SampleOptions sample,
                int best_of, float lo, float hi, gen::PredictorWrap wrap = {});
  VerifiedDraws(const VerifiedDraws&) = delete;  // draw() and the scorer hold `this`
  VerifiedDraws& operator=(const VerifiedDraws&) = delete;
  std::function<Tensor(const std::vector<int32_t>&, uint64_t)> draw();

  struct Nested {
    int k;
    double accuracy;        // judged conditional accuracy of best-of-k
    double verifier_score;  // mean log p(requested) by the verifier of the kept candidates
  };
  std::vector<Nested> nested() const;

 private:
  models::UNet& generator_;
  gen::Objective objective_;
  models::Classifier& judge_;
  data::NormStats judge_norm_;
  gen::Scorer score_;
  double cfg_;
  gen::SampleOptions sample_;
  int best_of_;
  float lo_, hi_;
  gen::PredictorWrap wrap_;  // e.g. classifier guidance of every candidate
  // Per drawn image (in judge order), per candidate: verifier score and judge prediction.
  std::vector<std::vector<float>> scores_;
  std::vector<std::vector<int32_t>> judged_;
  std::vector<int32_t> labels_;
};

}  // namespace duet::cli
