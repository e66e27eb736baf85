#include "duet/tensor/allocator.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "duet/tensor/error.h"

namespace duet::memory {
namespace {

// Size classes: multiples of 64 bytes below 4 KiB, then powers of two up to 1 GiB, then exact.
// Rounding up wastes at most half a block, and lets a freed activation buffer serve the next
// step's buffer of a similar size.
size_t size_class(size_t bytes) {
  if (bytes <= 4096)
    return bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (bytes > (size_t{1} << 30)) return (bytes + 4095) / 4096 * 4096;
  size_t c = 4096;
  while (c < bytes) c <<= 1;
  return c;
}

struct Cache {
  std::mutex mutex;
  std::map<size_t, std::vector<void*>> free_blocks;
  size_t current = 0;
  size_t peak = 0;
  size_t cached = 0;
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: tensors may outlive static destructors
  return *c;
}

}  // namespace

void* allocate(size_t bytes) {
  const size_t cls = size_class(bytes);
  Cache& c = cache();
  {
    std::lock_guard lock(c.mutex);
    auto it = c.free_blocks.find(cls);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.cached -= cls;
      c.current += cls;
      if (c.current > c.peak) c.peak = c.current;
      return p;
    }
  }
  void* p = std::aligned_alloc(kAlignment, cls);
  if (p == nullptr) {
    trim();
    p = std::aligned_alloc(kAlignment, cls);
    if (p == nullptr) fail("out of memory: could not allocate ", cls, " bytes");
  }
  std::lock_guard lock(c.mutex);
  c.current += cls;
  if (c.current > c.peak) c.peak = c.current;
  return p;
}

void release(void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  const size_t cls = size_class(bytes);
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  c.current -= cls;
  c.cached += cls;
  c.free_blocks[cls].push_back(ptr);
}

size_t current_bytes() {
  std::lock_guard lock(cache().mutex);
  return cache().current;
}

size_t peak_bytes() {
  std::lock_guard lock(cache().mutex);
  return cache().peak;
}

size_t cached_bytes() {
  std::lock_guard lock(cache().mutex);
  return cache().cached;
}

void reset_peak() {
  std::lock_guard lock(cache().mutex);
  cache().peak = cache().current;
}

void trim() {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  for (auto& [cls, blocks] : c.free_blocks)
    for (void* p : blocks) std::free(p);
  c.free_blocks.clear();
  c.cached = 0;
}

}  // namespace duet::memory
