// The one table-driven op harness. Each kernel family registers cases (tests/*/cases_*.cpp) and
// the `op_harness` binary runs them in one of three modes:
//   compare  fast kernel vs its reference twin on identical seeded inputs (ctest runs this twice:
//            with the best ISA and with DUET_ISA=generic);
//   grad     autograd gradients vs central finite differences in double precision, asserting the
//            gradient is not all zeros so a test cannot pass on two zeros;
//   perf     times the fast path and prints GFLOP/s from the case's FLOP count.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace duet::test {

// A compare/perf case. make() builds seeded inputs and returns a runner; runner(fast, out) runs
// the fast kernel (fast = true) or the reference twin (fast = false) and writes every output it
// wants checked, flattened, into `out`.
struct KernelCase {
  std::string name;  // "family/detail", e.g. "sgemm/nt/7x13x5"
  double flops = 0;  // per run, for perf mode (0 = not reported)
  double atol = 1e-5;
  double rtol = 1e-4;
  std::function<std::function<void(bool fast, std::vector<float>& out)>()> make;
};

// A grad case: run() does the whole check (it lives in tests/ops and knows Tensor/autograd) and
// returns an empty string on success or a message saying what differed.
struct GradCase {
  std::string name;
  std::function<std::string()> run;
};

void add_kernel_case(KernelCase c);
void add_grad_case(GradCase c);

// Static registration from any cases_*.cpp file:
//   static duet::test::Register reg([] { duet::test::add_kernel_case({...}); });
struct Register {
  explicit Register(const std::function<void()>& fn) { fn(); }
};

// Deterministic inputs for cases (no dependency on the engine's RNG under test).
std::vector<float> random_vector(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f);

}  // namespace duet::test
