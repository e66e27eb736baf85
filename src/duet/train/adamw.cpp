#include "duet/train/adamw.h"

#include <cmath>

#include "duet/kernels/isa.h"
#include "duet/train/adamw_update.h"

namespace duet::train {

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options)
    : Optimizer(std::move(groups), options.lr), options_(options) {
  DUET_CHECK(options.beta1 >= 0.0 && options.beta1 < 1.0, "adamw: beta1 must be in [0, 1), got ",
             options.beta1);
  DUET_CHECK(options.beta2 >= 0.0 && options.beta2 < 1.0, "adamw: beta2 must be in [0, 1), got ",
             options.beta2);
  DUET_CHECK(options.eps > 0.0, "adamw: eps must be > 0, got ", options.eps);
}

std::vector<Optimizer::StateSpec> AdamW::state_specs() const {
  return {{"step", true}, {"exp_avg", false}, {"exp_avg_sq", false, true}};
}

void AdamW::prepare(Work& w, int64_t* counters) {
  const int64_t step = ++counters[0];
  // Scalars in double, then rounded once to f32, as PyTorch does with its Python-float scalars.
  const double lr = this->lr();
  const double b1 = options_.beta1, b2 = options_.beta2;
  const double bias1 = 1.0 - std::pow(b1, static_cast<double>(step));
  const double bias2 = 1.0 - std::pow(b2, static_cast<double>(step));
  w.coef[0] = static_cast<float>(1.0 - lr * w.weight_decay);
  w.coef[1] = static_cast<float>(-lr / bias1);
  w.coef[2] = static_cast<float>(std::sqrt(bias2));
}

void AdamW::apply(const Work& w, int64_t begin, int64_t end) const {
  const detail::AdamWCoefs c{w.coef[0],
                             w.coef[1],
                             w.coef[2],
                             static_cast<float>(options_.beta1),
                             static_cast<float>(options_.beta2),
                             static_cast<float>(1.0 - options_.beta1),
                             static_cast<float>(1.0 - options_.beta2),
                             static_cast<float>(options_.eps)};
  float* __restrict p = w.param + begin;
  const float* __restrict g = w.grad + begin;
  float* __restrict m = w.state[0] + begin;
  float* __restrict v = w.state[1] + begin;
  const int64_t n = end - begin;
  if (kernels::isa_at_least(kernels::Isa::avx2)) {
    detail::adamw_update_avx2(p, g, m, v, n, c);
    return;
  }
  // Operation order follows ATen's mul_/add_/addcmul_/addcdiv_ (scalar * t1 * t2, scalar * t1 /
  // t2). (std::sqrt's errno handling keeps GCC from vectorising this loop; AVX2 machines skip it.)
  for (int64_t i = 0; i < n; ++i) {
    const float mi = c.beta1 * m[i] + c.one_minus_beta1 * g[i];
    const float vi = c.beta2 * v[i] + c.one_minus_beta2 * g[i] * g[i];
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * c.decay + c.neg_step * mi / (std::sqrt(vi) / c.bias2_sqrt + c.eps);
  }
}

}  // namespace duet::train
