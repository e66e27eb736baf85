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

// The 64-bit content hash the cache checks (exposed for its test). It runs on every use, so at
// batch 1 it once took 7 % of a unet-s sampling step (one thread, a scalar multiply per word).
// Now the words go in blocks of kHashBlock, hashed on the pool's threads and combined in order,
// so the value depends on the weights alone, not on the thread count or the ISA.
uint64_t weights_hash(const float* w, int64_t n);

// One block: kHashLanes independent 32-bit lanes, word i into lane i % kHashLanes by
// lane = (lane ^ word) * kHashLanePrime (a bijection of the lane for each word, so changing any
// one word always changes the result), the lanes and the words past the last whole row folded
// into 64 bits with the length. The AVX2 twin gives the same value.
inline constexpr int64_t kHashBlock = int64_t{1} << 14;
inline constexpr int kHashLanes = 32;
inline constexpr uint32_t kHashLanePrime = 16777619u;
inline constexpr uint32_t kHashLaneSeed = 2166136261u;  // lane j starts at seed + j
uint64_t weights_hash_block(const float* w, int64_t n);
uint64_t weights_hash_block_avx2(const float* w, int64_t n);
// The fold both share: the lanes' end states (and the remaining words) into 64 bits.
uint64_t fold_hash_lanes(const uint32_t* lanes, const float* rest, int64_t rest_n, int64_t n);

}  // namespace detail

}  // namespace duet::kernels
