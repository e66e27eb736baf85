#include "duet/kernels/reduce.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "duet/kernels/isa.h"
#include "duet/kernels/nd_iter.h"
#include "duet/kernels/reduce_rows.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {

namespace detail {

double sum_run_generic(const float* x, int64_t n) {
  double total = 0;
  constexpr int64_t kBlock = 512;
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    const int64_t e = std::min(n, b0 + kBlock);
    float lanes[16] = {};  // independent lanes the compiler keeps in vector registers
    int64_t i = b0;
    for (; i + 16 <= e; i += 16)
      for (int k = 0; k < 16; ++k) lanes[k] += x[i + k];
    float s = 0;
    for (int k = 0; k < 16; ++k) s += lanes[k];
    for (; i < e; ++i) s += x[i];
    total += s;
  }
  return total;
}

void max_run_generic(const float* x, int64_t n, float& best, int64_t& index) {
  float b = x[0];
  int64_t bi = 0;
  for (int64_t i = 1; i < n; ++i)
    if (max_better(x[i], b)) {
      b = x[i];
      bi = i;
    }
  best = b;
  index = bi;
}

void max_row_generic(const float* x, int64_t n, float* best, int64_t* index, int64_t at) {
  for (int64_t j = 0; j < n; ++j)
    if (max_better(x[j], best[j])) {
      best[j] = x[j];
      index[j] = at;
    }
}

void add_row_generic(const float* x, int64_t n, float* acc) {
  for (int64_t j = 0; j < n; ++j) acc[j] += x[j];
}

}  // namespace detail

namespace {

using detail::NdLayout;
using detail::Odometer;

constexpr int64_t kMinPerThread = 32768;
constexpr int64_t kTile = 256;  // output columns per tile in the kept-inner case
constexpr int kFlushRows = 64;  // float rows summed before folding into double

enum class Kind { sum, max };

// A running result: a double sum, or a max value with its reduced-linear index.
struct MaxState {
  float v = 0;
  int64_t i = -1;
  void take(float value, int64_t index) {
    if (i < 0 || detail::max_better(value, v)) {
      v = value;
      i = index;
    }
  }
};

// The coalesced view of a reduction: kept dims (outer to inner) and reduced dims, each as an
// NdLayout of input strides, and which of them owns the innermost (contiguous) dim.
struct Plan {
  NdLayout kept, red;
  bool inner_reduced = false;
  int64_t inner = 1;  // length of the innermost coalesced dim (contiguous in x)
  int64_t outputs = 1, count = 1;
};

Plan make_plan(int rank, const int64_t* shape, uint32_t axes) {
  int64_t dim[kMaxRank];
  bool red[kMaxRank];
  int n = 0;
  for (int d = 0; d < rank; ++d) {
    if (shape[d] == 1) continue;
    const bool r = axes >> d & 1;
    if (n > 0 && red[n - 1] == r) {
      dim[n - 1] *= shape[d];
    } else {
      dim[n] = shape[d];
      red[n] = r;
      ++n;
    }
  }
  if (n == 0) {
    dim[0] = 1;
    red[0] = false;
    n = 1;
  }
  Plan p;
  p.kept.ops = p.red.ops = 1;
  p.inner_reduced = red[n - 1];
  p.inner = dim[n - 1];
  int64_t stride = 1;
  for (int d = n - 1; d >= 0; --d) {
    (red[d] ? p.count : p.outputs) *= dim[d];
    const bool skip_inner = d == n - 1;  // the inner dim is handled by the row loops
    if (!skip_inner) {
      NdLayout& l = red[d] ? p.red : p.kept;
      // Dims are pushed inner to outer; shift to keep them outer to inner.
      for (int k = l.rank; k > 0; --k) {
        l.shape[k] = l.shape[k - 1];
        l.stride[0][k] = l.stride[0][k - 1];
      }
      l.shape[0] = dim[d];
      l.stride[0][0] = stride;
      ++l.rank;
    }
    stride *= dim[d];
  }
  return p;
}

int64_t layout_count(const NdLayout& l) {
  int64_t c = 1;
  for (int d = 0; d < l.rank; ++d) c *= l.shape[d];
  return c;
}

// Number of slices the reduced dims are cut into when there are too few outputs to spread over
// threads; 1 means "parallelise over outputs (or not at all)".
int64_t reduction_slices(int64_t units, int64_t total) {
  const int64_t nt = num_threads();
  if (nt <= 1 || in_parallel_region() || units >= 2 * nt) return 1;
  return std::max<int64_t>(1, std::min<int64_t>(nt, total / kMinPerThread));
}

template <Kind K>
void reduce_impl(int rank, const int64_t* shape, uint32_t axes, const float* x, float* out,
                 int64_t* argmax, bool mean) {
  DUET_CHECK(rank >= 0 && rank <= kMaxRank, "reduce: rank ", rank, " not in [0, ", kMaxRank, "]");
  DUET_CHECK((axes >> rank) == 0, "reduce: axes mask has bits at or above rank ", rank);
  int64_t outputs = 1, count = 1;
  for (int d = 0; d < rank; ++d) {
    DUET_CHECK(shape[d] >= 0, "reduce: negative size ", shape[d], " in dim ", d);
    (axes >> d & 1 ? count : outputs) *= shape[d];
  }
  if (outputs == 0) return;
  if (count == 0) {
    DUET_CHECK(K == Kind::sum, "reduce_max: cannot take the max over an empty axis");
    std::fill(out, out + outputs, mean ? std::numeric_limits<float>::quiet_NaN() : 0.0f);
    return;
  }
  if (K == Kind::sum && count == 1) {  // nothing to reduce: a copy (autograd hits this often)
    std::copy(x, x + outputs, out);
    return;
  }
  const Plan p = make_plan(rank, shape, axes);
  const bool avx2 = isa_at_least(Isa::avx2);
  const auto sum_run = avx2 ? detail::sum_run_avx2 : detail::sum_run_generic;
  const auto max_run = avx2 ? detail::max_run_avx2 : detail::max_run_generic;
  const auto add_row = avx2 ? detail::add_row_avx2 : detail::add_row_generic;
  const auto max_row = avx2 ? detail::max_row_avx2 : detail::max_row_generic;
  const double scale = mean ? 1.0 / double(count) : 1.0;
  using State = std::conditional_t<K == Kind::sum, double, MaxState>;
  auto emit = [&](int64_t o, const State& s) {
    if constexpr (K == Kind::sum) {
      out[o] = static_cast<float>(s * scale);
    } else {
      out[o] = s.v;
      if (argmax) argmax[o] = s.i;
    }
  };

  if (p.inner_reduced) {
    // Each output reduces runs of `inner` contiguous elements, one run per reduced-outer index.
    const int64_t n = p.inner, runs = layout_count(p.red);
    // Reduces flattened reduced positions [q0, q1) of the output at input offset `base`.
    auto reduce_range = [&](int64_t base, int64_t q0, int64_t q1, State& s) {
      Odometer r(p.red, p.red.rank, q0 / n);
      int64_t i = q0 % n;
      for (int64_t q = q0; q < q1;) {
        const int64_t len = std::min(n - i, q1 - q);
        const float* run = x + base + r.off[0] + i;
        if constexpr (K == Kind::sum) {
          s += sum_run(run, len);
        } else {
          float v;
          int64_t at;
          max_run(run, len, v, at);
          s.take(v, q + at);
        }
        q += len;
        i = 0;
        r.next();
      }
    };
    const int64_t slices = reduction_slices(p.outputs, p.outputs * p.count);
    if (slices == 1) {
      parallel_for(p.outputs, std::max<int64_t>(1, kMinPerThread / p.count),
                   [&](int64_t o0, int64_t o1) {
                     Odometer k(p.kept, p.kept.rank, o0);
                     for (int64_t o = o0; o < o1; ++o, k.next()) {
                       State s{};
                       reduce_range(k.off[0], 0, runs * n, s);
                       emit(o, s);
                     }
                   });
      return;
    }
    std::vector<State> part(static_cast<size_t>(slices * p.outputs));
    parallel_for(slices, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t q0 = runs * n * t / slices, q1 = runs * n * (t + 1) / slices;
        Odometer k(p.kept, p.kept.rank, 0);
        for (int64_t o = 0; o < p.outputs; ++o, k.next())
          reduce_range(k.off[0], q0, q1, part[static_cast<size_t>(t * p.outputs + o)]);
      }
    });
    for (int64_t o = 0; o < p.outputs; ++o) {
      State s = part[static_cast<size_t>(o)];
      for (int64_t t = 1; t < slices; ++t) {
        const State& u = part[static_cast<size_t>(t * p.outputs + o)];
        if constexpr (K == Kind::sum)
          s += u;
        else if (u.i >= 0)
          s.take(u.v, u.i);
      }
      emit(o, s);
    }
    return;
  }

  // Kept inner dim: each output row of `inner` columns accumulates whole input rows, one per
  // reduced index, in tiles of kTile columns.
  const int64_t m = p.inner, rows = p.count, tiles = (m + kTile - 1) / kTile;
  const int64_t outer = layout_count(p.kept);
  // Reduces rows [r0, r1) of columns [c0, c0 + w) of outer output row at input offset `base`
  // into acc (w doubles) or best/where (w each).
  auto reduce_cols = [&](int64_t base, int64_t c0, int64_t w, int64_t r0, int64_t r1, State* acc) {
    if (r0 >= r1) return;
    Odometer r(p.red, p.red.rank, r0);
    if constexpr (K == Kind::sum) {
      if (p.red.rank == 1 && p.red.stride[0][0] == m && w == m && m < 32) {
        // Few columns over contiguous rows: sum k rows at once as one row of k * m floats (one
        // add per element instead of one call per short row), folding lanes into columns later.
        const int64_t k = 64 / m, wide = k * m;
        float f[64] = {};
        const float* src = x + base + r.off[0];
        int64_t q = r0;
        int pending = 0;
        auto fold = [&] {
          for (int64_t j = 0; j < wide; ++j) {
            acc[j % m] += f[j];
            f[j] = 0;
          }
        };
        for (; q + k <= r1; q += k, src += wide) {
          add_row(src, wide, f);
          if (++pending == kFlushRows) {
            fold();
            pending = 0;
          }
        }
        fold();
        for (; q < r1; ++q, src += m)
          for (int64_t j = 0; j < m; ++j) acc[j] += src[j];
        return;
      }
      float f[kTile] = {};
      int pending = 0;
      for (int64_t q = r0; q < r1; ++q, r.next()) {
        add_row(x + base + r.off[0] + c0, w, f);
        if (++pending == kFlushRows || q + 1 == r1) {
          for (int64_t j = 0; j < w; ++j) {
            acc[j] += f[j];
            f[j] = 0;
          }
          pending = 0;
        }
      }
    } else {
      // Columns as separate value/index arrays so the row loop can be vectorised; the first
      // row seeds columns that have no candidate yet.
      float bv[kTile];
      int64_t bi[kTile];
      for (int64_t j = 0; j < w; ++j) {
        bv[j] = acc[j].i < 0 ? x[base + r.off[0] + c0 + j] : acc[j].v;
        bi[j] = acc[j].i < 0 ? r0 : acc[j].i;
      }
      for (int64_t q = r0; q < r1; ++q, r.next()) max_row(x + base + r.off[0] + c0, w, bv, bi, q);
      for (int64_t j = 0; j < w; ++j) acc[j] = MaxState{bv[j], bi[j]};
    }
  };
  const int64_t units = outer * tiles;
  const int64_t slices = reduction_slices(units, p.outputs * p.count);
  if (slices == 1) {
    parallel_for(units, std::max<int64_t>(1, kMinPerThread / (p.count * std::min(m, kTile))),
                 [&](int64_t u0, int64_t u1) {
                   State acc[kTile];
                   for (int64_t u = u0; u < u1; ++u) {
                     const int64_t o = u / tiles, c0 = u % tiles * kTile;
                     const int64_t w = std::min(kTile, m - c0);
                     Odometer k(p.kept, p.kept.rank, o);
                     std::fill(acc, acc + w, State{});
                     reduce_cols(k.off[0], c0, w, 0, rows, acc);
                     for (int64_t j = 0; j < w; ++j) emit(o * m + c0 + j, acc[j]);
                   }
                 });
    return;
  }
  std::vector<State> part(static_cast<size_t>(slices * p.outputs));
  parallel_for(slices, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r0 = rows * t / slices, r1 = rows * (t + 1) / slices;
      State* mine = part.data() + t * p.outputs;
      Odometer k(p.kept, p.kept.rank, 0);
      for (int64_t o = 0; o < outer; ++o, k.next())
        for (int64_t c0 = 0; c0 < m; c0 += kTile)
          reduce_cols(k.off[0], c0, std::min(kTile, m - c0), r0, r1, mine + o * m + c0);
    }
  });
  for (int64_t o = 0; o < p.outputs; ++o) {
    State s = part[static_cast<size_t>(o)];
    for (int64_t t = 1; t < slices; ++t) {
      const State& u = part[static_cast<size_t>(t * p.outputs + o)];
      if constexpr (K == Kind::sum)
        s += u;
      else if (u.i >= 0)
        s.take(u.v, u.i);
    }
    emit(o, s);
  }
}

}  // namespace

void reduce_sum(int rank, const int64_t* shape, uint32_t axes, const float* x, float* out) {
  reduce_impl<Kind::sum>(rank, shape, axes, x, out, nullptr, false);
}

void reduce_mean(int rank, const int64_t* shape, uint32_t axes, const float* x, float* out) {
  reduce_impl<Kind::sum>(rank, shape, axes, x, out, nullptr, true);
}

void reduce_max(int rank, const int64_t* shape, uint32_t axes, const float* x, float* out,
                int64_t* argmax) {
  reduce_impl<Kind::max>(rank, shape, axes, x, out, argmax, false);
}

void reduce_to_shape(int grad_rank, const int64_t* grad_shape, const float* grad, int rank,
                     const int64_t* shape, float* out) {
  reduce_sum(grad_rank, grad_shape, broadcast_reduce_axes(grad_rank, grad_shape, rank, shape), grad,
             out);
}

}  // namespace duet::kernels
