// Normalisation kernels with PyTorch semantics: batch norm over NCHW (training, eval, backward),
// group norm over NCHW and layer norm over the last dimension. Forward passes save the
// statistics the backward passes need; gamma/beta (affine) are optional everywhere.
#pragma once

#include <cstdint>

#include "duet/kernels/activation.h"

namespace duet::kernels {

// What a fused norm does after normalising, in the same pass over each plane: y = norm(x) +
// residual (laid out like x, not y itself; null: none), then act when `activate` (a ReLU lets a
// NaN through).
// A residual block's `relu(bn(conv(x)) + shortcut)` is then one pass instead of three, and a
// UNet block's `silu(group_norm(x))` one instead of two.
struct NormTail {
  const float* residual = nullptr;
  bool activate = false;
  ActFn act = ActFn::relu;
};

// --- batch_norm2d: x is [n, c, hw] (hw = H*W, 1 for [N, C] inputs); statistics per channel.

// Normalises with the batch mean and biased variance; writes save_mean[c] and
// save_invstd[c] = 1/sqrt(var + eps). When running_mean/running_var are not null, updates them
// as running = (1 - momentum) * running + momentum * batch, using the UNBIASED variance (as
// PyTorch does; n*hw must then be > 1). gamma/beta may be null (no affine). The tail follows.
// Overwrites y.
void batch_norm2d_forward_train(int64_t n, int64_t c, int64_t hw, const float* x,
                                const float* gamma, const float* beta, float eps, float momentum,
                                float* running_mean, float* running_var, float* y, float* save_mean,
                                float* save_invstd, const NormTail& tail = {});
// y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta, then the tail. Overwrites y.
void batch_norm2d_forward_eval(int64_t n, int64_t c, int64_t hw, const float* x, const float* gamma,
                               const float* beta, const float* running_mean,
                               const float* running_var, float eps, float* y,
                               const NormTail& tail = {});
// The ReLU of a fused batch-norm tail, seen from its backward pass: y is the forward's output
// (relu(bn(x) + residual)), so the ReLU passed where y > 0. The kernel writes the masked output
// gradient, dy * (y > 0), to masked_dy (the residual's gradient too) and differentiates the batch
// norm with it, plane by plane while the plane is in L1, instead of in a separate pass.
struct ReluGradMask {
  const float* y = nullptr;    // null: no ReLU, dy is the batch norm's own output gradient
  float* masked_dy = nullptr;  // [n, c, hw], written when y is set
  // The channel-blocked kernels only (norm_blocked.h), for a tail without residual, instead of y:
  // the ReLU passed where x_scale[ch] x + x_shift[ch] > 0, the per-channel factors the forward
  // applied (it writes them on request). No masked_dy then: nothing else needs it, and neither
  // y nor the masked gradient has to be read or written.
  const float* x_scale = nullptr;
  const float* x_shift = nullptr;
};

// Backward of the training forward. Overwrites dx, and dgamma/dbeta when not null (and
// relu.masked_dy when relu.y is set).
void batch_norm2d_backward(int64_t n, int64_t c, int64_t hw, const float* x, const float* dy,
                           const float* gamma, const float* save_mean, const float* save_invstd,
                           float* dx, float* dgamma, float* dbeta, const ReluGradMask& relu = {});

// --- group_norm: x is [n, c, hw], c divisible by groups; statistics per (sample, group);
// gamma/beta per channel. save_mean/save_rstd are [n, groups]. The tail follows.
void group_norm_forward(int64_t n, int64_t c, int64_t hw, int64_t groups, const float* x,
                        const float* gamma, const float* beta, float eps, float* y,
                        float* save_mean, float* save_rstd, const NormTail& tail = {});
// Overwrites dx, and dgamma/dbeta when not null. With an activation (act_tail.activate; no
// residual), dy is the gradient of act(z), z = the normalised x: act'(z) is taken from z
// recomputed from x, the saved statistics, gamma and beta, so z never has to be stored.
void group_norm_backward(int64_t n, int64_t c, int64_t hw, int64_t groups, const float* x,
                         const float* dy, const float* gamma, const float* save_mean,
                         const float* save_rstd, float* dx, float* dgamma, float* dbeta,
                         const NormTail& act_tail = {}, const float* beta = nullptr);
// The statistics of group_norm_forward alone, as it saves them, for a consumer that applies the
// normalisation itself (conv2d_forward_fused's prologue). Overwrites mean and rstd.
void group_norm_stats(int64_t n, int64_t c, int64_t hw, int64_t groups, const float* x, float eps,
                      float* mean, float* rstd);

// --- layer_norm over the last dimension d of [rows, d]; gamma/beta are [d]; save_* are [rows].
void layer_norm_forward(int64_t rows, int64_t d, const float* x, const float* gamma,
                        const float* beta, float eps, float* y, float* save_mean, float* save_rstd);
// Overwrites dx, and dgamma/dbeta when not null.
void layer_norm_backward(int64_t rows, int64_t d, const float* x, const float* dy,
                         const float* gamma, const float* save_mean, const float* save_rstd,
                         float* dx, float* dgamma, float* dbeta);

namespace ref {
void batch_norm2d_forward_train(int64_t n, int64_t c, int64_t hw, const float* x,
                                const float* gamma, const float* beta, float eps, float momentum,
                                float* running_mean, float* running_var, float* y, float* save_mean,
                                float* save_invstd, const NormTail& tail = {});
void batch_norm2d_forward_eval(int64_t n, int64_t c, int64_t hw, const float* x, const float* gamma,
                               const float* beta, const float* running_mean,
                               const float* running_var, float eps, float* y,
                               const NormTail& tail = {});
void batch_norm2d_backward(int64_t n, int64_t c, int64_t hw, const float* x, const float* dy,
                           const float* gamma, const float* save_mean, const float* save_invstd,
                           float* dx, float* dgamma, float* dbeta, const ReluGradMask& relu = {});
void group_norm_forward(int64_t n, int64_t c, int64_t hw, int64_t groups, const float* x,
                        const float* gamma, const float* beta, float eps, float* y,
                        float* save_mean, float* save_rstd, const NormTail& tail = {});
void group_norm_backward(int64_t n, int64_t c, int64_t hw, int64_t groups, const float* x,
                         const float* dy, const float* gamma, const float* save_mean,
                         const float* save_rstd, float* dx, float* dgamma, float* dbeta,
                         const NormTail& act_tail = {}, const float* beta = nullptr);
void layer_norm_forward(int64_t rows, int64_t d, const float* x, const float* gamma,
                        const float* beta, float eps, float* y, float* save_mean, float* save_rstd);
void layer_norm_backward(int64_t rows, int64_t d, const float* x, const float* dy,
                         const float* gamma, const float* save_mean, const float* save_rstd,
                         float* dx, float* dgamma, float* dbeta);
}  // namespace ref

}  // namespace duet::kernels
