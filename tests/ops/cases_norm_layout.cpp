// Grad rows of the op harness: normalisation, pooling, reductions, layout ops, attention.
#include "duet/ops/attention.h"
#include "duet/ops/norm.h"
#include "duet/ops/pool.h"
#include "duet/ops/reduce.h"
#include "duet/ops/shape_ops.h"
#include "grad_check.h"
#include "op_harness.h"

namespace duet::test {
namespace {

using In = const std::vector<Tensor>&;

Register reg([] {
  add_grad_case_random("batch_norm/train", {{4, 3, 3, 2}, {3}, {3}}, [](In x) {
    Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
    return ops::batch_norm(x[0], x[1], x[2], rm, rv, true);
  });
  add_grad_case_random("batch_norm/eval", {{2, 3, 2, 2}, {3}, {3}}, [](In x) {
    Tensor rm = Tensor::full({3}, 0.2f), rv = Tensor::full({3}, 0.5f);
    return ops::batch_norm(x[0], x[1], x[2], rm, rv, false);
  });
  // The fused tail: relu(bn(x) + residual); gradients reach x, the affine and the residual.
  GradCheckOptions relu_kink;
  relu_kink.eps = 1e-3;
  add_grad_case_random(
      "batch_norm/train/add_relu", {{4, 3, 3, 2}, {3}, {3}, {4, 3, 3, 2}},
      [](In x) {
        Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
        return ops::batch_norm(x[0], x[1], x[2], rm, rv, true, 0.1f, 1e-5f, {x[3], true});
      },
      relu_kink);
  add_grad_case_random(
      "batch_norm/train/relu", {{4, 3, 3, 2}, {3}, {3}},
      [](In x) {
        Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
        return ops::batch_norm(x[0], x[1], x[2], rm, rv, true, 0.1f, 1e-5f, {Tensor(), true});
      },
      relu_kink);
  add_grad_case_random(
      "batch_norm/eval/add_relu", {{2, 3, 2, 2}, {3}, {3}, {2, 3, 2, 2}},
      [](In x) {
        Tensor rm = Tensor::full({3}, 0.2f), rv = Tensor::full({3}, 0.5f);
        return ops::batch_norm(x[0], x[1], x[2], rm, rv, false, 0.1f, 1e-5f, {x[3], true});
      },
      relu_kink);
  add_grad_case_random("group_norm", {{2, 6, 3, 3}, {6}, {6}},
                       [](In x) { return ops::group_norm(x[0], 3, x[1], x[2]); });
  add_grad_case_random("group_norm/silu", {{2, 6, 3, 3}, {6}, {6}}, [](In x) {
    return ops::group_norm(x[0], 3, x[1], x[2], 1e-5f, ops::NormActivation::silu);
  });
  add_grad_case_random("layer_norm", {{3, 4, 10}, {10}, {10}},
                       [](In x) { return ops::layer_norm(x[0], x[1], x[2]); });

  GradCheckOptions kink;
  kink.eps = 1e-3;
  add_grad_case_random(
      "max_pool2d/3s2p1", {{2, 3, 7, 6}}, [](In x) { return ops::max_pool2d(x[0], 3, 2, 1); },
      kink);
  add_grad_case_random("avg_pool2d/3s2p1", {{2, 3, 7, 6}},
                       [](In x) { return ops::avg_pool2d(x[0], 3, 2, 1); });
  add_grad_case_random("global_avg_pool2d", {{2, 5, 3, 4}},
                       [](In x) { return ops::global_avg_pool2d(x[0]); });
  add_grad_case_random("upsample_nearest2d/x2", {{1, 3, 3, 4}},
                       [](In x) { return ops::upsample_nearest2d(x[0], 2); });

  add_grad_case_random("sum/axes", {{2, 3, 4}}, [](In x) { return ops::sum(x[0], {0, 2}); });
  add_grad_case_random("mean/keepdim", {{2, 3, 4}},
                       [](In x) { return ops::mean(x[0], {1}, true); });
  add_grad_case_random("mean_all", {{3, 5}}, [](In x) { return ops::mean_all(x[0]); });

  add_grad_case_random("reshape+permute", {{2, 3, 4}}, [](In x) {
    return ops::reshape(ops::permute(x[0], {2, 0, 1}), {4, -1});
  });
  add_grad_case_random("transpose+slice", {{3, 6}},
                       [](In x) { return ops::slice(ops::transpose(x[0], 0, 1), 0, 1, 4); });
  add_grad_case_random("concat/axis1", {{2, 3, 2}, {2, 1, 2}, {2, 2, 2}}, [](In x) {
    return ops::concat({x[0], x[1], x[2]}, 1);
  });

  add_grad_case_random("attention/L5-S7-D8", {{2, 2, 5, 8}, {2, 2, 7, 8}, {2, 2, 7, 8}},
                       [](In x) { return ops::scaled_dot_product_attention(x[0], x[1], x[2]); });
});

}  // namespace
}  // namespace duet::test
