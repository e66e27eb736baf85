// Verifier-guided sampling, best-of-K: every requested image is drawn K times and a classifier
// (the verifier) keeps the candidate it finds most likely to be the requested class. Understanding
// closing generation's gap at K times the sampling compute.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <vector>

#include "duet/gen/sampler.h"
#include "duet/models/classifier.h"
#include "duet/models/unet.h"

namespace duet::gen {

// log p(labels[i] | images[i]) for generated images in the generator's value range. The gen layer
// knows nothing of a classifier's input normalisation, so the caller supplies it (see
// classifier_scorer).
using Scorer =
    std::function<std::vector<float>(const Tensor& images, const std::vector<int32_t>& labels)>;

// A Scorer from a classifier: `to_input` maps generated images to the classifier's input (e.g.
// eval::to_classifier_input with its normalisation), then log-softmax of the logits at the label,
// in batches of `batch` rows, eval mode (the previous mode comes back), no gradients.
Scorer classifier_scorer(models::Classifier& verifier,
                         std::function<Tensor(const Tensor&)> to_input, int64_t batch = 500);

// Usage Errors unless best_of >= 1 and the verifier's config (in_channels, image_size,
// num_classes) matches the generator's.
void validate_verifier(const models::UNetConfig& generator, const nlohmann::json& verifier_config,
                       int best_of);

// The seed of candidate k's starting noise: `seed` itself for k = 0 (so candidate 0 is exactly
// gen::generate's draw), a Philox-derived one for k >= 1. Candidate k's noise does not depend on
// K, so the first k candidates of a best-of-K run are those of a best-of-k run.
uint64_t candidate_seed(uint64_t seed, int k);

struct Verified {
  Tensor images;              // [N, C, H, W] the kept candidate of each image
  std::vector<int> chosen;    // [N] which candidate was kept (first of equal best scores)
  std::vector<float> scores;  // [K * N] candidate-major: scores[k * N + i] = score of candidate k
  Tensor candidates;          // [K * N, C, H, W] every candidate, candidate-major
};

// Extra guidance on top of CFG for every candidate: given the CFG predictor of the K * N rows and
// their labels, the predictor to sample with (e.g. classifier guidance,
// gen/classifier_guidance.h). Empty: CFG alone.
using PredictorWrap =
    std::function<Predictor(Predictor cfg_predictor, const std::vector<int32_t>& labels)>;

// Best-of-K (eval mode, no gradients): the K candidates of all N images run through the sampler
// as one batch of K * N (twice that under guidance), are scored, and the best is kept. Candidate 0
// of image i starts from the noise gen::generate(model, objective, labels, cfg, options, seed)
// would use and the sampler's own noise (DDPM, DDIM with eta > 0) continues that generator, so
// K = 1 gives gen::generate's images bit for bit (and, with `wrap` = classifier guidance,
// gen::generate_classifier_guided's). Deterministic for a seed and thread count.
Verified best_of_k(models::UNet& model, Objective objective, const Scorer& score,
                   const std::vector<int32_t>& labels, double cfg, const SampleOptions& options,
                   uint64_t seed, int best_of, const PredictorWrap& wrap = {});

// Network passes per image of a (best-of-K) sampling run: K x sampler evaluations x (2 under
// guidance, i.e. cfg other than 0 and 1): the unit for comparisons at equal compute.
int64_t passes_per_image(const SampleOptions& options, double cfg, int best_of = 1);

}  // namespace duet::gen
