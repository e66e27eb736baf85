// SGD with momentum (dampening 0) and an optional Nesterov step, exactly as torch.optim.SGD:
// weight decay is L2 (weight_decay * p is added to the gradient before momentum), the momentum
// buffer starts as the first (decayed) gradient, and the state is "optim.<param>.momentum_buffer".
#pragma once

#include "duet/train/optimizer.h"

namespace duet::train {

struct SgdOptions {
  double lr = 0.1;
  double momentum = 0.9;  // 0: plain SGD, no state
  bool nesterov = false;
};

class Sgd : public Optimizer {
 public:
  Sgd(std::vector<ParamGroup> groups, const SgdOptions& options);
  const SgdOptions& options() const { return options_; }
  // One-cycle schedules may cycle momentum too; it takes effect from the next step().
  void set_momentum(double momentum);

 protected:
  std::vector<StateSpec> state_specs() const override;
  void prepare(Work& work, int64_t* counters) override;
  void apply(const Work& work, int64_t begin, int64_t end) const override;

 private:
  SgdOptions options_;
};

}  // namespace duet::train
