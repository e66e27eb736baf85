// The AVX2 twin of weights_hash_block (packed_weights.cpp): its 32 lanes as four registers of
// eight, one vpmulld per eight words, so a block hashes at the speed it can be read.
#include <immintrin.h>

#include "duet/kernels/packed_weights.h"

namespace duet::kernels::detail {

uint64_t weights_hash_block_avx2(const float* w, int64_t n) {
  static_assert(kHashLanes == 32, "four registers of eight lanes");
  const __m256i step = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i seed = _mm256_add_epi32(_mm256_set1_epi32(int(kHashLaneSeed)), step);
  __m256i lane[4];
  for (int r = 0; r < 4; ++r) lane[r] = _mm256_add_epi32(seed, _mm256_set1_epi32(8 * r));
  const __m256i prime = _mm256_set1_epi32(int(kHashLanePrime));
  const int64_t whole = n / kHashLanes * kHashLanes;
  for (int64_t i = 0; i < whole; i += kHashLanes)
    for (int r = 0; r < 4; ++r) {
      const __m256i words = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 8 * r));
      lane[r] = _mm256_mullo_epi32(_mm256_xor_si256(lane[r], words), prime);
    }
  alignas(32) uint32_t out[kHashLanes];
  for (int r = 0; r < 4; ++r) _mm256_store_si256(reinterpret_cast<__m256i*>(out + 8 * r), lane[r]);
  return fold_hash_lanes(out, w + whole, n - whole, n);
}

}  // namespace duet::kernels::detail
