// AVX2 inner loops for reduce.cpp; only called when isa_at_least(Isa::avx2).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "duet/kernels/reduce_rows.h"

namespace duet::kernels::detail {
namespace {

float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// One lane step of max/argmax: lanes take v where it is greater, or NaN over a number (so the
// first NaN sticks in its lane).
inline void max_step(__m256 v, __m256i at, __m256& best, __m256i& where) {
  const __m256 take = _mm256_or_ps(
      _mm256_cmp_ps(v, best, _CMP_GT_OQ),
      _mm256_andnot_ps(_mm256_cmp_ps(best, best, _CMP_UNORD_Q), _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
  best = _mm256_blendv_ps(best, v, take);
  where = _mm256_castps_si256(
      _mm256_blendv_ps(_mm256_castsi256_ps(where), _mm256_castsi256_ps(at), take));
}

// Max with argmax over n <= 2^30 elements using int32 index lanes. Four independent lane sets
// hide the compare/blend latency; each lane keeps its first best, and the lanes are merged by
// value then smallest index, which is exactly the sequential first-occurrence rule.
void max_chunk(const float* x, int64_t n, float& best, int64_t& index) {
  float b = x[0];
  int64_t bi = 0;
  int64_t i = 1;
  if (n >= 32) {
    __m256 vb[4];
    __m256i vi[4];
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int a = 0; a < 4; ++a) {
      vb[a] = _mm256_loadu_ps(x + 8 * a);
      vi[a] = _mm256_add_epi32(lane, _mm256_set1_epi32(8 * a));
    }
    __m256i cur = lane;
    const __m256i step = _mm256_set1_epi32(8);
    for (i = 32; i + 32 <= n; i += 32) {
      cur = _mm256_add_epi32(cur, _mm256_set1_epi32(32));
      const __m256i c1 = _mm256_add_epi32(cur, step), c2 = _mm256_add_epi32(c1, step),
                    c3 = _mm256_add_epi32(c2, step);
      max_step(_mm256_loadu_ps(x + i), cur, vb[0], vi[0]);
      max_step(_mm256_loadu_ps(x + i + 8), c1, vb[1], vi[1]);
      max_step(_mm256_loadu_ps(x + i + 16), c2, vb[2], vi[2]);
      max_step(_mm256_loadu_ps(x + i + 24), c3, vb[3], vi[3]);
    }
    // Fold the four lane sets into one: take the other set's lane when it is better, or equal
    // (NaN counts as equal to NaN) with a smaller index.
    for (int a = 1; a < 4; ++a) {
      const __m256 nan0 = _mm256_cmp_ps(vb[0], vb[0], _CMP_UNORD_Q);
      const __m256 nana = _mm256_cmp_ps(vb[a], vb[a], _CMP_UNORD_Q);
      const __m256 better =
          _mm256_or_ps(_mm256_cmp_ps(vb[a], vb[0], _CMP_GT_OQ), _mm256_andnot_ps(nan0, nana));
      const __m256 equal =
          _mm256_or_ps(_mm256_cmp_ps(vb[a], vb[0], _CMP_EQ_OQ), _mm256_and_ps(nan0, nana));
      const __m256 earlier = _mm256_castsi256_ps(_mm256_cmpgt_epi32(vi[0], vi[a]));
      const __m256 take = _mm256_or_ps(better, _mm256_and_ps(equal, earlier));
      vb[0] = _mm256_blendv_ps(vb[0], vb[a], take);
      vi[0] = _mm256_castps_si256(
          _mm256_blendv_ps(_mm256_castsi256_ps(vi[0]), _mm256_castsi256_ps(vi[a]), take));
    }
    alignas(32) float lv[8];
    alignas(32) int32_t li[8];
    _mm256_store_ps(lv, vb[0]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(li), vi[0]);
    b = lv[0];
    bi = li[0];
    for (int k = 1; k < 8; ++k) {
      const bool eq = (lv[k] == b) || (std::isnan(lv[k]) && std::isnan(b));
      if (max_better(lv[k], b) || (eq && li[k] < bi)) {
        b = lv[k];
        bi = li[k];
      }
    }
  }
  for (; i < n; ++i)  // the tail comes after every lane's elements, so strict order is enough
    if (max_better(x[i], b)) {
      b = x[i];
      bi = i;
    }
  best = b;
  index = bi;
}

}  // namespace

double sum_run_avx2(const float* x, int64_t n) {
  double total = 0;
  constexpr int64_t kBlock = 1024;
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    const int64_t e = std::min(n, b0 + kBlock);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = b0;
    for (; i + 32 <= e; i += 32) {
      s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
      s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + i + 8));
      s2 = _mm256_add_ps(s2, _mm256_loadu_ps(x + i + 16));
      s3 = _mm256_add_ps(s3, _mm256_loadu_ps(x + i + 24));
    }
    for (; i + 8 <= e; i += 8) s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
    float s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < e; ++i) s += x[i];
    total += s;
  }
  return total;
}

void max_run_avx2(const float* x, int64_t n, float& best, int64_t& index) {
  constexpr int64_t kChunk = int64_t{1} << 30;
  max_chunk(x, std::min(n, kChunk), best, index);
  for (int64_t c = kChunk; c < n; c += kChunk) {
    float b;
    int64_t bi;
    max_chunk(x + c, std::min(n - c, kChunk), b, bi);
    if (max_better(b, best)) {
      best = b;
      index = c + bi;
    }
  }
}

void add_row_avx2(const float* x, int64_t n, float* acc) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    _mm256_storeu_ps(acc + j, _mm256_add_ps(_mm256_loadu_ps(acc + j), _mm256_loadu_ps(x + j)));
    _mm256_storeu_ps(acc + j + 8,
                     _mm256_add_ps(_mm256_loadu_ps(acc + j + 8), _mm256_loadu_ps(x + j + 8)));
  }
  for (; j + 8 <= n; j += 8)
    _mm256_storeu_ps(acc + j, _mm256_add_ps(_mm256_loadu_ps(acc + j), _mm256_loadu_ps(x + j)));
  for (; j < n; ++j) acc[j] += x[j];
}

void max_row_avx2(const float* x, int64_t n, float* best, int64_t* index, int64_t at) {
  // New maxima get rarer as rows go by, so test 8 columns at once and update only on a hit.
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(best + j);
    const __m256 take = _mm256_or_ps(
        _mm256_cmp_ps(v, b, _CMP_GT_OQ),
        _mm256_andnot_ps(_mm256_cmp_ps(b, b, _CMP_UNORD_Q), _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
    int mask = _mm256_movemask_ps(take);
    if (mask == 0) continue;
    _mm256_storeu_ps(best + j, _mm256_blendv_ps(b, v, take));
    for (; mask; mask &= mask - 1) index[j + __builtin_ctz(static_cast<unsigned>(mask))] = at;
  }
  for (; j < n; ++j)
    if (max_better(x[j], best[j])) {
      best[j] = x[j];
      index[j] = at;
    }
}

}  // namespace duet::kernels::detail
