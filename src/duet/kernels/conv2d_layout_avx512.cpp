// AVX-512 layout moves of the channel-major convolutions (see conv2d_layout_avx512.h). Both
// move 16 x 16 squares through one in-register transpose: a 16-channel block is one zmm, so
// block_rows writes whole 64-byte pixels where the AVX2 version writes two halves in two passes,
// and the prologue's or epilogue's activation (SiLU's exp in the UNet) runs 16 lanes at a time.
// Pixel and channel tails go through masked loads and stores instead of scalar loops. Called
// only when isa_at_least(avx512); includes nothing with shared inline code (see the CMake rule).
#include "duet/kernels/simd_lanes_avx512.h"  // first: it brings <immintrin.h>

#include "duet/kernels/conv2d_layout_avx512.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "duet/kernels/activation_math_lanes.h"

namespace duet::kernels::detail {
namespace {

constexpr int64_t kLanes = 16;
constexpr int64_t kPrefetchAhead = 64;  // floats: four cache lines ahead in each channel's row

__mmask16 first_lanes(int64_t count) {
  return count >= kLanes ? __mmask16(0xffff) : __mmask16((1u << count) - 1);
}

// Rows r[0..15] of 16 floats become columns: afterwards r[i][j] holds what r[j][i] held. Four
// rows at a time are transposed within each 128-bit lane (unpack, shuffle), then the 4 x 4
// grid of 128-bit lanes of each column group is transposed (two rounds of shuffle_f32x4).
[[gnu::always_inline]] inline void transpose16(__m512 (&r)[kLanes]) {
  __m512 s[4][4];  // s[g][q], 128-bit lane L: rows 4g..4g+3 at column 4L+q
  for (int g = 0; g < 4; ++g) {
    const __m512 t0 = _mm512_unpacklo_ps(r[4 * g], r[4 * g + 1]);
    const __m512 t1 = _mm512_unpackhi_ps(r[4 * g], r[4 * g + 1]);
    const __m512 t2 = _mm512_unpacklo_ps(r[4 * g + 2], r[4 * g + 3]);
    const __m512 t3 = _mm512_unpackhi_ps(r[4 * g + 2], r[4 * g + 3]);
    s[g][0] = _mm512_shuffle_ps(t0, t2, 0x44);
    s[g][1] = _mm512_shuffle_ps(t0, t2, 0xEE);
    s[g][2] = _mm512_shuffle_ps(t1, t3, 0x44);
    s[g][3] = _mm512_shuffle_ps(t1, t3, 0xEE);
  }
  for (int q = 0; q < 4; ++q) {
    const __m512 u0 = _mm512_shuffle_f32x4(s[0][q], s[1][q], 0x44);
    const __m512 u1 = _mm512_shuffle_f32x4(s[0][q], s[1][q], 0xEE);
    const __m512 u2 = _mm512_shuffle_f32x4(s[2][q], s[3][q], 0x44);
    const __m512 u3 = _mm512_shuffle_f32x4(s[2][q], s[3][q], 0xEE);
    r[q] = _mm512_shuffle_f32x4(u0, u2, 0x88);
    r[4 + q] = _mm512_shuffle_f32x4(u0, u2, 0xDD);
    r[8 + q] = _mm512_shuffle_f32x4(u1, u3, 0x88);
    r[12 + q] = _mm512_shuffle_f32x4(u1, u3, 0xDD);
  }
}

template <bool kPrologue, Activation A>
void block_rows_impl(const float* x, int64_t C, int64_t H, int64_t W, int64_t row0, int64_t rows,
                     float* dst, const Prologue& p) {
  const int64_t n = rows * W;
  for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
    float* d = dst + c0 * n;  // block c0 / 16 of [blocks][n][16]
    const int64_t live = std::min(kLanes, C - c0);
    const float* src[kLanes];
    __m512 a[kLanes], b[kLanes];  // the prologue's map of each channel
    for (int64_t j = 0; j < live; ++j) {
      src[j] = x + ((c0 + j) * H + row0) * W;
      if constexpr (kPrologue) {
        a[j] = _mm512_set1_ps(p.scale ? p.scale[c0 + j] : 1.0f);
        b[j] = _mm512_set1_ps(p.shift ? p.shift[c0 + j] : 0.0f);
      }
    }
    for (int64_t i = 0; i < n; i += kLanes) {
      const int64_t len = std::min(kLanes, n - i);
      const __mmask16 pixels = first_lanes(len);
      __m512 r[kLanes];
#pragma GCC unroll 16
      for (int64_t j = 0; j < kLanes; ++j) {
        if (j >= live) {
          r[j] = _mm512_setzero_ps();  // the block's padding lanes
          continue;
        }
        // A prefetch never faults, so running past the row's end is harmless; the address is
        // formed as an integer, not as a pointer outside the array.
        _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(src[j] + i) +
                                                   kPrefetchAhead * sizeof(float)),
                     _MM_HINT_T0);
        r[j] = _mm512_maskz_loadu_ps(pixels, src[j] + i);
        if constexpr (kPrologue)
          r[j] = act_math::activate_of<simd::Lanes16>(A, _mm512_fmadd_ps(r[j], a[j], b[j]));
      }
      transpose16(r);
      // Whole blocks store straight from the registers; with a loop bound of len the compiler
      // spilled all 16 and copied them out with rep movsq (14 % of this function in ResNet-20
      // training, whose weight-gradient segments are a few rows long).
      if (len == kLanes) {
#pragma GCC unroll 16
        for (int64_t j = 0; j < kLanes; ++j) _mm512_storeu_ps(d + (i + j) * kLanes, r[j]);
      } else {
        for (int64_t j = 0; j < len; ++j) _mm512_storeu_ps(d + (i + j) * kLanes, r[j]);
      }
    }
  }
}

template <Activation A>
void store_transposed_impl(const float* ct, int64_t ldct, int64_t len, int64_t nk, float* y,
                           int64_t ldy, const Epilogue& e, int64_t ch0, const float* res) {
  for (int64_t k0 = 0; k0 < nk; k0 += kLanes) {
    const int64_t kn = std::min(kLanes, nk - k0);
    const __mmask16 channels = first_lanes(kn);
    for (int64_t i0 = 0; i0 < len; i0 += kLanes) {
      const int64_t in = std::min(kLanes, len - i0);
      const __mmask16 pixels = first_lanes(in);
      __m512 r[kLanes];
      for (int64_t j = 0; j < kLanes; ++j)
        r[j] = j < in ? _mm512_maskz_loadu_ps(channels, ct + (i0 + j) * ldct + k0)
                      : _mm512_setzero_ps();
      transpose16(r);
      for (int64_t k = 0; k < kn; ++k) {
        const int64_t ch = ch0 + k0 + k;
        __m512 v = r[k];
        if (e.scale) v = _mm512_mul_ps(v, _mm512_set1_ps(e.scale[ch]));
        if (e.shift) v = _mm512_add_ps(v, _mm512_set1_ps(e.shift[ch]));
        if (e.bias) v = _mm512_add_ps(v, _mm512_set1_ps(e.bias[ch]));
        const int64_t o = (k0 + k) * ldy + i0;
        if (res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(pixels, res + o));
        v = act_math::activate_of<simd::Lanes16>(A, v);
        // A plain store where every pixel is live: this function's share of unet-s training fell
        // from 9.5 to 8.6 % on a Zen 5 against the masked store with all lanes set (in a tight
        // loop the two stores are equally fast: the gain is in the code the compiler made).
        if (in == kLanes)
          _mm512_storeu_ps(y + o, v);
        else
          _mm512_mask_storeu_ps(y + o, pixels, v);
      }
    }
  }
}

// Calls f(std::integral_constant<Activation, act>) so that the activation is a template argument.
template <class Fn>
void with_activation(Activation act, Fn&& f) {
  switch (act) {
    case Activation::none:
      return f(std::integral_constant<Activation, Activation::none>{});
    case Activation::relu:
      return f(std::integral_constant<Activation, Activation::relu>{});
    case Activation::silu:
      return f(std::integral_constant<Activation, Activation::silu>{});
    case Activation::gelu:
      return f(std::integral_constant<Activation, Activation::gelu>{});
  }
}

}  // namespace

void block_rows_avx512(const float* x, int64_t C, int64_t H, int64_t W, int64_t row0, int64_t rows,
                       float* dst, const Prologue* prologue) {
  if (!prologue) return block_rows_impl<false, Activation::none>(x, C, H, W, row0, rows, dst, {});
  with_activation(prologue->act, [&](auto act) {
    block_rows_impl<true, decltype(act)::value>(x, C, H, W, row0, rows, dst, *prologue);
  });
}

void store_transposed_avx512(const float* ct, int64_t ldct, int64_t len, int64_t nk, float* y,
                             int64_t ldy, const Epilogue& e, int64_t ch0, const float* res) {
  with_activation(e.act, [&](auto act) {
    store_transposed_impl<decltype(act)::value>(ct, ldct, len, nk, y, ldy, e, ch0, res);
  });
}

}  // namespace duet::kernels::detail
