// conv2d_forward_fused: the Winograd path where it runs (conv2d_winograd_avx2.cpp), otherwise
// the prologue and the image bias as separate passes around conv2d_forward; the reference twin
// is the same composition around ref::conv2d_forward.
#include "duet/kernels/conv2d_fused.h"

#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/conv2d_impl.h"
#include "duet/kernels/isa.h"
#include "duet/tensor/allocator.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {

namespace detail {

namespace {

using ConvFn = void (*)(const Conv2dShape&, const float*, const float*, float*, const Epilogue&);

// The fused forward as three steps: x' = prologue(x) (skipped for the identity), y = conv(x')
// with the epilogue's affine parts, then y = act(y + image_bias + residual); without an image
// bias the convolution's own epilogue adds the residual and applies act.
void conv2d_fused_by_parts(ConvFn conv, const Conv2dShape& s, const float* x, const float* w,
                           float* y, const Prologue& p, const float* image_bias,
                           const Epilogue& e) {
  const int64_t C = s.in_channels, K = s.out_channels, HW = s.in_h * s.in_w;
  const int64_t PQ = s.out_h() * s.out_w();
  memory::FloatScratch xp(p.identity() ? 0 : s.batch * C * HW);
  if (!p.identity())
    parallel_for(s.batch * C, 1, [&](int64_t b, int64_t end) {
      for (int64_t plane = b; plane < end; ++plane) {
        const float a = p.scale ? p.scale[plane] : 1.0f, c = p.shift ? p.shift[plane] : 0.0f;
        const float* src = x + plane * HW;
        float* dst = xp.get() + plane * HW;
        for (int64_t i = 0; i < HW; ++i) dst[i] = apply_activation(p.act, src[i] * a + c);
      }
    });
  const float* input = p.identity() ? x : xp.get();
  if (!image_bias) return conv(s, input, w, y, e);
  Epilogue affine = e;
  affine.residual = nullptr;
  affine.act = Activation::none;
  conv(s, input, w, y, affine);
  parallel_for(s.batch * K, 1, [&](int64_t b, int64_t end) {
    for (int64_t plane = b; plane < end; ++plane) {
      const float add = image_bias ? image_bias[plane] : 0.0f;
      float* out = y + plane * PQ;
      const float* res = e.residual ? e.residual + plane * PQ : nullptr;
      for (int64_t i = 0; i < PQ; ++i)
        out[i] = apply_activation(e.act, out[i] + add + (res ? res[i] : 0.0f));
    }
  });
}

void check_fused(const Conv2dShape& s, const float* x, const float* w, float* y) {
  check_conv2d_shape(s);
  DUET_CHECK(s.groups == 1, "conv2d_forward_fused: groups must be 1, got ", s.groups);
  DUET_CHECK(s.batch == 0 || (x && w && y), "conv2d_forward_fused: null tensor pointer");
}

}  // namespace

}  // namespace detail

void conv2d_forward_fused(const Conv2dShape& s, const float* x, const float* w, float* y,
                          const Prologue& prologue, const float* image_bias,
                          const Epilogue& epilogue) {
  detail::check_fused(s, x, w, y);
  if (s.batch == 0) return;
  if (isa_at_least(Isa::avx2) && use_winograd() &&
      detail::winograd_forward_avx2(
          s, x, w, y, epilogue,
          detail::WinogradExtras{prologue.identity() ? nullptr : &prologue, image_bias, true}))
    return;
  detail::conv2d_fused_by_parts(conv2d_forward, s, x, w, y, prologue, image_bias, epilogue);
}

namespace ref {
void conv2d_forward_fused(const Conv2dShape& s, const float* x, const float* w, float* y,
                          const Prologue& prologue, const float* image_bias,
                          const Epilogue& epilogue) {
  detail::check_fused(s, x, w, y);
  if (s.batch == 0) return;
  detail::conv2d_fused_by_parts(ref::conv2d_forward, s, x, w, y, prologue, image_bias, epilogue);
}
}  // namespace ref

}  // namespace duet::kernels
