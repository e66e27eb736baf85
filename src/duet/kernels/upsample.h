// Nearest-neighbour upsampling of NCHW by integer factors (the UNet decoder's resize):
// y[n, c, h * sh + i, w * sw + j] = x[n, c, h, w]. The backward sums each sh x sw block of dy.
#pragma once

#include <cstdint>

namespace duet::kernels {

// x is [n, c, h, w], y is [n, c, h * scale_h, w * scale_w]. Overwrites y.
void upsample_nearest2d_forward(int64_t n, int64_t c, int64_t h, int64_t w, int64_t scale_h,
                                int64_t scale_w, const float* x, float* y);
// dy is [n, c, h * scale_h, w * scale_w], dx is [n, c, h, w]. Overwrites dx.
void upsample_nearest2d_backward(int64_t n, int64_t c, int64_t h, int64_t w, int64_t scale_h,
                                 int64_t scale_w, const float* dy, float* dx);

namespace ref {
void upsample_nearest2d_forward(int64_t n, int64_t c, int64_t h, int64_t w, int64_t scale_h,
                                int64_t scale_w, const float* x, float* y);
void upsample_nearest2d_backward(int64_t n, int64_t c, int64_t h, int64_t w, int64_t scale_h,
                                 int64_t scale_w, const float* dy, float* dx);
}  // namespace ref

}  // namespace duet::kernels
