// Fake quantisation (compress/fake_quant.h): the forward equals the quantise-then-dequantise
// reference bit for bit (and its codes are the bytes the int8 kernel's own input quantiser
// writes, on both ISAs), and the straight-through backward is 1 inside the representable range and
// 0 where a value was clipped, checked against finite differences one quantisation step wide
// taken away from rounding edges.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "duet/autograd/autograd.h"
#include "duet/compress/fake_quant.h"
#include "duet/compress/int8_conv.h"
#include "duet/kernels/isa.h"
#include "duet/tensor/rng.h"

using namespace duet;
using compress::fake_quant_activation;
using compress::fake_quant_weight;
using kernels::ActivationQuant;

namespace {

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data<float>(), b.data<float>(), size_t(a.numel()) * sizeof(float)) == 0;
}

// Values over and beyond [lo, hi], plus exact half steps (round-half-even ties), NaN and +-inf.
Tensor activation_probe(const ActivationQuant& q, float lo, float hi, Generator& gen,
                        int64_t n = 997) {
  Tensor x = Tensor::uniform(Shape{n}, gen, lo - 0.5f * (hi - lo), hi + 0.5f * (hi - lo));
  float* p = x.data<float>();
  for (int64_t k = 0; k < 40; ++k)
    p[k] = (static_cast<float>(k - 20 - q.zero_point) + 0.5f) * q.scale;
  p[40] = std::numeric_limits<float>::quiet_NaN();
  p[41] = std::numeric_limits<float>::infinity();
  p[42] = -std::numeric_limits<float>::infinity();
  p[43] = 0.0f;
  return x;
}

const std::vector<std::pair<float, float>> kRanges = {
    {-1.3f, 2.7f}, {0.0f, 5.3f}, {-3.0f, -0.5f}, {-0.01f, 12.27f}, {0.0f, 0.0f}};

}  // namespace

TEST(FakeQuant, ActivationForwardEqualsQuantizeDequantizeBitExactly) {
  Generator gen(1);
  for (const auto& [lo, hi] : kRanges) {
    const ActivationQuant q = ActivationQuant::from_range(lo, hi);
    const Tensor x = activation_probe(q, lo, hi, gen);
    EXPECT_TRUE(same_bits(fake_quant_activation(x, q), compress::ref::fake_quant_activation(x, q)))
        << "range [" << lo << ", " << hi << "]";
  }
}

TEST(FakeQuant, ActivationCodesAreTheInt8KernelsInputBytes) {
  // The int8 conv quantises its input into padded NHWC bytes; fake quant must pick the same codes.
  Generator gen(2);
  const int64_t c = 5, h = 7, w = 9, c4 = 8;
  std::vector<kernels::Isa> isas = {kernels::Isa::generic};
  if (kernels::cpu_has_avx2_fma()) isas.push_back(kernels::Isa::avx2);
  for (const auto& [lo, hi] : kRanges) {
    const ActivationQuant q = ActivationQuant::from_range(lo, hi);
    Tensor x = activation_probe(q, lo, hi, gen, c * h * w);
    x.data<float>()[40] = 1.0f;  // the kernels take finite inputs
    x.data<float>()[41] = hi + 1.0f;
    x.data<float>()[42] = lo - 1.0f;
    const Tensor fq = fake_quant_activation(x, q);
    for (kernels::Isa isa : isas) {
      std::vector<uint8_t> bytes(size_t(h * w * c4));
      if (isa == kernels::Isa::generic)
        kernels::detail::quantize_to_padded_nhwc(x.data<float>(), c, h, w, 0, 0, c4, q,
                                                 bytes.data());
      else
        kernels::detail::quantize_to_padded_nhwc_avx2(x.data<float>(), c, h, w, 0, 0, c4, q,
                                                      bytes.data());
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t i = 0; i < h * w; ++i) {
          const float code = fq.data<float>()[ch * h * w + i] / q.scale + float(q.zero_point);
          ASSERT_EQ(std::nearbyint(code), float(bytes[size_t(i * c4 + ch)]))
              << kernels::isa_name(isa) << " channel " << ch << " pixel " << i;
          ASSERT_NEAR(code, std::nearbyint(code), 1e-3);
        }
    }
  }
}

TEST(FakeQuant, WeightForwardEqualsQuantizeDequantizeBitExactly) {
  Generator gen(3);
  for (const Shape& s : {Shape{7, 3, 3, 3}, Shape{13, 5, 1, 1}, Shape{1, 16, 3, 3}}) {
    Tensor w = Tensor::normal(s, gen, 0.0f, 0.2f);
    const int64_t per = w.numel() / s[0];
    if (s[0] > 2) std::fill_n(w.data<float>() + 2 * per, per, 0.0f);  // an all-zero channel
    const Tensor got = fake_quant_weight(w);
    EXPECT_TRUE(same_bits(got, compress::ref::fake_quant_weight(w))) << s.str();
    // Per channel the largest magnitude is represented exactly (code +-127).
    for (int64_t k = 0; k < s[0]; ++k) {
      float amax = 0.0f, qmax = 0.0f;
      for (int64_t i = 0; i < per; ++i) {
        amax = std::max(amax, std::fabs(w.data<float>()[k * per + i]));
        qmax = std::max(qmax, std::fabs(got.data<float>()[k * per + i]));
      }
      EXPECT_NEAR(qmax, amax, 1e-6f * amax) << "channel " << k;
    }
  }
  Tensor bad = Tensor::zeros(Shape{2, 2, 1, 1});
  bad.data<float>()[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(fake_quant_weight(bad), Error);
}

TEST(FakeQuant, ActivationGradientIsOneInsideAndZeroWhereClipped) {
  const float lo = -1.3f, hi = 2.7f;
  const ActivationQuant q = ActivationQuant::from_range(lo, hi);
  const float h = q.scale;
  const float qlo = float(0 - q.zero_point) * q.scale, qhi = float(127 - q.zero_point) * q.scale;
  // Points a quarter step off the grid (never a rounding edge, also after +-h), spread from two
  // ranges below the representable range to two above it, skipping the steps next to its edges.
  std::vector<float> pts;
  for (int k = -200; k <= 300; k += 3) {
    const float v = (float(k) + 0.25f) * q.scale;
    if (std::fabs(v - qlo) < 2 * h || std::fabs(v - qhi) < 2 * h) continue;
    pts.push_back(v);
  }
  const int64_t n = int64_t(pts.size());
  Tensor x = Tensor::from_vector(pts, Shape{n});
  autograd::set_requires_grad(x);
  Generator gen(4);
  const Tensor r = Tensor::uniform(Shape{n}, gen, 0.5f, 1.5f);  // upstream gradient
  Tensor y = fake_quant_activation(x, q);
  autograd::backward(y, r);  // the gradient of sum(r * y): r * (d y / d x)
  const Tensor g = autograd::grad(x);
  ASSERT_TRUE(g.defined());
  int inside = 0, outside = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = pts[size_t(i)];
    const bool in = v > qlo && v < qhi;
    const float want = in ? r.data<float>()[i] : 0.0f;
    EXPECT_EQ(g.data<float>()[i], want) << "x = " << v;
    // Central difference one quantisation step wide, in double.
    const Tensor plus = compress::ref::fake_quant_activation(Tensor::full(Shape{1}, v + h), q);
    const Tensor minus = compress::ref::fake_quant_activation(Tensor::full(Shape{1}, v - h), q);
    const double fd = (double(plus.data<float>()[0]) - double(minus.data<float>()[0])) / (2.0 * h);
    EXPECT_NEAR(fd, in ? 1.0 : 0.0, 1e-4) << "x = " << v;
    (in ? inside : outside)++;
  }
  EXPECT_GT(inside, 20);
  EXPECT_GT(outside, 20);
}

TEST(FakeQuant, WeightGradientPassesStraightThrough) {
  Generator gen(5);
  const Shape s{4, 3, 3, 3};
  Tensor w = Tensor::normal(s, gen, 0.0f, 0.2f);
  autograd::set_requires_grad(w);
  const Tensor r = Tensor::normal(s, gen);
  autograd::backward(fake_quant_weight(w), r);
  const Tensor g = autograd::grad(w);
  ASSERT_TRUE(g.defined());
  EXPECT_TRUE(same_bits(g, r));
  // Finite differences one step of the channel's scale wide, at weights that are not the channel's
  // largest magnitude (moving that one would move the scale): the slope is 1.
  const int64_t per = w.numel() / s[0];
  Tensor probe = autograd::detached(w).clone();
  int checked = 0;
  for (int64_t k = 0; k < s[0]; ++k) {
    float amax = 0.0f;
    for (int64_t i = 0; i < per; ++i)
      amax = std::max(amax, std::fabs(probe.data<float>()[k * per + i]));
    const float scale = amax / 127.0f;
    for (int64_t i = 0; i < per; ++i) {
      float* p = probe.data<float>() + k * per + i;
      const float v0 = *p;
      if (std::fabs(v0) + 2 * scale >= amax) continue;
      // A quarter step off the grid, so neither v - scale nor v + scale sits on a rounding edge.
      const float v = (std::floor(v0 / scale) + 0.25f) * scale;
      *p = v + scale;
      const float up = compress::ref::fake_quant_weight(probe).data<float>()[k * per + i];
      *p = v - scale;
      const float down = compress::ref::fake_quant_weight(probe).data<float>()[k * per + i];
      *p = v0;
      EXPECT_NEAR((double(up) - double(down)) / (2.0 * scale), 1.0, 1e-3) << k << " " << i;
      ++checked;
    }
  }
  EXPECT_GT(checked, 50);
}

TEST(FakeQuant, RecordsNothingWithoutGradients) {
  const ActivationQuant q = ActivationQuant::from_range(0.0f, 1.0f);
  Tensor x = Tensor::full(Shape{3}, 0.4f);
  autograd::set_requires_grad(x);
  autograd::NoGradGuard no_grad;
  EXPECT_FALSE(autograd::requires_grad(fake_quant_activation(x, q)));
  EXPECT_THROW(fake_quant_activation(x, ActivationQuant{0.0f, 1.0f, 0}), Error);
}
