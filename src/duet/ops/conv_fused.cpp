#include "duet/ops/conv_fused.h"

#include <vector>

#include "duet/autograd/autograd.h"
#include "duet/kernels/conv2d_fused.h"
#include "duet/kernels/norm.h"
#include "duet/kernels/reduce.h"
#include "duet/ops/op_util.h"

namespace duet::ops {
namespace {

// Checks a fused convolution's image bias ([N, K]) and residual (shaped like the output), each
// F32 or undefined.
void check_addends(const kernels::Conv2dShape& s, const char* op, const Tensor& x,
                   const Tensor& image_bias, const Tensor& residual) {
  DUET_CHECK(s.groups == 1, op, ": groups must be 1, got ", s.groups);
  if (image_bias.defined())
    detail::check_shapes(
        image_bias.shape() == Shape{s.batch, s.out_channels} && image_bias.dtype() == DType::f32,
        op, "image bias must be F32 [batch, out_channels]", image_bias, x);
  if (residual.defined())
    detail::check_shapes(residual.shape() == Shape{s.batch, s.out_channels, s.out_h(), s.out_w()} &&
                             residual.dtype() == DType::f32,
                         op, "residual must be F32 and shaped like the output", residual, x);
}

// act(conv(prologue(x), w) + bias + image_bias + residual) by kernels::conv2d_forward_fused;
// x and w contiguous, the checked others defined or not.
Tensor fused_forward(const kernels::Conv2dShape& s, const Tensor& x, const Tensor& w,
                     const kernels::Prologue& prologue, const Tensor& bias_in,
                     const Tensor& image_bias_in, const Tensor& residual_in) {
  const Tensor bias = bias_in.defined() ? contiguous(bias_in) : Tensor();
  const Tensor image_bias = image_bias_in.defined() ? contiguous(image_bias_in) : Tensor();
  const Tensor residual = residual_in.defined() ? contiguous(residual_in) : Tensor();
  Tensor y = Tensor::empty({s.batch, s.out_channels, s.out_h(), s.out_w()});
  kernels::Epilogue e;
  if (bias.defined()) e.bias = bias.data<float>();
  if (residual.defined()) e.residual = residual.data<float>();
  kernels::conv2d_forward_fused(s, x.data<float>(), w.data<float>(), y.data<float>(), prologue,
                                image_bias.defined() ? image_bias.data<float>() : nullptr, e);
  return y;
}

}  // namespace

Tensor group_norm_act_conv2d(const Tensor& x_in, const GroupNormAct& norm, const Tensor& weight_in,
                             const Tensor& bias, const Conv2dOptions& o,
                             const Tensor& image_bias_in, const Tensor& residual_in) {
  constexpr const char* op = "group_norm_act_conv2d";
  DUET_CHECK(!autograd::grad_enabled(), op, ": inference only, call it with gradients disabled");
  const kernels::Conv2dShape s = checked_conv2d_shape(x_in, weight_in, bias, o);
  check_addends(s, op, x_in, image_bias_in, residual_in);
  const int64_t n = s.batch, c = s.in_channels, hw = s.in_h * s.in_w;
  DUET_CHECK(norm.groups > 0 && c % norm.groups == 0, op, ": ", c, " channels of input ",
             x_in.shape().str(), " are not divisible into ", norm.groups, " groups");
  detail::check_affine(norm.weight, c, op, "norm weight", x_in);
  detail::check_affine(norm.bias, c, op, "norm bias", x_in);

  const Tensor x = contiguous(x_in), w = contiguous(weight_in);
  // The normalisation as one affine map per (image, channel): act(x * a + b).
  const int64_t groups = norm.groups, cg = c / groups;
  std::vector<float> mean(size_t(n * groups)), rstd(size_t(n * groups));
  kernels::group_norm_stats(n, c, hw, groups, x.data<float>(), norm.eps, mean.data(), rstd.data());
  const Tensor gamma = norm.weight.defined() ? contiguous(norm.weight) : Tensor();
  const Tensor beta = norm.bias.defined() ? contiguous(norm.bias) : Tensor();
  std::vector<float> scale(size_t(n * c)), shift(size_t(n * c));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      const size_t g = size_t(i * groups + ch / cg), at = size_t(i * c + ch);
      const double a = double(rstd[g]) * (gamma.defined() ? gamma.data<float>()[ch] : 1.0f);
      scale[at] = float(a);
      shift[at] = float((beta.defined() ? beta.data<float>()[ch] : 0.0f) - double(mean[g]) * a);
    }
  return fused_forward(s, x, w, kernels::Prologue{scale.data(), shift.data(), norm.act}, bias,
                       image_bias_in, residual_in);
}

Tensor conv2d_add(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in,
                  const Conv2dOptions& o, const Tensor& image_bias_in, const Tensor& residual_in) {
  const kernels::Conv2dShape s = checked_conv2d_shape(x_in, weight_in, bias_in, o);
  check_addends(s, "conv2d_add", x_in, image_bias_in, residual_in);
  const Tensor x = contiguous(x_in), w = contiguous(weight_in);
  Tensor y = fused_forward(s, x, w, kernels::Prologue{}, bias_in, image_bias_in, residual_in);

  const bool has_bias = bias_in.defined();
  autograd::record(
      y, "conv2d_add", {x_in, weight_in, bias_in, image_bias_in, residual_in},
      [x = autograd::detached(x), w = autograd::detached(w), s, has_bias,
       need_dx = autograd::requires_grad(x_in),
       need_dw =
           autograd::requires_grad(weight_in) || (has_bias && autograd::requires_grad(bias_in)),
       need_image_bias = autograd::requires_grad(image_bias_in),
       need_residual = autograd::requires_grad(residual_in)](const Tensor& g_in) {
        const Tensor g = contiguous(g_in);
        std::vector<Tensor> grads = conv2d_gradients(s, x, w, has_bias, need_dx, need_dw, g);
        Tensor d_image_bias;
        if (need_image_bias) {  // the sum of each output plane
          d_image_bias = Tensor::empty({s.batch, s.out_channels});
          const int64_t planes[2] = {s.batch * s.out_channels, s.out_h() * s.out_w()};
          kernels::reduce_sum(2, planes, 2u, g.data<float>(), d_image_bias.data<float>());
        }
        grads.push_back(d_image_bias);
        grads.push_back(need_residual ? g : Tensor());
        return grads;
      });
  return y;
}

}  // namespace duet::ops
