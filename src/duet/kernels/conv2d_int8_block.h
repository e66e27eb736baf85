// The int8 convolution's micro-kernel, shared by the AVX2 and AVX-VNNI translation units, which
// differ only in the dot-product step `Dot::accumulate(acc, a, w)`: 8 int32 lanes each gaining
// the sum of four u8 x s8 products. For 4 output pixels x 16 channels per call: per group of four
// taps, one 32-bit broadcast of the pixel's four activation bytes (four channels of one NHWC
// pixel) against two vectors of 8 channels' four weights. Include only from *_avx2.cpp and
// *_vnni.cpp files.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace duet::kernels::detail {

// vpmaddubsw: u8 x s8 pairs summed into int16 (no saturation with 7-bit activations), then
// vpmaddwd by ones: int16 pairs into int32.
struct MaddubsDot {
  static __m256i accumulate(__m256i acc, __m256i a, __m256i w) {
    const __m256i pairs = _mm256_maddubs_epi16(a, w);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  }
};

template <class Dot, int MR>
[[gnu::always_inline]] inline void block_rows(const uint8_t* image, const int64_t* base,
                                              const int32_t* tap_offsets, int64_t groups4,
                                              const int8_t* wblock, int32_t* acc) {
  __m256i c0[MR], c1[MR];
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = _mm256_setzero_si256();
  const uint8_t* px[MR];
  for (int i = 0; i < MR; ++i) px[i] = image + base[i];
  for (int64_t g = 0; g < groups4; ++g) {
    const int64_t off = tap_offsets[g];
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wblock + g * 64));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wblock + g * 64 + 32));
    for (int i = 0; i < MR; ++i) {
      int32_t a;
      std::memcpy(&a, px[i] + off, 4);
      const __m256i b = _mm256_set1_epi32(a);
      c0[i] = Dot::accumulate(c0[i], b, w0);
      c1[i] = Dot::accumulate(c1[i], b, w1);
    }
  }
  for (int i = 0; i < MR; ++i) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(acc + i * 16), c0[i]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(acc + i * 16 + 8), c1[i]);
  }
}

template <class Dot>
void int8_block_rows(const uint8_t* image, const int64_t* base, int64_t count,
                     const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                     int32_t* acc) {
  int64_t j = 0;
  for (; j + 4 <= count; j += 4)
    block_rows<Dot, 4>(image, base + j, tap_offsets, groups4, wblock, acc + j * 16);
  switch (count - j) {
    case 3:
      block_rows<Dot, 3>(image, base + j, tap_offsets, groups4, wblock, acc + j * 16);
      break;
    case 2:
      block_rows<Dot, 2>(image, base + j, tap_offsets, groups4, wblock, acc + j * 16);
      break;
    case 1:
      block_rows<Dot, 1>(image, base + j, tap_offsets, groups4, wblock, acc + j * 16);
      break;
    default:
      break;
  }
}

}  // namespace duet::kernels::detail
