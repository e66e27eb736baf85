// AdamW as torch.optim.AdamW (amsgrad off): decoupled weight decay p *= 1 - lr * wd, moments
// with bias correction, eps added outside the square root. The state per parameter is
// "optim.<param>.step" (i64: the parameter's own update count), ".exp_avg" and ".exp_avg_sq".
#pragma once

#include "duet/train/optimizer.h"

namespace duet::train {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

class AdamW : public Optimizer {
 public:
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options);
  const AdamWOptions& options() const { return options_; }

 protected:
  std::vector<StateSpec> state_specs() const override;
  void prepare(Work& work, int64_t* counters) override;
  void apply(const Work& work, int64_t begin, int64_t end) const override;

 private:
  AdamWOptions options_;
};

}  // namespace duet::train
