// Internal to the SGEMM implementation: blocking sizes and the packed-panel layout shared by the
// driver (gemm.cpp) and the micro-kernels (generic in gemm.cpp, AVX2 in gemm_avx2.cpp, AVX-512
// in gemm_avx512.cpp). Declarations only, so the AVX-512 file can include it without compiling
// any shared inline code for AVX-512 (gemm_epilogue.h has the epilogue helpers). Not public.
#pragma once

#include <cstdint>

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

// Row panels of the wider micro-kernels: the AVX-512 kernel takes two packed A micro-panels
// (12 rows, the second kMR * kc floats after the first) against one B micro-panel.
inline constexpr int64_t kMRWide = 2 * kMR;
static_assert(kMC % kMRWide == 0);
void micro_kernel_avx512(int64_t kc, const float* pa, const float* pb, int64_t ldpb, float* c,
                         int64_t ldc, int64_t mr, int64_t nr, int64_t row0, int64_t col0,
                         const TileArgs& args);
// The AVX2 epilogue over an mr x nr block of C whose top-left is C[row0, col0] (nr <= kNR);
// the AVX-512 kernel applies its epilogue through it while the tile is still in cache.
void epilogue_block_avx2(const Epilogue& e, float* c, int64_t ldc, int64_t mr, int64_t nr,
                         int64_t row0, int64_t col0);

}  // namespace duet::kernels::gemm_detail
