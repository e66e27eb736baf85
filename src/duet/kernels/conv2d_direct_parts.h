// The driver pieces of the direct convolution (conv2d_direct_avx2.cpp) that the Winograd
// convolution (conv2d_winograd_avx2.cpp) shares: scratch buffers, the job scheduler, the
// micro-tile loop over weight panels, and the epilogue of channel-blocked outputs.
// Include only from *_avx2.cpp files: the inline code here is compiled for AVX2 + FMA.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "duet/kernels/conv2d_direct_tile.h"
#include "duet/kernels/gemm.h"
#include "duet/kernels/gemm_epilogue.h"
#include "duet/tensor/allocator.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels::detail::direct {

inline constexpr int64_t kNR = kDirectLanes;

using Buf = memory::FloatScratch;  // 64-byte aligned scratch

inline int64_t round_up(int64_t v, int64_t m) {
  return (v + m - 1) / m * m;
}

// Jobs per thread so that each thread gets enough work: below that a fork/join (worse, a wait
// for a time slice on a loaded machine) costs more than it saves.
int64_t grain_for(double macs_per_job);

// The widest micro-tile the active instruction set runs.
DirectTile active_tile();

// Runs the micro-tiles over rows [0, rows) (a multiple of mt.rows; base and c) and all weight
// panels (panel_stride floats apart in pb, 16 columns apart in c). Panels are the outer loop, so
// the weights of one stay in L1 while the rows stream past them.
void run_tiles(const DirectTile& mt, int64_t rows, int64_t panels, int64_t kc,
               const float* const* base, const int32_t* off, const float* pb, int64_t panel_stride,
               float* c, int64_t ldc, bool accumulate);

// The channel-major (NCHW) store of a pixel-major product: y[k * ldy + i] =
// epilogue(ct[i * ldct + k]) for k < nk, i < len, through 8x8 transposes; ch0 is the global
// channel of k = 0 and res (if any) is laid out like y.
void store_transposed(const float* ct, int64_t ldct, int64_t len, int64_t nk, float* y, int64_t ldy,
                      const Epilogue& e, int64_t ch0, const float* res);

// Runs worker(take) on up to num_threads() threads; take() hands out job indices from a shared
// counter until they pass the end. Every output belongs to exactly one job, so results do not
// depend on which thread ran it, and a thread the OS preempts (the machine is shared) does not
// hold the others back as a static split would.
template <class Worker>
void run_jobs(int64_t jobs, int64_t grain, Worker&& worker) {
  const int64_t workers = std::min<int64_t>(num_threads(), std::max<int64_t>(1, jobs / grain));
  std::atomic<int64_t> next{0};
  parallel_for(workers, 1, [&](int64_t, int64_t) {
    worker([&] { return next.fetch_add(1, std::memory_order_relaxed); });
  });
}

// The epilogue of 8 lanes of a channel-blocked output, channels [at, at + 8):
// out = keep & act(v * mul + add (+ residual)), mul the scale (when `scaled`), add shift plus
// bias; keep clears the lanes at or past `channels` (the last block's padding), whose
// per-channel values are never read.
struct LaneEpilogue {
  __m256 mul, add, keep;
  bool scaled;
};
LaneEpilogue lane_epilogue(const Epilogue& e, int64_t at, int64_t channels);

template <Activation A>
inline __m256 apply_lane_epilogue(const LaneEpilogue& le, __m256 v, const float* res) {
  if (le.scaled) v = _mm256_mul_ps(v, le.mul);
  v = _mm256_add_ps(v, le.add);
  if (res) v = _mm256_add_ps(v, _mm256_loadu_ps(res));
  return _mm256_and_ps(gemm_detail::activate_ps(A, v), le.keep);
}

}  // namespace duet::kernels::detail::direct
