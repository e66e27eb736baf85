// The autograd engine itself: gradient accumulation, shared subexpressions, the no-grad guard,
// graph freeing, and errors that name the op and both shapes.
#include <gtest/gtest.h>

#include "duet/autograd/autograd.h"
#include "duet/ops/eltwise.h"
#include "duet/ops/linear.h"
#include "duet/ops/reduce.h"

using namespace duet;

TEST(Autograd, DiamondGraphSumsBothPaths) {
  Tensor x = Tensor::from_vector(std::vector<float>{1.0f, -2.0f, 3.0f}, {3});
  autograd::set_requires_grad(x);
  // y = sum(x * x + 3x): dy/dx = 2x + 3.
  Tensor y = ops::sum_all(ops::add(ops::mul(x, x), ops::mul_scalar(x, 3.0f)));
  EXPECT_FLOAT_EQ(y.item(), 1 + 4 + 9 + 3 * 2);
  autograd::backward(y);
  EXPECT_EQ(autograd::grad(x).to_vector(), (std::vector<float>{5.0f, -1.0f, 9.0f}));
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCallsUntilZeroed) {
  Tensor x = Tensor::from_vector(std::vector<float>{2.0f}, {1});
  autograd::set_requires_grad(x);
  for (int i = 0; i < 3; ++i) autograd::backward(ops::sum_all(ops::mul_scalar(x, 4.0f)));
  EXPECT_EQ(autograd::grad(x).item(), 12.0f);
  autograd::zero_grad(x);
  EXPECT_FALSE(autograd::grad(x).defined());
}

TEST(Autograd, SharedGradientBuffersAreNotAliasedIntoLeaves) {
  // add's backward hands the same gradient to both inputs; editing one leaf's grad must not
  // change the other's.
  Tensor a = Tensor::ones({2}), b = Tensor::ones({2});
  autograd::set_requires_grad(a);
  autograd::set_requires_grad(b);
  autograd::backward(ops::sum_all(ops::add(a, b)));
  autograd::grad(a).fill(7.0f);
  EXPECT_EQ(autograd::grad(b).to_vector(), (std::vector<float>{1.0f, 1.0f}));
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Tensor x = Tensor::ones({2});
  autograd::set_requires_grad(x);
  Tensor y;
  {
    autograd::NoGradGuard guard;
    EXPECT_FALSE(autograd::grad_enabled());
    y = ops::mul_scalar(x, 2.0f);
  }
  EXPECT_TRUE(autograd::grad_enabled());
  EXPECT_FALSE(autograd::requires_grad(y));
  EXPECT_THROW(autograd::backward(ops::sum_all(y)), Error);
}

TEST(Autograd, FreedGraphCannotRunTwiceUnlessRetained) {
  Tensor x = Tensor::ones({2});
  autograd::set_requires_grad(x);
  Tensor y = ops::sum_all(ops::mul(x, x));
  autograd::backward(y, Tensor(), /*retain_graph=*/true);
  autograd::backward(y);
  EXPECT_EQ(autograd::grad(x).to_vector(), (std::vector<float>{4.0f, 4.0f}));
  EXPECT_THROW(autograd::backward(y), Error);
}

TEST(Autograd, ShapeMismatchNamesOpAndBothShapes) {
  Tensor a = Tensor::ones({2, 3}), b = Tensor::ones({4, 5});
  try {
    ops::matmul(a, b);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("matmul"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[4, 5]"), std::string::npos) << msg;
  }
  try {
    ops::add(Tensor::ones({3, 2}), Tensor::ones({4}));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("add: shapes [3, 2] and [4]"), std::string::npos)
        << e.what();
  }
}
