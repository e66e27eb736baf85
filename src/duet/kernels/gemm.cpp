#include "duet/kernels/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "duet/kernels/gemm_epilogue.h"
#include "duet/kernels/gemm_kernel.h"
#include "duet/kernels/isa.h"
#include "duet/tensor/allocator.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {

float apply_activation(Activation act, float x) {
  return gemm_detail::activate(act, x);
}

namespace gemm_detail {

void pack_a_generic(Trans trans, const float* a, int64_t lda, int64_t i0, int64_t p0, int64_t mc,
                    int64_t kc, float* dst) {
  for (int64_t ip = 0; ip < mc; ip += kMR, dst += kMR * kc) {
    const int64_t mr = std::min(kMR, mc - ip);
    if (mr < kMR) std::fill(dst, dst + kMR * kc, 0.0f);
    for (int64_t i = 0; i < mr; ++i) {
      const int64_t row = i0 + ip + i;
      if (trans == Trans::no) {
        const float* src = a + row * lda + p0;
        for (int64_t k = 0; k < kc; ++k) dst[k * kMR + i] = src[k];
      } else {
        const float* src = a + p0 * lda + row;
        for (int64_t k = 0; k < kc; ++k) dst[k * kMR + i] = src[k * lda];
      }
    }
  }
}

void pack_b_generic(Trans trans, const float* b, int64_t ldb, int64_t p0, int64_t j0, int64_t kc,
                    int64_t nr, float* dst) {
  if (nr < kNR) std::fill(dst, dst + kNR * kc, 0.0f);
  if (trans == Trans::no) {
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = b + (p0 + k) * ldb + j0;
      for (int64_t j = 0; j < nr; ++j) dst[k * kNR + j] = src[j];
    }
  } else {
    for (int64_t j = 0; j < nr; ++j) {
      const float* src = b + (j0 + j) * ldb + p0;
      for (int64_t k = 0; k < kc; ++k) dst[k * kNR + j] = src[k];
    }
  }
}

void micro_kernel_generic(int64_t kc, const float* pa, const float* pb, int64_t ldpb, float* c,
                          int64_t ldc, int64_t mr, int64_t nr, int64_t row0, int64_t col0,
                          const TileArgs& args) {
  float acc[kMR][kNR] = {};
  for (int64_t k = 0; k < kc; ++k, pa += kMR, pb += ldpb) {
    for (int64_t i = 0; i < kMR; ++i) {
      const float av = pa[i];
      for (int64_t j = 0; j < kNR; ++j) acc[i][j] += av * pb[j];
    }
  }
  for (int64_t i = 0; i < mr; ++i) {
    float* crow = c + i * ldc;
    for (int64_t j = 0; j < nr; ++j) {
      float y = args.alpha * acc[i][j];
      if (!args.first)
        y += crow[j];
      else if (args.beta != 0.0f)
        y += args.beta * crow[j];
      if (args.epilogue) y = epilogue_scalar(*args.epilogue, y, row0 + i, col0 + j);
      crow[j] = y;
    }
  }
}

}  // namespace gemm_detail

namespace {

using namespace gemm_detail;

void check_args(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                const float* b, int64_t ldb, const float* c, int64_t ldc, const Epilogue& e) {
  DUET_CHECK(m >= 0 && n >= 0 && k >= 0, "sgemm: negative size m=", m, " n=", n, " k=", k);
  const int64_t a_row = ta == Trans::no ? k : m;
  const int64_t b_row = tb == Trans::no ? n : k;
  DUET_CHECK(lda >= std::max<int64_t>(1, a_row), "sgemm: lda=", lda, " is below ", a_row);
  DUET_CHECK(ldb >= std::max<int64_t>(1, b_row), "sgemm: ldb=", ldb, " is below ", b_row);
  DUET_CHECK(ldc >= std::max<int64_t>(1, n), "sgemm: ldc=", ldc, " is below n=", n);
  if (m == 0 || n == 0) return;
  DUET_CHECK(c != nullptr, "sgemm: C is null");
  DUET_CHECK(k == 0 || (a != nullptr && b != nullptr), "sgemm: A or B is null with k=", k);
  if (e.residual) {
    DUET_CHECK(e.ld_residual >= n, "sgemm: ld_residual=", e.ld_residual, " is below n=", n);
    DUET_CHECK(e.residual != c, "sgemm: the residual may not alias C (use beta = 1 instead)");
  }
}

// Every thread owns one block of C in a tm x tn grid and packs its own panels, so a whole
// product is one fork/join: on a shared, oversubscribed machine each extra barrier can cost a
// scheduler time slice. The grid minimises the slowest thread's estimated cost: micro-tile FMAs
// plus packing (A is repacked per NC block, B once), an element packed costing ~16 flops.
void thread_grid(int nt, int64_t m, int64_t n, int64_t k, int& tm, int& tn) {
  const int64_t mp = (m + kMR - 1) / kMR, np = (n + kNR - 1) / kNR;
  double best = -1;
  tm = nt;
  tn = 1;
  for (int r = nt; r >= 1; --r) {
    if (nt % r) continue;
    const int c = nt / r;
    const double rows = double((mp + r - 1) / r * kMR), cols = double((np + c - 1) / c * kNR);
    const double tiles = rows * cols * double(k) * 2.0;
    const double packs = 16.0 * double(k) * (rows * std::ceil(cols / kNC) + cols);
    const double cost = tiles + packs;
    if (best < 0 || cost < best) {
      best = cost;
      tm = r;
      tn = c;
    }
  }
}

using Scratch = memory::FloatScratch;

}  // namespace

void sgemm(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc, const Epilogue& epilogue) {
  check_args(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, epilogue);
  if (m == 0 || n == 0) return;
  const Epilogue* ep = epilogue.empty() ? nullptr : &epilogue;
  if (k == 0) {  // no product: only beta and the epilogue act
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        float y = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        if (ep) y = epilogue_scalar(*ep, y, i, j);
        c[i * ldc + j] = y;
      }
    return;
  }

  const bool avx2 = isa_at_least(Isa::avx2), avx512 = isa_at_least(Isa::avx512);
  const MicroKernel kernel = avx512 ? micro_kernel_avx512
                             : avx2 ? micro_kernel_avx2
                                    : micro_kernel_generic;
  const int64_t kernel_rows = avx512 ? kMRWide : kMR;  // rows (whole A micro-panels) per call
  const PackA pack_a = avx2 ? pack_a_avx2 : pack_a_generic;
  const PackB pack_b = avx2 ? pack_b_avx2 : pack_b_generic;

  // With few rows of A each B element is used only a handful of times: packing a whole KC x NC
  // block would push it out to L3 before its second use. Instead a row-major B is read in
  // place, and a transposed one is packed one micro-panel at a time into an L1-resident buffer
  // right before the row panels that use it (a single MC block here).
  const bool panel_b = m <= kPanelBMaxRows;
  const bool direct_b = panel_b && trans_b == Trans::no;
  static_assert(kPanelBMaxRows <= kMC);

  // Below ~100k multiply-adds a fork/join costs more than it saves.
  int nt = in_parallel_region() ? 1 : num_threads();
  if (double(m) * double(n) * double(k) < 1.0e5) nt = 1;
  int tm = 1, tn = 1;
  thread_grid(nt, m, n, k, tm, tn);

  const int64_t mpanels = (m + kMR - 1) / kMR, npanels = (n + kNR - 1) / kNR;
  const int64_t kc_max = std::min(k, kKC);
  const int64_t mc_max = std::min((mpanels + tm - 1) / tm * kMR, kMC);
  const int64_t nc_max = std::min((npanels + tn - 1) / tn * kNR, kNC);
  const int64_t b_floats = kc_max * (panel_b ? kNR : nc_max);
  const int64_t per_thread = (b_floats + mc_max * kc_max + 15) / 16 * 16;  // 64-byte aligned
  Scratch scratch(int64_t(nt) * int64_t(per_thread));

  auto run_block = [&](int64_t t) {
    const int64_t ti = t / tn, tj = t % tn;
    const int64_t r0 = mpanels * ti / tm * kMR;
    const int64_t r1 = std::min(m, mpanels * (ti + 1) / tm * kMR);
    const int64_t c0 = npanels * tj / tn * kNR;
    const int64_t c1 = std::min(n, npanels * (tj + 1) / tn * kNR);
    if (r0 >= r1 || c0 >= c1) return;
    float* pb = scratch.get() + t * per_thread;
    float* pa = pb + b_floats;
    for (int64_t jc = c0; jc < c1; jc += kNC) {
      const int64_t nc = std::min(kNC, c1 - jc);
      for (int64_t pc = 0; pc < k; pc += kKC) {
        const int64_t kc = std::min(kKC, k - pc);
        if (!panel_b) {
          for (int64_t q = 0; q * kNR < nc; ++q)
            pack_b(trans_b, b, ldb, pc, jc + q * kNR, kc, std::min(kNR, nc - q * kNR),
                   pb + q * kNR * kc);
        }
        TileArgs args;
        args.alpha = alpha;
        args.beta = beta;
        args.first = pc == 0;
        args.epilogue = pc + kc == k ? ep : nullptr;
        for (int64_t ic = r0; ic < r1; ic += mc_max) {
          const int64_t mc = std::min(mc_max, r1 - ic);
          pack_a(trans_a, a, lda, ic, pc, mc, kc, pa);
          for (int64_t q = 0; q * kNR < nc; ++q) {
            const int64_t col = jc + q * kNR;
            const int64_t nr = std::min(kNR, nc - q * kNR);
            const float* bq = pb + q * kNR * kc;
            int64_t ldpb = kNR;
            if (direct_b && nr == kNR) {
              bq = b + pc * ldb + col;
              ldpb = ldb;
              // kc rows ldb apart are more streams than the hardware prefetcher follows, so
              // B would arrive at DRAM latency: fetch two panels ahead while this one computes.
              for (int64_t p = 0; p < kc; ++p) {
                __builtin_prefetch(bq + p * ldb + 2 * kNR, 0, 2);
                __builtin_prefetch(bq + p * ldb + 3 * kNR - 1, 0, 2);
              }
            } else if (panel_b) {
              bq = pb;
              pack_b(trans_b, b, ldb, pc, col, kc, nr, pb);
            }
            for (int64_t ir = 0; ir < mc; ir += kernel_rows)
              kernel(kc, pa + ir * kc, bq, ldpb, c + (ic + ir) * ldc + col, ldc,
                     std::min(kernel_rows, mc - ir), nr, ic + ir, col, args);
          }
        }
      }
    }
  };
  parallel_for(nt, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) run_block(t);
  });
}

}  // namespace duet::kernels
