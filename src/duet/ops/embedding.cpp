#include "duet/ops/embedding.h"

#include "duet/autograd/autograd.h"
#include "duet/kernels/eltwise.h"
#include "duet/kernels/embedding.h"
#include "duet/ops/op_util.h"

namespace duet::ops {

Tensor embedding(const Tensor& table_in, const Tensor& indices_in) {
  detail::check_f32(table_in, "embedding", "table");
  DUET_CHECK(table_in.rank() == 2, "embedding: table must be [count, dim], got ",
             table_in.shape().str());
  DUET_CHECK(indices_in.defined() && indices_in.dtype() == DType::i32,
             "embedding: indices must be I32");
  DUET_CHECK(indices_in.is_contiguous(), "embedding: indices must be contiguous");
  const Tensor table = contiguous(table_in);
  const int64_t vocab = table.dim(0), dim = table.dim(1), count = indices_in.numel();
  auto dims = indices_in.shape().to_vector();
  dims.push_back(dim);
  Tensor y = Tensor::empty(Shape(dims));
  kernels::embedding_forward(count, indices_in.data<int32_t>(), vocab, dim, table.data<float>(),
                             y.data<float>());
  autograd::record(y, "embedding", {table_in},
                   [indices = indices_in, vocab, dim, count](const Tensor& g_in) {
                     const Tensor g = contiguous(g_in);
                     Tensor dw = Tensor::empty({vocab, dim});
                     kernels::embedding_backward(count, indices.data<int32_t>(), vocab, dim,
                                                 g.data<float>(), dw.data<float>());
                     return std::vector<Tensor>{dw};
                   });
  return y;
}

Tensor dropout(const Tensor& x_in, float p, bool training, Generator& gen) {
  DUET_CHECK(p >= 0.0f && p < 1.0f, "dropout: p must be in [0, 1), got ", p);
  if (!training || p == 0.0f) return x_in;
  detail::check_f32(x_in, "dropout", "input");
  const Tensor x = contiguous(x_in);
  // The mask holds 0 or 1/(1-p); forward and backward are both a multiply by it.
  Tensor mask = Tensor::uniform(x.shape(), gen);
  float* m = mask.data<float>();
  const float keep = 1.0f / (1.0f - p);
  for (int64_t i = 0; i < mask.numel(); ++i) m[i] = m[i] < p ? 0.0f : keep;
  Tensor y = Tensor::empty(x.shape());
  const int64_t n = x.numel();
  const int64_t strides[1] = {1};
  kernels::binary(kernels::BinaryOp::mul, 1, &n, x.data<float>(), strides, m, strides,
                  y.data<float>());
  autograd::record(y, "dropout", {x_in}, [mask, n](const Tensor& g_in) {
    const Tensor g = contiguous(g_in);
    Tensor dx = Tensor::empty(g.shape());
    const int64_t strides[1] = {1};
    kernels::binary(kernels::BinaryOp::mul, 1, &n, g.data<float>(), strides, mask.data<float>(),
                    strides, dx.data<float>());
    return std::vector<Tensor>{dx};
  });
  return y;
}

}  // namespace duet::ops
