// Internal to the SGEMM implementation: blocking sizes, the packed-panel layout shared by the
// driver (gemm.cpp) and the micro-kernels (generic in gemm.cpp, AVX2 in gemm_avx2.cpp), and the
// scalar epilogue every edge path uses. Not a public header.
#pragma once

#include <cstdint>

#include "duet/kernels/activation_math.h"
#include "duet/kernels/gemm.h"

namespace duet::kernels::gemm_detail {

// 6x16 micro-tile: 12 ymm accumulators + 2 for B + 1 broadcast of A fills the 16 registers.
// KC keeps a 16-wide B micro-panel (16 KiB) in L1, MC x KC of A (144 KiB) sits in L2, and
// KC x NC of B stays in L3.
inline constexpr int64_t kMR = 6;
inline constexpr int64_t kNR = 16;
inline constexpr int64_t kKC = 256;
inline constexpr int64_t kMC = 144;
inline constexpr int64_t kNC = 4080;
static_assert(kMC % kMR == 0 && kNC % kNR == 0);
// Up to this many rows of A, B is packed one micro-panel at a time just before use (the
// ResNet-20 conv shapes have M = 16, 32, 64).
inline constexpr int64_t kPanelBMaxRows = 64;

// How a micro-tile's product is merged into C. The epilogue is set only on the last k block.
struct TileArgs {
  float alpha = 1.0f;
  float beta = 0.0f;
  bool first = true;                   // first k block: C = alpha*acc + beta*C (beta 0: overwrite)
  const Epilogue* epilogue = nullptr;  // non-null: apply after the merge (tile still in cache)
};

// Computes the mr x nr (<= kMR x kNR) tile at c (global position row0, col0) from a packed A
// micro-panel (kc x kMR, k-major) and a B micro-panel of kc rows of kNR floats, ldpb apart:
// kNR when packed, ldb when a row-major B is read in place (few rows of A, see gemm.cpp).
using MicroKernel = void (*)(int64_t kc, const float* pa, const float* pb, int64_t ldpb, float* c,
                             int64_t ldc, int64_t mr, int64_t nr, int64_t row0, int64_t col0,
                             const TileArgs& args);

void micro_kernel_generic(int64_t kc, const float* pa, const float* pb, int64_t ldpb, float* c,
                          int64_t ldc, int64_t mr, int64_t nr, int64_t row0, int64_t col0,
                          const TileArgs& args);
void micro_kernel_avx2(int64_t kc, const float* pa, const float* pb, int64_t ldpb, float* c,
                       int64_t ldc, int64_t mr, int64_t nr, int64_t row0, int64_t col0,
                       const TileArgs& args);

// Packs rows [i0, i0+mc) x cols [p0, p0+kc) of op(A) into kMR-row micro-panels, zero-padded.
using PackA = void (*)(Trans trans, const float* a, int64_t lda, int64_t i0, int64_t p0, int64_t mc,
                       int64_t kc, float* dst);
// Packs one kNR-wide micro-panel: rows [p0, p0+kc) x cols [j0, j0+nr) of op(B), zero-padded.
using PackB = void (*)(Trans trans, const float* b, int64_t ldb, int64_t p0, int64_t j0, int64_t kc,
                       int64_t nr, float* dst);

void pack_a_generic(Trans trans, const float* a, int64_t lda, int64_t i0, int64_t p0, int64_t mc,
                    int64_t kc, float* dst);
void pack_b_generic(Trans trans, const float* b, int64_t ldb, int64_t p0, int64_t j0, int64_t kc,
                    int64_t nr, float* dst);
void pack_a_avx2(Trans trans, const float* a, int64_t lda, int64_t i0, int64_t p0, int64_t mc,
                 int64_t kc, float* dst);
void pack_b_avx2(Trans trans, const float* b, int64_t ldb, int64_t p0, int64_t j0, int64_t kc,
                 int64_t nr, float* dst);

inline float activate(Activation act, float x) {
  switch (act) {
    case Activation::none:
      return x;
    case Activation::relu:
      return act_math::relu(x);
    case Activation::silu:
      return act_math::silu(x);
    case Activation::gelu:
      return act_math::gelu(x);
  }
  return x;
}

#if defined(__AVX2__) && defined(__FMA__)
// The vector twin of activate(), for the AVX2 epilogues.
inline __m256 activate_ps(Activation act, __m256 y) {
  switch (act) {
    case Activation::none:
      return y;
    case Activation::relu:
      return act_math::relu_ps(y);
    case Activation::silu:
      return act_math::silu_ps(y);
    case Activation::gelu:
      return act_math::gelu_ps(y);
  }
  return y;
}
#endif

// The epilogue for one element y at C[i, j] (global indices), in gemm.h's order.
inline float epilogue_scalar(const Epilogue& e, float y, int64_t i, int64_t j) {
  const int64_t ch = e.axis == ChannelAxis::row ? i : j;
  if (e.scale) y *= e.scale[ch];
  if (e.shift) y += e.shift[ch];
  if (e.bias) y += e.bias[ch];
  if (e.residual) y += e.residual[i * e.ld_residual + j];
  return activate(e.act, y);
}

}  // namespace duet::kernels::gemm_detail
