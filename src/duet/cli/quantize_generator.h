// `duet quantize -m GENERATOR`: post-training int8 of a UNet generator (or a unified model),
// compress/generator_int8.h. Calibrates on noised training images as the sampler sees them,
// saves the int8 checkpoint, reloads it, and prints the compress table: parameters, MACs, file
// size, conditional accuracy and FID-ref of float vs int8 samples (with --classifier), and the
// sampling speed of the two in one alternating run.
#pragma once

#include <cstdint>
#include <string>

#include "duet/compress/quantize.h"
#include "duet/models/checkpoint.h"

namespace duet::cli {

struct GeneratorQuantizeRequest {
  std::string in, out;
  std::string calib_spec;  // training images: DATA
  int64_t calib_images = 1000;
  uint64_t seed = 0;
  compress::QuantizeOptions options;
  std::string classifier;  // judge of the samples; empty: no quality check
  int64_t per_class = 50;
  int steps = 20;
  std::string sampler;  // empty: the objective's default
  double cfg = 2.0;
  std::string bench = "quick";  // quick | full | none
  bool json = false;
};

void quantize_generator_command(const GeneratorQuantizeRequest& r, models::LoadedModel& loaded);

}  // namespace duet::cli
