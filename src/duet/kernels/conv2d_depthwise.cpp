// Direct depthwise convolution (groups == in_channels == out_channels). Each plane has its own
// R x S filter, so there is no reuse for a GEMM to exploit; the loops run per output row over the
// in-bounds column range of each tap, which keeps the inner loop branch-free and vectorisable.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "duet/kernels/conv2d_impl.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels::detail {
namespace {

inline void valid_q(int64_t off, int64_t stride, int64_t width, int64_t q_count, int64_t& lo,
                    int64_t& hi) {
  lo = std::min(q_count, off >= 0 ? int64_t{0} : (-off + stride - 1) / stride);
  hi = (width - 1 - off) < 0 ? 0 : std::min(q_count, (width - 1 - off) / stride + 1);
  hi = std::max(hi, lo);
}

// Calls fn(p, h, lo, hi, off) for every (output row, tap) pair whose input row h is in bounds.
template <class Fn>
void for_each_tap_row(const Conv2dShape& s, int64_t r, int64_t u, Fn&& fn) {
  const int64_t P = s.out_h(), Q = s.out_w();
  const int64_t off = u * s.dilation_w - s.pad_w;
  int64_t lo, hi;
  valid_q(off, s.stride_w, s.in_w, Q, lo, hi);
  if (hi <= lo) return;
  for (int64_t p = 0; p < P; ++p) {
    const int64_t h = p * s.stride_h - s.pad_h + r * s.dilation_h;
    if (h >= 0 && h < s.in_h) fn(p, h, lo, hi, off);
  }
}

}  // namespace

void depthwise_forward(const Conv2dShape& s, const float* x, const float* w, float* y,
                       const Epilogue& e) {
  const int64_t C = s.in_channels, P = s.out_h(), Q = s.out_w(), HW = s.in_h * s.in_w;
  const int64_t PQ = P * Q, RS = s.kernel_h * s.kernel_w, sw = s.stride_w;
  parallel_for(s.batch * C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t c = plane % C;
      const float* xp = x + plane * HW;
      float* yp = y + plane * PQ;
      std::memset(yp, 0, size_t(PQ) * sizeof(float));
      for (int64_t r = 0; r < s.kernel_h; ++r)
        for (int64_t u = 0; u < s.kernel_w; ++u) {
          const float wv = w[c * RS + r * s.kernel_w + u];
          for_each_tap_row(s, r, u, [&](int64_t p, int64_t h, int64_t lo, int64_t hi, int64_t off) {
            float* yr = yp + p * Q;
            const float* xr = xp + h * s.in_w + (lo * sw + off);  // column lo's input
            if (sw == 1) {
              for (int64_t q = lo; q < hi; ++q) yr[q] += wv * xr[q - lo];
            } else {
              for (int64_t q = lo; q < hi; ++q) yr[q] += wv * xr[(q - lo) * sw];
            }
          });
        }
      const float scale = e.scale ? e.scale[c] : 1.0f;
      const float* res = e.residual ? e.residual + plane * PQ : nullptr;
      // Same order as the GEMM epilogue: scale, shift, bias, residual, activation.
      const float shift = e.shift ? e.shift[c] : 0.0f, bias = e.bias ? e.bias[c] : 0.0f;
      for (int64_t i = 0; i < PQ; ++i) {
        float v = yp[i] * scale + shift;
        v += bias;
        if (res) v += res[i];
        yp[i] = apply_activation(e.act, v);
      }
    }
  });
}

void depthwise_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const int64_t C = s.in_channels, P = s.out_h(), Q = s.out_w(), HW = s.in_h * s.in_w;
  const int64_t PQ = P * Q, RS = s.kernel_h * s.kernel_w, sw = s.stride_w;
  parallel_for(s.batch * C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t c = plane % C;
      const float* gp = dy + plane * PQ;
      float* dp = dx + plane * HW;
      std::memset(dp, 0, size_t(HW) * sizeof(float));
      for (int64_t r = 0; r < s.kernel_h; ++r)
        for (int64_t u = 0; u < s.kernel_w; ++u) {
          const float wv = w[c * RS + r * s.kernel_w + u];
          for_each_tap_row(s, r, u, [&](int64_t p, int64_t h, int64_t lo, int64_t hi, int64_t off) {
            const float* gr = gp + p * Q;
            float* dr = dp + h * s.in_w + (lo * sw + off);
            if (sw == 1) {
              for (int64_t q = lo; q < hi; ++q) dr[q - lo] += wv * gr[q];
            } else {
              for (int64_t q = lo; q < hi; ++q) dr[(q - lo) * sw] += wv * gr[q];
            }
          });
        }
    }
  });
}

void depthwise_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
  const int64_t C = s.in_channels, P = s.out_h(), Q = s.out_w(), HW = s.in_h * s.in_w;
  const int64_t PQ = P * Q, RS = s.kernel_h * s.kernel_w, sw = s.stride_w;
  // Parallel over channels: each channel sums its images in a fixed order, so no reduction step.
  parallel_for(C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c)
      for (int64_t r = 0; r < s.kernel_h; ++r)
        for (int64_t u = 0; u < s.kernel_w; ++u) {
          double acc = 0;
          for (int64_t n = 0; n < s.batch; ++n) {
            const float* xp = x + (n * C + c) * HW;
            const float* gp = dy + (n * C + c) * PQ;
            for_each_tap_row(s, r, u,
                             [&](int64_t p, int64_t h, int64_t lo, int64_t hi, int64_t off) {
                               const float* gr = gp + p * Q;
                               const float* xr = xp + h * s.in_w + (lo * sw + off);
                               float row = 0.0f;
                               if (sw == 1) {
                                 for (int64_t q = lo; q < hi; ++q) row += gr[q] * xr[q - lo];
                               } else {
                                 for (int64_t q = lo; q < hi; ++q) row += gr[q] * xr[(q - lo) * sw];
                               }
                               acc += row;
                             });
          }
          dw[c * RS + r * s.kernel_w + u] = float(acc);
        }
  });
}

}  // namespace duet::kernels::detail
