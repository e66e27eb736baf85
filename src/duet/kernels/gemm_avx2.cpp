// AVX2/FMA half of the SGEMM: the 6x16 micro-kernel with its vector epilogue, and packing
// routines that transpose 8x8 blocks in registers. Called only when isa_at_least(Isa::avx2).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "duet/kernels/activation_math.h"
#include "duet/kernels/gemm_epilogue.h"
#include "duet/kernels/gemm_kernel.h"
#include "duet/kernels/transpose_avx2.h"

namespace duet::kernels::gemm_detail {
namespace {

// Lanes [0, count) set, for masked loads/stores of row tails.
inline __m256i tail_mask(int64_t count) {
  alignas(32) static const int32_t table[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                0,  0,  0,  0,  0,  0,  0,  0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + 8 - count));
}

inline __m256 load_n(const float* p, int64_t count, __m256i mask) {
  return count == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
}

inline void store_n(float* p, __m256 v, int64_t count, __m256i mask) {
  if (count == 8)
    _mm256_storeu_ps(p, v);
  else
    _mm256_maskstore_ps(p, mask, v);
}

}  // namespace

void epilogue_block_avx2(const Epilogue& e, float* c, int64_t ldc, int64_t mr, int64_t nr,
                         int64_t row0, int64_t col0) {
  const bool by_row = e.axis == ChannelAxis::row;
  for (int64_t i = 0; i < mr; ++i) {
    const int64_t row = row0 + i;
    float* crow = c + i * ldc;
    const float* res = e.residual ? e.residual + row * e.ld_residual + col0 : nullptr;
    for (int64_t j = 0; j < nr; j += 8) {
      const int64_t cnt = std::min<int64_t>(8, nr - j);
      const __m256i mask = tail_mask(cnt);
      __m256 y = load_n(crow + j, cnt, mask);
      auto param = [&](const float* v) {
        return by_row ? _mm256_broadcast_ss(v + row) : load_n(v + col0 + j, cnt, mask);
      };
      if (e.scale) y = _mm256_mul_ps(y, param(e.scale));
      if (e.shift) y = _mm256_add_ps(y, param(e.shift));
      if (e.bias) y = _mm256_add_ps(y, param(e.bias));
      if (res) y = _mm256_add_ps(y, load_n(res + j, cnt, mask));
      store_n(crow + j, activate_ps(e.act, y), cnt, mask);
    }
  }
}

namespace {

inline __m256 merge(__m256 acc, const float* cp, const TileArgs& args, __m256 alpha, __m256 beta,
                    int64_t cnt, __m256i mask) {
  if (!args.first) return _mm256_fmadd_ps(alpha, acc, load_n(cp, cnt, mask));
  const __m256 y = _mm256_mul_ps(alpha, acc);
  if (args.beta == 0.0f) return y;  // C is not read, so NaN/Inf left in it do not leak
  return _mm256_fmadd_ps(beta, load_n(cp, cnt, mask), y);
}

// Merges the accumulators into C (alpha/beta) and applies the epilogue on the hot tile.
[[gnu::always_inline]] inline void store_tile(const __m256 (&acc)[kMR][2], float* c, int64_t ldc,
                                              int64_t mr, int64_t nr, int64_t row0, int64_t col0,
                                              const TileArgs& args) {
  const __m256 alpha = _mm256_set1_ps(args.alpha), beta = _mm256_set1_ps(args.beta);
  if (mr == kMR && nr == kNR) {
    const __m256i all = tail_mask(8);
    for (int64_t i = 0; i < kMR; ++i) {
      float* cp = c + i * ldc;
      _mm256_storeu_ps(cp, merge(acc[i][0], cp, args, alpha, beta, 8, all));
      _mm256_storeu_ps(cp + 8, merge(acc[i][1], cp + 8, args, alpha, beta, 8, all));
    }
  } else {
    for (int64_t i = 0; i < mr; ++i) {
      float* cp = c + i * ldc;
      for (int64_t h = 0; h < 2 && h * 8 < nr; ++h) {
        const int64_t cnt = std::min<int64_t>(8, nr - h * 8);
        const __m256i mask = tail_mask(cnt);
        store_n(cp + h * 8, merge(acc[i][h], cp + h * 8, args, alpha, beta, cnt, mask), cnt, mask);
      }
    }
  }
  if (args.epilogue) epilogue_block_avx2(*args.epilogue, c, ldc, mr, nr, row0, col0);
}

// Row tails (M % 6 rows) run only the FMAs of their R live rows: a 16-channel conv is 6+6+4
// rows, and the full kernel would spend a ninth of its work on padding.
template <int R>
void short_tile(int64_t kc, const float* pa, const float* pb, int64_t ldpb, float* c, int64_t ldc,
                int64_t nr, int64_t row0, int64_t col0, const TileArgs& args) {
  __m256 r[R][2];
  for (int i = 0; i < R; ++i) r[i][0] = r[i][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k, pa += kMR, pb += ldpb) {
    const __m256 b0 = _mm256_loadu_ps(pb), b1 = _mm256_loadu_ps(pb + 8);
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
      const __m256 av = _mm256_broadcast_ss(pa + i);
      r[i][0] = _mm256_fmadd_ps(av, b0, r[i][0]);
      r[i][1] = _mm256_fmadd_ps(av, b1, r[i][1]);
    }
  }
  __m256 acc[kMR][2];
  for (int i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int i = 0; i < R; ++i) {
    acc[i][0] = r[i][0];
    acc[i][1] = r[i][1];
  }
  store_tile(acc, c, ldc, R, nr, row0, col0, args);
}

}  // namespace

void micro_kernel_avx2(int64_t kc, const float* pa, const float* pb, int64_t ldpb, float* c,
                       int64_t ldc, int64_t mr, int64_t nr, int64_t row0, int64_t col0,
                       const TileArgs& args) {
  // A tile row is 64 bytes but rarely line-aligned: fetch both lines it may touch, early
  // enough that the k loop hides the latency.
  for (int64_t i = 0; i < mr; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + nr - 1), _MM_HINT_T0);
  }
  switch (mr) {
    case 1:
      return short_tile<1>(kc, pa, pb, ldpb, c, ldc, nr, row0, col0, args);
    case 2:
      return short_tile<2>(kc, pa, pb, ldpb, c, ldc, nr, row0, col0, args);
    case 3:
      return short_tile<3>(kc, pa, pb, ldpb, c, ldc, nr, row0, col0, args);
    case 4:
      return short_tile<4>(kc, pa, pb, ldpb, c, ldc, nr, row0, col0, args);
    case 5:
      return short_tile<5>(kc, pa, pb, ldpb, c, ldc, nr, row0, col0, args);
    default:
      break;
  }
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  __m256 b0, b1, av;
#define DUET_GEMM_STEP(ka)                     \
  b0 = _mm256_loadu_ps(pb + (ka)*ldpb);        \
  b1 = _mm256_loadu_ps(pb + (ka)*ldpb + 8);    \
  av = _mm256_broadcast_ss(pa + (ka)*kMR + 0); \
  c00 = _mm256_fmadd_ps(av, b0, c00);          \
  c01 = _mm256_fmadd_ps(av, b1, c01);          \
  av = _mm256_broadcast_ss(pa + (ka)*kMR + 1); \
  c10 = _mm256_fmadd_ps(av, b0, c10);          \
  c11 = _mm256_fmadd_ps(av, b1, c11);          \
  av = _mm256_broadcast_ss(pa + (ka)*kMR + 2); \
  c20 = _mm256_fmadd_ps(av, b0, c20);          \
  c21 = _mm256_fmadd_ps(av, b1, c21);          \
  av = _mm256_broadcast_ss(pa + (ka)*kMR + 3); \
  c30 = _mm256_fmadd_ps(av, b0, c30);          \
  c31 = _mm256_fmadd_ps(av, b1, c31);          \
  av = _mm256_broadcast_ss(pa + (ka)*kMR + 4); \
  c40 = _mm256_fmadd_ps(av, b0, c40);          \
  c41 = _mm256_fmadd_ps(av, b1, c41);          \
  av = _mm256_broadcast_ss(pa + (ka)*kMR + 5); \
  c50 = _mm256_fmadd_ps(av, b0, c50);          \
  c51 = _mm256_fmadd_ps(av, b1, c51);
  int64_t k = 0;
  for (; k + 4 <= kc; k += 4, pa += 4 * kMR, pb += 4 * ldpb) {
    _mm_prefetch(reinterpret_cast<const char*>(pb + 8 * ldpb), _MM_HINT_T0);
    DUET_GEMM_STEP(0)
    DUET_GEMM_STEP(1)
    DUET_GEMM_STEP(2)
    DUET_GEMM_STEP(3)
  }
  for (; k < kc; ++k, pa += kMR, pb += ldpb) {
    DUET_GEMM_STEP(0)
  }
#undef DUET_GEMM_STEP

  const __m256 acc[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                              {c30, c31}, {c40, c41}, {c50, c51}};
  store_tile(acc, c, ldc, mr, nr, row0, col0, args);
}

void pack_a_avx2(Trans trans, const float* a, int64_t lda, int64_t i0, int64_t p0, int64_t mc,
                 int64_t kc, float* dst) {
  if (trans == Trans::yes) {
    // op(A)'s rows are A's columns, so the kMR values of one k sit side by side in A: one
    // contiguous copy per k, walking down A's rows (the generic loop strides down each column).
    for (int64_t ip = 0; ip < mc; ip += kMR, dst += kMR * kc) {
      const int64_t mr = std::min(kMR, mc - ip);
      if (mr < kMR) {
        pack_a_generic(trans, a, lda, i0 + ip, p0, mr, kc, dst);
        continue;
      }
      const float* src = a + p0 * lda + i0 + ip;
      for (int64_t k = 0; k < kc; ++k, src += lda)
        std::memcpy(dst + k * kMR, src, kMR * sizeof(float));
    }
    return;
  }
  for (int64_t ip = 0; ip < mc; ip += kMR, dst += kMR * kc) {
    const int64_t mr = std::min(kMR, mc - ip);
    if (mr < kMR) {
      pack_a_generic(trans, a, lda, i0 + ip, p0, mr, kc, dst);
      continue;
    }
    const float* src = a + (i0 + ip) * lda + p0;
    int64_t k = 0;
    // Each transposed row is stored as 8 floats at a stride of 6; the 2 spilled floats land in
    // the next k's slot, which a later store overwrites, so stop one block short of the end.
    for (; k + 8 < kc; k += 8) {
      __m256 r[8];
      for (int i = 0; i < 6; ++i) r[i] = _mm256_loadu_ps(src + i * lda + k);
      r[6] = r[7] = _mm256_setzero_ps();
      simd::transpose8(r);
      float* d = dst + k * kMR;
      for (int i = 0; i < 8; ++i) _mm256_storeu_ps(d + i * kMR, r[i]);
    }
    for (; k < kc; ++k)
      for (int64_t i = 0; i < kMR; ++i) dst[k * kMR + i] = src[i * lda + k];
  }
}

void pack_b_avx2(Trans trans, const float* b, int64_t ldb, int64_t p0, int64_t j0, int64_t kc,
                 int64_t nr, float* dst) {
  if (nr < kNR) {
    pack_b_generic(trans, b, ldb, p0, j0, kc, nr, dst);
    return;
  }
  if (trans == Trans::no) {
    const float* src = b + p0 * ldb + j0;
    for (int64_t k = 0; k < kc; ++k, src += ldb) {
      _mm256_store_ps(dst + k * kNR, _mm256_loadu_ps(src));
      _mm256_store_ps(dst + k * kNR + 8, _mm256_loadu_ps(src + 8));
    }
    return;
  }
  // op(B) columns are rows of the stored B: transpose 8x8 blocks.
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8) {
    for (int64_t h = 0; h < 2; ++h) {
      const float* s = b + (j0 + h * 8) * ldb + p0 + k;
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + i * ldb);
      simd::transpose8(r);
      float* d = dst + k * kNR + h * 8;
      for (int i = 0; i < 8; ++i) _mm256_store_ps(d + i * kNR, r[i]);
    }
  }
  for (; k < kc; ++k)
    for (int64_t j = 0; j < kNR; ++j) dst[k * kNR + j] = b[(j0 + j) * ldb + p0 + k];
}

}  // namespace duet::kernels::gemm_detail
