// Packed (transformed) convolution weights kept across calls while the weights cannot change:
// sampling runs the same network for every step, and packing the Winograd filters of every
// layer again each step cost about 2 % of it (unet-s). Training changes the weights every step
// and packs per call, outside any scope.
#pragma once

#include <cstdint>
#include <functional>

namespace duet::kernels {

// While one is alive (any thread; scopes nest), convolution forwards keep the packed weights
// they make; the outermost scope's end frees them. Entries are keyed by the weight pointer and
// the packing, and checked against a hash of the weights' contents on every use, so a buffer
// that was changed or reused for other weights inside the scope is packed anew, never stale.
class PackedWeightsScope {
 public:
  PackedWeightsScope();
  ~PackedWeightsScope();
  PackedWeightsScope(const PackedWeightsScope&) = delete;
  PackedWeightsScope& operator=(const PackedWeightsScope&) = delete;
};

namespace detail {

// Inside a scope: the packed form of the w_floats weights at w under `packing` (anything that
// tells packings of the same weights apart), made by pack(dst) into packed_floats floats when
// missing or stale; it stays valid until the scope ends. Outside any scope: null (the caller
// packs into its own buffer).
const float* cached_packed_weights(const float* w, int64_t w_floats, int64_t packing,
                                   int64_t packed_floats, const std::function<void(float*)>& pack);

// The 64-bit content hash the cache checks (exposed for its test).
uint64_t weights_hash(const float* w, int64_t n);

}  // namespace detail

}  // namespace duet::kernels
