// The classifier-guidance flags that `duet sample`, `eval` and `gap` share: --classifier-guidance
// SCALE with --guide-with NOISY_CLASSIFIER, loaded and checked once (gen/classifier_guidance.h)
// before any long work, plus the one-line cost note each command prints.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "duet/gen/classifier_guidance.h"
#include "duet/gen/verify.h"
#include "duet/models/checkpoint.h"
#include "duet/models/classifier.h"
#include "duet/models/unet.h"

namespace duet::cli {

struct GuideClassifier {
  std::string path;
  double scale = 0.0;
  models::LoadedModel loaded;
  models::Classifier* classifier = nullptr;  // null: no classifier guidance
  gen::InputMap map;                         // the generator's x -> the classifier's input
  bool on() const { return classifier != nullptr; }
};

// Usage Errors naming `command`: --classifier-guidance without --guide-with or the reverse, a
// --guide-with that is not a classifier, or one that does not fit the generator (size, channels,
// classes, not trained with --noised, another noise family; gen::validate_guide_classifier).
// Neither flag given: an empty GuideClassifier. `generator_config` gives the value range.
GuideClassifier load_guide(const std::string& command, const std::string& path, double scale,
                           bool scale_given, const models::UNet& generator,
                           gen::Objective objective, const nlohmann::json& generator_config);

// "classifier guidance 2 by PATH: 40 generator passes + 40 classifier forward+backward passes
// per image" for a sampler run at `cfg`; `best_of` candidates per image multiply both.
std::string guide_summary(const GuideClassifier& g, const gen::SampleOptions& options, double cfg,
                          int best_of = 1);

// The guidance as a wrap of best-of-K's CFG predictor (gen/verify.h), so that verified sampling
// draws classifier-guided candidates. `g` must be on and outlive the wrap.
gen::PredictorWrap guide_wrap(const GuideClassifier& g, gen::Objective objective);

}  // namespace duet::cli
