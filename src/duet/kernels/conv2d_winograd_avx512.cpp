// AVX-512 Winograd transforms (see conv2d_winograd_avx512.h): the lane-generic code of
// conv2d_winograd_variants.h instantiated on Lanes16, and the output store with a 16-lane
// epilogue. Called only when isa_at_least(avx512); includes nothing with shared inline code
// (see the CMake rule).
#include "duet/kernels/simd_lanes_avx512.h"  // first: it brings <immintrin.h>

#include "duet/kernels/conv2d_winograd_avx512.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "duet/kernels/activation_math_lanes.h"
#include "duet/kernels/conv2d_winograd_variants.h"

namespace duet::kernels::detail {
namespace {

using simd::Lanes16;
using winograd::F2x2;
using winograd::F4x4;

constexpr int64_t kLanes = 16;

// The epilogue of one 16-channel block: out = keep ? act(v * mul + add (+ residual)) : 0.
struct BlockEpilogue {
  __m512 mul, add;
  __mmask16 keep;
};

std::vector<BlockEpilogue> block_epilogues(const Epilogue& e, int64_t Kp, int64_t K) {
  std::vector<BlockEpilogue> out;
  for (int64_t at = 0; at < Kp; at += kLanes) {
    const __mmask16 keep = __mmask16(K - at >= kLanes ? 0xffff : (1u << (K - at)) - 1);
    BlockEpilogue be{_mm512_set1_ps(1.0f), _mm512_setzero_ps(), keep};
    if (e.scale) be.mul = _mm512_maskz_loadu_ps(keep, e.scale + at);
    if (e.shift) be.add = _mm512_maskz_loadu_ps(keep, e.shift + at);
    if (e.bias) be.add = _mm512_add_ps(be.add, _mm512_maskz_loadu_ps(keep, e.bias + at));
    out.push_back(be);
  }
  return out;
}

template <class F, Activation A>
void store_tiles(const WinogradTileStore& st, const std::vector<BlockEpilogue>& be) {
  constexpr int64_t m = F::m;
  const bool scaled = st.epilogue->scale != nullptr;
  for (int64_t ty = st.r0; ty < st.r1; ++ty) {
    const int64_t out_rows = std::min<int64_t>(m, st.P - m * ty);
    for (int64_t tx = 0; tx < st.TQ; ++tx) {
      const float* m0 = st.products + ((ty - st.r0) * st.TQ + tx) * st.ld_tile;
      const int64_t out_cols = std::min<int64_t>(m, st.Q - m * tx);
      const int64_t p = (m * ty) * st.Q + m * tx - st.p0;  // the tile's top-left pixel
      for (int64_t lane = 0; lane < st.Kp; lane += kLanes) {
        __m512 y[m][m];
        winograd::transform_output_of<F, Lanes16>(m0 + lane, st.Kp, y);
        const BlockEpilogue& ep = be[size_t(lane / kLanes)];
        const int64_t block_at = lane / kLanes * st.ld_block;
        for (int64_t a = 0; a < out_rows; ++a)
          for (int64_t b = 0; b < out_cols; ++b) {
            const int64_t at = block_at + (p + a * st.Q + b) * st.ld_pixel;
            __m512 v = scaled ? _mm512_mul_ps(y[a][b], ep.mul) : y[a][b];
            v = _mm512_add_ps(v, ep.add);
            if (st.residual) v = _mm512_add_ps(v, _mm512_loadu_ps(st.residual + at));
            _mm512_storeu_ps(st.y + at,
                             _mm512_maskz_mov_ps(ep.keep, act_math::activate_of<Lanes16>(A, v)));
          }
      }
    }
  }
}

template <class F>
void store_tiles_of(const WinogradTileStore& st) {
  const std::vector<BlockEpilogue> be = block_epilogues(*st.epilogue, st.Kp, st.K);
  switch (st.epilogue->act) {
    case Activation::none:
      return store_tiles<F, Activation::none>(st, be);
    case Activation::relu:
      return store_tiles<F, Activation::relu>(st, be);
    case Activation::silu:
      return store_tiles<F, Activation::silu>(st, be);
    case Activation::gelu:
      return store_tiles<F, Activation::gelu>(st, be);
  }
}

}  // namespace

void winograd_input_row_avx512(int64_t m, const float* plane, int64_t H, int64_t W, int64_t h0,
                               int64_t w0, int64_t tiles, float* v, int64_t ld_tile,
                               int64_t ld_xi) {
  if (m == 4)
    winograd::transform_tile_row_of<F4x4, Lanes16>(plane, H, W, h0, w0, tiles, v, ld_tile, ld_xi);
  else
    winograd::transform_tile_row_of<F2x2, Lanes16>(plane, H, W, h0, w0, tiles, v, ld_tile, ld_xi);
}

void winograd_gradient_row_avx512(int64_t m, const float* plane, int64_t rows, int64_t Q,
                                  int64_t h0, int64_t tiles, float* y, int64_t ld_tile,
                                  int64_t ld_xi) {
  if (m == 4)
    winograd::transform_gradient_tile_row_of<F4x4, Lanes16>(plane, rows, Q, h0, tiles, y, ld_tile,
                                                            ld_xi);
  else
    winograd::transform_gradient_tile_row_of<F2x2, Lanes16>(plane, rows, Q, h0, tiles, y, ld_tile,
                                                            ld_xi);
}

void winograd_store_tiles_avx512(const WinogradTileStore& store) {
  if (store.m == 4)
    store_tiles_of<F4x4>(store);
  else
    store_tiles_of<F2x2>(store);
}

}  // namespace duet::kernels::detail
