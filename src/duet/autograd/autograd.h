// Reverse-mode automatic differentiation over Tensors. An op that produces a tensor from inputs
// that require gradients records a Node: its differentiable inputs and a backward function that
// maps the output's gradient to one gradient per input. backward() walks the graph in reverse
// topological order, sums gradients that meet at a tensor, and accumulates into leaves' .grad.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "duet/tensor/tensor.h"

namespace duet::autograd {

// Returns one gradient per recorded input, in order; an undefined Tensor means "no gradient".
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  std::string op;              // op name, used in error messages ("conv2d")
  std::vector<Tensor> inputs;  // differentiable inputs (sharing their autograd state)
  BackwardFn backward;
  uint64_t sequence = 0;  // creation order; later nodes are processed first
};

struct Meta {
  bool requires_grad = false;
  Tensor grad;                    // accumulated gradient (leaves only)
  std::shared_ptr<Node> grad_fn;  // null for leaves
};

// Gradient mode (thread-local). Disabled inside NoGradGuard: ops record nothing.
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};
// The opposite, for a scope that needs an input gradient while its caller runs without
// gradients (classifier guidance inside a sampler that a no-grad judge calls).
class EnableGradGuard {
 public:
  EnableGradGuard();
  ~EnableGradGuard();
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

// Marks a leaf tensor (a parameter, or an input under test) as requiring gradients.
void set_requires_grad(Tensor& t, bool on = true);
bool requires_grad(const Tensor& t);
// The accumulated gradient of a leaf (undefined until a backward pass reaches it).
Tensor grad(const Tensor& t);
void zero_grad(Tensor& t);  // drops the accumulated gradient
// Same storage, no autograd state: what backward closures capture to avoid reference cycles.
Tensor detached(const Tensor& t);

// True when grad mode is on and any of the inputs requires gradients.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);

// Called by ops after computing `output`: when gradients are needed, attaches a Node so that
// backward() can reach `inputs` (entries that are undefined or need no gradient are kept in
// place so the backward function's return order still matches).
void record(Tensor& output, std::string op, std::vector<Tensor> inputs, BackwardFn backward);

// Backpropagates from `root`. grad_root defaults to 1 for a one-element root. Frees the graph
// afterwards unless retain_graph is set.
void backward(const Tensor& root, const Tensor& grad_root = Tensor(), bool retain_graph = false);

}  // namespace duet::autograd
