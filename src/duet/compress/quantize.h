// Post-training int8 quantisation of a folded model (compress/fold.h): calibrate the input range
// of every FusedConv on calibration images, measure each layer's int8 error in isolation, and
// turn the layers that pass into int8 (FusedConv::quantize). What stays in float and why is in
// the report: grouped (depthwise) convolutions, layers named by --keep-fp32, layers whose error
// is above the limit (mixed precision). The linear head always stays in float.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "duet/compress/calibration.h"
#include "duet/compress/int8_conv.h"
#include "duet/kernels/conv2d_int8.h"
#include "duet/models/checkpoint.h"
#include "duet/nn/module.h"

namespace duet::compress {

struct QuantizeOptions {
  CalibrationMethod method = CalibrationMethod::percentile;
  double percentile = 99.99;           // for CalibrationMethod::percentile
  std::vector<std::string> keep_fp32;  // "first", "last" (first / last conv) or layer names
  // A layer whose int8 output differs from its float output by more than this relative L2
  // error (on the first calibration batch) with the method's range first tries the ranges of
  // the other rules the observers support (minmax always; percentile and kl once histograms
  // exist, i.e. unless the method is minmax) and takes the one with the lowest error; when none
  // passes, it stays in float. 0 disables the check (and the fallback).
  double max_layer_error = 0.05;
  // Bits of the weight codes (compress/int8_conv.h): 8, or 7 for CPUs without VNNI, whose int8
  // kernel then sums two taps in int16 (faster, slightly less precise).
  int weight_bits = kMaxWeightBits;
};

struct LayerQuantization {
  std::string name;   // state_dict prefix, e.g. "body.3.conv1"
  std::string shape;  // weight shape
  bool int8 = false;
  std::string reason;          // why it stays in float (empty when int8)
  float lo = 0.0f, hi = 0.0f;  // calibrated input range
  kernels::ActivationQuant input;
  double error = 0.0;  // relative L2 error of the layer's int8 output; -1 when not measured
  // The rule whose range [lo, hi] is: the method's, or another one's where the method's range
  // failed the error limit (then method_error is the method's error, else -1).
  std::string range_rule;
  double method_error = -1.0;
};

struct QuantizeReport {
  std::string method;
  int weight_bits = kMaxWeightBits;
  int64_t calibration_images = 0;
  std::vector<LayerQuantization> layers;

  int64_t int8_layers() const;
  nlohmann::json to_json() const;
};

// One convolution to quantise, whatever module holds it: how to watch its inputs, run it in
// float, try an input quantisation on it, and turn it int8 for good.
struct QuantLayer {
  std::string name;      // state_dict prefix
  const Tensor* weight;  // F32 [K, C / groups, R, S]
  int64_t groups = 1;
  std::function<void(std::function<void(const Tensor&)>)> set_hook;  // empty hook: none
  std::function<Tensor(const Tensor&)> run_float;
  std::function<Tensor(const Tensor&, const kernels::ActivationQuant&)> run_int8;
  std::function<void(const kernels::ActivationQuant&)> make_int8;
};

// The calibration and decisions behind quantize_model, for any model: `run(b)` runs calibration
// batch b (of `batches`, `images` images in all) through the model, in eval mode and without
// gradients, on the calling thread (so every hook sees whole batches in order). Observes each
// layer's inputs (two passes for percentile / kl), resolves --keep-fp32 (first, last, names:
// usage Error for unknown ones), measures each layer's int8 error in isolation on its first
// input, and makes the layers that pass int8. Hooks are removed on return, also on errors.
QuantizeReport quantize_layers(std::vector<QuantLayer>& layers, int64_t batches, int64_t images,
                               const std::function<void(int64_t)>& run,
                               const QuantizeOptions& options);

// Calibrates on `batches` (normalised model inputs [n, C, H, W]) and quantises `folded` in
// place. Runs the model in eval mode without gradients. Usage Error for a keep_fp32 name that
// is no conv of the model; Error when the model has no FusedConv (not folded).
QuantizeReport quantize_model(nn::Module& folded, const std::vector<Tensor>& batches,
                              const QuantizeOptions& options);

// Saves a quantised folded model: the original model's config plus a "quantization" section
// (method, int8 layer names, calibration), and the folded tensors (I8 weights with their
// scales). Atomic, like every checkpoint.
void save_quantized_model(const std::string& path, nn::Module& folded, const nlohmann::json& config,
                          const QuantizeReport& report);

// What inference commands load: for an int8 checkpoint, the folded model rebuilt from the config
// with its int8 layers restored; otherwise models::load_model plus inference_model (folding).
// config is the stored config either way (with "quantization" for int8 files).
models::LoadedModel load_inference_model(const std::string& path);

// True when a checkpoint config describes an int8 model.
bool is_quantized_config(const nlohmann::json& config);
// Reads the file's config (one load of the file) and checks it.
bool is_quantized_checkpoint(const std::string& path);

}  // namespace duet::compress
