#include "bench/quiet_cpu.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace duet::bench {

double process_cpu_ns(pid_t pid) {
  namespace fs = std::filesystem;
  const fs::path tasks =
      fs::path("/proc") / (pid > 0 ? std::to_string(pid) : std::string("self")) / "task";
  std::error_code ec;
  fs::directory_iterator it(tasks, ec);
  if (ec) return -1;
  double total = 0;
  bool any = false;
  for (const auto& task : it) {
    // The first field of schedstat: nanoseconds on a CPU. A thread that exits between the
    // listing and the read simply drops out of the sum.
    std::ifstream in(task.path() / "schedstat");
    double ns = 0;
    if (in >> ns) {
      total += ns;
      any = true;
    }
  }
  return any ? total : -1;
}

double settle(pid_t peer, std::chrono::milliseconds min_wait, std::chrono::milliseconds max_wait) {
  using Clock = std::chrono::steady_clock;
  constexpr auto kWindow = std::chrono::milliseconds(20);
  // Busy if the two processes together ran for more than an eighth of the window.
  constexpr double kBusyNs = 20e6 / 8;
  const auto t0 = Clock::now();
  const auto seconds = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  const auto cpu = [&] {
    const double self = process_cpu_ns(0);
    const double other = peer > 0 ? process_cpu_ns(peer) : 0;
    return self < 0 || other < 0 ? -1.0 : self + other;
  };
  std::this_thread::sleep_for(std::max(min_wait - kWindow, std::chrono::milliseconds(0)));
  double before = cpu();
  if (before < 0) {
    std::this_thread::sleep_for(min_wait - (Clock::now() - t0));
    return seconds();
  }
  while (true) {
    std::this_thread::sleep_for(kWindow);
    const double now = cpu();
    // This thread's own polling is in the sum too; it is far below the threshold.
    if (now < 0 || now - before <= kBusyNs || Clock::now() - t0 >= max_wait) break;
    before = now;
  }
  const double waited = seconds();
  if (std::getenv("DUET_BENCH_TRACE")) std::fprintf(stderr, "settled in %.0f ms\n", waited * 1e3);
  return waited;
}

}  // namespace duet::bench
