// 2-D convolution over NCHW float tensors, forward and both backward passes, with stride,
// padding, dilation and groups (depthwise when groups == in_channels). Weights are
// [out_channels, in_channels / groups, kernel_h, kernel_w] as in PyTorch. The fast path runs
// implicit GEMM on tiles (never a full im2col buffer), 1x1 convolutions as plain GEMM, and the
// forward fuses bias / BN scale-shift / residual / activation through the GEMM epilogue.
#pragma once

#include <cstdint>

#include "duet/kernels/gemm.h"

namespace duet::kernels {

struct Conv2dShape {
  int64_t batch = 1, in_channels = 1, in_h = 1, in_w = 1;
  int64_t out_channels = 1, kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;

  int64_t out_h() const {
    return (in_h + 2 * pad_h - dilation_h * (kernel_h - 1) - 1) / stride_h + 1;
  }
  int64_t out_w() const {
    return (in_w + 2 * pad_w - dilation_w * (kernel_w - 1) - 1) / stride_w + 1;
  }
  // Multiply-adds x 2 of the forward pass (each backward pass costs the same).
  double flops() const {
    return 2.0 * batch * out_channels * out_h() * out_w() * (in_channels / groups) * kernel_h *
           kernel_w;
  }
};

// y[N, K, P, Q] = epilogue(conv(x, w)); the epilogue's channel axis is the output channel and
// its residual (if any) is laid out like y. Overwrites y.
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, float* y,
                    const Epilogue& epilogue = {});
// dx = conv^T(dy, w). Overwrites dx. (Also the forward pass of a transposed convolution.)
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx);
// dw = sum over batch of dy (*) x; dbias = sum of dy over N, P, Q (skipped when null).
// Overwrites dw and dbias.
void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                            float* dbias);

// The three passes of a convolution: conv2d_forward, conv2d_backward_data (the input gradient)
// and conv2d_backward_weight.
enum class ConvPass { forward, input_gradient, weight_gradient };

// Whether `pass` of s runs as Winograd (F(2x2, 3x3) or F(4x4, 3x3), conv2d_impl.h's
// winograd_tile) on this CPU, with use_winograd() as it is now (for benches and tests).
bool conv2d_takes_winograd(const Conv2dShape& s, ConvPass pass);

namespace ref {
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, float* y,
                    const Epilogue& epilogue = {});
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx);
void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                            float* dbias);
}  // namespace ref

}  // namespace duet::kernels
