#include "duet/train/peak_memory.h"

#include <sys/resource.h>

#include <cstdio>

#include "duet/tensor/allocator.h"

namespace duet::train {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

double mib(int64_t bytes) {
  return static_cast<double>(bytes) / kMiB;
}

}  // namespace

PeakMemory peak_memory() {
  PeakMemory m;
  rusage u{};
  if (getrusage(RUSAGE_SELF, &u) == 0)
    m.rss_bytes = static_cast<int64_t>(u.ru_maxrss) * 1024;  // KiB on Linux
  m.tensor_bytes = static_cast<int64_t>(memory::peak_bytes());
  return m;
}

nlohmann::json PeakMemory::to_json() const {
  return {{"peak_rss_mib", mib(rss_bytes)}, {"peak_tensor_mib", mib(tensor_bytes)}};
}

std::string PeakMemory::str() const {
  char buf[128];
  std::snprintf(buf, sizeof buf, "peak memory %.1f MiB RSS (process), %.1f MiB tensors (allocator)",
                mib(rss_bytes), mib(tensor_bytes));
  return buf;
}

}  // namespace duet::train
