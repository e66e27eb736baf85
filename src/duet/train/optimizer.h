// Optimizer base: parameter groups (each with its own weight decay), one fused, parallel update
// pass per step over every parameter that has a gradient, and the optimizer state as named
// tensors ("optim.step", "optim.<param>.<state>") so a checkpoint resumes bit-identically. Updates
// are elementwise, so results do not depend on the thread count (AdamW's AVX2 path fuses
// multiply-adds, so they do depend on the ISA in the last bit).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "duet/tensor/tensor.h"

namespace duet::nn {
class Module;
}

namespace duet::train {

struct NamedParam {
  std::string name;  // state_dict key; names the optimizer state entries
  Tensor* tensor;    // a leaf parameter (contiguous f32); must outlive the optimizer
};

struct ParamGroup {
  std::vector<NamedParam> params;
  double weight_decay = 0.0;
};

// True for parameters that conventionally get no weight decay: every bias and the affine
// parameters of normalisation layers. `owner_type` is the type_name() of the owning module.
bool is_no_decay(const std::string& name, const std::string& owner_type);

// Splits a module's parameters into {decay group (weight_decay), no-decay group (0)}, both in
// named_parameters() order. Either group may be empty.
std::vector<ParamGroup> split_decay_groups(nn::Module& model, double weight_decay);

class Optimizer {
 public:
  Optimizer(std::vector<ParamGroup> groups, double lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Updates every parameter whose gradient is defined (others are skipped and their state is
  // left alone), then counts the step.
  void step();
  void zero_grad();

  // Kept in double like PyTorch's Python floats; kernels round the scalars they use to f32.
  double lr() const { return lr_; }
  void set_lr(double lr);
  int64_t step_count() const { return step_count_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }

  // "optim.step" (i64 scalar) and "optim.<param>.<state>" for every parameter whose state exists
  // (state is created on a parameter's first update). Tensors are copies. Hyperparameters and the
  // learning rate are not stored: they come from the run's configuration and schedule.
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  // Restores what state_dict() wrote. Keys outside "optim." are ignored (so a whole checkpoint
  // can be passed); an unknown "optim." key, a parameter with only part of its state, or a shape
  // or dtype mismatch throws duet::Error.
  void load_state_dict(const std::map<std::string, Tensor>& state);

 protected:
  struct StateSpec {
    std::string name;           // "momentum_buffer", "exp_avg", ...
    bool counter = false;       // an i64 scalar instead of a tensor shaped like the parameter
    bool non_negative = false;  // a loaded value below zero is an Error (a square root follows)
  };
  // One parameter's update for this step: raw pointers (all contiguous, n elements), the
  // per-parameter coefficients prepare() computed, and the group's weight decay.
  struct Work {
    float* param = nullptr;
    const float* grad = nullptr;
    float* state[3] = {nullptr, nullptr, nullptr};  // the float states, in state_specs() order
    int64_t n = 0;
    double weight_decay = 0.0;
    float coef[4] = {0, 0, 0, 0};
  };

  // Per-parameter state layout; at most 3 float states (counters are not counted).
  virtual std::vector<StateSpec> state_specs() const = 0;
  // Serial, once per updated parameter per step: advance counters in `counters` (same order as
  // the counter specs) and fill work.coef. Runs before any update of this step.
  virtual void prepare(Work& work, int64_t* counters) = 0;
  // The hot loop over elements [begin, end) of one parameter; called from worker threads.
  virtual void apply(const Work& work, int64_t begin, int64_t end) const = 0;

 private:
  struct Slot {
    NamedParam param;
    double weight_decay;
    std::vector<Tensor> state;  // empty until the first update, then one per StateSpec
  };
  void ensure_state(Slot& slot);

  std::vector<ParamGroup> groups_;
  std::vector<Slot> slots_;
  double lr_;
  int64_t step_count_ = 0;
};

// Runs fn(item, begin, end) over element ranges of `sizes` (item i has sizes[i] elements), split
// evenly over threads by total element count so many small tensors still share the work. Each
// element is visited exactly once; the partition depends only on the sizes and thread count.
template <class Fn>
void for_each_element_range(const std::vector<int64_t>& sizes, Fn&& fn);

}  // namespace duet::train

#include "duet/train/optimizer_impl.h"
