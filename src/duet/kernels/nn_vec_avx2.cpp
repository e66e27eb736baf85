// AVX2/FMA set of the nn row primitives (see nn_vec.h). Reductions keep four 8-lane
// accumulators to hide FMA latency; tails use masked loads/stores instead of scalar loops so
// every element goes through the same arithmetic.
#include <immintrin.h>

#include <cmath>

#include "duet/kernels/nn_vec.h"
#include "duet/kernels/vec_math_avx2.h"

namespace duet::kernels::detail {
namespace {

namespace sv = nn_simd;

alignas(32) constexpr int kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

// Lanes [0, r) set, r in [0, 8].
inline __m256i tail_mask(int64_t r) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskTable + 8 - r));
}
inline __m256 load_tail(const float* p, __m256i m) {
  return _mm256_maskload_ps(p, m);
}
inline void store_tail(float* p, __m256i m, __m256 v) {
  _mm256_maskstore_ps(p, m, v);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// Applies f(i, mask_or_null) over [0, n) in 8-wide steps: full vectors, then one masked tail.
template <class F>
inline void for_each8(int64_t n, F&& f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) f(i, false, __m256i{});
  if (i < n) f(i, true, tail_mask(n - i));
}

template <class F>
inline void map1(int64_t n, const float* x, float* y, F&& op) {
  for_each8(n, [&](int64_t i, bool tail, __m256i m) {
    const __m256 v = tail ? load_tail(x + i, m) : _mm256_loadu_ps(x + i);
    const __m256 r = op(v);
    if (tail)
      store_tail(y + i, m, r);
    else
      _mm256_storeu_ps(y + i, r);
  });
}

template <class F>
inline void map2(int64_t n, const float* a, const float* b, float* y, F&& op) {
  for_each8(n, [&](int64_t i, bool tail, __m256i m) {
    const __m256 va = tail ? load_tail(a + i, m) : _mm256_loadu_ps(a + i);
    const __m256 vb = tail ? load_tail(b + i, m) : _mm256_loadu_ps(b + i);
    const __m256 r = op(va, vb);
    if (tail)
      store_tail(y + i, m, r);
    else
      _mm256_storeu_ps(y + i, r);
  });
}

void act_forward(ActFn act, int64_t n, const float* x, float* y) {
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  switch (act) {
    case ActFn::relu:  // max(0, x) keeps a NaN x (maxps returns its second operand on NaN)
      map1(n, x, y, [&](__m256 v) { return _mm256_max_ps(zero, v); });
      break;
    case ActFn::silu:
      map1(n, x, y, [&](__m256 v) {
        return _mm256_div_ps(v, _mm256_add_ps(one, sv::exp(_mm256_sub_ps(zero, v))));
      });
      break;
    case ActFn::gelu: {
      const __m256 r2 = _mm256_set1_ps(0.70710678118654752f), half = _mm256_set1_ps(0.5f);
      map1(n, x, y, [&](__m256 v) {
        const __m256 e = sv::erf(_mm256_mul_ps(v, r2));
        return _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, e));
      });
      break;
    }
    case ActFn::sigmoid:
      map1(n, x, y, [&](__m256 v) { return sv::sigmoid(v); });
      break;
    case ActFn::tanh:
      map1(n, x, y, [&](__m256 v) { return sv::tanh(v); });
      break;
  }
}

void act_backward(ActFn act, int64_t n, const float* x, const float* y, const float* dy,
                  float* dx) {
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  switch (act) {
    case ActFn::relu:
      map2(n, x, dy, dx, [&](__m256 v, __m256 g) {
        return _mm256_and_ps(_mm256_cmp_ps(v, zero, _CMP_GT_OQ), g);
      });
      break;
    case ActFn::silu:  // s (1 + x (1 - s))
      map2(n, x, dy, dx, [&](__m256 v, __m256 g) {
        const __m256 s = sv::sigmoid(v);
        const __m256 d = _mm256_mul_ps(s, _mm256_fmadd_ps(v, _mm256_sub_ps(one, s), one));
        return _mm256_mul_ps(g, d);
      });
      break;
    case ActFn::gelu: {  // Phi(x) + x phi(x); erf hands back exp(-x^2/2) for phi
      const __m256 r2 = _mm256_set1_ps(0.70710678118654752f), half = _mm256_set1_ps(0.5f);
      const __m256 inv_sqrt_2pi = _mm256_set1_ps(0.39894228040143268f);
      map2(n, x, dy, dx, [&](__m256 v, __m256 g) {
        __m256 e;
        const __m256 erf = sv::erf(_mm256_mul_ps(v, r2), &e);
        const __m256 cdf = _mm256_mul_ps(half, _mm256_add_ps(one, erf));
        const __m256 d = _mm256_fmadd_ps(_mm256_mul_ps(v, inv_sqrt_2pi), e, cdf);
        return _mm256_mul_ps(g, d);
      });
      break;
    }
    case ActFn::sigmoid:
      if (y) {
        map2(n, y, dy, dx, [&](__m256 s, __m256 g) {
          return _mm256_mul_ps(g, _mm256_mul_ps(s, _mm256_sub_ps(one, s)));
        });
      } else {
        map2(n, x, dy, dx, [&](__m256 v, __m256 g) {
          const __m256 s = sv::sigmoid(v);
          return _mm256_mul_ps(g, _mm256_mul_ps(s, _mm256_sub_ps(one, s)));
        });
      }
      break;
    case ActFn::tanh:
      map2(n, y ? y : x, dy, dx, [&](__m256 v, __m256 g) {
        const __m256 t = y ? v : sv::tanh(v);
        return _mm256_mul_ps(g, _mm256_fnmadd_ps(t, t, one));
      });
      break;
  }
}

// Reduces f(load(i)) over [0, n) with four accumulators; masked-off tail lanes are loaded as
// `fill` so they do not disturb the reduction.
template <class Load, class Comb>
inline __m256 reduce4(int64_t n, __m256 init, Load&& load, Comb&& comb) {
  __m256 a0 = init, a1 = init, a2 = init, a3 = init;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = comb(a0, load(i, false, __m256i{}));
    a1 = comb(a1, load(i + 8, false, __m256i{}));
    a2 = comb(a2, load(i + 16, false, __m256i{}));
    a3 = comb(a3, load(i + 24, false, __m256i{}));
  }
  for (; i + 8 <= n; i += 8) a0 = comb(a0, load(i, false, __m256i{}));
  if (i < n) a1 = comb(a1, load(i, true, tail_mask(n - i)));
  return comb(comb(a0, a1), comb(a2, a3));
}

float vmax(int64_t n, const float* x) {
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  const __m256 r = reduce4(
      n, ninf,
      [&](int64_t i, bool tail, __m256i m) {
        if (!tail) return _mm256_loadu_ps(x + i);
        return _mm256_blendv_ps(ninf, load_tail(x + i, m), _mm256_castsi256_ps(m));
      },
      [](__m256 a, __m256 b) { return _mm256_max_ps(a, b); });
  return hmax(r);
}

float vsum(int64_t n, const float* x) {
  return hsum(reduce4(
      n, _mm256_setzero_ps(),
      [&](int64_t i, bool tail, __m256i m) {
        return tail ? load_tail(x + i, m) : _mm256_loadu_ps(x + i);
      },
      [](__m256 a, __m256 b) { return _mm256_add_ps(a, b); }));
}

// The FMA reductions carry the products through the combine step, so they spell out the loop.
float vdot(int64_t n, const float* a, const float* b) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8)
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    s1 = _mm256_fmadd_ps(load_tail(a + i, m), load_tail(b + i, m), s1);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

float vsum_sq_dev(int64_t n, const float* x, float mean) {
  const __m256 mu = _mm256_set1_ps(mean);
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  auto sq = [&](__m256 v, __m256 acc) {
    const __m256 d = _mm256_sub_ps(v, mu);
    return _mm256_fmadd_ps(d, d, acc);
  };
  for (; i + 32 <= n; i += 32) {
    s0 = sq(_mm256_loadu_ps(x + i), s0);
    s1 = sq(_mm256_loadu_ps(x + i + 8), s1);
    s2 = sq(_mm256_loadu_ps(x + i + 16), s2);
    s3 = sq(_mm256_loadu_ps(x + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = sq(_mm256_loadu_ps(x + i), s0);
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    // Masked lanes must contribute 0, not mean^2.
    const __m256 d = _mm256_and_ps(_mm256_sub_ps(load_tail(x + i, m), mu), _mm256_castsi256_ps(m));
    s1 = _mm256_fmadd_ps(d, d, s1);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

float vexp_sum(int64_t n, const float* x, float shift, float* y) {
  const __m256 sh = _mm256_set1_ps(shift);
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 e0 = sv::exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh));
    const __m256 e1 = sv::exp(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), sh));
    if (y) {
      _mm256_storeu_ps(y + i, e0);
      _mm256_storeu_ps(y + i + 8, e1);
    }
    s0 = _mm256_add_ps(s0, e0);
    s1 = _mm256_add_ps(s1, e1);
  }
  for_each8(n - i, [&](int64_t j, bool tail, __m256i m) {
    const float* px = x + i + j;
    __m256 e = sv::exp(_mm256_sub_ps(tail ? load_tail(px, m) : _mm256_loadu_ps(px), sh));
    if (tail) e = _mm256_and_ps(e, _mm256_castsi256_ps(m));
    if (y) {
      if (tail)
        store_tail(y + i + j, m, e);
      else
        _mm256_storeu_ps(y + i + j, e);
    }
    s0 = _mm256_add_ps(s0, e);
  });
  return hsum(_mm256_add_ps(s0, s1));
}

void vaffine(int64_t n, const float* x, float a, float b, float* y) {
  const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
  map1(n, x, y, [&](__m256 v) { return _mm256_fmadd_ps(v, va, vb); });
}

void vsum_dy_dyx(int64_t n, const float* dy, const float* x, float shift, float* s_dy,
                 float* s_dyx) {
  const __m256 sh = _mm256_set1_ps(shift);
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 g0 = _mm256_loadu_ps(dy + i), g1 = _mm256_loadu_ps(dy + i + 8);
    a0 = _mm256_add_ps(a0, g0);
    a1 = _mm256_add_ps(a1, g1);
    b0 = _mm256_fmadd_ps(g0, _mm256_sub_ps(_mm256_loadu_ps(x + i), sh), b0);
    b1 = _mm256_fmadd_ps(g1, _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), sh), b1);
  }
  for_each8(n - i, [&](int64_t j, bool tail, __m256i m) {
    const float* pg = dy + i + j;
    const float* px = x + i + j;
    const __m256 g = tail ? load_tail(pg, m) : _mm256_loadu_ps(pg);
    const __m256 v = tail ? load_tail(px, m) : _mm256_loadu_ps(px);
    a0 = _mm256_add_ps(a0, g);
    b0 = _mm256_fmadd_ps(g, _mm256_sub_ps(v, sh), b0);  // masked lanes have g == 0
  });
  *s_dy = hsum(_mm256_add_ps(a0, a1));
  *s_dyx = hsum(_mm256_add_ps(b0, b1));
}

void vmul_add(int64_t n, const float* x, const float* g, const float* b, float* y) {
  if (g && b) {
    for_each8(n, [&](int64_t i, bool tail, __m256i m) {
      const __m256 v = tail ? load_tail(x + i, m) : _mm256_loadu_ps(x + i);
      const __m256 w = tail ? load_tail(g + i, m) : _mm256_loadu_ps(g + i);
      const __m256 c = tail ? load_tail(b + i, m) : _mm256_loadu_ps(b + i);
      const __m256 r = _mm256_fmadd_ps(v, w, c);
      if (tail)
        store_tail(y + i, m, r);
      else
        _mm256_storeu_ps(y + i, r);
    });
  } else if (g) {
    map2(n, x, g, y, [](__m256 v, __m256 w) { return _mm256_mul_ps(v, w); });
  } else if (b) {
    map2(n, x, b, y, [](__m256 v, __m256 w) { return _mm256_add_ps(v, w); });
  } else if (x != y) {
    map1(n, x, y, [](__m256 v) { return v; });
  }
}

void vaffine2(int64_t n, const float* dy, const float* x, float a, float b, float c, float* dx) {
  const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b), vc = _mm256_set1_ps(c);
  map2(n, dy, x, dx,
       [&](__m256 g, __m256 v) { return _mm256_fmadd_ps(g, va, _mm256_fmadd_ps(v, vb, vc)); });
}

void vsoftmax_bwd(int64_t n, const float* y, const float* dy, float s, float* dx) {
  const __m256 vs = _mm256_set1_ps(s);
  map2(n, y, dy, dx, [&](__m256 p, __m256 g) { return _mm256_mul_ps(p, _mm256_sub_ps(g, vs)); });
}

void vlog_softmax_bwd(int64_t n, const float* y, const float* dy, float s, float* dx) {
  const __m256 vs = _mm256_set1_ps(s);
  map2(n, y, dy, dx, [&](__m256 ly, __m256 g) { return _mm256_fnmadd_ps(sv::exp(ly), vs, g); });
}

void vaffine_tail(int64_t n, const float* x, float a, float b, const float* r, bool relu,
                  float* y) {
  const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b), zero = _mm256_setzero_ps();
  // max(0, v) keeps a NaN v (maxps returns its second operand on NaN), as the ReLU does.
  auto tail = [&](__m256 v) { return relu ? _mm256_max_ps(zero, v) : v; };
  if (r)
    map2(n, x, r, y,
         [&](__m256 v, __m256 w) { return tail(_mm256_add_ps(_mm256_fmadd_ps(v, va, vb), w)); });
  else
    map1(n, x, y, [&](__m256 v) { return tail(_mm256_fmadd_ps(v, va, vb)); });
}

}  // namespace

const NnVec& nn_vec_avx2() {
  static const NnVec v{
      act_forward, act_backward, vmax,     vsum,     vdot,         vsum_sq_dev,      vexp_sum,
      vaffine,     vsum_dy_dyx,  vmul_add, vaffine2, vsoftmax_bwd, vlog_softmax_bwd, vaffine_tail};
  return v;
}

}  // namespace duet::kernels::detail
