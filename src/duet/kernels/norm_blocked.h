// Batch and group norm on channel-blocked activations (conv2d_blocked.h's layout: [n][ceil(c /
// 16)][hw][16], channel ch in block ch / 16, lane ch % 16). A block's 16 lanes are 16 channels, so
// every pass is one contiguous stream of whole vectors, where the channel-major kernels (norm.h)
// walk n planes per channel. Lanes past c stay zero: their gamma and beta count as 0.
//
// Statistics are reduced in a fixed order (each image's pixels in float lanes, images combined in
// double), so results do not depend on the thread count. The arguments and NormTail /
// ReluGradMask mean what they mean for norm.h's batch_norm2d_* kernels; the tail's activation
// must be a ReLU (the residual networks' only one).
#pragma once

#include <cstdint>

#include "duet/kernels/gemm.h"
#include "duet/kernels/norm.h"

namespace duet::kernels {

// The forwards write the per-channel a and b of y = tail(a x + b) they applied to
// applied->scale and applied->shift ([c] each) when asked: the backward of a ReLU tail without
// residual then finds its mask from x (ReluGradMask::x_scale, x_shift).
struct AppliedAffine {
  float* scale = nullptr;
  float* shift = nullptr;
};
void batch_norm_blocked_forward_train(int64_t n, int64_t c, int64_t hw, const float* x,
                                      const float* gamma, const float* beta, float eps,
                                      float momentum, float* running_mean, float* running_var,
                                      float* y, float* save_mean, float* save_invstd,
                                      const NormTail& tail = {}, const AppliedAffine& applied = {});
void batch_norm_blocked_forward_eval(int64_t n, int64_t c, int64_t hw, const float* x,
                                     const float* gamma, const float* beta,
                                     const float* running_mean, const float* running_var, float eps,
                                     float* y, const NormTail& tail = {},
                                     const AppliedAffine& applied = {});
// relu.masked_dy, when written, is blocked like dy. batch_statistics false: the backward of
// eval mode (save_mean and save_invstd from the running statistics; dx = dy gamma invstd).
void batch_norm_blocked_backward(int64_t n, int64_t c, int64_t hw, const float* x, const float* dy,
                                 const float* gamma, const float* save_mean,
                                 const float* save_invstd, float* dx, float* dgamma, float* dbeta,
                                 const ReluGradMask& relu = {}, bool batch_statistics = true);

// Group norm (norm.h's group_norm_*, the UNet's) of blocked x: statistics per (image, group of
// c / groups consecutive channels; a group may share a block or span several), then
// y = act(norm(x) gamma + beta); save_mean and save_rstd are [n, groups]. The backward takes dy
// of act's output and recomputes act'(z) from x (beta is needed then); dx may be dy.
// shift (may be null) is a per-(image, channel) [n, c] value added to x before normalising:
// the UNet block's time + class embedding, added as the norm reads its input instead of in a
// pass of its own; its gradient dshift [n, c] (written when not null) is the sum of dx over the
// pixels.
void group_norm_blocked_forward(int64_t n, int64_t c, int64_t hw, int64_t groups, const float* x,
                                const float* shift, const float* gamma, const float* beta,
                                float eps, Activation act, float* y, float* save_mean,
                                float* save_rstd);
void group_norm_blocked_backward(int64_t n, int64_t c, int64_t hw, int64_t groups, const float* x,
                                 const float* shift, const float* dy, const float* gamma,
                                 const float* beta, Activation act, const float* save_mean,
                                 const float* save_rstd, float* dx, float* dshift, float* dgamma,
                                 float* dbeta);

namespace ref {
// The twins: convert to channel-major, run ref::group_norm_* and ref::batch_norm2d_*, convert
// back (shift and dshift as in the fast kernels above).
void group_norm_blocked_forward(int64_t n, int64_t c, int64_t hw, int64_t groups, const float* x,
                                const float* shift, const float* gamma, const float* beta,
                                float eps, Activation act, float* y, float* save_mean,
                                float* save_rstd);
void group_norm_blocked_backward(int64_t n, int64_t c, int64_t hw, int64_t groups, const float* x,
                                 const float* shift, const float* dy, const float* gamma,
                                 const float* beta, Activation act, const float* save_mean,
                                 const float* save_rstd, float* dx, float* dshift, float* dgamma,
                                 float* dbeta);
void batch_norm_blocked_forward_train(int64_t n, int64_t c, int64_t hw, const float* x,
                                      const float* gamma, const float* beta, float eps,
                                      float momentum, float* running_mean, float* running_var,
                                      float* y, float* save_mean, float* save_invstd,
                                      const NormTail& tail = {}, const AppliedAffine& applied = {});
void batch_norm_blocked_backward(int64_t n, int64_t c, int64_t hw, const float* x, const float* dy,
                                 const float* gamma, const float* save_mean,
                                 const float* save_invstd, float* dx, float* dgamma, float* dbeta,
                                 const ReluGradMask& relu = {});
}  // namespace ref

namespace detail {

// The per-block passes, one table per ISA (norm_blocked_rows.h instantiates them; without AVX2,
// norm_blocked.cpp on scalars). Each works on
// one 16-lane block of `pixels` pixels; per-lane arrays are 16 floats.
struct BlockedNormRows {
  // sums[l] = sum of lane l; with mean, the sum of squared deviations from mean[l].
  void (*sum)(int64_t pixels, const float* x, float* sums);
  void (*sum_sq_dev)(int64_t pixels, const float* x, const float* mean, float* sums);
  // y = a x + b (+ residual) (then ReLU when relu).
  void (*affine)(int64_t pixels, const float* x, const float* a, const float* b,
                 const float* residual, bool relu, float* y);
  // g = relu_y ? dy where relu_y > 0, else 0 (written to masked) : dy; then
  // s_dy[l] = sum g, s_dyx[l] = sum g (x - mean[l]).
  void (*grad_sums)(int64_t pixels, const float* dy, const float* relu_y, float* masked,
                    const float* x, const float* mean, float* s_dy, float* s_dyx);
  // dx = k g + b x + c0, lane-wise.
  void (*affine2)(int64_t pixels, const float* g, const float* x, const float* k, const float* b,
                  const float* c0, float* dx);
  // y = act(a x + b).
  void (*affine_act)(int64_t pixels, const float* x, const float* a, const float* b, Activation act,
                     float* y);
  // g = dy act'(a x + b) (written to g_out, which may be dy), s_dy[l] = sum g,
  // s_dyx[l] = sum g (x - mean[l]).
  void (*grad_sums_act)(int64_t pixels, const float* dy, const float* x, const float* a,
                        const float* b, Activation act, const float* mean, float* g_out,
                        float* s_dy, float* s_dyx);
  // grad_sums and affine2 for a ReLU tail without residual, the mask taken where a x + b > 0:
  // g is never stored. affine2_relu: dx = k g + bb x + c0.
  void (*grad_sums_relu)(int64_t pixels, const float* dy, const float* x, const float* a,
                         const float* b, const float* mean, float* s_dy, float* s_dyx);
  void (*affine2_relu)(int64_t pixels, const float* dy, const float* x, const float* a,
                       const float* b, const float* k, const float* bb, const float* c0, float* dx);
};
const BlockedNormRows& blocked_norm_rows_avx2();
const BlockedNormRows& blocked_norm_rows_avx512();

}  // namespace detail
}  // namespace duet::kernels
