// The int8 convolution's micro-kernel with AVX-512 VNNI: one zmm vpdpbusd adds four u8 x s8
// products into each of 16 int32 lanes, so a packed group of four taps x 16 channels (64 bytes)
// is one register and one instruction per pixel (two of each on 256-bit VNNI). Rows of eight
// pixels with even and odd tap groups in separate accumulators give sixteen independent chains;
// where a layer has two blocks or more, pairs of blocks share each broadcast pixel.
// Integer results are identical to the other paths. Called only when use_avx512_vnni(); kept
// free of shared inline code (see the CMake rule for *_avx512*.cpp files).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "duet/kernels/conv2d_int8_tile.h"

namespace duet::kernels::detail {
namespace {

template <int Rows>
void rows_16(const uint8_t* image, const int64_t* base, const int32_t* tap_offsets, int64_t groups4,
             const int8_t* wblock, int32_t* acc) {
  __m512i even[Rows], odd[Rows];
  const uint8_t* px[Rows];
#pragma GCC unroll 8
  for (int i = 0; i < Rows; ++i) {
    even[i] = odd[i] = _mm512_setzero_si512();
    px[i] = image + base[i];
  }
  auto dot = [&](int i, int64_t off, __m512i w, __m512i& c) {
    int32_t a;
    std::memcpy(&a, px[i] + off, 4);
    c = _mm512_dpbusd_epi32(c, _mm512_set1_epi32(a), w);
  };
  int64_t g = 0;
  for (; g + 2 <= groups4; g += 2) {
    const int64_t o0 = tap_offsets[g], o1 = tap_offsets[g + 1];
    const __m512i w0 = _mm512_loadu_si512(wblock + g * 64);
    const __m512i w1 = _mm512_loadu_si512(wblock + (g + 1) * 64);
#pragma GCC unroll 8
    for (int i = 0; i < Rows; ++i) {
      dot(i, o0, w0, even[i]);
      dot(i, o1, w1, odd[i]);
    }
  }
  if (g < groups4) {
    const int64_t o0 = tap_offsets[g];
    const __m512i w0 = _mm512_loadu_si512(wblock + g * 64);
#pragma GCC unroll 8
    for (int i = 0; i < Rows; ++i) dot(i, o0, w0, even[i]);
  }
#pragma GCC unroll 8
  for (int i = 0; i < Rows; ++i)
    _mm512_store_si512(acc + i * 16, _mm512_add_epi32(even[i], odd[i]));
}

// The same for two 16-channel blocks (weights wblock and wblock + groups4 * 64): each
// broadcast pixel feeds two vpdpbusd, so a tap group costs 8 broadcasts and 2 weight loads for 16
// products, where two one-block calls load 18 for 16 (rows of 8 ran about 20 % faster per
// vpdpbusd on a Xeon). Sixteen accumulators are sixteen chains; no even/odd split is needed.
template <int Rows>
void rows_16x2(const uint8_t* image, const int64_t* base, const int32_t* tap_offsets,
               int64_t groups4, const int8_t* wblock, int32_t* acc0, int32_t* acc1) {
  __m512i c0[Rows], c1[Rows];
  const uint8_t* px[Rows];
#pragma GCC unroll 8
  for (int i = 0; i < Rows; ++i) {
    c0[i] = c1[i] = _mm512_setzero_si512();
    px[i] = image + base[i];
  }
  const int8_t* wblock1 = wblock + groups4 * 64;
  for (int64_t g = 0; g < groups4; ++g) {
    const int64_t o = tap_offsets[g];
    const __m512i w0 = _mm512_loadu_si512(wblock + g * 64);
    const __m512i w1 = _mm512_loadu_si512(wblock1 + g * 64);
#pragma GCC unroll 8
    for (int i = 0; i < Rows; ++i) {
      int32_t a;
      std::memcpy(&a, px[i] + o, 4);
      const __m512i b = _mm512_set1_epi32(a);
      c0[i] = _mm512_dpbusd_epi32(c0[i], b, w0);
      c1[i] = _mm512_dpbusd_epi32(c1[i], b, w1);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < Rows; ++i) {
    _mm512_store_si512(acc0 + i * 16, c0[i]);
    _mm512_store_si512(acc1 + i * 16, c1[i]);
  }
}

// Calls run.template operator()<R>(j) for rows j to j + R - 1 of `count`: groups of 8, then
// one of 4, then the 1 to 3 left.
template <class Run>
void in_row_groups(int64_t count, Run&& run) {
  int64_t j = 0;
  for (; j + 8 <= count; j += 8) run.template operator()<8>(j);
  if (count - j >= 4) {
    run.template operator()<4>(j);
    j += 4;
  }
  switch (count - j) {
    case 3:
      return run.template operator()<3>(j);
    case 2:
      return run.template operator()<2>(j);
    case 1:
      return run.template operator()<1>(j);
    default:
      return;
  }
}

}  // namespace

void int8_block_pair_avx512vnni(const uint8_t* image, const int64_t* base, int64_t count,
                                const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                                int32_t* acc0, int32_t* acc1) {
  in_row_groups(count, [&]<int R>(int64_t j) {
    rows_16x2<R>(image, base + j, tap_offsets, groups4, wblock, acc0 + j * 16, acc1 + j * 16);
  });
}

void int8_block_avx512vnni(const uint8_t* image, const int64_t* base, int64_t count,
                           const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                           int32_t* acc) {
  in_row_groups(count, [&]<int R>(int64_t j) {
    rows_16<R>(image, base + j, tap_offsets, groups4, wblock, acc + j * 16);
  });
}

}  // namespace duet::kernels::detail
