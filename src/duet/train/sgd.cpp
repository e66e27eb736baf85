#include "duet/train/sgd.h"

#include <cmath>

namespace duet::train {

Sgd::Sgd(std::vector<ParamGroup> groups, const SgdOptions& options)
    : Optimizer(std::move(groups), options.lr), options_(options) {
  set_momentum(options.momentum);
  DUET_CHECK(!options.nesterov || options.momentum > 0.0, "sgd: nesterov needs momentum > 0");
}

void Sgd::set_momentum(double momentum) {
  DUET_CHECK(momentum >= 0.0 && momentum < 1.0, "sgd: momentum must be in [0, 1), got ", momentum);
  // The state layout is fixed at construction; switching momentum on or off mid-run would
  // change which checkpoint keys exist.
  DUET_CHECK((momentum > 0.0) == (options_.momentum > 0.0),
             "sgd: momentum cannot switch between zero and non-zero after construction");
  options_.momentum = momentum;
}

std::vector<Optimizer::StateSpec> Sgd::state_specs() const {
  if (options_.momentum == 0.0) return {};
  return {{"momentum_buffer", false}};
}

void Sgd::prepare(Work& work, int64_t*) {
  work.coef[0] = static_cast<float>(-lr());
  work.coef[1] = static_cast<float>(options_.momentum);
  work.coef[2] = static_cast<float>(work.weight_decay);
}

void Sgd::apply(const Work& w, int64_t begin, int64_t end) const {
  // Same operation order as PyTorch (each line one rounding): d = g + wd*p; buf = m*buf + d;
  // p += -lr * (nesterov ? d + m*buf : buf). A zero-initialised buffer gives buf = d on the first
  // step, which is PyTorch's clone(d).
  float* __restrict p = w.param;
  const float* __restrict g = w.grad;
  const float neg_lr = w.coef[0], m = w.coef[1], wd = w.coef[2];
  if (m == 0.0f) {
    if (wd == 0.0f) {
      for (int64_t i = begin; i < end; ++i) p[i] += neg_lr * g[i];
    } else {
      for (int64_t i = begin; i < end; ++i) p[i] += neg_lr * (g[i] + wd * p[i]);
    }
    return;
  }
  float* __restrict buf = w.state[0];
  if (options_.nesterov) {
    for (int64_t i = begin; i < end; ++i) {
      const float d = g[i] + wd * p[i];
      const float b = m * buf[i] + d;
      buf[i] = b;
      p[i] += neg_lr * (d + m * b);
    }
  } else {
    for (int64_t i = begin; i < end; ++i) {
      const float d = g[i] + wd * p[i];
      const float b = m * buf[i] + d;
      buf[i] = b;
      p[i] += neg_lr * b;
    }
  }
}

}  // namespace duet::train
