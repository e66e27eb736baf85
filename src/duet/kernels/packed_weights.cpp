#include "duet/kernels/packed_weights.h"

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "duet/tensor/allocator.h"

namespace duet::kernels {

namespace {

struct Entry {
  uint64_t hash;
  int64_t floats;
  std::unique_ptr<memory::FloatScratch> packed;
};

using Key = std::tuple<const float*, int64_t, int64_t>;  // weights, their floats, the packing

struct Cache {
  std::mutex mutex;
  int scopes = 0;
  std::map<Key, Entry> entries;
  // Buffers replaced inside the scope: another thread may still be reading them.
  std::vector<std::unique_ptr<memory::FloatScratch>> retired;
};

Cache& cache() {
  static Cache c;
  return c;
}

}  // namespace

PackedWeightsScope::PackedWeightsScope() {
  std::lock_guard<std::mutex> lock(cache().mutex);
  ++cache().scopes;
}

PackedWeightsScope::~PackedWeightsScope() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  if (--c.scopes == 0) {
    c.entries.clear();
    c.retired.clear();
  }
}

namespace detail {

uint64_t weights_hash(const float* w, int64_t n) {
  // Eight independent multiply-xor lanes over the 32-bit words (the CPU overlaps them), folded
  // at the end with the length.
  constexpr uint64_t kPrime = 0x100000001b3ULL;
  uint64_t lane[8];
  for (int j = 0; j < 8; ++j) lane[j] = 0xcbf29ce484222325ULL + uint64_t(j);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) {
      uint32_t bits;
      std::memcpy(&bits, w + i + j, sizeof bits);
      lane[j] = (lane[j] ^ bits) * kPrime;
    }
  uint64_t h = uint64_t(n);
  for (; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, w + i, sizeof bits);
    h = (h ^ bits) * kPrime;
  }
  for (int j = 0; j < 8; ++j) h = (h ^ lane[j]) * kPrime;
  return h;
}

const float* cached_packed_weights(const float* w, int64_t w_floats, int64_t packing,
                                   int64_t packed_floats, const std::function<void(float*)>& pack) {
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.scopes == 0) return nullptr;
  }
  const uint64_t hash = weights_hash(w, w_floats);
  std::lock_guard<std::mutex> lock(c.mutex);
  Entry& e = c.entries[Key{w, w_floats, packing}];
  if (e.packed && e.hash == hash && e.floats == packed_floats) return e.packed->get();
  if (e.packed) c.retired.push_back(std::move(e.packed));
  e.packed = std::make_unique<memory::FloatScratch>(packed_floats);
  pack(e.packed->get());
  e.hash = hash;
  e.floats = packed_floats;
  return e.packed->get();
}

}  // namespace detail

}  // namespace duet::kernels
