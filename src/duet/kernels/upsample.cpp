#include "duet/kernels/upsample.h"

#include <algorithm>

#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {
namespace {

void check(const char* what, int64_t n, int64_t c, int64_t h, int64_t w, int64_t sh, int64_t sw) {
  DUET_CHECK(n >= 1 && c >= 1 && h >= 1 && w >= 1, what, ": expected a non-empty input, got ", n,
             "x", c, "x", h, "x", w);
  DUET_CHECK(sh >= 1 && sw >= 1, what, ": scale factors must be >= 1, got ", sh, "x", sw);
}

int64_t plane_grain(int64_t per_plane) {
  return std::max<int64_t>(1, 16384 / per_plane);
}

}  // namespace

void upsample_nearest2d_forward(int64_t n, int64_t c, int64_t h, int64_t w, int64_t scale_h,
                                int64_t scale_w, const float* x, float* y) {
  check("upsample_nearest2d_forward", n, c, h, w, scale_h, scale_w);
  const int64_t ow = w * scale_w, oplane = h * scale_h * ow;
  parallel_for(n * c, plane_grain(oplane), [&](int64_t pb, int64_t pe) {
    for (int64_t pl = pb; pl < pe; ++pl)
      for (int64_t i = 0; i < h; ++i) {
        const float* xr = x + (pl * h + i) * w;
        float* first = y + pl * oplane + i * scale_h * ow;
        // Widen one row, then copy it to the remaining scale_h - 1 output rows.
        if (scale_w == 2) {
          for (int64_t j = 0; j < w; ++j) first[2 * j] = first[2 * j + 1] = xr[j];
        } else {
          for (int64_t j = 0; j < w; ++j)
            for (int64_t k = 0; k < scale_w; ++k) first[j * scale_w + k] = xr[j];
        }
        for (int64_t r = 1; r < scale_h; ++r) std::copy(first, first + ow, first + r * ow);
      }
  });
}

void upsample_nearest2d_backward(int64_t n, int64_t c, int64_t h, int64_t w, int64_t scale_h,
                                 int64_t scale_w, const float* dy, float* dx) {
  check("upsample_nearest2d_backward", n, c, h, w, scale_h, scale_w);
  const int64_t ow = w * scale_w, oplane = h * scale_h * ow;
  parallel_for(n * c, plane_grain(oplane), [&](int64_t pb, int64_t pe) {
    for (int64_t pl = pb; pl < pe; ++pl)
      for (int64_t i = 0; i < h; ++i) {
        float* dr = dx + (pl * h + i) * w;
        const float* g = dy + pl * oplane + i * scale_h * ow;
        std::fill(dr, dr + w, 0.0f);
        // Rows of the block in order, then columns within each row: a fixed summation order.
        for (int64_t r = 0; r < scale_h; ++r, g += ow)
          for (int64_t j = 0; j < w; ++j) {
            float s = 0;
            for (int64_t k = 0; k < scale_w; ++k) s += g[j * scale_w + k];
            dr[j] += s;
          }
      }
  });
}

namespace {
constexpr int64_t kLanes = 16;  // conv2d_blocked.h's kChannelBlock
}  // namespace

void upsample_nearest2d_blocked_forward(int64_t planes, int64_t h, int64_t w, int64_t scale_h,
                                        int64_t scale_w, const float* x, float* y) {
  check("upsample_nearest2d_blocked_forward", planes, kLanes, h, w, scale_h, scale_w);
  const int64_t row = w * scale_w * kLanes, oplane = h * scale_h * row;
  parallel_for(planes, plane_grain(oplane), [&](int64_t pb, int64_t pe) {
    for (int64_t pl = pb; pl < pe; ++pl)
      for (int64_t i = 0; i < h; ++i) {
        const float* xr = x + (pl * h + i) * w * kLanes;
        float* first = y + pl * oplane + i * scale_h * row;
        for (int64_t j = 0; j < w; ++j)
          for (int64_t k = 0; k < scale_w; ++k)
            std::copy(xr + j * kLanes, xr + (j + 1) * kLanes, first + (j * scale_w + k) * kLanes);
        for (int64_t r = 1; r < scale_h; ++r) std::copy(first, first + row, first + r * row);
      }
  });
}

void upsample_nearest2d_blocked_backward(int64_t planes, int64_t h, int64_t w, int64_t scale_h,
                                         int64_t scale_w, const float* dy, float* dx) {
  check("upsample_nearest2d_blocked_backward", planes, kLanes, h, w, scale_h, scale_w);
  const int64_t row = w * scale_w * kLanes, oplane = h * scale_h * row;
  parallel_for(planes, plane_grain(oplane), [&](int64_t pb, int64_t pe) {
    for (int64_t pl = pb; pl < pe; ++pl)
      for (int64_t i = 0; i < h; ++i) {
        float* dr = dx + (pl * h + i) * w * kLanes;
        const float* g = dy + pl * oplane + i * scale_h * row;
        std::fill(dr, dr + w * kLanes, 0.0f);
        for (int64_t r = 0; r < scale_h; ++r, g += row)
          for (int64_t j = 0; j < w; ++j)
            for (int64_t k = 0; k < scale_w; ++k)
              for (int64_t l = 0; l < kLanes; ++l)
                dr[j * kLanes + l] += g[(j * scale_w + k) * kLanes + l];
      }
  });
}

}  // namespace duet::kernels
