// SGEMM compare cases: the fast path against ref::sgemm over all transposes, sizes around the
// 6x16 micro-tile and the KC/MC/NC blocks, alpha/beta variants, padded leading dimensions and
// every epilogue stage on both channel axes.
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "../harness/op_harness.h"
#include "duet/kernels/gemm.h"
#include "duet/tensor/parallel.h"

namespace {

using duet::kernels::Activation;
using duet::kernels::ChannelAxis;
using duet::kernels::Epilogue;
using duet::kernels::Trans;

struct GemmSpec {
  Trans ta = Trans::no, tb = Trans::no;
  int64_t m = 1, n = 1, k = 1;
  float alpha = 1.0f, beta = 0.0f;
  int64_t pad = 0;  // extra elements per row of A, B, C and the residual
  ChannelAxis axis = ChannelAxis::row;
  bool scale = false, shift = false, bias = false, residual = false;
  Activation act = Activation::none;
  bool nested = false;  // call from inside a parallel region (must run serially, same result)
};

const char* act_name(Activation a) {
  switch (a) {
    case Activation::none:
      return "";
    case Activation::relu:
      return "+relu";
    case Activation::silu:
      return "+silu";
    case Activation::gelu:
      return "+gelu";
  }
  return "";
}

std::string spec_name(const GemmSpec& s) {
  std::ostringstream name;
  name << "sgemm/" << (s.ta == Trans::no ? 'n' : 't') << (s.tb == Trans::no ? 'n' : 't') << '/'
       << s.m << 'x' << s.n << 'x' << s.k << "/a" << s.alpha << "_b" << s.beta;
  if (s.pad) name << "/ld+" << s.pad;
  if (s.scale || s.shift || s.bias || s.residual || s.act != Activation::none) {
    name << (s.axis == ChannelAxis::row ? "/row:" : "/col:");
    if (s.scale) name << "+scale";
    if (s.shift) name << "+shift";
    if (s.bias) name << "+bias";
    if (s.residual) name << "+res";
    name << act_name(s.act);
  }
  if (s.nested) name << "/nested";
  return name.str();
}

void add(const GemmSpec& s) {
  duet::test::KernelCase kc;
  kc.name = spec_name(s);
  kc.flops = 2.0 * double(s.m) * double(s.n) * double(s.k);
  // fp32 sums in a different order drift by ~sqrt(k) ulps of terms up to |k|; be generous but
  // far below the O(1) error of any indexing bug.
  kc.atol = 1e-5 + 2e-6 * double(s.k);
  kc.rtol = 1e-4;
  kc.make = [s] {
    const int64_t a_rows = s.ta == Trans::no ? s.m : s.k, a_cols = s.ta == Trans::no ? s.k : s.m;
    const int64_t b_rows = s.tb == Trans::no ? s.k : s.n, b_cols = s.tb == Trans::no ? s.n : s.k;
    const int64_t lda = std::max<int64_t>(1, a_cols) + s.pad;
    const int64_t ldb = std::max<int64_t>(1, b_cols) + s.pad, ldc = s.n + s.pad;
    const uint64_t seed = std::hash<std::string>{}(spec_name(s));
    auto a = duet::test::random_vector(size_t(a_rows * lda), seed);
    auto b = duet::test::random_vector(size_t(b_rows * ldb), seed + 1);
    auto c0 = duet::test::random_vector(size_t(s.m * ldc), seed + 2);
    if (s.beta == 0.0f)  // beta == 0 must overwrite C without reading it
      for (int64_t i = 0; i < s.m; ++i)
        for (int64_t j = 0; j < s.n; ++j) c0[i * ldc + j] = std::numeric_limits<float>::quiet_NaN();
    const int64_t channels = s.axis == ChannelAxis::row ? s.m : s.n;
    auto scale = duet::test::random_vector(size_t(channels), seed + 3, 0.5f, 2.0f);
    auto shift = duet::test::random_vector(size_t(channels), seed + 4);
    auto bias = duet::test::random_vector(size_t(channels), seed + 5);
    auto res = duet::test::random_vector(size_t(s.m * ldc), seed + 6, -2.0f, 2.0f);
    return [=](bool fast, std::vector<float>& out) {
      Epilogue e;
      e.axis = s.axis;
      if (s.scale) e.scale = scale.data();
      if (s.shift) e.shift = shift.data();
      if (s.bias) e.bias = bias.data();
      if (s.residual) {
        e.residual = res.data();
        e.ld_residual = ldc;
      }
      e.act = s.act;
      out = c0;
      auto run = [&] {
        if (fast)
          duet::kernels::sgemm(s.ta, s.tb, s.m, s.n, s.k, s.alpha, a.data(), lda, b.data(), ldb,
                               s.beta, out.data(), ldc, e);
        else
          duet::kernels::ref::sgemm(s.ta, s.tb, s.m, s.n, s.k, s.alpha, a.data(), lda, b.data(),
                                    ldb, s.beta, out.data(), ldc, e);
      };
      if (s.nested)
        duet::parallel_for(2, 1, [&](int64_t b0, int64_t) {
          if (b0 == 0) run();
        });
      else
        run();
    };
  };
  duet::test::add_kernel_case(std::move(kc));
}

void register_all() {
  const Trans trans[2] = {Trans::no, Trans::yes};
  const int64_t sizes[] = {1, 5, 7, 13, 16, 17, 127, 128, 129};
  const float alphas[] = {1.0f, 0.5f, -1.5f, 2.0f};
  const float betas[] = {0.0f, 1.0f, 0.75f, 0.0f, -1.0f};
  int idx = 0;
  for (Trans ta : trans)
    for (Trans tb : trans)
      for (int im = 0; im < 9; ++im)
        for (int in = 0; in < 9; ++in, ++idx) {
          GemmSpec s;
          s.ta = ta;
          s.tb = tb;
          s.m = sizes[im];
          s.n = sizes[in];
          s.k = sizes[(im * 4 + in * 7 + idx) % 9];
          s.alpha = alphas[idx % 4];
          s.beta = betas[idx % 5];
          s.pad = idx % 3 == 0 ? 3 : 0;
          add(s);
        }

  // Several KC/MC blocks, a K that is not a multiple of KC, and an N past one NC block.
  for (Trans ta : trans)
    for (Trans tb : trans) {
      add({ta, tb, 300, 200, 257, 1.0f, 0.0f, 0});
      add({ta, tb, 300, 200, 257, 0.5f, 1.0f, 5});
    }
  add({Trans::no, Trans::no, 7, 4100, 20, 1.0f, 0.5f, 1});
  add({Trans::no, Trans::yes, 16, 4200, 9, 1.0f, 0.0f, 0});
  add({Trans::no, Trans::no, 513, 33, 600, -1.0f, 0.25f, 2});
  add({Trans::yes, Trans::no, 1, 700, 300, 1.0f, 0.0f, 0});
  add({Trans::no, Trans::no, 700, 1, 300, 1.0f, 0.0f, 0});

  // Every epilogue stage alone and together, both channel axes, K below and above one block.
  struct Stage {
    bool scale, shift, bias, residual;
    Activation act;
  };
  const Stage stages[] = {{true, false, false, false, Activation::none},
                          {false, true, false, false, Activation::none},
                          {true, true, false, false, Activation::none},
                          {false, false, true, false, Activation::none},
                          {false, false, false, true, Activation::none},
                          {false, false, false, false, Activation::relu},
                          {false, false, false, false, Activation::silu},
                          {false, false, false, false, Activation::gelu},
                          {true, true, true, true, Activation::silu},
                          {true, true, true, true, Activation::gelu},
                          {false, true, false, true, Activation::relu}};
  int e = 0;
  for (ChannelAxis axis : {ChannelAxis::row, ChannelAxis::col})
    for (const Stage& st : stages)
      for (const auto& shape : {GemmSpec{Trans::no, Trans::no, 13, 21, 5},
                                GemmSpec{Trans::yes, Trans::yes, 24, 127, 300}}) {
        GemmSpec s = shape;
        s.axis = axis;
        s.scale = st.scale;
        s.shift = st.shift;
        s.bias = st.bias;
        s.residual = st.residual;
        s.act = st.act;
        s.alpha = e % 2 ? 1.0f : 0.75f;
        s.beta = e % 3 ? 0.0f : 0.5f;
        s.pad = e % 2 ? 3 : 0;
        ++e;
        add(s);
      }
  GemmSpec big{Trans::no, Trans::no, 300, 200, 257, 1.0f, 0.0f, 1};
  big.bias = big.residual = true;
  big.act = Activation::gelu;
  add(big);
  big.axis = ChannelAxis::col;
  big.act = Activation::silu;
  big.tb = Trans::yes;
  add(big);
  GemmSpec nested{Trans::no, Trans::yes, 129, 130, 131};
  nested.nested = true;
  nested.bias = true;
  nested.act = Activation::relu;
  add(nested);
  // k == 0: only beta and the epilogue act.
  GemmSpec k0{Trans::no, Trans::no, 5, 7, 0, 1.0f, 0.5f};
  k0.shift = true;
  k0.act = Activation::gelu;
  add(k0);
}

duet::test::Register reg(register_all);

}  // namespace
