#include "bench/bench_row.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace duet::bench {
namespace {

nlohmann::json number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nullptr;
}

}  // namespace

std::string to_json_line(const BenchRow& row) {
  nlohmann::json j;
  j["name"] = row.name;
  j["batch"] = row.batch;
  j["ours"] = number(row.ours);
  j["theirs"] = number(row.theirs);
  j["unit"] = row.unit;
  j["peer"] = row.peer;
  j["ratio"] = number(row.ratio);
  j["gflops"] = number(row.gflops);
  j["peak_fraction"] = number(row.peak_fraction);
  return j.dump();
}

void print_table(const std::vector<BenchRow>& rows) {
  std::printf("%-40s %6s %11s %11s %-8s %-24s %7s %9s %6s\n", "name", "batch", "ours", "theirs",
              "unit", "peer", "ratio", "GFLOP/s", "%peak");
  for (const BenchRow& r : rows) {
    std::printf("%-40s %6s %11.4g %11.4g %-8s %-24s %7.3f %9.2f %5.1f%%\n", r.name.c_str(),
                r.batch < 0 ? "-" : std::to_string(r.batch).c_str(), r.ours, r.theirs,
                r.unit.c_str(), r.peer.c_str(), r.ratio, r.gflops, 100.0 * r.peak_fraction);
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? NAN : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

BenchRow fma_peak_row(double peak_gflops) {
  BenchRow row;
  row.name = "fma peak";
  row.ours = row.gflops = peak_gflops;
  row.theirs = row.ratio = NAN;
  row.unit = "GFLOP/s";
  row.peak_fraction = 1.0;
  return row;
}

}  // namespace duet::bench
