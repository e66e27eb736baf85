// Post-training int8 for generators: every convolution of a UNet (a unified model's too, whose
// classification then runs on the same int8 encoder) gets per-output-channel int8 weights and a
// calibrated input quantisation, through the same calibration and decisions as the classifiers'
// (quantize_layers). GroupNorm, SiLU, attention's matrix products, the embeddings and every linear
// layer stay in float. The file keeps the model's own layout (no folding: a UNet has no
// BatchNorm): its config plus a "quantization" section of format "int8-generator".
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "duet/compress/quantize.h"
#include "duet/io/safetensors.h"
#include "duet/models/unet.h"
#include "duet/nn/module.h"

namespace duet::compress {

// One calibration batch: what a sampler feeds the network (x_t [N, C, H, W], t [N], y [N] int32,
// "no class" rows included, as classifier-free guidance runs them).
struct GeneratorBatch {
  Tensor x_t, t, y;
};

// Calibrates `model` (a UNet or a unified model) on the batches and makes its convolutions int8
// in place: from then on it samples through the int8 kernels (eval mode, no gradients). "first"
// and "last" in options.keep_fp32 are the input and output convolutions.
QuantizeReport quantize_generator(nn::Module& model, const std::vector<GeneratorBatch>& batches,
                                  const QuantizeOptions& options);

// Saves a quantised generator: its config plus "quantization" (format "int8-generator", method,
// int8 layer names, calibration images) and its tensors, int8 convolutions as I8 codes with their
// scales. Atomic, like every checkpoint.
void save_quantized_generator(const std::string& path, nn::Module& model,
                              const nlohmann::json& config, const QuantizeReport& report);

// What load_inference_model does with an "int8-generator" file: the model rebuilt from its
// config, the listed convolutions given their int8 slots, every tensor loaded, the int8 kernels
// attached; in eval mode. Errors name the bad field.
std::shared_ptr<nn::Module> load_int8_generator(const io::SafetensorsFile& file,
                                                const nlohmann::json& config);

}  // namespace duet::compress
