// The per-block passes of the channel-blocked batch and group norms (norm_blocked.h), generic over
// the lane type L (simd_lanes_avx2.h's Lanes8: a block is two vectors; simd_lanes_avx512.h's
// Lanes16: one; norm_blocked.cpp's scalar lanes: sixteen). Include only from the file that
// instantiates it, after its lanes type; everything here has internal linkage, so the ISAs share no
// code.
#pragma once

#include <cstdint>

#include "duet/kernels/activation_math_lanes.h"
#include "duet/kernels/norm_blocked.h"

namespace duet::kernels::detail {
namespace {

template <class L>
struct BlockedNormPasses {
  using V = typename L::V;
  static constexpr int64_t kBlock = 16, kVecs = kBlock / L::width;

  static void load_lanes(const float* p, V (&v)[kVecs]) {
    for (int64_t j = 0; j < kVecs; ++j) v[j] = L::load(p + j * L::width);
  }
  static void store_lanes(float* p, const V (&v)[kVecs]) {
    for (int64_t j = 0; j < kVecs; ++j) L::store(p + j * L::width, v[j]);
  }

  static void sum(int64_t pixels, const float* x, float* sums) {
    // Two accumulators a vector, so the adds' latency is not the limit.
    V s0[kVecs], s1[kVecs];
    for (int64_t j = 0; j < kVecs; ++j) s0[j] = s1[j] = L::zero();
    int64_t i = 0;
    for (; i + 2 <= pixels; i += 2)
      for (int64_t j = 0; j < kVecs; ++j) {
        s0[j] = L::add(s0[j], L::load(x + i * kBlock + j * L::width));
        s1[j] = L::add(s1[j], L::load(x + (i + 1) * kBlock + j * L::width));
      }
    for (; i < pixels; ++i)
      for (int64_t j = 0; j < kVecs; ++j)
        s0[j] = L::add(s0[j], L::load(x + i * kBlock + j * L::width));
    for (int64_t j = 0; j < kVecs; ++j) s0[j] = L::add(s0[j], s1[j]);
    store_lanes(sums, s0);
  }

  static void sum_sq_dev(int64_t pixels, const float* x, const float* mean, float* sums) {
    V m[kVecs], s0[kVecs], s1[kVecs];
    load_lanes(mean, m);
    for (int64_t j = 0; j < kVecs; ++j) s0[j] = s1[j] = L::zero();
    int64_t i = 0;
    for (; i + 2 <= pixels; i += 2)
      for (int64_t j = 0; j < kVecs; ++j) {
        const V d0 = L::sub(L::load(x + i * kBlock + j * L::width), m[j]);
        const V d1 = L::sub(L::load(x + (i + 1) * kBlock + j * L::width), m[j]);
        s0[j] = L::fmadd(d0, d0, s0[j]);
        s1[j] = L::fmadd(d1, d1, s1[j]);
      }
    for (; i < pixels; ++i)
      for (int64_t j = 0; j < kVecs; ++j) {
        const V d = L::sub(L::load(x + i * kBlock + j * L::width), m[j]);
        s0[j] = L::fmadd(d, d, s0[j]);
      }
    for (int64_t j = 0; j < kVecs; ++j) s0[j] = L::add(s0[j], s1[j]);
    store_lanes(sums, s0);
  }

  static void affine(int64_t pixels, const float* x, const float* a, const float* b,
                     const float* residual, bool relu, float* y) {
    V va[kVecs], vb[kVecs];
    load_lanes(a, va);
    load_lanes(b, vb);
    for (int64_t i = 0; i < pixels * kBlock; i += kBlock)
      for (int64_t j = 0; j < kVecs; ++j) {
        const int64_t o = i + j * L::width;
        V v = L::fmadd(L::load(x + o), va[j], vb[j]);
        if (residual) v = L::add(v, L::load(residual + o));
        if (relu) v = L::max(v, L::zero());
        L::store(y + o, v);
      }
  }

  static void grad_sums(int64_t pixels, const float* dy, const float* relu_y, float* masked,
                        const float* x, const float* mean, float* s_dy, float* s_dyx) {
    V m[kVecs], sd[kVecs], sx[kVecs];
    load_lanes(mean, m);
    for (int64_t j = 0; j < kVecs; ++j) sd[j] = sx[j] = L::zero();
    for (int64_t i = 0; i < pixels * kBlock; i += kBlock)
      for (int64_t j = 0; j < kVecs; ++j) {
        const int64_t o = i + j * L::width;
        V g = L::load(dy + o);
        if (relu_y) {
          g = L::keep_where_positive(L::load(relu_y + o), g);
          L::store(masked + o, g);
        }
        sd[j] = L::add(sd[j], g);
        sx[j] = L::fmadd(g, L::sub(L::load(x + o), m[j]), sx[j]);
      }
    store_lanes(s_dy, sd);
    store_lanes(s_dyx, sx);
  }

  static void affine2(int64_t pixels, const float* g, const float* x, const float* k,
                      const float* b, const float* c0, float* dx) {
    V vk[kVecs], vb[kVecs], vc[kVecs];
    load_lanes(k, vk);
    load_lanes(b, vb);
    load_lanes(c0, vc);
    for (int64_t i = 0; i < pixels * kBlock; i += kBlock)
      for (int64_t j = 0; j < kVecs; ++j) {
        const int64_t o = i + j * L::width;
        L::store(dx + o, L::fmadd(L::load(g + o), vk[j], L::fmadd(L::load(x + o), vb[j], vc[j])));
      }
  }

  // grad_sums for a ReLU tail without residual, its mask recomputed from x: g = dy where
  // a x + b > 0 (the forward's own fma, so the same sign), else 0; g is not stored.
  static void grad_sums_relu(int64_t pixels, const float* dy, const float* x, const float* a,
                             const float* b, const float* mean, float* s_dy, float* s_dyx) {
    V va[kVecs], vb[kVecs], m[kVecs], sd[kVecs], sx[kVecs];
    load_lanes(a, va);
    load_lanes(b, vb);
    load_lanes(mean, m);
    for (int64_t j = 0; j < kVecs; ++j) sd[j] = sx[j] = L::zero();
    for (int64_t i = 0; i < pixels * kBlock; i += kBlock)
      for (int64_t j = 0; j < kVecs; ++j) {
        const int64_t o = i + j * L::width;
        const V xv = L::load(x + o);
        const V g = L::keep_where_positive(L::fmadd(xv, va[j], vb[j]), L::load(dy + o));
        sd[j] = L::add(sd[j], g);
        sx[j] = L::fmadd(g, L::sub(xv, m[j]), sx[j]);
      }
    store_lanes(s_dy, sd);
    store_lanes(s_dyx, sx);
  }

  // affine2 of that g, masked again on the way: dx = k g + bb x + c0.
  static void affine2_relu(int64_t pixels, const float* dy, const float* x, const float* a,
                           const float* b, const float* k, const float* bb, const float* c0,
                           float* dx) {
    V va[kVecs], vb[kVecs], vk[kVecs], vbb[kVecs], vc[kVecs];
    load_lanes(a, va);
    load_lanes(b, vb);
    load_lanes(k, vk);
    load_lanes(bb, vbb);
    load_lanes(c0, vc);
    for (int64_t i = 0; i < pixels * kBlock; i += kBlock)
      for (int64_t j = 0; j < kVecs; ++j) {
        const int64_t o = i + j * L::width;
        const V xv = L::load(x + o);
        const V g = L::keep_where_positive(L::fmadd(xv, va[j], vb[j]), L::load(dy + o));
        L::store(dx + o, L::fmadd(g, vk[j], L::fmadd(xv, vbb[j], vc[j])));
      }
  }

  // act'(z) for the activations a norm's output may take.
  template <Activation A>
  static V act_grad(V z) {
    if constexpr (A == Activation::relu) return L::keep_where_positive(z, L::set1(1.0f));
    if constexpr (A == Activation::silu) return act_math::silu_grad_of<L>(z);
    if constexpr (A == Activation::gelu) return act_math::gelu_grad_of<L>(z);
    return L::set1(1.0f);
  }

  // Runs fn.template operator()<A>() for the run-time act, so that every pass is compiled for
  // one activation (no switch inside the pixel loop).
  template <class Fn>
  static void with_act(Activation act, Fn&& fn) {
    switch (act) {
      case Activation::none:
        return fn.template operator()<Activation::none>();
      case Activation::relu:
        return fn.template operator()<Activation::relu>();
      case Activation::silu:
        return fn.template operator()<Activation::silu>();
      case Activation::gelu:
        return fn.template operator()<Activation::gelu>();
    }
  }

  static void affine_act(int64_t pixels, const float* x, const float* a, const float* b,
                         Activation act, float* y) {
    V va[kVecs], vb[kVecs];
    load_lanes(a, va);
    load_lanes(b, vb);
    with_act(act, [&]<Activation A>() {
      for (int64_t i = 0; i < pixels * kBlock; i += kBlock)
        for (int64_t j = 0; j < kVecs; ++j) {
          const int64_t o = i + j * L::width;
          L::store(y + o, act_math::activate_of<L>(A, L::fmadd(L::load(x + o), va[j], vb[j])));
        }
    });
  }

  static void grad_sums_act(int64_t pixels, const float* dy, const float* x, const float* a,
                            const float* b, Activation act, const float* mean, float* g_out,
                            float* s_dy, float* s_dyx) {
    V va[kVecs], vb[kVecs], m[kVecs], sd[kVecs], sx[kVecs];
    load_lanes(a, va);
    load_lanes(b, vb);
    load_lanes(mean, m);
    for (int64_t j = 0; j < kVecs; ++j) sd[j] = sx[j] = L::zero();
    with_act(act, [&]<Activation A>() {
      for (int64_t i = 0; i < pixels * kBlock; i += kBlock)
        for (int64_t j = 0; j < kVecs; ++j) {
          const int64_t o = i + j * L::width;
          const V xv = L::load(x + o);
          const V g = L::mul(L::load(dy + o), act_grad<A>(L::fmadd(xv, va[j], vb[j])));
          L::store(g_out + o, g);
          sd[j] = L::add(sd[j], g);
          sx[j] = L::fmadd(g, L::sub(xv, m[j]), sx[j]);
        }
    });
    store_lanes(s_dy, sd);
    store_lanes(s_dyx, sx);
  }

  static BlockedNormRows table() {
    return {&sum,        &sum_sq_dev,    &affine,         &grad_sums,   &affine2,
            &affine_act, &grad_sums_act, &grad_sums_relu, &affine2_relu};
  }
};

}  // namespace
}  // namespace duet::kernels::detail
