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

// The int32 sums of MR output pixels x 16 channels (two 8-lane halves) and where each pixel's
// tap-(0, 0) bytes start; shared by the micro-kernels below and the AVX2 file's paired one.
template <int MR>
struct PixelSums {
  __m256i lo[MR], hi[MR];
  const uint8_t* px[MR];

  [[gnu::always_inline]] PixelSums(const uint8_t* image, const int64_t* base) {
    for (int i = 0; i < MR; ++i) {
      lo[i] = hi[i] = _mm256_setzero_si256();
      px[i] = image + base[i];
    }
  }
  // Pixel i's four activation bytes at byte offset `off`, in every 32-bit lane.
  [[gnu::always_inline]] __m256i broadcast(int i, int64_t off) const {
    int32_t a;
    std::memcpy(&a, px[i] + off, 4);
    return _mm256_set1_epi32(a);
  }
  // One tap group's products, its 16 channels' weights at w (64 bytes), into every pixel's sums.
  template <class Dot>
  [[gnu::always_inline]] void accumulate_group(int64_t off, const int8_t* w) {
    const __m256i w0 = load_weights(w), w1 = load_weights(w + 32);
    for (int i = 0; i < MR; ++i) {
      const __m256i b = broadcast(i, off);
      lo[i] = Dot::accumulate(lo[i], b, w0);
      hi[i] = Dot::accumulate(hi[i], b, w1);
    }
  }
  [[gnu::always_inline]] void store(int32_t* acc) const {
    for (int i = 0; i < MR; ++i) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(acc + i * 16), lo[i]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(acc + i * 16 + 8), hi[i]);
    }
  }
  [[gnu::always_inline]] static __m256i load_weights(const int8_t* w) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
  }
};

template <class Dot, int MR>
[[gnu::always_inline]] inline void block_rows(const uint8_t* image, const int64_t* base,
                                              const int32_t* tap_offsets, int64_t groups4,
                                              const int8_t* wblock, int32_t* acc) {
  PixelSums<MR> sums(image, base);
  for (int64_t g = 0; g < groups4; ++g)
    sums.template accumulate_group<Dot>(tap_offsets[g], wblock + g * 64);
  sums.store(acc);
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
