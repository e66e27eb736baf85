// Grad rows of the op harness: activations, broadcasting arithmetic, softmax family, losses.
#include "duet/ops/activation.h"
#include "duet/ops/eltwise.h"
#include "duet/ops/embedding.h"
#include "duet/ops/loss.h"
#include "grad_check.h"
#include "op_harness.h"

namespace duet::test {
namespace {

using In = const std::vector<Tensor>&;

Register reg([] {
  // ReLU is not differentiable at 0: a small step keeps the probe on one side of the kink.
  GradCheckOptions kink;
  kink.eps = 1e-3;
  add_grad_case_random(
      "relu", {{3, 37}}, [](In x) { return ops::relu(x[0]); }, kink);
  add_grad_case_random("silu", {{3, 37}}, [](In x) { return ops::silu(x[0]); });
  add_grad_case_random("gelu", {{3, 37}}, [](In x) { return ops::gelu(x[0]); });
  add_grad_case_random("sigmoid", {{3, 37}}, [](In x) { return ops::sigmoid(x[0]); });
  add_grad_case_random("tanh", {{3, 37}}, [](In x) { return ops::tanh(x[0]); });

  add_grad_case_random("add/same", {{2, 3, 4}, {2, 3, 4}},
                       [](In x) { return ops::add(x[0], x[1]); });
  add_grad_case_random("add/channel-bcast", {{2, 3, 4, 5}, {1, 3, 1, 1}},
                       [](In x) { return ops::add(x[0], x[1]); });
  add_grad_case_random("sub/both-sides", {{3, 1, 5}, {1, 4, 1}},
                       [](In x) { return ops::sub(x[0], x[1]); });
  add_grad_case_random("mul/row-bcast", {{4, 7}, {7}}, [](In x) { return ops::mul(x[0], x[1]); });
  add_grad_case_random("div/bcast", {{3, 4}, {3, 1}}, [](In x) {
    // Keep the divisor away from zero: 2 + x in [1, 3].
    return ops::div(x[0], ops::add_scalar(x[1], 2.0f));
  });
  add_grad_case_random("mul_scalar", {{5, 3}}, [](In x) { return ops::mul_scalar(x[0], -1.7f); });

  add_grad_case_random("softmax", {{4, 9}}, [](In x) { return ops::softmax(x[0]); });
  add_grad_case_random("log_softmax", {{2, 3, 9}}, [](In x) { return ops::log_softmax(x[0]); });
  add_grad_case_random("mse_loss", {{3, 5}, {3, 5}},
                       [](In x) { return ops::mse_loss(x[0], x[1]); });
  for (float smoothing : {0.0f, 0.1f}) {
    add_grad_case_random(
        smoothing == 0 ? "cross_entropy" : "cross_entropy/smoothing", {{5, 7}}, [smoothing](In x) {
          const Tensor t = Tensor::from_vector(std::vector<int32_t>{0, 6, 3, 3, 1}, {5});
          return ops::cross_entropy(ops::mul_scalar(x[0], 3.0f), t, smoothing);
        });
  }
  add_grad_case_random("embedding", {{6, 4}}, [](In x) {
    const Tensor idx = Tensor::from_vector(std::vector<int32_t>{5, 0, 2, 2, 5, 1}, {2, 3});
    return ops::embedding(x[0], idx);
  });
  add_grad_case_random("dropout", {{4, 25}}, [](In x) {
    Generator gen(9);  // the same mask on every evaluation
    return ops::dropout(x[0], 0.3f, true, gen);
  });
});

}  // namespace
}  // namespace duet::test
