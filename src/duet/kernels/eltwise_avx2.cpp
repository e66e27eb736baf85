// AVX2 row loops for eltwise.cpp; only called when isa_at_least(Isa::avx2).
#include <immintrin.h>

#include "duet/kernels/eltwise_rows.h"

namespace duet::kernels::detail {
namespace {

struct Add {
  static __m256 v(__m256 x, __m256 y) { return _mm256_add_ps(x, y); }
  static float s(float x, float y) { return x + y; }
};
struct Sub {
  static __m256 v(__m256 x, __m256 y) { return _mm256_sub_ps(x, y); }
  static float s(float x, float y) { return x - y; }
};
struct Mul {
  static __m256 v(__m256 x, __m256 y) { return _mm256_mul_ps(x, y); }
  static float s(float x, float y) { return x * y; }
};
struct Div {
  static __m256 v(__m256 x, __m256 y) { return _mm256_div_ps(x, y); }
  static float s(float x, float y) { return x / y; }
};

// Two vectors per step keep two independent ops in flight; loads before stores so out == a
// (in-place) stays correct.
template <class F>
void row(int64_t n, const float* a, int64_t sa, const float* b, int64_t sb, float* o) {
  int64_t i = 0;
  if (sa == 1 && sb == 1) {
    for (; i + 16 <= n; i += 16) {
      const __m256 r0 = F::v(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
      const __m256 r1 = F::v(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
      _mm256_storeu_ps(o + i, r0);
      _mm256_storeu_ps(o + i + 8, r1);
    }
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(o + i, F::v(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < n; ++i) o[i] = F::s(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const float y = *b;
    const __m256 vy = _mm256_set1_ps(y);
    for (; i + 16 <= n; i += 16) {
      const __m256 r0 = F::v(_mm256_loadu_ps(a + i), vy);
      const __m256 r1 = F::v(_mm256_loadu_ps(a + i + 8), vy);
      _mm256_storeu_ps(o + i, r0);
      _mm256_storeu_ps(o + i + 8, r1);
    }
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, F::v(_mm256_loadu_ps(a + i), vy));
    for (; i < n; ++i) o[i] = F::s(a[i], y);
  } else if (sa == 0 && sb == 1) {
    const float x = *a;
    const __m256 vx = _mm256_set1_ps(x);
    for (; i + 16 <= n; i += 16) {
      const __m256 r0 = F::v(vx, _mm256_loadu_ps(b + i));
      const __m256 r1 = F::v(vx, _mm256_loadu_ps(b + i + 8));
      _mm256_storeu_ps(o + i, r0);
      _mm256_storeu_ps(o + i + 8, r1);
    }
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, F::v(vx, _mm256_loadu_ps(b + i)));
    for (; i < n; ++i) o[i] = F::s(x, b[i]);
  } else {
    for (; i < n; ++i) o[i] = F::s(a[i * sa], b[i * sb]);
  }
}

}  // namespace

void binary_row_avx2(BinaryOp op, int64_t n, const float* a, int64_t sa, const float* b, int64_t sb,
                     float* out) {
  switch (op) {
    case BinaryOp::add:
      row<Add>(n, a, sa, b, sb, out);
      break;
    case BinaryOp::sub:
      row<Sub>(n, a, sa, b, sb, out);
      break;
    case BinaryOp::mul:
      row<Mul>(n, a, sa, b, sb, out);
      break;
    case BinaryOp::div:
      row<Div>(n, a, sa, b, sb, out);
      break;
  }
}

void axpby_avx2(int64_t n, float alpha, const float* x, float beta, float* y) {
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  int64_t i = 0;
  if (beta == 0.0f) {
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(x + i)));
    for (; i < n; ++i) y[i] = alpha * x[i];
    return;
  }
  for (; i + 16 <= n; i += 16) {
    const __m256 r0 =
        _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_mul_ps(vb, _mm256_loadu_ps(y + i)));
    const __m256 r1 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i + 8),
                                      _mm256_mul_ps(vb, _mm256_loadu_ps(y + i + 8)));
    _mm256_storeu_ps(y + i, r0);
    _mm256_storeu_ps(y + i + 8, r1);
  }
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i),
                                            _mm256_mul_ps(vb, _mm256_loadu_ps(y + i))));
  for (; i < n; ++i) y[i] = alpha * x[i] + beta * y[i];
}

}  // namespace duet::kernels::detail
