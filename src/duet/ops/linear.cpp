#include "duet/ops/linear.h"

#include "duet/autograd/autograd.h"
#include "duet/kernels/gemm.h"
#include "duet/kernels/reduce.h"
#include "duet/ops/op_util.h"
#include "duet/tensor/parallel.h"

namespace duet::ops {
namespace {

using kernels::Trans;

// Sums the rows of g [rows, cols] into out [cols] (bias gradients).
Tensor column_sums(const Tensor& g, int64_t rows, int64_t cols) {
  Tensor out = Tensor::empty({cols});
  const int64_t shape[2] = {rows, cols};
  kernels::reduce_sum(2, shape, 1u, g.data<float>(), out.data<float>());
  return out;
}

std::vector<int64_t> with_last(const Shape& s, int64_t last) {
  auto dims = s.to_vector();
  dims.back() = last;
  return dims;
}

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  detail::check_f32(a_in, "matmul", "a");
  detail::check_f32(b_in, "matmul", "b");
  detail::check_shapes(a_in.rank() >= 1 && b_in.rank() == 2 && a_in.dim(-1) == b_in.dim(0),
                       "matmul", "expected a [..., M, K] and b [K, N]", a_in, b_in);
  const Tensor a = contiguous(a_in), b = contiguous(b_in);
  const int64_t k = b.dim(0), n = b.dim(1), m = a.numel() / std::max<int64_t>(k, 1);
  Tensor y = Tensor::empty(Shape(with_last(a.shape(), n)));
  kernels::sgemm(Trans::no, Trans::no, m, n, k, 1.0f, a.data<float>(), k, b.data<float>(), n, 0.0f,
                 y.data<float>(), n);
  autograd::record(
      y, "matmul", {a_in, b_in},
      [a = autograd::detached(a), b = autograd::detached(b), m, n, k](const Tensor& g) {
        Tensor da = Tensor::empty(a.shape()), db = Tensor::empty(b.shape());
        kernels::sgemm(Trans::no, Trans::yes, m, k, n, 1.0f, g.data<float>(), n, b.data<float>(), n,
                       0.0f, da.data<float>(), k);
        kernels::sgemm(Trans::yes, Trans::no, k, n, m, 1.0f, a.data<float>(), k, g.data<float>(), n,
                       0.0f, db.data<float>(), n);
        return std::vector<Tensor>{da, db};
      });
  return y;
}

Tensor bmm(const Tensor& a_in, const Tensor& b_in) {
  detail::check_f32(a_in, "bmm", "a");
  detail::check_f32(b_in, "bmm", "b");
  detail::check_shapes(a_in.rank() == 3 && b_in.rank() == 3 && a_in.dim(0) == b_in.dim(0) &&
                           a_in.dim(2) == b_in.dim(1),
                       "bmm", "expected a [B, M, K] and b [B, K, N]", a_in, b_in);
  const Tensor a = contiguous(a_in), b = contiguous(b_in);
  const int64_t batch = a.dim(0), m = a.dim(1), k = a.dim(2), n = b.dim(2);
  Tensor y = Tensor::empty({batch, m, n});
  auto run = [](Trans ta, Trans tb, int64_t batch, int64_t m, int64_t n, int64_t k, const float* x,
                int64_t ldx, int64_t sx, const float* w, int64_t ldw, int64_t sw, float* out) {
    parallel_for(batch, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t i = b0; i < b1; ++i)
        kernels::sgemm(ta, tb, m, n, k, 1.0f, x + i * sx, ldx, w + i * sw, ldw, 0.0f,
                       out + i * m * n, n);
    });
  };
  run(Trans::no, Trans::no, batch, m, n, k, a.data<float>(), k, m * k, b.data<float>(), n, k * n,
      y.data<float>());
  autograd::record(
      y, "bmm", {a_in, b_in},
      [a = autograd::detached(a), b = autograd::detached(b), batch, m, n, k, run](const Tensor& g) {
        Tensor da = Tensor::empty(a.shape()), db = Tensor::empty(b.shape());
        run(Trans::no, Trans::yes, batch, m, k, n, g.data<float>(), n, m * n, b.data<float>(), n,
            k * n, da.data<float>());
        run(Trans::yes, Trans::no, batch, k, n, m, a.data<float>(), k, m * k, g.data<float>(), n,
            m * n, db.data<float>());
        return std::vector<Tensor>{da, db};
      });
  return y;
}

Tensor linear(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias) {
  detail::check_f32(x_in, "linear", "input");
  detail::check_f32(weight_in, "linear", "weight");
  detail::check_shapes(
      x_in.rank() >= 1 && weight_in.rank() == 2 && x_in.dim(-1) == weight_in.dim(1), "linear",
      "input features must equal weight [out, in]'s in", x_in, weight_in);
  const int64_t out_features = weight_in.dim(0), in_features = weight_in.dim(1);
  if (bias.defined())
    detail::check_shapes(bias.rank() == 1 && bias.dim(0) == out_features, "linear",
                         "bias must be [out_features]", bias, weight_in);
  const Tensor x = contiguous(x_in), w = contiguous(weight_in);
  const int64_t rows = x.numel() / std::max<int64_t>(in_features, 1);
  Tensor y = Tensor::empty(Shape(with_last(x.shape(), out_features)));
  kernels::Epilogue ep;
  ep.axis = kernels::ChannelAxis::col;
  if (bias.defined()) ep.bias = bias.data<float>();
  kernels::sgemm(Trans::no, Trans::yes, rows, out_features, in_features, 1.0f, x.data<float>(),
                 in_features, w.data<float>(), in_features, 0.0f, y.data<float>(), out_features,
                 ep);
  const bool has_bias = bias.defined();
  autograd::record(y, "linear", {x_in, weight_in, bias},
                   [x = autograd::detached(x), w = autograd::detached(w), rows, in_features,
                    out_features, has_bias](const Tensor& g) {
                     Tensor dx = Tensor::empty(x.shape()), dw = Tensor::empty(w.shape());
                     kernels::sgemm(Trans::no, Trans::no, rows, in_features, out_features, 1.0f,
                                    g.data<float>(), out_features, w.data<float>(), in_features,
                                    0.0f, dx.data<float>(), in_features);
                     kernels::sgemm(Trans::yes, Trans::no, out_features, in_features, rows, 1.0f,
                                    g.data<float>(), out_features, x.data<float>(), in_features,
                                    0.0f, dw.data<float>(), in_features);
                     Tensor db = has_bias ? column_sums(g, rows, out_features) : Tensor();
                     return std::vector<Tensor>{dx, dw, db};
                   });
  return y;
}

}  // namespace duet::ops
