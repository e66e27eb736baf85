// AVX2 parts of the int8 convolution: quantising a float NCHW image into padded NHWC bytes, the
// micro-kernel (conv2d_int8_block.h) with vpmaddubsw (u8 x s8 pairs into int16, exact for 7-bit
// activations), vpmaddwd by ones into int32 and an add (or, for 7-bit weights, two tap groups'
// int16 sums added before the vpmaddwd), and the stores with the epilogue fused in: transposing
// to NCHW, or as they are into channel-blocked outputs (which are also quantised here, 16
// channels of a pixel at a time).
// Called only when isa_at_least(Isa::avx2).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "duet/kernels/conv2d_int8.h"
#include "duet/kernels/conv2d_int8_block.h"
#include "duet/kernels/gemm_epilogue.h"
#include "duet/kernels/transpose_avx2.h"

namespace duet::kernels::detail {
namespace {

// 8 floats -> 8 int32 activation codes, the vector form of quantize_activation.
inline __m256i quantize8(__m256 x, __m256 inv_scale, __m256 zero_point) {
  __m256 v =
      _mm256_round_ps(_mm256_mul_ps(x, inv_scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  v = _mm256_add_ps(v, zero_point);
  v = _mm256_max_ps(v, _mm256_setzero_ps());  // NaN -> 0 (max returns its second operand)
  v = _mm256_min_ps(v, _mm256_set1_ps(127.0f));
  return _mm256_cvtps_epi32(v);
}

// int8_block_rows<MaddubsDot> for weights within +-kPairableWeightMax: each pixel's products of
// two tap groups are added as int16 pair sums (at most 2 x 127 x 63 each, so the sum cannot
// wrap) and widened by one vpmaddwd, three multiply-port instructions for two groups where the
// plain kernel needs four. MR = 3 pixels (6 accumulators and 4 weight vectors in the 16 ymm
// registers): the int8 ResNet-20 took 69-71 ms at batch 250 on one thread, 74-76 ms with 4.
template <int MR>
[[gnu::always_inline]] inline void paired_rows(const uint8_t* image, const int64_t* base,
                                               const int32_t* tap_offsets, int64_t groups4,
                                               const int8_t* wblock, int32_t* acc) {
  using Sums = PixelSums<MR>;
  Sums sums(image, base);
  const __m256i ones = _mm256_set1_epi16(1);
  int64_t g = 0;
  for (; g + 2 <= groups4; g += 2) {
    const int64_t off0 = tap_offsets[g], off1 = tap_offsets[g + 1];
    const int8_t* w = wblock + g * 64;
    const __m256i w00 = Sums::load_weights(w), w01 = Sums::load_weights(w + 32);
    const __m256i w10 = Sums::load_weights(w + 64), w11 = Sums::load_weights(w + 96);
    for (int i = 0; i < MR; ++i) {
      const __m256i a0 = sums.broadcast(i, off0), a1 = sums.broadcast(i, off1);
      const __m256i lo =
          _mm256_add_epi16(_mm256_maddubs_epi16(a0, w00), _mm256_maddubs_epi16(a1, w10));
      const __m256i hi =
          _mm256_add_epi16(_mm256_maddubs_epi16(a0, w01), _mm256_maddubs_epi16(a1, w11));
      sums.lo[i] = _mm256_add_epi32(sums.lo[i], _mm256_madd_epi16(lo, ones));
      sums.hi[i] = _mm256_add_epi32(sums.hi[i], _mm256_madd_epi16(hi, ones));
    }
  }
  if (g < groups4)  // an odd group count: the last group alone
    sums.template accumulate_group<MaddubsDot>(tap_offsets[g], wblock + g * 64);
  sums.store(acc);
}

}  // namespace

void int8_block_avx2(const uint8_t* image, const int64_t* base, int64_t count,
                     const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                     int32_t* acc) {
  int8_block_rows<MaddubsDot>(image, base, count, tap_offsets, groups4, wblock, acc);
}

void int8_block_avx2_paired(const uint8_t* image, const int64_t* base, int64_t count,
                            const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                            int32_t* acc) {
  int64_t j = 0;
  for (; j + 3 <= count; j += 3)
    paired_rows<3>(image, base + j, tap_offsets, groups4, wblock, acc + j * 16);
  if (count - j == 2)
    paired_rows<2>(image, base + j, tap_offsets, groups4, wblock, acc + j * 16);
  else if (count - j == 1)
    paired_rows<1>(image, base + j, tap_offsets, groups4, wblock, acc + j * 16);
}

void int8_store_avx2(const int32_t* acc, int64_t count, int64_t kn, const int32_t* zero_point_sums,
                     const Epilogue& e, int64_t k0, int64_t p0, float* yb, int64_t ld) {
  int64_t j = 0;
  for (; j + 8 <= count; j += 8)
    for (int64_t c0 = 0; c0 < kn; c0 += 8) {
      const __m256i zps =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(zero_point_sums + c0));
      __m256 r[8];  // row i: pixel j + i, lanes: channels c0..c0+7
      for (int i = 0; i < 8; ++i)
        r[i] = _mm256_cvtepi32_ps(_mm256_sub_epi32(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + (j + i) * 16 + c0)), zps));
      simd::transpose8(r);  // row i: channel c0 + i, lanes: pixels j..j+7
      for (int64_t i = 0; i < std::min<int64_t>(8, kn - c0); ++i) {
        const int64_t k = k0 + c0 + i;
        // int8_scaled_sum: one fused multiply-add, as the scalar twin's std::fma.
        __m256 v = _mm256_fmadd_ps(r[i], _mm256_set1_ps(e.scale ? e.scale[k] : 1.0f),
                                   _mm256_set1_ps(e.bias ? e.bias[k] : -0.0f));
        if (e.residual)
          v = _mm256_add_ps(v, _mm256_loadu_ps(e.residual + k * e.ld_residual + p0 + j));
        _mm256_storeu_ps(yb + (c0 + i) * ld + j, gemm_detail::activate_ps(e.act, v));
      }
    }
  for (int64_t k = 0; k < kn; ++k)
    for (int64_t t = j; t < count; ++t) {
      float v = int8_scaled_sum(e, acc[t * 16 + k] - zero_point_sums[k], k0 + k);
      if (e.residual) v += e.residual[(k0 + k) * e.ld_residual + p0 + t];
      yb[k * ld + t] = gemm_detail::activate(e.act, v);
    }
}

namespace {

// A 16-channel block's epilogue constants, two halves of 8 lanes, with int8_scaled_sum's
// identities for absent scale and bias.
struct BlockConstants {
  __m256i zero_point_sums[2];
  __m256 mul[2], bias[2], live[2];
};

// The blocked store's loop for one residual choice and activation (compile-time, so the loop body
// is branch-free).
template <bool kResidual, Activation kAct>
void store_blocked_rows(const int32_t* acc, int64_t count, const BlockConstants& k,
                        const float* residual, float* yb) {
  for (int64_t j = 0; j < count; ++j)
    for (int h = 0; h < 2; ++h) {
      const int64_t at = j * 16 + 8 * h;
      __m256 v = _mm256_cvtepi32_ps(_mm256_sub_epi32(
          _mm256_load_si256(reinterpret_cast<const __m256i*>(acc + at)), k.zero_point_sums[h]));
      v = _mm256_fmadd_ps(v, k.mul[h], k.bias[h]);  // int8_scaled_sum
      if constexpr (kResidual) v = _mm256_add_ps(v, _mm256_loadu_ps(residual + at));
      _mm256_storeu_ps(yb + at, _mm256_and_ps(gemm_detail::activate_ps(kAct, v), k.live[h]));
    }
}

template <bool kResidual>
void store_blocked_for_act(Activation act, const int32_t* acc, int64_t count,
                           const BlockConstants& k, const float* residual, float* yb) {
  switch (act) {
    case Activation::none:
      return store_blocked_rows<kResidual, Activation::none>(acc, count, k, residual, yb);
    case Activation::relu:
      return store_blocked_rows<kResidual, Activation::relu>(acc, count, k, residual, yb);
    case Activation::silu:
      return store_blocked_rows<kResidual, Activation::silu>(acc, count, k, residual, yb);
    case Activation::gelu:
      return store_blocked_rows<kResidual, Activation::gelu>(acc, count, k, residual, yb);
  }
}

}  // namespace

void int8_store_blocked_avx2(const int32_t* acc, int64_t count, int64_t kn,
                             const int32_t* zero_point_sums, const Epilogue& e, int64_t k0,
                             const float* residual, float* yb) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256 one = _mm256_set1_ps(1.0f), minus_zero = _mm256_set1_ps(-0.0f);
  BlockConstants k;
  for (int h = 0; h < 2; ++h) {  // per-channel values, read only for live lanes
    const __m256i on = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(kn - 8 * h)), lane);
    k.live[h] = _mm256_castsi256_ps(on);
    k.zero_point_sums[h] =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(zero_point_sums + 8 * h));
    const int64_t at = k0 + 8 * h;
    k.mul[h] = e.scale ? _mm256_maskload_ps(e.scale + at, on) : one;
    k.bias[h] = e.bias ? _mm256_maskload_ps(e.bias + at, on) : minus_zero;
  }
  if (residual)
    store_blocked_for_act<true>(e.act, acc, count, k, residual, yb);
  else
    store_blocked_for_act<false>(e.act, acc, count, k, nullptr, yb);
}

void quantize_blocked_to_padded_nhwc_avx2(const float* x, int64_t C, int64_t H, int64_t W,
                                          int64_t ph, int64_t pw, int64_t C4,
                                          const ActivationQuant& q, uint8_t* out) {
  const int64_t Wp = W + 2 * pw;
  fill_padding(out, C, H, W, ph, pw, C4, q.zero_point);
  const __m256 inv = _mm256_set1_ps(q.inv_scale), zp = _mm256_set1_ps(float(q.zero_point));
  // A pixel's 16 channels of a block are 16 consecutive floats: quantise, narrow to bytes
  // (codes are 0..127, so the saturating packs are exact) and store 16 bytes.
  const int64_t whole = C / 16;
  for (int64_t b = 0; b < whole; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const float* src = x + (b * H + h) * W * 16;
      uint8_t* row = out + ((h + ph) * Wp + pw) * C4 + b * 16;
      for (int64_t v = 0; v < W; ++v) {
        const __m256i lo = quantize8(_mm256_loadu_ps(src + v * 16), inv, zp);
        const __m256i hi = quantize8(_mm256_loadu_ps(src + v * 16 + 8), inv, zp);
        // packs work per 128-bit lane: [lo0-3 hi0-3 | lo4-7 hi4-7] -> reorder the quads.
        const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(lo, hi), 0xd8);
        const __m128i bytes =
            _mm_packus_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(row + v * C4), bytes);
      }
    }
  quantize_blocked_channels(x, whole * 16, C, H, W, ph, pw, C4, q, out);  // a partial block
}

void quantize_to_padded_nhwc_avx2(const float* x, int64_t C, int64_t H, int64_t W, int64_t ph,
                                  int64_t pw, int64_t C4, const ActivationQuant& q, uint8_t* out) {
  const int64_t Wp = W + 2 * pw;
  fill_padding(out, C, H, W, ph, pw, C4, q.zero_point);
  const __m256 inv = _mm256_set1_ps(q.inv_scale), zp = _mm256_set1_ps(float(q.zero_point));
  const __m256i zp_codes = _mm256_set1_epi32(q.zero_point);
  // Whole blocks of 16 channels: four packed vectors (channels c0..c0+15 of 8 pixels) are
  // transposed so each pixel's 16 bytes go out in one store.
  const int64_t c16 = C / 16 * 16;
  for (int64_t c0 = 0; c0 < c16; c0 += 16)
    for (int64_t h = 0; h < H; ++h) {
      uint8_t* row = out + ((h + ph) * Wp + pw) * C4 + c0;
      int64_t v = 0;
      for (; v + 8 <= W; v += 8) {
        __m256i g[4];  // g[b] lane i: pixel v + i, byte t = channel c0 + 4b + t
        for (int b = 0; b < 4; ++b) {
          g[b] = _mm256_setzero_si256();
          for (int t = 0; t < 4; ++t) {
            const __m256i codes =
                quantize8(_mm256_loadu_ps(x + ((c0 + 4 * b + t) * H + h) * W + v), inv, zp);
            g[b] = _mm256_or_si256(g[b], _mm256_slli_epi32(codes, 8 * t));
          }
        }
        // 4 x 8 dwords -> 8 pixels x 16 bytes: u[m] holds pixel m (low half) and m + 4 (high).
        const __m256i t0 = _mm256_unpacklo_epi32(g[0], g[1]),
                      t1 = _mm256_unpackhi_epi32(g[0], g[1]);
        const __m256i t2 = _mm256_unpacklo_epi32(g[2], g[3]),
                      t3 = _mm256_unpackhi_epi32(g[2], g[3]);
        const __m256i u[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                              _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3)};
        for (int m = 0; m < 4; ++m) {
          _mm_storeu_si128(reinterpret_cast<__m128i*>(row + (v + m) * C4),
                           _mm256_castsi256_si128(u[m]));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(row + (v + m + 4) * C4),
                           _mm256_extracti128_si256(u[m], 1));
        }
      }
      for (; v < W; ++v)
        for (int64_t t = 0; t < 16; ++t)
          row[v * C4 + t] = quantize_activation(x[((c0 + t) * H + h) * W + v], q);
    }
  // The remaining channels four at a time.
  for (int64_t c0 = c16; c0 < C; c0 += 4) {
    const int64_t cn = std::min<int64_t>(4, C - c0);
    for (int64_t h = 0; h < H; ++h) {
      uint8_t* row = out + ((h + ph) * Wp + pw) * C4 + c0;
      int64_t v = 0;
      for (; v + 8 <= W; v += 8) {
        // Four channels' codes packed into one int32 per pixel: byte t = channel c0 + t.
        __m256i packed = _mm256_setzero_si256();
        for (int64_t t = 0; t < 4; ++t) {
          const __m256i codes =
              t < cn ? quantize8(_mm256_loadu_ps(x + ((c0 + t) * H + h) * W + v), inv, zp)
                     : zp_codes;
          packed = _mm256_or_si256(packed, _mm256_slli_epi32(codes, int(8 * t)));
        }
        if (C4 == 4) {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(row + v * 4), packed);
        } else {
          alignas(32) int32_t lanes[8];
          _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), packed);
          for (int64_t i = 0; i < 8; ++i) std::memcpy(row + (v + i) * C4, &lanes[i], 4);
        }
      }
      for (; v < W; ++v)
        for (int64_t t = 0; t < cn; ++t)
          row[v * C4 + t] = quantize_activation(x[((c0 + t) * H + h) * W + v], q);
    }
  }
}

}  // namespace duet::kernels::detail
