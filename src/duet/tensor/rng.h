// Philox4x32-10 counter-based random numbers (Salmon et al., SC'11). A Generator is a seed plus a
// counter; element i of a draw depends only on (seed, counter + i / 4), so results are identical
// for any thread count and a generator's state is two integers that checkpoints can store.
#pragma once

#include <array>
#include <cstdint>

namespace duet {

// One Philox4x32-10 block: 4 random 32-bit words for a 128-bit counter and a 64-bit key.
std::array<uint32_t, 4> philox4x32(uint64_t counter_lo, uint64_t counter_hi, uint64_t key);

class Generator {
 public:
  explicit Generator(uint64_t seed = 0, uint64_t offset = 0) : seed_(seed), offset_(offset) {}

  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }  // blocks consumed so far
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed, offset_ = offset; }

  // Fill n floats; each call consumes ceil(n / 4) counter blocks (the same for both).
  void uniform(float* out, int64_t n, float lo = 0.0f, float hi = 1.0f);
  void normal(float* out, int64_t n, float mean = 0.0f, float stddev = 1.0f);
  // Uniform integer in [0, bound) (bound > 0), consuming one block.
  uint64_t next_below(uint64_t bound);
  // Uniform float in [0, 1), consuming one block.
  float next_uniform();

 private:
  uint64_t seed_;
  uint64_t offset_;
};

// A fresh seed from the OS, for "no seed given" (the caller always logs it).
uint64_t random_seed();

}  // namespace duet
