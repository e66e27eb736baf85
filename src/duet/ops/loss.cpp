#include "duet/ops/loss.h"

#include "duet/autograd/autograd.h"
#include "duet/kernels/eltwise.h"
#include "duet/kernels/loss.h"
#include "duet/kernels/softmax.h"
#include "duet/ops/op_util.h"

namespace duet::ops {
namespace {

using RowFn = void (*)(int64_t, int64_t, const float*, float*);
using RowBackFn = void (*)(int64_t, int64_t, const float*, const float*, float*);

// softmax and log_softmax share everything but the two kernels.
Tensor last_dim(const Tensor& x_in, RowFn forward, RowBackFn backward, const char* name) {
  detail::check_f32(x_in, name, "input");
  DUET_CHECK(x_in.rank() >= 1, name, ": input must have at least one dimension");
  const Tensor x = contiguous(x_in);
  const int64_t cols = x.dim(-1), rows = x.numel() / std::max<int64_t>(cols, 1);
  Tensor y = Tensor::empty(x.shape());
  forward(rows, cols, x.data<float>(), y.data<float>());
  autograd::record(y, name, {x_in},
                   [y = autograd::detached(y), rows, cols, backward](const Tensor& g_in) {
                     const Tensor g = contiguous(g_in);
                     Tensor dx = Tensor::empty(y.shape());
                     backward(rows, cols, y.data<float>(), g.data<float>(), dx.data<float>());
                     return std::vector<Tensor>{dx};
                   });
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x) {
  return last_dim(x, kernels::softmax_forward, kernels::softmax_backward, "softmax");
}

Tensor log_softmax(const Tensor& x) {
  return last_dim(x, kernels::log_softmax_forward, kernels::log_softmax_backward, "log_softmax");
}

Tensor cross_entropy(const Tensor& logits_in, const Tensor& targets, float label_smoothing) {
  detail::check_f32(logits_in, "cross_entropy", "logits");
  DUET_CHECK(targets.defined() && targets.dtype() == DType::i32,
             "cross_entropy: targets must be I32 class indices");
  detail::check_shapes(
      logits_in.rank() == 2 && targets.rank() == 1 && targets.dim(0) == logits_in.dim(0),
      "cross_entropy", "expected logits [N, C] and targets [N]", logits_in, targets);
  DUET_CHECK(label_smoothing >= 0.0f && label_smoothing < 1.0f,
             "cross_entropy: label_smoothing must be in [0, 1), got ", label_smoothing);
  const Tensor logits = contiguous(logits_in), t = contiguous(targets);
  const int64_t n = logits.dim(0), c = logits.dim(1);
  // The kernel computes the loss and d(loss)/d(logits) in one pass; the gradient is kept for
  // backward and scaled there by the upstream gradient.
  Tensor dlogits = Tensor::empty(logits.shape());
  const float loss = kernels::cross_entropy(n, c, logits.data<float>(), t.data<int32_t>(),
                                            label_smoothing, 1.0f, dlogits.data<float>());
  Tensor y = Tensor::scalar(loss);
  autograd::record(y, "cross_entropy", {logits_in}, [dlogits](const Tensor& g) {
    const float scale = g.item();
    Tensor d = Tensor::empty(dlogits.shape());
    kernels::axpby(d.numel(), scale, dlogits.data<float>(), 0.0f, d.data<float>());
    return std::vector<Tensor>{d};
  });
  return y;
}

Tensor mse_loss(const Tensor& a_in, const Tensor& b_in) {
  detail::check_f32(a_in, "mse_loss", "input");
  detail::check_f32(b_in, "mse_loss", "target");
  detail::check_shapes(a_in.shape() == b_in.shape(), "mse_loss", "shapes must match", a_in, b_in);
  const Tensor a = contiguous(a_in), b = contiguous(b_in);
  Tensor y = Tensor::scalar(kernels::mse_forward(a.numel(), a.data<float>(), b.data<float>()));
  autograd::record(y, "mse_loss", {a_in, b_in},
                   [a = autograd::detached(a), b = autograd::detached(b)](const Tensor& g) {
                     Tensor da = Tensor::empty(a.shape()), db = Tensor::empty(b.shape());
                     kernels::mse_backward(a.numel(), a.data<float>(), b.data<float>(), g.item(),
                                           da.data<float>(), db.data<float>());
                     return std::vector<Tensor>{da, db};
                   });
  return y;
}

}  // namespace duet::ops
