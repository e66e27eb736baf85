// A 3x3 convolution with the elementwise work around it folded in, for inference: a per-image,
// per-channel affine map and activation of the input (a GroupNorm and SiLU in front of the
// conv, the UNet's residual blocks), a per-image bias (the time and class embedding added to its
// output) and the usual epilogue (bias, residual, activation). The Winograd path applies the
// prologue while it blocks the input rows and the image bias in its store, so the normalised
// input and the sum never exist as tensors; other shapes materialise the prologue's output and
// run conv2d_forward.
#pragma once

#include <cstdint>

#include "duet/kernels/conv2d.h"

namespace duet::kernels {

// x'[n][c] = act(x[n][c] * scale[n * C + c] + shift[n * C + c]) (null scale: 1, null shift: 0).
// The convolution pads x' with zeros, as conv2d(act(norm(x))) does.
// The default Prologue is the identity (a plain convolution with the fused epilogue).
struct Prologue {
  const float* scale = nullptr;
  const float* shift = nullptr;
  Activation act = Activation::none;
  bool identity() const { return !scale && !shift && act == Activation::none; }
};

// y = act(conv(x', w) * scale + shift + bias + image_bias[n * K + k] + residual), the
// epilogue's parts as in conv2d_forward (image_bias may be null). Groups 1 only. Overwrites y.
void conv2d_forward_fused(const Conv2dShape& s, const float* x, const float* w, float* y,
                          const Prologue& prologue, const float* image_bias,
                          const Epilogue& epilogue = {});

namespace ref {
void conv2d_forward_fused(const Conv2dShape& s, const float* x, const float* w, float* y,
                          const Prologue& prologue, const float* image_bias,
                          const Epilogue& epilogue = {});
}  // namespace ref

}  // namespace duet::kernels
