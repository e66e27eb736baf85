#include "duet/ops/norm.h"

#include <cmath>

#include "duet/autograd/autograd.h"
#include "duet/kernels/activation.h"
#include "duet/kernels/norm.h"
#include "duet/ops/op_util.h"

namespace duet::ops {
namespace {

const float* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<float>() : nullptr;
}

// dgamma/dbeta are only returned for affine parameters that exist.
std::vector<Tensor> affine_grads(Tensor dx, Tensor dgamma, Tensor dbeta, bool has_w, bool has_b) {
  return {std::move(dx), has_w ? std::move(dgamma) : Tensor(), has_b ? std::move(dbeta) : Tensor()};
}

// The backward of eval-mode batch norm (y = (x - mean) * invstd * gamma + beta with the running
// statistics): dx = dy * gamma * invstd; dbeta = sum dy, dgamma = sum dy * xhat when needed.
void eval_backward(int64_t n, int64_t c, int64_t hw, const Tensor& x, const Tensor& g,
                   const Tensor& w, const Tensor& mean, const Tensor& invstd, bool need_params,
                   Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  const float* gp = g.data<float>();
  float* dp = dx.data<float>();
  const float* is = invstd.data<float>();
  const float* wp = w.defined() ? w.data<float>() : nullptr;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float k = is[ch] * (wp ? wp[ch] : 1.0f);
      for (int64_t i = 0; i < hw; ++i) dp[(b * c + ch) * hw + i] = gp[(b * c + ch) * hw + i] * k;
    }
  if (!need_params) return;
  dgamma.fill(0.0f);
  dbeta.fill(0.0f);
  float* dg = dgamma.data<float>();
  float* db = dbeta.data<float>();
  const float* xp = x.data<float>();
  const float* mp = mean.data<float>();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < hw; ++i) {
        const int64_t e = (b * c + ch) * hw + i;
        db[ch] += gp[e];
        dg[ch] += gp[e] * (xp[e] - mp[ch]) * is[ch];
      }
}

// The kernel's activation for act; for none any value serves (the tail does not activate).
kernels::ActFn act_fn(NormActivation act) {
  switch (act) {
    case NormActivation::silu:
      return kernels::ActFn::silu;
    case NormActivation::gelu:
      return kernels::ActFn::gelu;
    case NormActivation::relu:
    case NormActivation::none:
      return kernels::ActFn::relu;
  }
  return kernels::ActFn::relu;
}

}  // namespace

void detail::check_batch_norm_args(const char* op, const Tensor& x, int64_t c, const Tensor& weight,
                                   const Tensor& bias, const Tensor& running_mean,
                                   const Tensor& running_var, const BatchNormTail& tail) {
  check_affine(weight, c, op, "weight", x);
  check_affine(bias, c, op, "bias", x);
  check_affine(running_mean, c, op, "running_mean", x);
  check_affine(running_var, c, op, "running_var", x);
  if (tail.residual.defined()) {
    check_f32(tail.residual, op, "residual");
    check_shapes(tail.residual.shape() == x.shape(), op, "residual must have the input's shape",
                 tail.residual, x);
  }
}

Tensor batch_norm(const Tensor& x_in, const Tensor& weight, const Tensor& bias,
                  Tensor& running_mean, Tensor& running_var, bool training, float momentum,
                  float eps, const BatchNormTail& tail) {
  detail::check_f32(x_in, "batch_norm", "input");
  DUET_CHECK(x_in.rank() >= 2, "batch_norm: expected input [N, C, ...], got ", x_in.shape().str());
  const int64_t n = x_in.dim(0), c = x_in.dim(1), hw = x_in.numel() / std::max<int64_t>(n * c, 1);
  detail::check_batch_norm_args("batch_norm", x_in, c, weight, bias, running_mean, running_var,
                                tail);
  const Tensor x = contiguous(x_in);
  const Tensor residual = tail.residual.defined() ? contiguous(tail.residual) : Tensor();
  const kernels::NormTail kernel_tail{ptr_or_null(residual), tail.relu, kernels::ActFn::relu};
  Tensor y = Tensor::empty(x.shape());
  // The statistics the backward uses: the batch's (training) or the running ones (eval).
  Tensor mean, invstd;
  if (training) {
    DUET_CHECK(n * hw > 1, "batch_norm: training needs more than one value per channel, got input ",
               x_in.shape().str());
    mean = Tensor::empty({c});
    invstd = Tensor::empty({c});
    kernels::batch_norm2d_forward_train(
        n, c, hw, x.data<float>(), ptr_or_null(weight), ptr_or_null(bias), eps, momentum,
        running_mean.defined() ? running_mean.data<float>() : nullptr,
        running_var.defined() ? running_var.data<float>() : nullptr, y.data<float>(),
        mean.data<float>(), invstd.data<float>(), kernel_tail);
  } else {
    DUET_CHECK(running_mean.defined() && running_var.defined(),
               "batch_norm: eval mode needs running statistics");
    kernels::batch_norm2d_forward_eval(
        n, c, hw, x.data<float>(), ptr_or_null(weight), ptr_or_null(bias),
        running_mean.data<float>(), running_var.data<float>(), eps, y.data<float>(), kernel_tail);
    mean = running_mean.clone();
    invstd = Tensor::empty({c});
    for (int64_t i = 0; i < c; ++i)
      invstd.data<float>()[i] = 1.0f / std::sqrt(running_var.data<float>()[i] + eps);
  }
  const bool has_w = weight.defined(), has_b = bias.defined(), relu = tail.relu;
  // Frozen parameters (an input gradient through a fixed network, e.g. classifier guidance)
  // need only dx.
  const bool need_params = autograd::requires_grad(weight) || autograd::requires_grad(bias);
  autograd::record(
      y, "batch_norm", {x_in, weight, bias, tail.residual},
      [x = autograd::detached(x), w = autograd::detached(weight), mean, invstd, n, c, hw, training,
       has_w, has_b, need_params, relu,
       y_out = relu ? autograd::detached(y) : Tensor()](const Tensor& g_in) {
        Tensor g = contiguous(g_in);
        Tensor dx = Tensor::empty(x.shape());
        Tensor dgamma = Tensor::empty({c}), dbeta = Tensor::empty({c});
        if (training) {
          // The ReLU's gradient mask comes from the output (y > 0 where it passed); the kernel
          // applies it plane by plane and hands back the masked gradient for the residual.
          Tensor masked = relu ? Tensor::empty(g.shape()) : Tensor();
          kernels::batch_norm2d_backward(
              n, c, hw, x.data<float>(), g.data<float>(), ptr_or_null(w), mean.data<float>(),
              invstd.data<float>(), dx.data<float>(), need_params ? dgamma.data<float>() : nullptr,
              need_params ? dbeta.data<float>() : nullptr,
              kernels::ReluGradMask{ptr_or_null(y_out), relu ? masked.data<float>() : nullptr});
          if (relu) g = std::move(masked);
        } else {
          if (relu) {  // the ReLU's gradient mask, from the output (y > 0 where it passed)
            Tensor masked = Tensor::empty(g.shape());
            kernels::activation_backward(kernels::ActFn::relu, g.numel(), y_out.data<float>(),
                                         nullptr, g.data<float>(), masked.data<float>());
            g = std::move(masked);
          }
          // Eval mode is affine in x: dx = dy * gamma / sqrt(var + eps). Rarely differentiated
          // (e.g. input attributions).
          eval_backward(n, c, hw, x, g, w, mean, invstd, need_params, dx, dgamma, dbeta);
        }
        std::vector<Tensor> grads =
            affine_grads(dx, dgamma, dbeta, has_w && need_params, has_b && need_params);
        grads.push_back(g);  // the residual's gradient: the (masked) output gradient itself
        return grads;
      });
  return y;
}

Tensor group_norm(const Tensor& x_in, int64_t groups, const Tensor& weight, const Tensor& bias,
                  float eps, NormActivation act) {
  detail::check_f32(x_in, "group_norm", "input");
  DUET_CHECK(x_in.rank() >= 2, "group_norm: expected input [N, C, ...], got ", x_in.shape().str());
  const int64_t n = x_in.dim(0), c = x_in.dim(1), hw = x_in.numel() / std::max<int64_t>(n * c, 1);
  DUET_CHECK(groups > 0 && c % groups == 0, "group_norm: ", c, " channels of input ",
             x_in.shape().str(), " are not divisible into ", groups, " groups");
  detail::check_affine(weight, c, "group_norm", "weight", x_in);
  detail::check_affine(bias, c, "group_norm", "bias", x_in);
  const Tensor x = contiguous(x_in);
  Tensor y = Tensor::empty(x.shape());
  Tensor save_mean = Tensor::empty({n, groups}), save_rstd = Tensor::empty({n, groups});
  const kernels::NormTail tail{nullptr, act != NormActivation::none, act_fn(act)};
  kernels::group_norm_forward(n, c, hw, groups, x.data<float>(), ptr_or_null(weight),
                              ptr_or_null(bias), eps, y.data<float>(), save_mean.data<float>(),
                              save_rstd.data<float>(), tail);
  const bool has_w = weight.defined(), has_b = bias.defined();
  autograd::record(
      y, "group_norm", {x_in, weight, bias},
      [x = autograd::detached(x), w = autograd::detached(weight), b = autograd::detached(bias),
       save_mean, save_rstd, n, c, hw, groups, has_w, has_b, tail](const Tensor& g_in) {
        const Tensor g = contiguous(g_in);
        Tensor dx = Tensor::empty(x.shape());
        Tensor dgamma = Tensor::empty({c}), dbeta = Tensor::empty({c});
        kernels::group_norm_backward(
            n, c, hw, groups, x.data<float>(), g.data<float>(), ptr_or_null(w),
            save_mean.data<float>(), save_rstd.data<float>(), dx.data<float>(),
            dgamma.data<float>(), dbeta.data<float>(), tail, ptr_or_null(b));
        return affine_grads(dx, dgamma, dbeta, has_w, has_b);
      });
  return y;
}

Tensor layer_norm(const Tensor& x_in, const Tensor& weight, const Tensor& bias, float eps) {
  detail::check_f32(x_in, "layer_norm", "input");
  DUET_CHECK(x_in.rank() >= 1, "layer_norm: input must have at least one dimension");
  const int64_t d = x_in.dim(-1), rows = x_in.numel() / std::max<int64_t>(d, 1);
  detail::check_affine(weight, d, "layer_norm", "weight", x_in);
  detail::check_affine(bias, d, "layer_norm", "bias", x_in);
  const Tensor x = contiguous(x_in);
  Tensor y = Tensor::empty(x.shape());
  Tensor save_mean = Tensor::empty({rows}), save_rstd = Tensor::empty({rows});
  kernels::layer_norm_forward(rows, d, x.data<float>(), ptr_or_null(weight), ptr_or_null(bias), eps,
                              y.data<float>(), save_mean.data<float>(), save_rstd.data<float>());
  const bool has_w = weight.defined(), has_b = bias.defined();
  autograd::record(y, "layer_norm", {x_in, weight, bias},
                   [x = autograd::detached(x), w = autograd::detached(weight), save_mean, save_rstd,
                    rows, d, has_w, has_b](const Tensor& g_in) {
                     const Tensor g = contiguous(g_in);
                     Tensor dx = Tensor::empty(x.shape());
                     Tensor dgamma = Tensor::empty({d}), dbeta = Tensor::empty({d});
                     kernels::layer_norm_backward(rows, d, x.data<float>(), g.data<float>(),
                                                  ptr_or_null(w), save_mean.data<float>(),
                                                  save_rstd.data<float>(), dx.data<float>(),
                                                  dgamma.data<float>(), dbeta.data<float>());
                     return affine_grads(dx, dgamma, dbeta, has_w, has_b);
                   });
  return y;
}

}  // namespace duet::ops
