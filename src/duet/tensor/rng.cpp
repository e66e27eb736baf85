#include "duet/tensor/rng.h"

#include <cmath>
#include <random>

#include "duet/tensor/parallel.h"

namespace duet {

std::array<uint32_t, 4> philox4x32(uint64_t counter_lo, uint64_t counter_hi, uint64_t key) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(counter_lo), c1 = static_cast<uint32_t>(counter_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(counter_hi), c3 = static_cast<uint32_t>(counter_hi >> 32);
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kMul1) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return {c0, c1, c2, c3};
}

namespace {

// 24 random bits -> [0, 1) exactly representable in float.
inline float to_unit(uint32_t x) {
  return static_cast<float>(x >> 8) * (1.0f / 16777216.0f);
}

}  // namespace

void Generator::uniform(float* out, int64_t n, float lo, float hi) {
  const uint64_t base = offset_;
  const float span = hi - lo;
  parallel_for((n + 3) / 4, 4096, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const auto r = philox4x32(base + static_cast<uint64_t>(b), 0, seed_);
      for (int64_t j = 0; j < 4 && b * 4 + j < n; ++j)
        out[b * 4 + j] = lo + span * to_unit(r[static_cast<size_t>(j)]);
    }
  });
  offset_ += static_cast<uint64_t>((n + 3) / 4);
}

void Generator::normal(float* out, int64_t n, float mean, float stddev) {
  const uint64_t base = offset_;
  parallel_for((n + 3) / 4, 4096, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const auto r = philox4x32(base + static_cast<uint64_t>(b), 0, seed_);
      // Box-Muller on two pairs; 1 - u keeps the log argument in (0, 1].
      float z[4];
      for (int p = 0; p < 2; ++p) {
        const double u1 = 1.0 - to_unit(r[static_cast<size_t>(2 * p)]);
        const double u2 = to_unit(r[static_cast<size_t>(2 * p + 1)]);
        const double rad = std::sqrt(-2.0 * std::log(u1));
        z[2 * p] = static_cast<float>(rad * std::cos(2.0 * M_PI * u2));
        z[2 * p + 1] = static_cast<float>(rad * std::sin(2.0 * M_PI * u2));
      }
      for (int64_t j = 0; j < 4 && b * 4 + j < n; ++j) out[b * 4 + j] = mean + stddev * z[j];
    }
  });
  offset_ += static_cast<uint64_t>((n + 3) / 4);
}

uint64_t Generator::next_below(uint64_t bound) {
  const auto r = philox4x32(offset_++, 0, seed_);
  const uint64_t x = (static_cast<uint64_t>(r[0]) << 32) | r[1];
  return x % bound;  // bias below 2^-32 for the bounds we use (dataset sizes)
}

float Generator::next_uniform() {
  return to_unit(philox4x32(offset_++, 0, seed_)[0]);
}

uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32 | rd()) & 0x7fffffffffffffffull;
}

}  // namespace duet
