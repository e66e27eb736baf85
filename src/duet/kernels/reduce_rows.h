// Internal: the contiguous inner loops behind reduce.cpp, portable and AVX2 versions.
#pragma once

#include <cmath>
#include <cstdint>

namespace duet::kernels::detail {

// Order used by max/argmax everywhere: strictly greater wins (so ties keep the first), and a NaN
// beats any number (so the first NaN wins).
inline bool max_better(float v, float best) {
  return v > best || (std::isnan(v) && !std::isnan(best));
}

// Sum of n contiguous floats: blocks of float lanes, block totals added in double.
double sum_run_generic(const float* x, int64_t n);
double sum_run_avx2(const float* x, int64_t n);
// Max of n > 0 contiguous floats and the index of the winner (max_better order).
void max_run_generic(const float* x, int64_t n, float& best, int64_t& index);
void max_run_avx2(const float* x, int64_t n, float& best, int64_t& index);
// Column max: where x[j] beats best[j] (max_better order), best[j] = x[j] and index[j] = at.
void max_row_generic(const float* x, int64_t n, float* best, int64_t* index, int64_t at);
void max_row_avx2(const float* x, int64_t n, float* best, int64_t* index, int64_t at);
// acc[j] += x[j] for j < n.
void add_row_generic(const float* x, int64_t n, float* acc);
void add_row_avx2(const float* x, int64_t n, float* acc);

}  // namespace duet::kernels::detail
