// ops::conv2d_add against the ops it fuses (conv2d, then the broadcast image bias and the
// residual added as tensors) on shapes that take the Winograd paths in all three passes, where
// the op harness's small finite-difference cases do not reach; and its shape errors.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "../harness/tensor_compare.h"
#include "duet/autograd/autograd.h"
#include "duet/kernels/conv2d.h"
#include "duet/ops/conv.h"
#include "duet/ops/conv_fused.h"
#include "duet/ops/eltwise.h"
#include "duet/ops/reduce.h"
#include "duet/ops/shape_ops.h"
#include "duet/tensor/error.h"
#include "duet/tensor/rng.h"

namespace duet {
namespace {

using test::max_abs_diff;

struct Inputs {
  Tensor x, w, b, image_bias, residual, grad_out;
};

Inputs make_inputs(int64_t n, int64_t c, int64_t k, int64_t hw) {
  Generator gen(7);
  Inputs in{Tensor::normal({n, c, hw, hw}, gen),
            Tensor::normal({k, c, 3, 3}, gen, 0, 0.1f),
            Tensor::normal({k}, gen),
            Tensor::normal({n, k}, gen),
            Tensor::normal({n, k, hw, hw}, gen),
            Tensor::normal({n, k, hw, hw}, gen)};
  for (Tensor* t : {&in.x, &in.w, &in.b, &in.image_bias, &in.residual})
    autograd::set_requires_grad(*t);
  return in;
}

// The output and the five gradients, from out = f(in) and a fixed output gradient.
std::vector<Tensor> run(const Inputs& in, const std::function<Tensor(const Inputs&)>& f) {
  std::vector<Tensor> got{f(in)};
  autograd::backward(ops::sum_all(ops::mul(got[0], in.grad_out)));
  for (const Tensor* t : {&in.x, &in.w, &in.b, &in.image_bias, &in.residual})
    got.push_back(autograd::grad(*t));
  return got;
}

TEST(ConvAdd, MatchesTheUnfusedOpsOnWinogradShapes) {
  const ops::Conv2dOptions pad1{1, 1, 1, 1};
  const int64_t n = 2, c = 32, k = 32, hw = 14;
  const kernels::Conv2dShape s = ops::conv2d_shape({n, c, hw, hw}, {k, c, 3, 3}, pad1);
  for (kernels::ConvPass pass : {kernels::ConvPass::forward, kernels::ConvPass::input_gradient,
                                 kernels::ConvPass::weight_gradient})
    EXPECT_TRUE(kernels::conv2d_takes_winograd(s, pass)) << "the shape no longer takes Winograd";

  const std::vector<Tensor> fused = run(make_inputs(n, c, k, hw), [&](const Inputs& in) {
    return ops::conv2d_add(in.x, in.w, in.b, pad1, in.image_bias, in.residual);
  });
  const std::vector<Tensor> parts = run(make_inputs(n, c, k, hw), [&](const Inputs& in) {
    const Tensor y = ops::conv2d(in.x, in.w, in.b, pad1);
    return ops::add(in.residual, ops::add(y, ops::reshape(in.image_bias, {n, k, 1, 1})));
  });
  const char* names[] = {"output", "dx", "dw", "dbias", "d image bias", "d residual"};
  for (size_t i = 0; i < fused.size(); ++i) {
    ASSERT_TRUE(fused[i].defined()) << names[i];
    // Sums of 288 products (forward) to 392 (weight gradient) of unit-scale values, in float
    // with Winograd's transforms: 1e-3 absolute.
    EXPECT_LT(max_abs_diff(fused[i], parts[i]), 1e-3) << names[i];
    EXPECT_GT(max_abs_diff(fused[i], Tensor::zeros(fused[i].shape())), 0.1) << names[i];
  }
}

TEST(ConvAdd, NamesTheAddendThatDoesNotFit) {
  Generator gen(1);
  const Tensor x = Tensor::normal({2, 3, 5, 5}, gen), w = Tensor::normal({4, 3, 3, 3}, gen);
  const ops::Conv2dOptions pad1{1, 1, 1, 1};
  auto message = [&](const Tensor& image_bias, const Tensor& residual) -> std::string {
    try {
      ops::conv2d_add(x, w, Tensor(), pad1, image_bias, residual);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message(Tensor::zeros({2, 3}), Tensor())
                .find("image bias must be F32 [batch, "
                      "out_channels]"),
            std::string::npos);
  EXPECT_NE(message(Tensor(), Tensor::zeros({2, 4, 4, 5}))
                .find("residual must be F32 and shaped like the output"),
            std::string::npos);
  EXPECT_EQ(message(Tensor::zeros({2, 4}), Tensor::zeros({2, 4, 5, 5})), "no error");
}

}  // namespace
}  // namespace duet
