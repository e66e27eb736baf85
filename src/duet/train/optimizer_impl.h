// Template definitions for optimizer.h (kept apart so the interface reads on its own).
#pragma once

#include <algorithm>

#include "duet/tensor/parallel.h"

namespace duet::train {

template <class Fn>
void for_each_element_range(const std::vector<int64_t>& sizes, Fn&& fn) {
  std::vector<int64_t> start(sizes.size() + 1, 0);
  for (size_t i = 0; i < sizes.size(); ++i) start[i + 1] = start[i] + sizes[i];
  // Updates stream a few arrays once; below this many elements per thread, waking threads costs
  // more than it saves.
  constexpr int64_t kGrain = 32768;
  parallel_for(start.back(), kGrain, [&](int64_t begin, int64_t end) {
    size_t i = static_cast<size_t>(std::upper_bound(start.begin(), start.end(), begin) -
                                   start.begin() - 1);
    for (; i < sizes.size() && start[i] < end; ++i) {
      const int64_t b = std::max(begin, start[i]) - start[i];
      const int64_t e = std::min(end, start[i + 1]) - start[i];
      if (b < e) fn(i, b, e);
    }
  });
}

}  // namespace duet::train
