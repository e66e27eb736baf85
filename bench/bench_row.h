// One measured line of a benchmark, shared by every bench (gemm, conv, models): our time and
// the peer's from the same alternating run, their ratio, and GFLOP/s against the FMA peak.
// Printed as an aligned table for people and as one JSON object per line for scripts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace duet::bench {

struct BenchRow {
  std::string name;
  int64_t batch = -1;        // -1 when the row has no batch size
  double ours = 0;           // median, in `unit`
  double theirs = 0;         // the peer's median in `unit`; NaN when the peer is unavailable
  std::string unit = "ms";   // lower is better for times; for rates ratio is inverted by caller
  std::string peer;          // e.g. "openblas" or "openblas (unavailable)"
  double ratio = 0;          // theirs / ours for times: > 1 means duet is faster; NaN if no peer
  double gflops = 0;         // ours, from the op's FLOP count (0 when not meaningful)
  double peak_fraction = 0;  // gflops / measured FMA peak at the same thread count
};

// {"name": ..., "batch": ..., ...} on one line; NaN values become null.
std::string to_json_line(const BenchRow& row);
// Aligned table on stdout.
void print_table(const std::vector<BenchRow>& rows);

// The median of repeated measurements (NaN when there are none): robust to one stalled round.
double median(std::vector<double> v);
// The first row of every bench: the FMA peak measured in the same run, the denominator of every
// peak_fraction below it.
BenchRow fma_peak_row(double peak_gflops);

}  // namespace duet::bench
