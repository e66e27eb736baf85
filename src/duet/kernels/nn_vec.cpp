// Portable set of the nn row primitives (see nn_vec.h) and the ISA switch. Reductions keep
// eight independent partial sums so the compiler can vectorise them without reassociating
// (and so they round like the AVX2 lanes, keeping the two paths close).
#include "duet/kernels/nn_vec.h"

#include <algorithm>
#include <cmath>

#include "duet/kernels/isa.h"

namespace duet::kernels::detail {
namespace {

constexpr int kLanes = 8;

template <class F>
inline float reduce_sum(int64_t n, F&& term) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += term(i + l);
  for (int l = 0; i < n; ++i, ++l) acc[l] += term(i);
  float s = 0;
  for (float a : acc) s += a;
  return s;
}

inline float sigmoid(float v) {
  return 1.0f / (1.0f + std::exp(-v));
}
inline float gelu(float v) {
  return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
}
inline float gelu_grad(float v) {
  const float cdf = 0.5f * (1.0f + std::erf(v * 0.70710678118654752f));
  return cdf + v * 0.39894228040143268f * std::exp(-0.5f * v * v);
}

void act_forward(ActFn act, int64_t n, const float* x, float* y) {
  switch (act) {
    case ActFn::relu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : (x[i] == x[i] ? 0.0f : x[i]);
      break;
    case ActFn::silu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid(x[i]);
      break;
    case ActFn::gelu:
      for (int64_t i = 0; i < n; ++i) y[i] = gelu(x[i]);
      break;
    case ActFn::sigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = sigmoid(x[i]);
      break;
    case ActFn::tanh:
      for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
      break;
  }
}

void act_backward(ActFn act, int64_t n, const float* x, const float* y, const float* dy,
                  float* dx) {
  switch (act) {
    case ActFn::relu:
      for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
      break;
    case ActFn::silu:
      for (int64_t i = 0; i < n; ++i) {
        const float s = sigmoid(x[i]);
        dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
      }
      break;
    case ActFn::gelu:
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * gelu_grad(x[i]);
      break;
    case ActFn::sigmoid:
      for (int64_t i = 0; i < n; ++i) {
        const float s = y ? y[i] : sigmoid(x[i]);
        dx[i] = dy[i] * s * (1.0f - s);
      }
      break;
    case ActFn::tanh:
      for (int64_t i = 0; i < n; ++i) {
        const float t = y ? y[i] : std::tanh(x[i]);
        dx[i] = dy[i] * (1.0f - t * t);
      }
      break;
  }
}

float vmax(int64_t n, const float* x) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

float vsum(int64_t n, const float* x) {
  return reduce_sum(n, [&](int64_t i) { return x[i]; });
}

float vdot(int64_t n, const float* a, const float* b) {
  return reduce_sum(n, [&](int64_t i) { return a[i] * b[i]; });
}

float vsum_sq_dev(int64_t n, const float* x, float mean) {
  return reduce_sum(n, [&](int64_t i) {
    const float d = x[i] - mean;
    return d * d;
  });
}

float vexp_sum(int64_t n, const float* x, float shift, float* y) {
  return reduce_sum(n, [&](int64_t i) {
    const float e = std::exp(x[i] - shift);
    if (y) y[i] = e;
    return e;
  });
}

void vaffine(int64_t n, const float* x, float a, float b, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * a + b;
}

void vsum_dy_dyx(int64_t n, const float* dy, const float* x, float shift, float* s_dy,
                 float* s_dyx) {
  *s_dy = vsum(n, dy);
  *s_dyx = reduce_sum(n, [&](int64_t i) { return dy[i] * (x[i] - shift); });
}

void vmul_add(int64_t n, const float* x, const float* g, const float* b, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = (g ? x[i] * g[i] : x[i]) + (b ? b[i] : 0.0f);
}

void vaffine2(int64_t n, const float* dy, const float* x, float a, float b, float c, float* dx) {
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * a + x[i] * b + c;
}

void vsoftmax_bwd(int64_t n, const float* y, const float* dy, float s, float* dx) {
  for (int64_t i = 0; i < n; ++i) dx[i] = y[i] * (dy[i] - s);
}

void vlog_softmax_bwd(int64_t n, const float* y, const float* dy, float s, float* dx) {
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] - std::exp(y[i]) * s;
}

void vaffine_tail(int64_t n, const float* x, float a, float b, const float* r, bool relu,
                  float* y) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] * a + b + (r ? r[i] : 0.0f);
    y[i] = relu && v <= 0.0f ? 0.0f : v;  // a NaN passes (v <= 0 is false), as in act_forward
  }
}

}  // namespace

const NnVec& nn_vec_generic() {
  static const NnVec v{
      act_forward, act_backward, vmax,     vsum,     vdot,         vsum_sq_dev,      vexp_sum,
      vaffine,     vsum_dy_dyx,  vmul_add, vaffine2, vsoftmax_bwd, vlog_softmax_bwd, vaffine_tail};
  return v;
}

const NnVec& nn_vec() {
  if (isa_at_least(Isa::avx512)) return nn_vec_avx512();
  return isa_at_least(Isa::avx2) ? nn_vec_avx2() : nn_vec_generic();
}

}  // namespace duet::kernels::detail
