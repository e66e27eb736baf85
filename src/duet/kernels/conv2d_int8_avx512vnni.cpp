// The int8 convolution's micro-kernel with AVX-512 VNNI: one zmm vpdpbusd adds four u8 x s8
// products into each of 16 int32 lanes, so a packed group of four taps x 16 channels (64 bytes)
// is one register and one instruction per pixel (two of each on 256-bit VNNI). Rows of eight
// pixels with even and odd tap groups in separate accumulators give sixteen independent chains;
// where a layer has two blocks or more, pairs of blocks share each broadcast pixel, and one-block
// layers of 16-byte pixels take four pixels a vector (quads_16). Integer results are identical
// to the other paths. Called only when use_avx512_vnni(); kept free of shared inline code (see
// the CMake rule for *_avx512*.cpp files).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "duet/kernels/conv2d_int8_tile.h"

// GCC 12 starts the unmasked AVX-512 intrinsics' results (the broadcasts and lane shuffles
// here) from an "undefined" register, which -W(maybe-)uninitialized then reports at every
// inlined use (GCC bug 105593); nothing here reads an uninitialised value.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

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

// Quads of 16-channel pixels (channels4 == 16, so a pixel's taps at one kernel position are 16
// bytes, and four neighbours in a row are one 64-byte load). Each 128-bit lane of a vector holds
// one pixel: vpshufd spreads its tap group t over the lane, and the weights of four output
// channels (16 bytes of the packed block) are broadcast to every lane, so one vpdpbusd adds four
// pixels x four channels. Per kernel position and quad: 1 load and 4 shuffles for 16 vpdpbusd,
// with the 16 weight broadcasts shared by the Quads quads; rows_16 needs a broadcast load per
// vpdpbusd, which held one-block layers to 50-65 % of the pair kernel's rate (ResNet-20's
// 16-channel stage on a Xeon: 120-160 against 234-251 G multiply-adds/s per core in
// isolation, this form 188-249). The sums land lane-major and are transposed once per quad.
template <int Quads>
void quads_16(const uint8_t* const* quad, const int32_t* tap_offsets, int64_t groups4,
              const int8_t* wblock, int32_t* const* acc) {
  __m512i c[Quads][4];
#pragma GCC unroll 8
  for (int q = 0; q < Quads; ++q)
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) c[q][k] = _mm512_setzero_si512();
  for (int64_t g = 0; g < groups4; g += 4) {  // one kernel position: tap groups g .. g + 3
    const int64_t o = tap_offsets[g];
    __m512i x[Quads];
#pragma GCC unroll 8
    for (int q = 0; q < Quads; ++q) x[q] = _mm512_loadu_si512(quad[q] + o);
    // Tap group g + t: dword t of every lane, against the four channel quads' weights.
    auto group = [&]<int t>() {
      const int8_t* w = wblock + (g + t) * 64;
      __m512i wq[4];
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k)
        wq[k] =
            _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + k * 16)));
#pragma GCC unroll 8
      for (int q = 0; q < Quads; ++q) {
        const __m512i a = _mm512_shuffle_epi32(x[q], static_cast<_MM_PERM_ENUM>(t * 0x55));
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) c[q][k] = _mm512_dpbusd_epi32(c[q][k], a, wq[k]);
      }
    };
    group.template operator()<0>();
    group.template operator()<1>();
    group.template operator()<2>();
    group.template operator()<3>();
  }
  // c[q][k] lane p holds pixel p's channels 4k .. 4k + 3: a 4 x 4 transpose of 128-bit lanes
  // gives each pixel its 16 channels.
#pragma GCC unroll 8
  for (int q = 0; q < Quads; ++q) {
    const __m512i lo01 = _mm512_shuffle_i32x4(c[q][0], c[q][1], 0x44);
    const __m512i lo23 = _mm512_shuffle_i32x4(c[q][2], c[q][3], 0x44);
    const __m512i hi01 = _mm512_shuffle_i32x4(c[q][0], c[q][1], 0xEE);
    const __m512i hi23 = _mm512_shuffle_i32x4(c[q][2], c[q][3], 0xEE);
    _mm512_store_si512(acc[q], _mm512_shuffle_i32x4(lo01, lo23, 0x88));
    _mm512_store_si512(acc[q] + 16, _mm512_shuffle_i32x4(lo01, lo23, 0xDD));
    _mm512_store_si512(acc[q] + 32, _mm512_shuffle_i32x4(hi01, hi23, 0x88));
    _mm512_store_si512(acc[q] + 48, _mm512_shuffle_i32x4(hi01, hi23, 0xDD));
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

void int8_block_quads_avx512vnni(const uint8_t* image, const int64_t* base, int64_t count,
                                 const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                                 int32_t* acc) {
  // The quads of every run first (pixels 16 bytes apart: one output row at stride 1), the runs'
  // 1-3 leftover pixels by rows_16 at once. count <= 64 gives at most 16 quads; pixels past
  // them (a longer call) would go to rows_16 too.
  constexpr int64_t kMaxQuads = 16;
  const uint8_t* quad[kMaxQuads];
  int32_t* quad_acc[kMaxQuads];
  int64_t quads = 0;
  for (int64_t j = 0; j < count;) {
    int64_t run = 1;
    while (j + run < count && base[j + run] == base[j + run - 1] + 16) ++run;
    const int64_t end = j + run;
    for (; j + 4 <= end && quads < kMaxQuads; j += 4, ++quads) {
      quad[quads] = image + base[j];
      quad_acc[quads] = acc + j * 16;
    }
    if (j < end) {
      in_row_groups(end - j, [&]<int R>(int64_t i) {
        rows_16<R>(image, base + j + i, tap_offsets, groups4, wblock, acc + (j + i) * 16);
      });
      j = end;
    }
  }
  // Three quads a call (12 accumulators, 3 pixel vectors and 4 weights in registers; four ran
  // 15-20 % slower in isolation, five no faster), two and two rather than three and one: quads
  // from different rows share a call.
  for (int64_t q = 0; q < quads;) {
    const int64_t left = quads - q, take = left == 4 ? 2 : std::min<int64_t>(left, 3);
    if (take == 3)
      quads_16<3>(quad + q, tap_offsets, groups4, wblock, quad_acc + q);
    else if (take == 2)
      quads_16<2>(quad + q, tap_offsets, groups4, wblock, quad_acc + q);
    else
      quads_16<1>(quad + q, tap_offsets, groups4, wblock, quad_acc + q);
    q += take;
  }
}

void int8_block_avx512vnni(const uint8_t* image, const int64_t* base, int64_t count,
                           const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                           int32_t* acc) {
  in_row_groups(count, [&]<int R>(int64_t j) {
    rows_16<R>(image, base + j, tap_offsets, groups4, wblock, acc + j * 16);
  });
}

}  // namespace duet::kernels::detail
