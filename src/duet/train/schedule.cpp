#include "duet/train/schedule.h"

#include <cmath>
#include <numbers>

#include "duet/tensor/error.h"

namespace duet::train {

namespace {

void check_step(const char* what, int64_t step, int64_t total) {
  DUET_CHECK(total >= 1, what, ": total_steps must be >= 1, got ", total);
  DUET_CHECK(step >= 0 && step <= total, what, ": step ", step, " is outside [0, ", total, "]");
}

// PyTorch's _annealing_cos: start at pct 0, end at pct 1.
double anneal_cos(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1.0);
}

// OneCycleLR's two phases: [0, pct_start * total - 1] rising, then falling until total - 1.
// Returns (phase, pct within phase), extrapolating past the end like PyTorch does at step total.
std::pair<int, double> one_cycle_phase(int64_t step, int64_t total, const OneCycleOptions& o) {
  DUET_CHECK(o.pct_start > 0.0 && o.pct_start < 1.0, "one-cycle: pct_start must be in (0, 1), got ",
             o.pct_start);
  DUET_CHECK(o.div_factor > 0.0 && o.final_div_factor > 0.0,
             "one-cycle: div_factor and final_div_factor must be > 0");
  const double end1 = o.pct_start * static_cast<double>(total) - 1.0;
  const double end2 = static_cast<double>(total) - 1.0;
  const double s = static_cast<double>(step);
  // PyTorch divides by zero here for tiny totals; a phase of zero length is simply complete.
  auto pct = [](double x, double begin, double end) {
    return end > begin ? (x - begin) / (end - begin) : 1.0;
  };
  if (s <= end1) return {0, pct(s, 0.0, end1)};
  return {1, pct(s, end1, end2)};
}

}  // namespace

double cosine_lr(int64_t step, int64_t total_steps, double base_lr, double final_lr) {
  check_step("cosine schedule", step, total_steps);
  return anneal_cos(base_lr, final_lr,
                    static_cast<double>(step) / static_cast<double>(total_steps));
}

double one_cycle_lr(int64_t step, int64_t total_steps, const OneCycleOptions& o) {
  check_step("one-cycle schedule", step, total_steps);
  const double initial = o.max_lr / o.div_factor;
  const double min_lr = initial / o.final_div_factor;
  const auto [phase, pct] = one_cycle_phase(step, total_steps, o);
  return phase == 0 ? anneal_cos(initial, o.max_lr, pct) : anneal_cos(o.max_lr, min_lr, pct);
}

double one_cycle_momentum(int64_t step, int64_t total_steps, const OneCycleOptions& o) {
  check_step("one-cycle schedule", step, total_steps);
  const auto [phase, pct] = one_cycle_phase(step, total_steps, o);
  return phase == 0 ? anneal_cos(o.max_momentum, o.base_momentum, pct)
                    : anneal_cos(o.base_momentum, o.max_momentum, pct);
}

ScheduleKind schedule_kind_from_string(const std::string& name) {
  if (name == "constant") return ScheduleKind::constant;
  if (name == "cosine") return ScheduleKind::cosine;
  if (name == "onecycle" || name == "one_cycle" || name == "one-cycle")
    return ScheduleKind::one_cycle;
  fail_usage("unknown lr schedule '", name, "' (expected constant, cosine or onecycle)");
}

const char* schedule_kind_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::constant:
      return "constant";
    case ScheduleKind::cosine:
      return "cosine";
    case ScheduleKind::one_cycle:
      return "onecycle";
  }
  return "?";
}

double LrSchedule::lr_at(int64_t step, int64_t total_steps) const {
  check_step("lr schedule", step, total_steps);
  DUET_CHECK(warmup_steps >= 0 && warmup_steps < total_steps, "lr schedule: warmup_steps ",
             warmup_steps, " must be in [0, total_steps = ", total_steps, ")");
  auto inner = [&](int64_t s, int64_t total) {
    switch (kind) {
      case ScheduleKind::constant:
        return lr;
      case ScheduleKind::cosine:
        return cosine_lr(s, total, lr, final_lr);
      case ScheduleKind::one_cycle: {
        OneCycleOptions o = one_cycle;
        o.max_lr = lr;
        return one_cycle_lr(s, total, o);
      }
    }
    return lr;
  };
  const int64_t rest = total_steps - warmup_steps;
  if (step < warmup_steps)
    return inner(0, rest) * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  return inner(step - warmup_steps, rest);
}

double LrSchedule::momentum_at(int64_t step, int64_t total_steps, double fallback) const {
  if (kind != ScheduleKind::one_cycle) return fallback;
  check_step("lr schedule", step, total_steps);
  if (step < warmup_steps) return one_cycle.max_momentum;
  return one_cycle_momentum(step - warmup_steps, total_steps - warmup_steps, one_cycle);
}

}  // namespace duet::train
