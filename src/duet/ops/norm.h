// Differentiable normalisation layers (PyTorch semantics).
#pragma once

#include "duet/tensor/tensor.h"

namespace duet::ops {

// What batch_norm does after normalising, in the same pass (kernels::NormTail): adds `residual`
// (x's shape; undefined: nothing), then applies a ReLU when `relu`. A residual block's
// relu(bn(conv(x)) + shortcut) is then one op: the normalised values and their sum are never
// tensors (nor kept for the backward, which needs only x and the output: y > 0 marks where the
// ReLU passed the gradient).
struct BatchNormTail {
  Tensor residual;
  bool relu = false;
};

// x: [N, C, H, W] (or [N, C]). Training: normalises with batch statistics and updates
// running_mean / running_var in place (momentum, unbiased variance), as torch does. Eval: uses the
// running statistics. weight/bias: [C] or undefined (no affine). Then the tail.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                  Tensor& running_var, bool training, float momentum = 0.1f, float eps = 1e-5f,
                  const BatchNormTail& tail = {});
// An activation a norm op applies to its output in the same pass (none: the plain norm).
enum class NormActivation { none, relu, silu, gelu };

// x: [N, C, ...], C divisible by groups; weight/bias: [C] or undefined. Then act: a UNet block's
// silu(group_norm(x)) as one op, whose normalised values are never stored (the backward
// recomputes them from x for the activation's derivative).
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias,
                  float eps = 1e-5f, NormActivation act = NormActivation::none);
// Normalises over the last dimension D; weight/bias: [D] or undefined.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps = 1e-5f);

namespace detail {
// The checks batch_norm and batch_norm_blocked (ops/blocked.h) share: each per-channel tensor
// undefined or F32 [c], and the tail's residual (if any) F32 with x's shape. Errors name op.
void check_batch_norm_args(const char* op, const Tensor& x, int64_t c, const Tensor& weight,
                           const Tensor& bias, const Tensor& running_mean,
                           const Tensor& running_var, const BatchNormTail& tail);
}  // namespace detail

}  // namespace duet::ops
