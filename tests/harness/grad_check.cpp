#include "grad_check.h"

#include <cmath>
#include <cstdio>
#include <functional>

#include "duet/autograd/autograd.h"
#include "op_harness.h"

namespace duet::test {
namespace {

double probe(const Tensor& out, const std::vector<float>& w) {
  const auto v = out.to_vector();
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += double(v[i]) * w[i];
  return s;
}

}  // namespace

std::string check_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                            std::vector<Tensor> inputs, const GradCheckOptions& o) {
  for (auto& t : inputs)
    if (t.dtype() == DType::f32) autograd::set_requires_grad(t, true);
  Tensor out = f(inputs);
  const std::vector<float> w = random_vector(static_cast<size_t>(out.numel()), 12345);
  autograd::backward(out, Tensor::from_vector(w, out.shape()));

  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor& x = inputs[i];
    if (x.dtype() != DType::f32) continue;
    const Tensor g = autograd::grad(x);
    if (!g.defined()) return "input " + std::to_string(i) + " received no gradient";
    const auto gv = g.to_vector();
    double norm = 0;
    for (float v : gv) norm += std::fabs(v);
    if (!(norm > 0)) return "input " + std::to_string(i) + " has an all-zero gradient";

    float* data = x.data<float>();
    const int64_t n = x.numel();
    const int64_t step = std::max<int64_t>(1, n / o.max_elements);
    autograd::NoGradGuard no_grad;
    for (int64_t e = 0; e < n; e += step) {
      const float saved = data[e];
      data[e] = saved + static_cast<float>(o.eps);
      const double plus = probe(f(inputs), w);
      data[e] = saved - static_cast<float>(o.eps);
      const double minus = probe(f(inputs), w);
      data[e] = saved;
      // The perturbation actually applied, after float rounding.
      const double h =
          double(saved + static_cast<float>(o.eps)) - double(saved - static_cast<float>(o.eps));
      const double numeric = (plus - minus) / h;
      const double analytic = gv[static_cast<size_t>(e)];
      const double tol = o.atol + o.rtol * std::max(std::fabs(numeric), std::fabs(analytic));
      if (!(std::fabs(numeric - analytic) <= tol)) {
        char buf[200];
        std::snprintf(buf, sizeof buf, "input %zu element %lld: autograd %.6g vs numeric %.6g", i,
                      static_cast<long long>(e), analytic, numeric);
        return buf;
      }
    }
  }
  return "";
}

void add_grad_case_random(const std::string& name, const std::vector<Shape>& shapes,
                          std::function<Tensor(const std::vector<Tensor>&)> f,
                          GradCheckOptions options) {
  add_grad_case({name, [name, shapes, f, options] {
                   std::vector<Tensor> inputs;
                   uint64_t seed = std::hash<std::string>{}(name);
                   for (const Shape& s : shapes)
                     inputs.push_back(Tensor::from_vector(
                         random_vector(static_cast<size_t>(s.numel()), seed++), s));
                   return check_gradients(f, inputs, options);
                 }});
}

}  // namespace duet::test
