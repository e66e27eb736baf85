// Finite-difference gradient checking for the op harness's grad mode. The scalar probed is
// L = sum(f(inputs) * w) with a fixed random w, accumulated in double; autograd's dL/dx is
// compared with central differences on a sample of elements of every input that requires grad,
// and each input's gradient must be non-zero so that a broken backward cannot pass on zeros.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "duet/tensor/tensor.h"

namespace duet::test {

struct GradCheckOptions {
  double eps = 1e-2;      // perturbation (inputs are O(1))
  double atol = 2e-3;     // allowed |analytic - numeric| ...
  double rtol = 2e-2;     // ... plus this times max(|analytic|, |numeric|)
  int max_elements = 24;  // elements probed per input (spread over the tensor)
};

// Returns "" on success, else a message naming the input, element and both values.
std::string check_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                            std::vector<Tensor> inputs, const GradCheckOptions& options = {});

// Registers a grad case whose inputs are fresh random tensors of the given shapes (values in
// [-1, 1], seeded from the name) - the common form of a table row.
void add_grad_case_random(const std::string& name, const std::vector<Shape>& shapes,
                          std::function<Tensor(const std::vector<Tensor>&)> f,
                          GradCheckOptions options = {});

}  // namespace duet::test
