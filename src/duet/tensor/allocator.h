// The one allocator behind every tensor and kernel scratch buffer: 64-byte aligned blocks,
// cached by size class so training steps stop hitting malloc, with current and peak byte counts
// (printed by --verbose runs and benchmarks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace duet::memory {

inline constexpr size_t kAlignment = 64;

// Returns a 64-byte aligned block of at least `bytes` bytes (never null; throws duet::Error when
// the system is out of memory). Thread-safe.
void* allocate(size_t bytes);
// Gives a block back to the cache; `bytes` must be the size passed to allocate().
void release(void* ptr, size_t bytes);

size_t current_bytes();  // bytes handed out and not yet released
size_t peak_bytes();     // high-water mark of current_bytes()
size_t cached_bytes();   // bytes held in the cache, free for reuse
void reset_peak();
void trim();  // returns every cached block to the system

// `count` elements of T (at least one, so get() is never null) from allocate(), given back on
// scope exit, also when an exception unwinds: a kernel's per-call or per-thread scratch. Not
// initialised; T must be trivial.
template <class T>
class Scratch {
  static_assert(std::is_trivial_v<T>, "Scratch holds uninitialised memory");

 public:
  explicit Scratch(int64_t count)
      : bytes_(static_cast<size_t>(count > 1 ? count : 1) * sizeof(T)),
        ptr_(static_cast<T*>(allocate(bytes_))) {}
  ~Scratch() { release(ptr_, bytes_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* get() const { return ptr_; }

 private:
  size_t bytes_;
  T* ptr_;
};
using FloatScratch = Scratch<float>;

}  // namespace duet::memory
