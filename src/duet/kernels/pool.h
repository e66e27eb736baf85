// Pooling over NCHW: max (saving argmax indices for backward), average (count_include_pad, as
// PyTorch's default) and global average. Floor-mode output sizes, square or rectangular windows;
// planes are split over threads, and backward passes never race (each plane is one thread's).
#pragma once

#include <cstdint>

namespace duet::kernels {

struct Pool2dShape {
  int64_t batch = 1, channels = 1, in_h = 1, in_w = 1;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;

  int64_t out_h() const { return (in_h + 2 * pad_h - kernel_h) / stride_h + 1; }
  int64_t out_w() const { return (in_w + 2 * pad_w - kernel_w) / stride_w + 1; }
};

// Padding acts as -inf; a NaN in a window wins (propagates), ties keep the first position.
// indices[n, c, p, q] = h * in_w + w of the chosen input inside its plane. Overwrites y, indices.
// Requires pad <= kernel / 2 (as PyTorch), so every window holds a real element.
void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* indices);
// dx[plane][indices] += dy, with dx zeroed first. Overwrites dx.
void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* indices, float* dx);
// Mean over the window, padding counted as zeros in the divisor (count_include_pad = true).
void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y);
void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx);

// [n, c, hw] -> [n, c] mean, and its backward (dx = dy / hw broadcast). Overwrite outputs.
void global_avg_pool_forward(int64_t n, int64_t c, int64_t hw, const float* x, float* y);
void global_avg_pool_backward(int64_t n, int64_t c, int64_t hw, const float* dy, float* dx);

namespace ref {
void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* indices);
void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* indices, float* dx);
void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y);
void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx);
void global_avg_pool_forward(int64_t n, int64_t c, int64_t hw, const float* x, float* y);
void global_avg_pool_backward(int64_t n, int64_t c, int64_t hw, const float* dy, float* dx);
}  // namespace ref

}  // namespace duet::kernels
