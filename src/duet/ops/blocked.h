// Differentiable ops on channel-blocked activations: a tensor [N, ceil(C / 16), H, W, 16]
// (kernels/conv2d_blocked.h's layout; channel c in block c / 16, lane c % 16, lanes past C zero).
// A residual network trained on blocked activations skips the two layout passes that every
// channel-major convolution pays per pass (its input blocked into scratch, its output transposed
// back), and its norms stream whole 16-channel vectors. The layout travels with the shape: a
// rank-5 tensor is blocked, and nn::Conv2d and nn::BatchNorm2d take either form (nn/layers.h).
// Convert only at a network's edges (to_blocked after the image, the pooled features at the end).
#pragma once

#include "duet/ops/conv.h"
#include "duet/ops/norm.h"
#include "duet/tensor/tensor.h"

namespace duet::ops {

// True for a rank-5 F32 tensor whose last dimension is the 16-lane block.
bool is_blocked(const Tensor& x);

// Whether CIFAR ResNets train on blocked activations (models/resnet.cpp): on by default where
// the CPU has AVX2 (the blocked kernels' own; elsewhere they would only add conversions).
// $DUET_LAYOUT=nchw turns it off at start-up, `duet bench train --no-blocked` for one run.
bool use_blocked_training();
void set_blocked_training(bool on);

// [N, C, H, W] -> blocked, and back (channels: the C the blocks hold). Gradients flow through both.
Tensor to_blocked(const Tensor& x);
Tensor from_blocked(const Tensor& x, int64_t channels);

// conv2d of a blocked x (or a channel-major one: the network's input image), groups 1: the same
// weight [K, C, R, S], bias [K] and options as ops::conv2d; the output is blocked.
Tensor conv2d_blocked(const Tensor& x, const Tensor& weight, const Tensor& bias,
                      const Conv2dOptions& options);

// batch_norm (ops/norm.h) of a blocked x: the channel count is that of the defined per-channel
// tensors (weight, bias, running statistics; at least one must be defined); the tail's residual
// is blocked like x.
Tensor batch_norm_blocked(const Tensor& x, const Tensor& weight, const Tensor& bias,
                          Tensor& running_mean, Tensor& running_var, bool training, float momentum,
                          float eps, const BatchNormTail& tail = {});

// [N, channels] = the mean over the pixels of blocked x.
Tensor global_avg_pool2d_blocked(const Tensor& x, int64_t channels);

}  // namespace duet::ops
