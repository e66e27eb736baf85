// Reference pooling: every output visits its full (padded) window with explicit bounds tests.
#include <algorithm>
#include <cmath>
#include <limits>

#include "duet/kernels/pool.h"
#include "duet/tensor/error.h"

namespace duet::kernels::ref {
namespace {

void check_pool(const char* what, const Pool2dShape& s) {
  DUET_CHECK(s.batch >= 1 && s.channels >= 1 && s.in_h >= 1 && s.in_w >= 1 && s.kernel_h >= 1 &&
                 s.kernel_w >= 1 && s.stride_h >= 1 && s.stride_w >= 1 && s.pad_h >= 0 &&
                 s.pad_w >= 0 && 2 * s.pad_h <= s.kernel_h && 2 * s.pad_w <= s.kernel_w &&
                 s.out_h() >= 1 && s.out_w() >= 1,
             what, ": invalid pooling shape");
}

// Calls fn(plane, p, q, h, w, inside) for every window tap of every output.
template <class Fn>
void for_each_tap(const Pool2dShape& s, Fn fn) {
  for (int64_t pl = 0; pl < s.batch * s.channels; ++pl)
    for (int64_t p = 0; p < s.out_h(); ++p)
      for (int64_t q = 0; q < s.out_w(); ++q)
        for (int64_t i = 0; i < s.kernel_h; ++i)
          for (int64_t j = 0; j < s.kernel_w; ++j) {
            const int64_t h = p * s.stride_h - s.pad_h + i, w = q * s.stride_w - s.pad_w + j;
            fn(pl, p * s.out_w() + q, h, w, h >= 0 && h < s.in_h && w >= 0 && w < s.in_w);
          }
}

// PyTorch's count_include_pad divisor: the window clipped to the padded input.
double avg_divisor(const Pool2dShape& s, int64_t o) {
  const int64_t p = o / s.out_w(), q = o % s.out_w();
  const int64_t hs = p * s.stride_h - s.pad_h, ws = q * s.stride_w - s.pad_w;
  const int64_t he = std::min(hs + s.kernel_h, s.in_h + s.pad_h);
  const int64_t we = std::min(ws + s.kernel_w, s.in_w + s.pad_w);
  return double((he - hs) * (we - ws));
}

}  // namespace

void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* indices) {
  check_pool("max_pool2d_forward", s);
  const int64_t HW = s.in_h * s.in_w, PQ = s.out_h() * s.out_w();
  for (int64_t k = 0; k < s.batch * s.channels * PQ; ++k) {
    y[k] = -std::numeric_limits<float>::infinity();
    indices[k] = -1;
  }
  for_each_tap(s, [&](int64_t pl, int64_t o, int64_t h, int64_t w, bool inside) {
    if (!inside) return;
    const float v = x[pl * HW + h * s.in_w + w];
    float& best = y[pl * PQ + o];
    int32_t& bi = indices[pl * PQ + o];
    if (bi < 0 || v > best || std::isnan(v)) {
      best = v;
      bi = static_cast<int32_t>(h * s.in_w + w);
    }
  });
}

void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* indices, float* dx) {
  check_pool("max_pool2d_backward", s);
  const int64_t HW = s.in_h * s.in_w, PQ = s.out_h() * s.out_w();
  for (int64_t k = 0; k < s.batch * s.channels * HW; ++k) dx[k] = 0;
  for (int64_t pl = 0; pl < s.batch * s.channels; ++pl)
    for (int64_t o = 0; o < PQ; ++o) {
      DUET_CHECK(indices[pl * PQ + o] >= 0 && indices[pl * PQ + o] < HW,
                 "max_pool2d_backward: index out of range");
      dx[pl * HW + indices[pl * PQ + o]] += dy[pl * PQ + o];
    }
}

void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y) {
  check_pool("avg_pool2d_forward", s);
  const int64_t HW = s.in_h * s.in_w, PQ = s.out_h() * s.out_w();
  for (int64_t k = 0; k < s.batch * s.channels * PQ; ++k) y[k] = 0;
  for_each_tap(s, [&](int64_t pl, int64_t o, int64_t h, int64_t w, bool inside) {
    if (inside)
      y[pl * PQ + o] += static_cast<float>(x[pl * HW + h * s.in_w + w] / avg_divisor(s, o));
  });
}

void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx) {
  check_pool("avg_pool2d_backward", s);
  const int64_t HW = s.in_h * s.in_w, PQ = s.out_h() * s.out_w();
  for (int64_t k = 0; k < s.batch * s.channels * HW; ++k) dx[k] = 0;
  for_each_tap(s, [&](int64_t pl, int64_t o, int64_t h, int64_t w, bool inside) {
    if (inside)
      dx[pl * HW + h * s.in_w + w] += static_cast<float>(dy[pl * PQ + o] / avg_divisor(s, o));
  });
}

void global_avg_pool_forward(int64_t n, int64_t c, int64_t hw, const float* x, float* y) {
  DUET_CHECK(n >= 1 && c >= 1 && hw >= 1, "global_avg_pool_forward: invalid shape");
  for (int64_t pl = 0; pl < n * c; ++pl) {
    double s = 0;
    for (int64_t k = 0; k < hw; ++k) s += x[pl * hw + k];
    y[pl] = static_cast<float>(s / double(hw));
  }
}

void global_avg_pool_backward(int64_t n, int64_t c, int64_t hw, const float* dy, float* dx) {
  DUET_CHECK(n >= 1 && c >= 1 && hw >= 1, "global_avg_pool_backward: invalid shape");
  for (int64_t pl = 0; pl < n * c; ++pl)
    for (int64_t k = 0; k < hw; ++k) dx[pl * hw + k] = static_cast<float>(dy[pl] / double(hw));
}

}  // namespace duet::kernels::ref
