// The direct gradients of channel-blocked convolutions that neither Winograd nor the forward
// kernel takes (strided and 1x1 layers, the network's 1-channel stem), generic over the lane
// type L (simd_lanes_avx2.h's Lanes8: a 16-lane block is two vectors; simd_lanes_avx512.h's
// Lanes16: one). Include only from the *_avx2.cpp / *_avx512.cpp file that instantiates it,
// after its lanes header; everything here has internal linkage, so the ISAs share no code.
//
// Layouts (conv2d_blocked.h): x and dx [N][Cb][H][W][16], dy [N][Kb][P][Q][16].
// - Weight gradient, one image: acc[kb][c][r][s][16 lanes of k] += sum over output pixels of
//   dy[kb][p][q] * x[c][h][w] (the input pixel the tap reads, broadcast), a group of input
//   channels of one block at a time with their accumulators in registers along the pixels.
// - Input gradient, one input row: dx[cb][h][w][16 lanes of c] = sum over the taps that reach
//   (h, w) and over k of wt[r][s][k][cb][16] * dy[k][p][q] (broadcast), with wt the filters
//   re-laid so that 16 input channels are one vector (zero past C); tap by tap, each adding to
//   the columns it reaches.
#pragma once

#include <algorithm>
#include <cstdint>

#include "duet/kernels/conv2d_impl.h"

namespace duet::kernels::detail {
namespace {

template <class L>
struct BlockedConvGrads {
  using V = typename L::V;
  static constexpr int64_t kBlock = 16, kVecs = kBlock / L::width, kChains = 4;
  // Output columns data_row sums at once: 8 independent accumulators either way (8 zmm, or
  // 4 x 2 ymm), enough to cover the multiply-add's latency on both pipes; 4 zmm left AVX-512
  // at a third of its peak.
  static constexpr int64_t kColumns = 8 / kVecs;
  // Input channels per outer-product group: 16 accumulators (16 zmm, or 4 x 2 ymm of 16).
  static constexpr int64_t kCGroup = kVecs == 1 ? 16 : 4;

  // The first q >= 0 with q * stride >= a, and one past the last q < Q with
  // q * stride <= b (a tap's output pixels whose input column lies in [a, b] shifted).
  static int64_t first_at_least(int64_t a, int64_t stride) {
    return a <= 0 ? 0 : (a + stride - 1) / stride;
  }
  static int64_t end_at_most(int64_t b, int64_t stride, int64_t count) {
    return b < 0 ? 0 : std::min(count, b / stride + 1);
  }

  // One tap's sums for kCGroup input channels of one block (x lanes c0 % 16 ...) at once: each
  // output pixel's dy vector times each of the group's x values (broadcast from one cache line),
  // kCGroup independent accumulators in registers.
  static void weight_group(const ConvGeometry& s, const float* xc, const float* d, int64_t r,
                           int64_t t, float* a, int64_t a_stride) {
    const int64_t H = s.H, W = s.W, P = s.P, Q = s.Q;
    V sum[kCGroup][kVecs];
    for (int64_t i = 0; i < kCGroup; ++i)
      for (int64_t j = 0; j < kVecs; ++j) sum[i][j] = L::load(a + i * a_stride + j * L::width);
    const int64_t col0 = t * s.dil_w - s.pad_w;  // input column of output column q: q * sw + col0
    const int64_t q0 = first_at_least(-col0, s.stride_w);
    const int64_t q1 = end_at_most(W - 1 - col0, s.stride_w, Q);
    for (int64_t p = 0; p < P; ++p) {
      const int64_t h = p * s.stride_h - s.pad_h + r * s.dil_h;
      if (h < 0 || h >= H) continue;
      const float* xr = xc + (h * W + col0) * kBlock;
      const float* dr = d + p * Q * kBlock;
      for (int64_t q = q0; q < q1; ++q) {
        V dv[kVecs];
        for (int64_t j = 0; j < kVecs; ++j) dv[j] = L::load(dr + q * kBlock + j * L::width);
        const float* xp = xr + q * s.stride_w * kBlock;
        for (int64_t i = 0; i < kCGroup; ++i) {
          const V xv = L::set1(xp[i]);
          for (int64_t j = 0; j < kVecs; ++j) sum[i][j] = L::fmadd(dv[j], xv, sum[i][j]);
        }
      }
    }
    for (int64_t i = 0; i < kCGroup; ++i)
      for (int64_t j = 0; j < kVecs; ++j) L::store(a + i * a_stride + j * L::width, sum[i][j]);
  }

  // The same for one input channel (the channels past the last whole group: a 1-channel stem),
  // kChains independent sums over the pixels q, q + 1, ...
  static void weight_channel(const ConvGeometry& s, const float* xc, const float* d, int64_t r,
                             int64_t t, float* a) {
    const int64_t H = s.H, W = s.W, P = s.P, Q = s.Q;
    V sum[kChains][kVecs];
    for (int64_t j = 0; j < kVecs; ++j) {
      sum[0][j] = L::load(a + j * L::width);
      for (int64_t i = 1; i < kChains; ++i) sum[i][j] = L::zero();
    }
    const int64_t col0 = t * s.dil_w - s.pad_w;
    const int64_t q0 = first_at_least(-col0, s.stride_w);
    const int64_t q1 = end_at_most(W - 1 - col0, s.stride_w, Q);
    const int64_t xstep = s.stride_w * kBlock;
    for (int64_t p = 0; p < P; ++p) {
      const int64_t h = p * s.stride_h - s.pad_h + r * s.dil_h;
      if (h < 0 || h >= H) continue;
      const float* xr = xc + (h * W + col0) * kBlock;
      const float* dr = d + p * Q * kBlock;
      int64_t q = q0;
      for (; q + kChains <= q1; q += kChains)
        for (int64_t i = 0; i < kChains; ++i) {
          const V xv = L::set1(xr[(q + i) * xstep]);
          for (int64_t j = 0; j < kVecs; ++j)
            sum[i][j] = L::fmadd(L::load(dr + (q + i) * kBlock + j * L::width), xv, sum[i][j]);
        }
      for (; q < q1; ++q) {
        const V xv = L::set1(xr[q * xstep]);
        for (int64_t j = 0; j < kVecs; ++j)
          sum[0][j] = L::fmadd(L::load(dr + q * kBlock + j * L::width), xv, sum[0][j]);
      }
    }
    for (int64_t j = 0; j < kVecs; ++j) {
      for (int64_t i = 1; i < kChains; ++i) sum[0][j] = L::add(sum[0][j], sum[i][j]);
      L::store(a + j * L::width, sum[0][j]);
    }
  }

  static void weight_image(const ConvGeometry& s, const float* xb, const float* dyb, float* acc) {
    const int64_t C = s.C, Kb = (s.K + kBlock - 1) / kBlock;
    const int64_t H = s.H, W = s.W, P = s.P, Q = s.Q, R = s.R, S = s.S;
    const int64_t whole = C / kCGroup * kCGroup;  // channels in whole groups
    for (int64_t kb = 0; kb < Kb; ++kb) {
      const float* d = dyb + kb * P * Q * kBlock;
      for (int64_t c = 0; c < C; c += c < whole ? kCGroup : 1) {
        const float* xc = xb + (c / kBlock) * H * W * kBlock + c % kBlock;
        for (int64_t r = 0; r < R; ++r)
          for (int64_t t = 0; t < S; ++t) {
            float* a = acc + (((kb * C + c) * R + r) * S + t) * kBlock;
            if (c < whole)
              weight_group(s, xc, d, r, t, a, R * S * kBlock);
            else
              weight_channel(s, xc, d, r, t, a);
          }
      }
    }
  }

  static void data_row(const ConvGeometry& s, const float* dyb, const float* wt, int64_t cb,
                       int64_t h, float* dx_row) {
    const int64_t K = s.K, Cb = (s.C + kBlock - 1) / kBlock;
    const int64_t W = s.W, P = s.P, Q = s.Q, R = s.R, S = s.S;
    for (int64_t i = 0; i < W * kBlock; ++i) dx_row[i] = 0.0f;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t hp = h + s.pad_h - r * s.dil_h;
      if (hp < 0 || hp % s.stride_h != 0 || hp / s.stride_h >= P) continue;
      const int64_t p = hp / s.stride_h;
      for (int64_t t = 0; t < S; ++t) {
        // The columns w this tap reaches from an output column: w = q * stride + w0, so they
        // step by the stride and need no division per pixel.
        const int64_t w0 = t * s.dil_w - s.pad_w;
        const int64_t q0 = first_at_least(-w0, s.stride_w);
        const int64_t q1 = end_at_most(W - 1 - w0, s.stride_w, Q);
        const float* wk = wt + ((r * S + t) * K * Cb + cb) * kBlock;
        // kColumns output columns at a time share each filter vector, and their sums are
        // independent chains.
        int64_t q = q0;
        for (; q + kColumns <= q1; q += kColumns) columns<kColumns>(s, dyb, wk, p, q, w0, dx_row);
        tail_columns<kColumns - 1>(s, dyb, wk, p, q, q1 - q, w0, dx_row);
      }
    }
  }

  // The last n <= N columns of a tap, as one call of columns<n>.
  template <int64_t N>
  static void tail_columns(const ConvGeometry& s, const float* dyb, const float* wk, int64_t p,
                           int64_t q, int64_t n, int64_t w0, float* dx_row) {
    if constexpr (N > 0) {
      if (n == N) return columns<N>(s, dyb, wk, p, q, w0, dx_row);
      tail_columns<N - 1>(s, dyb, wk, p, q, n, w0, dx_row);
    }
  }

  // dx at the N columns (q + i) * stride + w0 of the row += sum over k of the tap's filter
  // vector wk[k] times dy[k][p][q + i].
  template <int64_t N>
  static void columns(const ConvGeometry& s, const float* dyb, const float* wk, int64_t p,
                      int64_t q, int64_t w0, float* dx_row) {
    const int64_t K = s.K, Cb = (s.C + kBlock - 1) / kBlock, PQ = s.P * s.Q;
    V sum[N][kVecs];
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < kVecs; ++j)
        sum[i][j] = L::load(dx_row + ((q + i) * s.stride_w + w0) * kBlock + j * L::width);
    const float* dq = dyb + (p * s.Q + q) * kBlock;  // lane k % 16 of block k / 16
    for (int64_t k = 0; k < K; ++k) {
      V wv[kVecs];
      for (int64_t j = 0; j < kVecs; ++j) wv[j] = L::load(wk + k * Cb * kBlock + j * L::width);
      const float* dk = dq + (k / kBlock) * PQ * kBlock + k % kBlock;
      for (int64_t i = 0; i < N; ++i) {
        const V dv = L::set1(dk[i * kBlock]);
        for (int64_t j = 0; j < kVecs; ++j) sum[i][j] = L::fmadd(wv[j], dv, sum[i][j]);
      }
    }
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < kVecs; ++j)
        L::store(dx_row + ((q + i) * s.stride_w + w0) * kBlock + j * L::width, sum[i][j]);
  }

  static BlockedConvGradRows table() { return {&weight_image, &data_row}; }
};

}  // namespace
}  // namespace duet::kernels::detail
