// What every `duet bench` suite does around its measurements: a header line (ISA, threads,
// quick), the suite's context lines as they come, then its rows as a table for people or as JSON
// lines (the common bench format) with --json, in which case the context goes to stderr so that
// stdout carries only the rows.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/bench_row.h"
#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/isa.h"
#include "duet/ops/blocked.h"

namespace duet::cli {

using BenchNote = std::function<void(const std::string&)>;

// `run` measures and returns the rows, reporting context through the note callback it gets;
// `table` prints the rows for people (bench::print_table unless the suite has its own layout).
inline void run_bench_suite(
    const char* name, int threads, bool quick, bool json,
    const std::function<std::vector<bench::BenchRow>(const BenchNote&)>& run,
    const std::function<void(const std::vector<bench::BenchRow>&)>& table = bench::print_table) {
  std::FILE* notes = json ? stderr : stdout;
  std::fprintf(notes, "duet bench %s: isa %s, %d threads%s\n", name,
               std::string(kernels::isa_name(kernels::active_isa())).c_str(), threads,
               quick ? " (quick)" : "");
  std::fflush(notes);
  const auto rows = run([&](const std::string& line) {
    std::fprintf(notes, "%s\n", line.c_str());
    std::fflush(notes);
  });
  if (json) {
    for (const auto& r : rows) std::printf("%s\n", bench::to_json_line(r).c_str());
  } else {
    table(rows);
  }
}

// `--no-winograd` of the suites that train or sample: 3x3 stride-1 convolutions on the direct
// kernel, for the whole process (the peers run in their own processes, so only duet's side).
inline void add_no_winograd_flag(CLI::App* sub, bool& no_winograd) {
  sub->add_flag("--no-winograd", no_winograd,
                "run 3x3 stride-1 convs (all three passes) with the direct kernel "
                "instead of Winograd");
}
inline void apply_no_winograd(bool no_winograd, bool json) {
  if (!no_winograd) return;
  kernels::set_winograd(false);
  std::fprintf(json ? stderr : stdout, "winograd off: 3x3 stride-1 convs run the direct kernel\n");
}

// `--no-blocked` of the suites that train: networks that train (and, the UNets, sample large
// batches) on channel-blocked activations (ops/blocked.h: the CIFAR ResNets, the UNets) run
// channel-major, duet's side only.
inline void add_no_blocked_flag(CLI::App* sub, bool& no_blocked) {
  sub->add_flag(
      "--no-blocked", no_blocked,
      "train (and sample) on channel-major activations instead of channel-blocked ones (as "
      "$DUET_LAYOUT=nchw does for any command)");
}
inline void apply_no_blocked(bool no_blocked, bool json) {
  if (!no_blocked) return;
  ops::set_blocked_training(false);
  std::fprintf(json ? stderr : stdout,
               "blocked off: training and sampling run on channel-major activations\n");
}

}  // namespace duet::cli
