#include "duet/io/tensor_io.h"

#include <cstring>

#include "duet/tensor/error.h"

namespace duet::io {
namespace {

bool is_wide_float(DType t) {
  return t == DType::f16 || t == DType::bf16 || t == DType::f64;
}

Tensor to_f32(const SafetensorsEntry& e, const std::byte* src) {
  Tensor t = Tensor::empty(Shape(e.shape), DType::f32);
  float* out = t.data<float>();
  const int64_t n = e.numel();
  for (int64_t i = 0; i < n; ++i) {
    if (e.dtype == DType::f64) {
      double v;
      std::memcpy(&v, src + i * 8, 8);
      out[i] = static_cast<float>(v);
    } else {
      uint16_t h;
      std::memcpy(&h, src + i * 2, 2);
      out[i] = e.dtype == DType::f16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
  }
  return t;
}

}  // namespace

std::map<std::string, Tensor> tensors_from_file(const SafetensorsFile& file,
                                                const LoadOptions& options) {
  std::map<std::string, Tensor> out;
  for (const auto& e : file.entries()) {
    if (e.shape.size() > static_cast<size_t>(kMaxDims))
      fail(file.path(), ": tensor '", e.name, "' has ", e.shape.size(),
           " dims, duet supports at most ", kMaxDims);
    const auto bytes = file.bytes(e);
    if (options.floats_to_f32 && is_wide_float(e.dtype)) {
      out[e.name] = to_f32(e, bytes.data());
      continue;
    }
    Tensor t = Tensor::empty(Shape(e.shape), e.dtype);
    if (!bytes.empty()) std::memcpy(t.raw_data(), bytes.data(), bytes.size());
    out[e.name] = t;
  }
  return out;
}

std::map<std::string, Tensor> load_tensors(const std::string& path, const LoadOptions& options) {
  return tensors_from_file(SafetensorsFile::load(path), options);
}

void save_tensors(const std::string& path,
                  const std::vector<std::pair<std::string, Tensor>>& tensors,
                  const std::map<std::string, std::string>& metadata) {
  std::vector<Tensor> keep;  // contiguous copies outlive the entries that point into them
  std::vector<SafetensorsWriteEntry> entries;
  keep.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    DUET_CHECK(t.defined(), path, ": tensor '", name, "' is undefined");
    keep.push_back(t.is_contiguous() ? t : Tensor::from_vector(t.to_vector(), t.shape()));
    const Tensor& c = keep.back();
    entries.push_back(
        {name, c.dtype(), c.shape().to_vector(), c.numel() ? c.raw_data() : nullptr, c.nbytes()});
  }
  save_safetensors(path, entries, metadata);
}

}  // namespace duet::io
