// Waiting for the machine to go quiet between the two sides of a side-by-side benchmark.
//
// A side's idle worker threads may keep spinning after its last request: OpenBLAS's threads,
// under PyTorch's matrix products, burn a core for about 100 ms after each call (seen on a Xeon,
// 2026-12-02: duet's batch-1 sampling steps, 10 of them timed right after the peer's, took twice
// as long as in `duet sample`). On a 2-core machine the next side's timed run then shares its
// cores, so a fixed pause between the sides is either too short or wastes time.
#pragma once

#include <sys/types.h>

#include <chrono>

namespace duet::bench {

// Sleeps at least `min_wait`, then until neither this process nor `peer` (when > 0) used more
// than an eighth of a core over the last 20 ms, or until `max_wait` has passed. Returns the
// seconds waited (and prints them under $DUET_BENCH_TRACE). Where /proc cannot say (no
// schedstat), it sleeps `min_wait` only.
double settle(pid_t peer, std::chrono::milliseconds min_wait = std::chrono::milliseconds(50),
              std::chrono::milliseconds max_wait = std::chrono::milliseconds(2000));

// CPU time, in nanoseconds, that the threads of process `pid` (0: this one) have run for, from
// /proc/PID/task/*/schedstat; negative when it cannot be read.
double process_cpu_ns(pid_t pid);

}  // namespace duet::bench
