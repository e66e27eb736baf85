// Learning-rate schedules as pure functions of (step, total_steps): the trainer asks for the
// rate of the step it is about to take, so a resumed run needs nothing but its step counter.
// Steps count from 0; step == total_steps is allowed (the value after the last step).
#pragma once

#include <cstdint>
#include <string>

namespace duet::train {

// base_lr -> final_lr along half a cosine: final + (base - final) * (1 + cos(pi * step / total))
// / 2.
double cosine_lr(int64_t step, int64_t total_steps, double base_lr, double final_lr = 0.0);

// torch.optim.lr_scheduler.OneCycleLR (anneal_strategy "cos", three_phase false): from
// max_lr / div_factor up to max_lr at step pct_start * total - 1, then down to
// max_lr / div_factor / final_div_factor at step total - 1. Momentum (cycle_momentum) runs the
// opposite way, max_momentum -> base_momentum -> max_momentum; Sgd::set_momentum applies it.
struct OneCycleOptions {
  double max_lr = 0.1;
  double pct_start = 0.3;
  double div_factor = 25.0;
  double final_div_factor = 1e4;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
};
double one_cycle_lr(int64_t step, int64_t total_steps, const OneCycleOptions& options);
double one_cycle_momentum(int64_t step, int64_t total_steps, const OneCycleOptions& options);

enum class ScheduleKind { constant, cosine, one_cycle };
// "constant", "cosine", "onecycle" (also "one_cycle", "one-cycle"); throws a usage Error otherwise.
ScheduleKind schedule_kind_from_string(const std::string& name);
const char* schedule_kind_name(ScheduleKind kind);

// A schedule as configuration (what a run's config stores), with an optional linear warm-up:
// for step < warmup_steps the rate is inner(0) * (step + 1) / warmup_steps, so it climbs from
// lr / warmup_steps to the schedule's first value; afterwards the inner schedule runs over the
// remaining steps, inner(step - warmup_steps, total_steps - warmup_steps). One-cycle has its own
// warm-up phase and is normally used with warmup_steps = 0.
struct LrSchedule {
  ScheduleKind kind = ScheduleKind::constant;
  double lr = 0.1;            // constant: the rate; cosine: the start; one-cycle: max_lr
  double final_lr = 0.0;      // cosine only
  OneCycleOptions one_cycle;  // one-cycle only (its max_lr is replaced by `lr`)
  int64_t warmup_steps = 0;

  double lr_at(int64_t step, int64_t total_steps) const;
  // The SGD momentum for this step when one-cycle cycles it; `fallback` for other schedules.
  double momentum_at(int64_t step, int64_t total_steps, double fallback) const;
};

}  // namespace duet::train
