// Fake quantisation for quantisation-aware training: differentiable ops whose forward rounds a
// float tensor to exactly the values the int8 inference path will use (quantise, then dequantise,
// in float) and whose backward is the straight-through estimator. Each op has a plain reference
// twin (the int8 path's own quantiser followed by a dequantisation) that the tests compare with.
#pragma once

#include "duet/kernels/conv2d_int8.h"
#include "duet/tensor/tensor.h"

namespace duet::compress {

// Per-output-channel symmetric int8 for a conv weight [K, ...]: the rule `duet quantize` uses
// (quantize_weights_per_channel: scale[k] = max |w[k]| / 127, codes round half to even into
// [-127, 127], scale 1 for an all-zero channel), dequantised: out = code * scale[k]. The scale
// follows the current weights on every call. Nothing is ever clipped (the scale covers the
// channel's largest magnitude), so the backward passes the gradient through unchanged; like
// PyTorch's fake_quantize_per_channel_affine it does not differentiate through the scale.
// Error for a non-finite weight.
Tensor fake_quant_weight(const Tensor& weight);

// Per-tensor activation quantisation with the int8 kernels' code mapping
// (kernels::quantize_activation: q = clamp(round_half_even(x * inv_scale) + zero_point, 0, 127)),
// dequantised: out = (q - zero_point) * scale. Backward (straight-through): the gradient passes
// where round(x * inv_scale) + zero_point lies in [0, 127] and is zero where the value was
// clipped (or was NaN).
Tensor fake_quant_activation(const Tensor& x, const kernels::ActivationQuant& q);

namespace ref {
// quantize_weights_per_channel, then code * scale: the int8 checkpoint's weights in float.
Tensor fake_quant_weight(const Tensor& weight);
// kernels::quantize_activation element by element, then (q - zero_point) * scale.
Tensor fake_quant_activation(const Tensor& x, const kernels::ActivationQuant& q);
}  // namespace ref

}  // namespace duet::compress
