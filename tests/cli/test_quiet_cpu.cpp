// The side-by-side benchmarks' wait for a quiet machine (bench/quiet_cpu.h): the per-process CPU
// time it reads from /proc against the kernel's own process clock, and its floor and fallback.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

#include <gtest/gtest.h>

#include "bench/quiet_cpu.h"

namespace duet::bench {
namespace {

double process_clock_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

// Spins this thread until the process clock has advanced by `ns`.
void burn(double ns) {
  const double until = process_clock_ns() + ns;
  volatile double sink = 0;
  while (process_clock_ns() < until)
    for (int i = 0; i < 1000; ++i) sink = sink + 1.0;
}

TEST(QuietCpu, ProcessCpuTimeFollowsTheProcessClock) {
  const double ours0 = process_cpu_ns(0), clock0 = process_clock_ns();
  if (ours0 < 0) GTEST_SKIP() << "no /proc/self/task/*/schedstat on this kernel";
  burn(100e6);
  const double ours = process_cpu_ns(0) - ours0, clock = process_clock_ns() - clock0;
  // Both read the scheduler's run time of the same threads; schedstat may lag by the part of
  // the current slice not yet accounted (at most a few ms).
  EXPECT_GT(clock, 100e6);
  EXPECT_NEAR(ours, clock, 0.1 * clock);
}

TEST(QuietCpu, OtherProcessesAndMissingOnes) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // waits, without using the CPU, until the parent closes the pipe
    char c;
    close(fds[1]);
    while (read(fds[0], &c, 1) > 0) {
    }
    _exit(0);
  }
  close(fds[0]);
  if (process_cpu_ns(0) >= 0) {
    EXPECT_GE(process_cpu_ns(child), 0);
  }
  close(fds[1]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_LT(process_cpu_ns(child), 0);  // reaped: no reading, never a made-up zero
}

TEST(QuietCpu, SettleWaitsAtLeastItsFloor) {
  using std::chrono::milliseconds;
  EXPECT_GE(settle(0, milliseconds(30)), 0.030);
  // A peer /proc cannot read (exited): the fixed pause alone.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_GE(settle(child, milliseconds(30)), 0.030);
}

TEST(QuietCpu, SettleWaitsForASpinningPeer) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // spins for 300 ms of CPU, as an idle pool would, then blocks
    close(fds[1]);
    burn(300e6);
    char c;
    while (read(fds[0], &c, 1) > 0) {
    }
    _exit(0);
  }
  close(fds[0]);
  if (process_cpu_ns(child) < 0) GTEST_SKIP() << "no /proc/PID/task/*/schedstat on this kernel";
  // The floor alone (10 ms) would return long before the spin ends; settle returns after it.
  settle(child, std::chrono::milliseconds(10), std::chrono::milliseconds(20000));
  EXPECT_GE(process_cpu_ns(child), 290e6);
  close(fds[1]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
}

}  // namespace
}  // namespace duet::bench
