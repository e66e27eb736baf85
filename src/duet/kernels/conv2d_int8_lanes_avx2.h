// int16 lanes of 16, 8 or 4 channels for the int8 Winograd input transforms (AVX2 files only):
// widening loads of u8 codes, stores, and the adds and shifts of the transforms.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace duet::kernels::detail::int8_lanes {

struct Lanes16 {
  using V = __m256i;
  static constexpr int64_t kChannels = 16;
  static V load(const uint8_t* p) {
    return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static void store(int16_t* p, V v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static V add(V a, V b) { return _mm256_add_epi16(a, b); }
  static V sub(V a, V b) { return _mm256_sub_epi16(a, b); }
  template <int kBits>
  static V shl(V a) {
    return _mm256_slli_epi16(a, kBits);
  }
};
struct Lanes8 {
  using V = __m128i;
  static constexpr int64_t kChannels = 8;
  static V load(const uint8_t* p) {
    return _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static void store(int16_t* p, V v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
  static V add(V a, V b) { return _mm_add_epi16(a, b); }
  static V sub(V a, V b) { return _mm_sub_epi16(a, b); }
  template <int kBits>
  static V shl(V a) {
    return _mm_slli_epi16(a, kBits);
  }
};
struct Lanes4 : Lanes8 {
  static constexpr int64_t kChannels = 4;
  static V load(const uint8_t* p) {
    int32_t bytes;
    std::memcpy(&bytes, p, 4);
    return _mm_cvtepu8_epi16(_mm_cvtsi32_si128(bytes));
  }
  static void store(int16_t* p, V v) { _mm_storel_epi64(reinterpret_cast<__m128i*>(p), v); }
};

}  // namespace duet::kernels::detail::int8_lanes
