#include "duet/ops/conv_fused.h"

#include <vector>

#include "duet/autograd/autograd.h"
#include "duet/kernels/conv2d_fused.h"
#include "duet/kernels/norm.h"
#include "duet/ops/op_util.h"

namespace duet::ops {

Tensor group_norm_act_conv2d(const Tensor& x_in, const GroupNormAct& norm, const Tensor& weight_in,
                             const Tensor& bias, const Conv2dOptions& o,
                             const Tensor& image_bias_in, const Tensor& residual_in) {
  constexpr const char* op = "group_norm_act_conv2d";
  DUET_CHECK(!autograd::grad_enabled(), op, ": inference only, call it with gradients disabled");
  const kernels::Conv2dShape s = checked_conv2d_shape(x_in, weight_in, bias, o);
  DUET_CHECK(s.groups == 1, op, ": groups must be 1, got ", s.groups);
  const int64_t n = s.batch, c = s.in_channels, k = s.out_channels, hw = s.in_h * s.in_w;
  DUET_CHECK(norm.groups > 0 && c % norm.groups == 0, op, ": ", c, " channels of input ",
             x_in.shape().str(), " are not divisible into ", norm.groups, " groups");
  detail::check_affine(norm.weight, c, op, "norm weight", x_in);
  detail::check_affine(norm.bias, c, op, "norm bias", x_in);
  const Shape out_shape{n, k, s.out_h(), s.out_w()};
  if (image_bias_in.defined())
    detail::check_shapes(
        image_bias_in.shape() == Shape{n, k} && image_bias_in.dtype() == DType::f32, op,
        "image bias must be F32 [batch, out_channels]", image_bias_in, x_in);
  if (residual_in.defined())
    detail::check_shapes(residual_in.shape() == out_shape && residual_in.dtype() == DType::f32, op,
                         "residual must be F32 and shaped like the output", residual_in, x_in);

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

  const Tensor image_bias = image_bias_in.defined() ? contiguous(image_bias_in) : Tensor();
  const Tensor residual = residual_in.defined() ? contiguous(residual_in) : Tensor();
  const Tensor conv_bias = bias.defined() ? contiguous(bias) : Tensor();
  Tensor y = Tensor::empty(out_shape);
  kernels::Epilogue e;
  if (conv_bias.defined()) e.bias = conv_bias.data<float>();
  if (residual.defined()) e.residual = residual.data<float>();
  kernels::conv2d_forward_fused(s, x.data<float>(), w.data<float>(), y.data<float>(),
                                kernels::Prologue{scale.data(), shift.data(), norm.act},
                                image_bias.defined() ? image_bias.data<float>() : nullptr, e);
  return y;
}

}  // namespace duet::ops
