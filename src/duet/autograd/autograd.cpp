#include "duet/autograd/autograd.h"

#include <algorithm>
#include <atomic>
#include <unordered_map>
#include <unordered_set>

#include "duet/kernels/eltwise.h"
#include "duet/tensor/error.h"

namespace duet::autograd {
namespace {

thread_local bool g_grad_enabled = true;
std::atomic<uint64_t> g_sequence{0};

Meta& ensure_meta(Tensor& t) {
  if (!t.autograd_meta()) t.set_autograd_meta(std::make_shared<Meta>());
  return *t.autograd_meta();
}

// Sums gradients that meet at one tensor. Out of place: a backward function may hand the same
// buffer to several inputs (add passes its gradient through to both), so none is ever mutated.
// Leaves own their gradient (a copy), since optimizers and clipping edit it in place.
void accumulate(Tensor& dst, const Tensor& src, bool owned) {
  if (!src.is_contiguous())
    fail("autograd: gradient of shape ", src.shape().str(), " is not contiguous");
  if (!dst.defined()) {
    dst = owned ? detached(src).clone() : detached(src);
    return;
  }
  Tensor sum = Tensor::empty(dst.shape());
  // The elementwise kernel (vectorised, threaded): a residual network sums every block input's
  // two gradients here.
  const int64_t n = dst.numel(), unit = 1;
  kernels::binary(kernels::BinaryOp::add, 1, &n, dst.data<float>(), &unit, src.data<float>(), &unit,
                  sum.data<float>());
  dst = sum;
}

}  // namespace

bool grad_enabled() {
  return g_grad_enabled;
}
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) {
  g_grad_enabled = false;
}
NoGradGuard::~NoGradGuard() {
  g_grad_enabled = previous_;
}
EnableGradGuard::EnableGradGuard() : previous_(g_grad_enabled) {
  g_grad_enabled = true;
}
EnableGradGuard::~EnableGradGuard() {
  g_grad_enabled = previous_;
}

void set_requires_grad(Tensor& t, bool on) {
  DUET_CHECK(t.defined(), "set_requires_grad on an undefined tensor");
  DUET_CHECK(!on || t.dtype() == DType::f32, "only f32 tensors can require gradients, got ",
             dtype_name(t.dtype()));
  Meta& m = ensure_meta(t);
  DUET_CHECK(!m.grad_fn, "set_requires_grad: only leaf tensors can be marked");
  m.requires_grad = on;
}

bool requires_grad(const Tensor& t) {
  return t.defined() && t.autograd_meta() && t.autograd_meta()->requires_grad;
}

Tensor grad(const Tensor& t) {
  return t.autograd_meta() ? t.autograd_meta()->grad : Tensor();
}

void zero_grad(Tensor& t) {
  if (t.autograd_meta()) t.autograd_meta()->grad = Tensor();
}

Tensor detached(const Tensor& t) {
  Tensor d = t;
  d.set_autograd_meta(nullptr);
  return d;
}

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  return std::any_of(inputs.begin(), inputs.end(),
                     [](const Tensor* t) { return t && requires_grad(*t); });
}

void record(Tensor& output, std::string op, std::vector<Tensor> inputs, BackwardFn backward) {
  if (!g_grad_enabled) return;
  if (std::none_of(inputs.begin(), inputs.end(), [](const Tensor& t) { return requires_grad(t); }))
    return;
  auto node = std::make_shared<Node>();
  node->op = std::move(op);
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  node->sequence = g_sequence.fetch_add(1);
  // A fresh Meta: the output may be a view sharing another tensor's state.
  auto meta = std::make_shared<Meta>();
  meta->requires_grad = true;
  meta->grad_fn = std::move(node);
  output.set_autograd_meta(std::move(meta));
}

void backward(const Tensor& root, const Tensor& grad_root, bool retain_graph) {
  DUET_CHECK(requires_grad(root),
             "backward: the tensor does not require gradients (was it computed "
             "from parameters with grad mode on?)");
  Tensor seed = grad_root;
  if (!seed.defined()) {
    DUET_CHECK(root.numel() == 1, "backward: grad_root is required for a non-scalar root of shape ",
               root.shape().str());
    seed = Tensor::full(root.shape(), 1.0f);
  }
  DUET_CHECK(seed.shape() == root.shape(), "backward: grad_root shape ", seed.shape().str(),
             " differs from root shape ", root.shape().str());

  Meta& root_meta = *root.autograd_meta();
  if (!root_meta.grad_fn) {  // the root is a leaf
    accumulate(root_meta.grad, seed, true);
    return;
  }

  // Collect every node reachable from the root. Node sequence numbers are creation order and
  // every input was created before its consumer, so descending sequence is a topological order.
  // Shared ownership for the whole pass: clearing a node's inputs below may drop the last other
  // reference to an upstream node that is still waiting for its gradient.
  std::vector<std::shared_ptr<Node>> nodes;
  std::unordered_set<Node*> seen;
  std::vector<std::shared_ptr<Node>> stack{root_meta.grad_fn};
  seen.insert(stack.back().get());
  while (!stack.empty()) {
    std::shared_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    for (const Tensor& in : n->inputs) {
      if (!in.defined() || !in.autograd_meta()) continue;
      const std::shared_ptr<Node>& next = in.autograd_meta()->grad_fn;
      if (next && seen.insert(next.get()).second) stack.push_back(next);
    }
    nodes.push_back(std::move(n));
  }
  std::sort(nodes.begin(), nodes.end(),
            [](const auto& a, const auto& b) { return a->sequence > b->sequence; });

  std::unordered_map<Node*, Tensor> pending;
  pending[root_meta.grad_fn.get()] = seed;
  for (const auto& node : nodes) {
    Node* n = node.get();
    auto it = pending.find(n);
    if (it == pending.end()) continue;  // no gradient flowed here
    const Tensor g = it->second;
    pending.erase(it);
    if (!n->backward)
      fail("backward: the graph through '", n->op,
           "' was already freed (call backward with retain_graph to run it twice)");
    std::vector<Tensor> grads = n->backward(g);
    DUET_CHECK(grads.size() == n->inputs.size(), "backward of '", n->op, "' returned ",
               grads.size(), " gradients for ", n->inputs.size(), " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      const Tensor& in = n->inputs[i];
      if (!grads[i].defined() || !requires_grad(in)) continue;
      if (grads[i].shape() != in.shape())
        fail("backward of '", n->op, "': gradient for input ", i, " has shape ",
             grads[i].shape().str(), " but the input has shape ", in.shape().str());
      Meta& m = *in.autograd_meta();
      if (m.grad_fn) {
        accumulate(pending[m.grad_fn.get()], grads[i], false);
      } else {
        accumulate(m.grad, grads[i], true);
      }
    }
    if (!retain_graph) {
      n->backward = nullptr;
      n->inputs.clear();
    }
  }
}

}  // namespace duet::autograd
