// Measures the machine's floating-point peak: independent FMA chains on every thread, the
// denominator of the "fraction of peak" that benchmarks report next to their GFLOP/s.
#pragma once

namespace duet::kernels {

// Runs ~0.2 s of FMA chains on `threads` threads (the widest vectors active_isa() allows:
// AVX-512, AVX2, or scalar multiply-add) and returns GFLOP/s, counting one FMA as 2 flops.
// Temporarily sets duet::set_num_threads(threads), so call it from the main thread, not inside
// parallel work.
double measure_fma_peak_gflops(int threads);

namespace fma_peak_detail {
// Runs `iters` rounds of the chains on the calling thread; returns flops done. The result is
// folded into *sink so the work cannot be optimised away.
double run_chains_avx512(long iters, float* sink);
double run_chains_avx2(long iters, float* sink);
double run_chains_generic(long iters, float* sink);
}  // namespace fma_peak_detail

}  // namespace duet::kernels
