#include "duet/kernels/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "duet/kernels/nn_vec.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {
namespace {

void check_pool(const char* what, const Pool2dShape& s) {
  DUET_CHECK(s.batch >= 1 && s.channels >= 1 && s.in_h >= 1 && s.in_w >= 1, what,
             ": expected a non-empty input, got ", s.batch, "x", s.channels, "x", s.in_h, "x",
             s.in_w);
  DUET_CHECK(s.kernel_h >= 1 && s.kernel_w >= 1 && s.stride_h >= 1 && s.stride_w >= 1, what,
             ": kernel and stride must be >= 1");
  DUET_CHECK(s.pad_h >= 0 && s.pad_w >= 0 && 2 * s.pad_h <= s.kernel_h && 2 * s.pad_w <= s.kernel_w,
             what, ": padding must be in [0, kernel / 2], got ", s.pad_h, "x", s.pad_w,
             " for kernel ", s.kernel_h, "x", s.kernel_w);
  DUET_CHECK(s.out_h() >= 1 && s.out_w() >= 1, what, ": window ", s.kernel_h, "x", s.kernel_w,
             " does not fit the padded input ", s.in_h, "x", s.in_w);
  DUET_CHECK(s.in_h * s.in_w <= std::numeric_limits<int32_t>::max(), what,
             ": plane too large for int32 indices");
}

// Grain in planes so a chunk holds at least ~16k elements of work.
int64_t plane_grain(int64_t per_plane) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, per_plane));
}

}  // namespace

void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* indices) {
  check_pool("max_pool2d_forward", s);
  const int64_t H = s.in_h, W = s.in_w, P = s.out_h(), Q = s.out_w();
  parallel_for(s.batch * s.channels, plane_grain(H * W), [&](int64_t pb, int64_t pe) {
    for (int64_t pl = pb; pl < pe; ++pl) {
      const float* xp = x + pl * H * W;
      float* yp = y + pl * P * Q;
      int32_t* ip = indices + pl * P * Q;
      for (int64_t p = 0; p < P; ++p) {
        const int64_t h0 = std::max<int64_t>(0, p * s.stride_h - s.pad_h);
        const int64_t h1 = std::min(H, p * s.stride_h - s.pad_h + s.kernel_h);
        for (int64_t q = 0; q < Q; ++q) {
          const int64_t w0 = std::max<int64_t>(0, q * s.stride_w - s.pad_w);
          const int64_t w1 = std::min(W, q * s.stride_w - s.pad_w + s.kernel_w);
          float best = -std::numeric_limits<float>::infinity();
          int64_t bi = h0 * W + w0;
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) {
              const float v = xp[h * W + w];
              if (v > best || std::isnan(v)) {
                best = v;
                bi = h * W + w;
              }
            }
          yp[p * Q + q] = best;
          ip[p * Q + q] = static_cast<int32_t>(bi);
        }
      }
    }
  });
}

void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* indices, float* dx) {
  check_pool("max_pool2d_backward", s);
  const int64_t HW = s.in_h * s.in_w, PQ = s.out_h() * s.out_w();
  parallel_for(s.batch * s.channels, plane_grain(HW), [&](int64_t pb, int64_t pe) {
    for (int64_t pl = pb; pl < pe; ++pl) {
      float* dp = dx + pl * HW;
      std::fill(dp, dp + HW, 0.0f);
      const float* gp = dy + pl * PQ;
      const int32_t* ip = indices + pl * PQ;
      for (int64_t k = 0; k < PQ; ++k) {
        DUET_CHECK(ip[k] >= 0 && ip[k] < HW, "max_pool2d_backward: index ", ip[k],
                   " outside the input plane of ", HW);
        dp[ip[k]] += gp[k];
      }
    }
  });
}

void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y) {
  check_pool("avg_pool2d_forward", s);
  const int64_t H = s.in_h, W = s.in_w, P = s.out_h(), Q = s.out_w();
  parallel_for(s.batch * s.channels, plane_grain(H * W), [&](int64_t pb, int64_t pe) {
    for (int64_t pl = pb; pl < pe; ++pl) {
      const float* xp = x + pl * H * W;
      float* yp = y + pl * P * Q;
      for (int64_t p = 0; p < P; ++p) {
        const int64_t hs = p * s.stride_h - s.pad_h, he = std::min(hs + s.kernel_h, H + s.pad_h);
        const int64_t h0 = std::max<int64_t>(0, hs), h1 = std::min(H, he);
        for (int64_t q = 0; q < Q; ++q) {
          const int64_t ws = q * s.stride_w - s.pad_w, we = std::min(ws + s.kernel_w, W + s.pad_w);
          const int64_t w0 = std::max<int64_t>(0, ws), w1 = std::min(W, we);
          float acc = 0;
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) acc += xp[h * W + w];
          yp[p * Q + q] = acc / static_cast<float>((he - hs) * (we - ws));
        }
      }
    }
  });
}

void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx) {
  check_pool("avg_pool2d_backward", s);
  const int64_t H = s.in_h, W = s.in_w, P = s.out_h(), Q = s.out_w();
  parallel_for(s.batch * s.channels, plane_grain(H * W), [&](int64_t pb, int64_t pe) {
    for (int64_t pl = pb; pl < pe; ++pl) {
      float* dp = dx + pl * H * W;
      const float* gp = dy + pl * P * Q;
      std::fill(dp, dp + H * W, 0.0f);
      for (int64_t p = 0; p < P; ++p) {
        const int64_t hs = p * s.stride_h - s.pad_h, he = std::min(hs + s.kernel_h, H + s.pad_h);
        const int64_t h0 = std::max<int64_t>(0, hs), h1 = std::min(H, he);
        for (int64_t q = 0; q < Q; ++q) {
          const int64_t ws = q * s.stride_w - s.pad_w, we = std::min(ws + s.kernel_w, W + s.pad_w);
          const int64_t w0 = std::max<int64_t>(0, ws), w1 = std::min(W, we);
          const float g = gp[p * Q + q] / static_cast<float>((he - hs) * (we - ws));
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) dp[h * W + w] += g;
        }
      }
    }
  });
}

void global_avg_pool_forward(int64_t n, int64_t c, int64_t hw, const float* x, float* y) {
  DUET_CHECK(n >= 1 && c >= 1 && hw >= 1, "global_avg_pool_forward: expected n, c, hw >= 1, got ",
             n, ", ", c, ", ", hw);
  const auto& v = detail::nn_vec();
  parallel_for(n * c, plane_grain(hw), [&](int64_t pb, int64_t pe) {
    for (int64_t pl = pb; pl < pe; ++pl) y[pl] = v.sum(hw, x + pl * hw) / static_cast<float>(hw);
  });
}

void global_avg_pool_backward(int64_t n, int64_t c, int64_t hw, const float* dy, float* dx) {
  DUET_CHECK(n >= 1 && c >= 1 && hw >= 1, "global_avg_pool_backward: expected n, c, hw >= 1, got ",
             n, ", ", c, ", ", hw);
  parallel_for(n * c, plane_grain(hw), [&](int64_t pb, int64_t pe) {
    for (int64_t pl = pb; pl < pe; ++pl)
      std::fill(dx + pl * hw, dx + (pl + 1) * hw, dy[pl] / static_cast<float>(hw));
  });
}

}  // namespace duet::kernels
