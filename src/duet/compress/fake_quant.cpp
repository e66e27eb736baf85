// The fake-quant ops: one pass each that computes the dequantised values and (for activations)
// the straight-through mask the backward needs. The arithmetic is written out rather than calling
// the int8 quantisers so that one loop serves forward and mask; the reference twins in ref::
// call the int8 path's own functions, and the tests hold the two to bit equality.
#include "duet/compress/fake_quant.h"

#include <algorithm>
#include <cmath>

#include "duet/autograd/autograd.h"
#include "duet/compress/int8_conv.h"
#include "duet/ops/shape_ops.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::compress {
namespace {

constexpr int64_t kGrain = 1 << 14;  // elements per parallel chunk: cheap work, large chunks

void check_input(const Tensor& t, const char* op) {
  DUET_CHECK(t.defined() && t.dtype() == DType::f32, op, ": expected a defined F32 tensor");
}

void check_quant(const kernels::ActivationQuant& q) {
  DUET_CHECK(q.scale > 0.0f && std::isfinite(q.scale) && q.zero_point >= 0 &&
                 q.zero_point < kernels::kActivationLevels,
             "fake_quant_activation: scale must be positive and the zero point in [0, 127], got ",
             q.scale, " and ", q.zero_point);
}

}  // namespace

Tensor fake_quant_weight(const Tensor& weight_in) {
  check_input(weight_in, "fake_quant_weight");
  DUET_CHECK(weight_in.rank() >= 2 && weight_in.dim(0) >= 1,
             "fake_quant_weight: expected a weight [K, ...], got ", weight_in.shape().str());
  const Tensor w = ops::contiguous(weight_in);
  const int64_t K = w.dim(0), per = w.numel() / K;
  Tensor out = Tensor::empty(w.shape());
  const float* pw = w.data<float>();
  float* po = out.data<float>();
  for (int64_t k = 0; k < K; ++k) {
    const float* src = pw + k * per;
    float amax = 0.0f;
    for (int64_t i = 0; i < per; ++i) {
      DUET_CHECK(std::isfinite(src[i]), "fake_quant_weight: weight of output channel ", k,
                 " is not finite");
      amax = std::max(amax, std::fabs(src[i]));
    }
    // The same float operations as quantize_weights_per_channel, so the codes are the same.
    const float scale = amax > 0.0f ? amax / float(kernels::kWeightMax) : 1.0f;
    const float inv = 1.0f / scale;
    for (int64_t i = 0; i < per; ++i) {
      // + 0.0f: a code of -0.0 (a small negative weight) is the int8 code 0, i.e. +0.0.
      const float c = std::clamp(std::nearbyint(src[i] * inv), -127.0f, 127.0f) + 0.0f;
      po[k * per + i] = c * scale;
    }
  }
  // Straight through: d out / d w = 1 (no element is clipped; the scale is not differentiated).
  autograd::record(out, "fake_quant_weight", {weight_in},
                   [](const Tensor& g) { return std::vector<Tensor>{ops::contiguous(g)}; });
  return out;
}

Tensor fake_quant_activation(const Tensor& x_in, const kernels::ActivationQuant& q) {
  check_input(x_in, "fake_quant_activation");
  check_quant(q);
  const Tensor x = ops::contiguous(x_in);
  const int64_t n = x.numel();
  Tensor out = Tensor::empty(x.shape());
  const bool need_mask = autograd::any_requires_grad({&x_in});
  Tensor mask = need_mask ? Tensor::empty(x.shape(), DType::u8) : Tensor();
  const float* px = x.data<float>();
  float* po = out.data<float>();
  uint8_t* pm = need_mask ? mask.data<uint8_t>() : nullptr;
  const float zp = static_cast<float>(q.zero_point);
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float v = std::nearbyint(px[i] * q.inv_scale) + zp;
      // In this order, like kernels::quantize_activation: NaN fails the first test and becomes 0.
      float c = v >= 0.0f ? v : 0.0f;
      c = c <= 127.0f ? c : 127.0f;
      po[i] = (c - zp) * q.scale;
      if (pm) pm[i] = v >= 0.0f && v <= 127.0f;
    }
  });
  if (need_mask)
    autograd::record(out, "fake_quant_activation", {x_in},
                     [mask = autograd::detached(mask)](const Tensor& g_in) {
                       const Tensor g = ops::contiguous(g_in);
                       Tensor dx = Tensor::empty(g.shape());
                       const float* pg = g.data<float>();
                       const uint8_t* pm = mask.data<uint8_t>();
                       float* pd = dx.data<float>();
                       parallel_for(g.numel(), kGrain, [&](int64_t b, int64_t e) {
                         for (int64_t i = b; i < e; ++i) pd[i] = pm[i] ? pg[i] : 0.0f;
                       });
                       return std::vector<Tensor>{dx};
                     });
  return out;
}

namespace ref {

Tensor fake_quant_weight(const Tensor& weight) {
  const QuantizedWeights qw = quantize_weights_per_channel(ops::contiguous(weight));
  const int64_t K = weight.dim(0), per = weight.numel() / K;
  Tensor out = Tensor::empty(weight.shape());
  for (int64_t k = 0; k < K; ++k)
    for (int64_t i = 0; i < per; ++i)
      out.data<float>()[k * per + i] =
          float(qw.codes.data<int8_t>()[k * per + i]) * qw.scale.data<float>()[k];
  return out;
}

Tensor fake_quant_activation(const Tensor& x_in, const kernels::ActivationQuant& q) {
  const Tensor x = ops::contiguous(x_in);
  Tensor out = Tensor::empty(x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int32_t code = kernels::quantize_activation(x.data<float>()[i], q);
    out.data<float>()[i] = float(code - q.zero_point) * q.scale;
  }
  return out;
}

}  // namespace ref
}  // namespace duet::compress
