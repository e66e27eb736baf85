// Tensors to and from safetensors files: the bridge between io/safetensors (raw bytes, no Tensor)
// and the rest of the engine. Floating-point entries can be widened to f32 on load, so a
// checkpoint saved by PyTorch in half or bfloat16 still loads into an f32 model.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "duet/io/safetensors.h"
#include "duet/tensor/tensor.h"

namespace duet::io {

struct LoadOptions {
  bool floats_to_f32 = false;  // convert F16 / BF16 / F64 entries to F32
};

// Every entry as a contiguous Tensor of its dtype (or f32, see LoadOptions).
std::map<std::string, Tensor> tensors_from_file(const SafetensorsFile& file,
                                                const LoadOptions& options = {});
std::map<std::string, Tensor> load_tensors(const std::string& path,
                                           const LoadOptions& options = {});

// Writes named tensors (made contiguous) in the given order, atomically.
void save_tensors(const std::string& path,
                  const std::vector<std::pair<std::string, Tensor>>& tensors,
                  const std::map<std::string, std::string>& metadata = {});

}  // namespace duet::io
