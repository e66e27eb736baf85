// Peak memory of this process as a run reports it at its end: the operating system's view (peak
// resident set size, getrusage) and the engine's own (high-water mark of the tensor allocator).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace duet::train {

struct PeakMemory {
  int64_t rss_bytes = 0;     // ru_maxrss of this process (0 when unavailable)
  int64_t tensor_bytes = 0;  // memory::peak_bytes(): tensors and kernel scratch at their peak

  // {"peak_rss_mib": ..., "peak_tensor_mib": ...}
  nlohmann::json to_json() const;
  // "peak memory 123.4 MiB RSS (process), 45.6 MiB tensors (allocator)"
  std::string str() const;
};

PeakMemory peak_memory();

}  // namespace duet::train
