#include "duet/kernels/packed_weights.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "duet/kernels/isa.h"
#include "duet/tensor/allocator.h"
#include "duet/tensor/parallel.h"

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

namespace {
constexpr uint64_t kFoldPrime = 0x100000001b3ULL;

uint32_t word_bits(const float* w) {
  uint32_t bits;
  std::memcpy(&bits, w, sizeof bits);
  return bits;
}
}  // namespace

uint64_t fold_hash_lanes(const uint32_t* lanes, const float* rest, int64_t rest_n, int64_t n) {
  uint64_t h = uint64_t(n);
  for (int j = 0; j < kHashLanes; ++j) h = (h ^ lanes[j]) * kFoldPrime;
  for (int64_t i = 0; i < rest_n; ++i) h = (h ^ word_bits(rest + i)) * kFoldPrime;
  return h;
}

uint64_t weights_hash_block(const float* w, int64_t n) {
  uint32_t lane[kHashLanes];
  for (int j = 0; j < kHashLanes; ++j) lane[j] = kHashLaneSeed + uint32_t(j);
  const int64_t whole = n / kHashLanes * kHashLanes;
  for (int64_t i = 0; i < whole; i += kHashLanes)
    for (int j = 0; j < kHashLanes; ++j)
      lane[j] = (lane[j] ^ word_bits(w + i + j)) * kHashLanePrime;
  return fold_hash_lanes(lane, w + whole, n - whole, n);
}

uint64_t weights_hash(const float* w, int64_t n) {
  const int64_t blocks = std::max<int64_t>(1, (n + kHashBlock - 1) / kHashBlock);
  const bool avx2 = isa_at_least(Isa::avx2);
  std::vector<uint64_t> block_hash(static_cast<size_t>(blocks));
  // A block is 64 KiB of reading; four of them make a chunk worth a thread.
  parallel_for(blocks, 4, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t len = std::min(kHashBlock, n - b * kHashBlock);
      const float* at = w + b * kHashBlock;
      block_hash[size_t(b)] = avx2 ? weights_hash_block_avx2(at, len) : weights_hash_block(at, len);
    }
  });
  uint64_t h = uint64_t(n);
  for (uint64_t bh : block_hash) h = (h ^ bh) * kFoldPrime;
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
