// Differentiable ops on channel-blocked activations: a tensor [N, ceil(C / 16), H, W, 16]
// (kernels/conv2d_blocked.h's layout; channel c in block c / 16, lane c % 16, lanes past C zero).
// A network trained on blocked activations skips the two layout passes that every channel-major
// convolution pays per pass (its input blocked into scratch, its output transposed back), and
// its norms stream whole 16-channel vectors. The layout travels with the shape: a
// rank-5 tensor is blocked, and nn::Conv2d, nn::BatchNorm2d, nn::GroupNorm and
// ops::upsample_nearest2d take either form; ops::concat along dimension 1 joins blocked tensors
// whose channel counts are multiples of 16. Convert only at a network's edges (to_blocked after
// the image, the pooled features or the last conv's output at the end).
#pragma once

#include "duet/ops/conv.h"
#include "duet/ops/norm.h"
#include "duet/tensor/tensor.h"

namespace duet::ops {

// True for a rank-5 F32 tensor whose last dimension is the 16-lane block.
bool is_blocked(const Tensor& x);

// Whether CIFAR ResNets and UNets train on blocked activations (models/resnet.cpp, unet.cpp): on
// by default where the CPU has AVX2 (the blocked kernels' own; elsewhere they would only add
// conversions). $DUET_LAYOUT=nchw turns it off at start-up, `duet bench train|gen --no-blocked`
// for one run.
bool use_blocked_training();
void set_blocked_training(bool on);

// [N, C, H, W] -> blocked, and back (channels: the C the blocks hold). Gradients flow through both.
Tensor to_blocked(const Tensor& x);
Tensor from_blocked(const Tensor& x, int64_t channels);

// conv2d of a blocked x (or a channel-major one: the network's input image), groups 1: the same
// weight [K, C, R, S], bias [K] and options as ops::conv2d; the output is blocked. A residual
// (undefined: none), blocked like the output, is added in the convolution's store.
Tensor conv2d_blocked(const Tensor& x, const Tensor& weight, const Tensor& bias,
                      const Conv2dOptions& options, const Tensor& residual = {});

// batch_norm (ops/norm.h) of a blocked x: the channel count is that of the defined per-channel
// tensors (weight, bias, running statistics; at least one must be defined); the tail's residual
// is blocked like x.
Tensor batch_norm_blocked(const Tensor& x, const Tensor& weight, const Tensor& bias,
                          Tensor& running_mean, Tensor& running_var, bool training, float momentum,
                          float eps, const BatchNormTail& tail = {});

// act(group_norm(x + shift[:, :, None, None])) (ops/norm.h's group_norm) of a blocked x of
// `channels` channels; shift [N, channels] or undefined. The UNet block adds its embedding to
// the first conv's output this way: in the norm's own passes, never as a tensor.
Tensor group_norm_blocked(const Tensor& x, int64_t channels, int64_t groups, const Tensor& weight,
                          const Tensor& bias, float eps = 1e-5f,
                          NormActivation act = NormActivation::none, const Tensor& shift = {});

// [N, channels] = the mean over the pixels of blocked x.
Tensor global_avg_pool2d_blocked(const Tensor& x, int64_t channels);

}  // namespace duet::ops
