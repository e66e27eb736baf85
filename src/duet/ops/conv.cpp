#include "duet/ops/conv.h"

#include "duet/autograd/autograd.h"
#include "duet/kernels/conv2d.h"
#include "duet/ops/op_util.h"

namespace duet::ops {

kernels::Conv2dShape conv2d_shape(const Shape& x, const Shape& w, const Conv2dOptions& o) {
  kernels::Conv2dShape s;
  s.batch = x[0];
  s.in_channels = x[1];
  s.in_h = x[2];
  s.in_w = x[3];
  s.out_channels = w[0];
  s.kernel_h = w[2];
  s.kernel_w = w[3];
  s.stride_h = s.stride_w = o.stride;
  s.pad_h = s.pad_w = o.padding;
  s.dilation_h = s.dilation_w = o.dilation;
  s.groups = o.groups;
  return s;
}

kernels::Conv2dShape checked_conv2d_shape(const Tensor& x_in, const Tensor& weight_in,
                                          const Tensor& bias, const Conv2dOptions& o) {
  detail::check_f32(x_in, "conv2d", "input");
  detail::check_f32(weight_in, "conv2d", "weight");
  detail::check_shapes(x_in.rank() == 4 && weight_in.rank() == 4, "conv2d",
                       "expected input [N, C, H, W] and weight [K, C/groups, R, S]", x_in,
                       weight_in);
  DUET_CHECK(o.stride >= 1 && o.dilation >= 1 && o.padding >= 0 && o.groups >= 1,
             "conv2d: stride and dilation must be >= 1, padding >= 0, groups >= 1");
  const kernels::Conv2dShape s = conv2d_shape(x_in.shape(), weight_in.shape(), o);
  detail::check_shapes(
      s.in_channels % s.groups == 0 && s.out_channels % s.groups == 0 &&
          weight_in.dim(1) * s.groups == s.in_channels,
      "conv2d", str("input channels must equal weight.shape[1] x groups (groups ", s.groups, ")"),
      x_in, weight_in);
  DUET_CHECK(s.out_h() >= 1 && s.out_w() >= 1, "conv2d: input ", x_in.shape().str(),
             " is smaller than the dilated kernel ", weight_in.shape().str());
  if (bias.defined())
    detail::check_shapes(bias.rank() == 1 && bias.dim(0) == s.out_channels, "conv2d",
                         "bias must be [out_channels]", bias, weight_in);
  return s;
}

std::vector<Tensor> conv2d_gradients(const kernels::Conv2dShape& s, const Tensor& x,
                                     const Tensor& w, bool has_bias, bool need_dx, bool need_dw,
                                     const Tensor& g) {
  Tensor dx;
  if (need_dx) {
    dx = Tensor::empty(x.shape());
    kernels::conv2d_backward_data(s, g.data<float>(), w.data<float>(), dx.data<float>());
  }
  Tensor dw, db;
  if (need_dw) {
    dw = Tensor::empty(w.shape());
    db = has_bias ? Tensor::empty({s.out_channels}) : Tensor();
    kernels::conv2d_backward_weight(s, x.data<float>(), g.data<float>(), dw.data<float>(),
                                    has_bias ? db.data<float>() : nullptr);
  }
  return {dx, dw, db};
}

Tensor conv2d(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias,
              const Conv2dOptions& o) {
  const kernels::Conv2dShape s = checked_conv2d_shape(x_in, weight_in, bias, o);
  const Tensor x = contiguous(x_in), w = contiguous(weight_in);
  Tensor y = Tensor::empty({s.batch, s.out_channels, s.out_h(), s.out_w()});
  kernels::Epilogue ep;
  if (bias.defined()) ep.bias = bias.data<float>();
  kernels::conv2d_forward(s, x.data<float>(), w.data<float>(), y.data<float>(), ep);

  const bool has_bias = bias.defined();
  autograd::record(y, "conv2d", {x_in, weight_in, bias},
                   [x = autograd::detached(x), w = autograd::detached(w), s, has_bias,
                    need_dx = autograd::requires_grad(x_in),
                    // Frozen weights (an input gradient through a fixed network, e.g. classifier
                    // guidance) skip the weight-gradient pass, about half of the backward's work.
                    need_dw = autograd::requires_grad(weight_in) ||
                              (has_bias && autograd::requires_grad(bias))](const Tensor& g_in) {
                     return conv2d_gradients(s, x, w, has_bias, need_dx, need_dw, contiguous(g_in));
                   });
  return y;
}

}  // namespace duet::ops
