#include "op_harness.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
// GCC 12 reports a false maybe-uninitialized inside <regex> when built with sanitizers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#pragma GCC diagnostic pop

#include "duet/kernels/isa.h"
#include "duet/tensor/parallel.h"

namespace duet::test {
namespace {

std::vector<KernelCase>& kernel_cases() {
  static std::vector<KernelCase> cases;
  return cases;
}

std::vector<GradCase>& grad_cases() {
  static std::vector<GradCase> cases;
  return cases;
}

// Returns "" when every element is within atol + rtol * |ref|, else the first mismatches.
std::string compare(const std::vector<float>& fast, const std::vector<float>& ref, double atol,
                    double rtol) {
  if (fast.size() != ref.size())
    return "output sizes differ: fast " + std::to_string(fast.size()) + " vs ref " +
           std::to_string(ref.size());
  if (fast.empty()) return "case produced no output";
  std::string msg;
  size_t bad = 0;
  double worst = 0;
  for (size_t i = 0; i < fast.size(); ++i) {
    const double d = std::fabs(double(fast[i]) - double(ref[i]));
    const double lim = atol + rtol * std::fabs(double(ref[i]));
    if (!(d <= lim)) {  // NaN fails too
      if (bad < 3) {
        char buf[160];
        std::snprintf(buf, sizeof buf, " [%zu] fast %.7g ref %.7g;", i, fast[i], ref[i]);
        msg += buf;
      }
      ++bad;
      worst = std::max(worst, d);
    }
  }
  if (bad == 0) return "";
  return std::to_string(bad) + "/" + std::to_string(fast.size()) + " elements off (worst " +
         std::to_string(worst) + "):" + msg;
}

int run_compare(const std::regex& filter) {
  int failures = 0, run = 0;
  for (const auto& c : kernel_cases()) {
    if (!std::regex_search(c.name, filter)) continue;
    ++run;
    auto runner = c.make();
    std::vector<float> fast, ref;
    runner(true, fast);
    runner(false, ref);
    const std::string err = compare(fast, ref, c.atol, c.rtol);
    if (!err.empty()) {
      ++failures;
      std::printf("FAIL compare %s: %s\n", c.name.c_str(), err.c_str());
    }
  }
  std::printf("compare (%s): %d cases, %d failed\n",
              std::string(kernels::isa_name(kernels::active_isa())).c_str(), run, failures);
  return failures == 0 && run > 0 ? 0 : 1;
}

int run_grad(const std::regex& filter) {
  int failures = 0, run = 0;
  for (const auto& c : grad_cases()) {
    if (!std::regex_search(c.name, filter)) continue;
    ++run;
    const std::string err = c.run();
    if (!err.empty()) {
      ++failures;
      std::printf("FAIL grad %s: %s\n", c.name.c_str(), err.c_str());
    }
  }
  std::printf("grad: %d cases, %d failed\n", run, failures);
  return failures == 0 && run > 0 ? 0 : 1;
}

int run_perf(const std::regex& filter) {
  std::printf("%-48s %12s %10s\n", "case", "ms/run", "GFLOP/s");
  for (const auto& c : kernel_cases()) {
    if (!std::regex_search(c.name, filter) || c.flops <= 0) continue;
    auto runner = c.make();
    std::vector<float> out;
    runner(true, out);  // warm-up
    int reps = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double elapsed = 0;
    while (elapsed < 0.2 || reps < 3) {
      runner(true, out);
      ++reps;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    const double per = elapsed / reps;
    std::printf("%-48s %12.3f %10.2f\n", c.name.c_str(), per * 1e3, c.flops / per * 1e-9);
  }
  return 0;
}

}  // namespace

void add_kernel_case(KernelCase c) {
  kernel_cases().push_back(std::move(c));
}
void add_grad_case(GradCase c) {
  grad_cases().push_back(std::move(c));
}

std::vector<float> random_vector(size_t n, uint64_t seed, float lo, float hi) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

}  // namespace duet::test

int main(int argc, char** argv) {
  std::string mode = "compare", filter = ".*";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--mode") && i + 1 < argc)
      mode = argv[++i];
    else if (!std::strcmp(argv[i], "--filter") && i + 1 < argc)
      filter = argv[++i];
    else {
      std::fprintf(stderr, "usage: op_harness [--mode compare|grad|perf] [--filter REGEX]\n");
      return 2;
    }
  }
  const std::regex re(filter);
  if (mode == "compare") return duet::test::run_compare(re);
  if (mode == "grad") return duet::test::run_grad(re);
  if (mode == "perf") return duet::test::run_perf(re);
  std::fprintf(stderr, "op_harness: unknown --mode '%s' (expected compare, grad or perf)\n",
               mode.c_str());
  return 2;
}
