// AVX-512 parts of the int8 convolution around the micro-kernel, for channel-blocked activations:
// a 16-channel block of one pixel is exactly one zmm, so quantising it to 16 bytes and storing it
// from 16 int32 sums each take one pass of single instructions, where AVX2 needs two halves and a
// shuffle. At batch 1 these passes are a fifth of an int8 ResNet-20 layer. The bytes and floats
// are those of the AVX2 and scalar twins (conv2d_int8.h). Kept free of shared inline code (see
// the CMake rule for *_avx512*.cpp files); called only when isa_at_least(Isa::avx512).
#include <immintrin.h>

#include <cstdint>

#include "duet/kernels/conv2d_int8_tile.h"
#include "duet/kernels/gemm.h"

// GCC 12 starts the unmasked AVX-512 intrinsics' results from an "undefined" register, which
// -Wmaybe-uninitialized then reports at every inlined use (GCC bug 105593); nothing here reads
// an uninitialised value.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace duet::kernels::detail {

void quantize_blocked_interior_avx512(const float* x, int64_t blocks, int64_t H, int64_t W,
                                      int64_t ph, int64_t pw, int64_t C4, float inv_scale,
                                      int32_t zero_point, uint8_t* out) {
  const int64_t Wp = W + 2 * pw;
  const __m512 inv = _mm512_set1_ps(inv_scale), zp = _mm512_set1_ps(float(zero_point));
  const __m512 zero = _mm512_setzero_ps(), top = _mm512_set1_ps(127.0f);
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const float* src = x + (b * H + h) * W * 16;
      uint8_t* row = out + ((h + ph) * Wp + pw) * C4 + b * 16;
      for (int64_t v = 0; v < W; ++v) {
        // quantize_activation's steps: round half to even, add the zero point, max (NaN -> 0),
        // min; the codes are 0..127, so narrowing to bytes is exact.
        __m512 q = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(src + v * 16), inv),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(q, zp), zero), top);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(row + v * C4),
                         _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(q)));
      }
    }
}

bool int8_store_blocked_avx512(const int32_t* acc, int64_t count, int64_t kn,
                               const int32_t* zero_point_sums, const Epilogue& e, int64_t k0,
                               const float* residual, float* yb) {
  if (e.act != Activation::none && e.act != Activation::relu) return false;
  const __mmask16 live = static_cast<__mmask16>((1u << kn) - 1);  // kn in [1, 16]
  const __m512i zps = _mm512_loadu_si512(zero_point_sums);
  // int8_scaled_sum's identities for absent terms: fma(x, 1, -0) == x for every x.
  const __m512 mul = e.scale ? _mm512_maskz_loadu_ps(live, e.scale + k0) : _mm512_set1_ps(1.0f);
  const __m512 bias = e.bias ? _mm512_maskz_loadu_ps(live, e.bias + k0) : _mm512_set1_ps(-0.0f);
  const bool relu = e.act == Activation::relu;
  for (int64_t j = 0; j < count; ++j) {
    __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_load_si512(acc + j * 16), zps));
    v = _mm512_fmadd_ps(v, mul, bias);  // int8_scaled_sum: one rounding
    if (residual) v = _mm512_add_ps(v, _mm512_loadu_ps(residual + j * 16));
    if (relu) v = _mm512_max_ps(_mm512_setzero_ps(), v);  // relu_ps: NaN stays NaN
    _mm512_storeu_ps(yb + j * 16, _mm512_maskz_mov_ps(live, v));
  }
  return true;
}

}  // namespace duet::kernels::detail
