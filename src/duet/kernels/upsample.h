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

// The same on channel-blocked planes (conv2d_blocked.h's layout): x is [planes, h, w, 16] with
// planes = n * ceil(c / 16), y is [planes, h * scale_h, w * scale_w, 16]; each pixel moves as
// one 16-float vector, and the backward sums the block's vectors in the same fixed order.
void upsample_nearest2d_blocked_forward(int64_t planes, int64_t h, int64_t w, int64_t scale_h,
                                        int64_t scale_w, const float* x, float* y);
void upsample_nearest2d_blocked_backward(int64_t planes, int64_t h, int64_t w, int64_t scale_h,
                                         int64_t scale_w, const float* dy, float* dx);

namespace ref {
void upsample_nearest2d_forward(int64_t n, int64_t c, int64_t h, int64_t w, int64_t scale_h,
                                int64_t scale_w, const float* x, float* y);
void upsample_nearest2d_backward(int64_t n, int64_t c, int64_t h, int64_t w, int64_t scale_h,
                                 int64_t scale_w, const float* dy, float* dx);
}  // namespace ref

}  // namespace duet::kernels
