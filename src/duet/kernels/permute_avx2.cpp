// AVX2 tile transpose for permute.cpp; only called when isa_at_least(Isa::avx2).
#include <immintrin.h>

#include <cstdint>

namespace duet::kernels::detail {

// y[i * ldy + j] = x[j * ldx + i] for i < rows, j < cols, in 8x8 register blocks.
void transpose_avx2(int64_t rows, int64_t cols, const float* x, int64_t ldx, float* y,
                    int64_t ldy) {
  // Source rows (j) outer: each group of 8 source rows is read once, front to back, which keeps
  // power-of-two source strides from thrashing one L1 set; the destination tile stays in L1.
  const int64_t rows8 = rows / 8 * 8;
  int64_t j = 0;
  for (; j + 8 <= cols; j += 8) {
    for (int64_t i = 0; i < rows8; i += 8) {
      const float* s = x + j * ldx + i;
      const __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ldx),
                   r2 = _mm256_loadu_ps(s + 2 * ldx), r3 = _mm256_loadu_ps(s + 3 * ldx),
                   r4 = _mm256_loadu_ps(s + 4 * ldx), r5 = _mm256_loadu_ps(s + 5 * ldx),
                   r6 = _mm256_loadu_ps(s + 6 * ldx), r7 = _mm256_loadu_ps(s + 7 * ldx);
      const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1),
                   t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3),
                   t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
                   t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
      const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
                   u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
                   u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
                   u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      float* d = y + i * ldy + j;
      _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
      _mm256_storeu_ps(d + ldy, _mm256_permute2f128_ps(u1, u5, 0x20));
      _mm256_storeu_ps(d + 2 * ldy, _mm256_permute2f128_ps(u2, u6, 0x20));
      _mm256_storeu_ps(d + 3 * ldy, _mm256_permute2f128_ps(u3, u7, 0x20));
      _mm256_storeu_ps(d + 4 * ldy, _mm256_permute2f128_ps(u0, u4, 0x31));
      _mm256_storeu_ps(d + 5 * ldy, _mm256_permute2f128_ps(u1, u5, 0x31));
      _mm256_storeu_ps(d + 6 * ldy, _mm256_permute2f128_ps(u2, u6, 0x31));
      _mm256_storeu_ps(d + 7 * ldy, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (int64_t i = rows8; i < rows; ++i)
      for (int64_t k = j; k < j + 8; ++k) y[i * ldy + k] = x[k * ldx + i];
  }
  for (; j < cols; ++j)
    for (int64_t i = 0; i < rows; ++i) y[i * ldy + j] = x[j * ldx + i];
}

}  // namespace duet::kernels::detail
