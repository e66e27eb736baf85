#include "duet/compress/fused_blocks.h"

#include <atomic>
#include <cstring>

#include "duet/autograd/autograd.h"
#include "duet/compress/blocked_forward.h"
#include "duet/ops/blocked.h"
#include "duet/ops/pool.h"
#include "duet/ops/shape_ops.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::compress {
namespace {

// Planes [C, H, W] of every image must be contiguous (a channel slice of a contiguous tensor is).
Tensor planes_contiguous(const Tensor& t) {
  const int64_t hw = t.dim(2) * t.dim(3);
  const bool ok = t.strides()[3] == 1 && t.strides()[2] == t.dim(3) && t.strides()[1] == hw;
  return ok ? t : ops::contiguous(t);
}

// concat({a, b}, 1) followed by channel_shuffle(., 2) in one copy: output channel 2i is a's
// channel i and 2i + 1 is b's, for a and b both [N, half, H, W].
Tensor interleave_channels(const Tensor& a_in, const Tensor& b_in) {
  DUET_CHECK(a_in.rank() == 4 && a_in.shape() == b_in.shape(),
             "FusedShuffleUnit: branch outputs differ: ", a_in.shape().str(), " vs ",
             b_in.shape().str());
  const Tensor a = planes_contiguous(a_in), b = planes_contiguous(b_in);
  const int64_t n = a.dim(0), half = a.dim(1), hw = a.dim(2) * a.dim(3);
  Tensor y = Tensor::empty({n, 2 * half, a.dim(2), a.dim(3)});
  const float *pa = a.data<float>(), *pb = b.data<float>();
  float* py = y.data<float>();
  const size_t bytes = size_t(hw) * sizeof(float);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < half; ++c) {
      float* dst = py + (i * 2 * half + 2 * c) * hw;
      std::memcpy(dst, pa + i * a.strides()[0] + c * hw, bytes);
      std::memcpy(dst + hw, pb + i * b.strides()[0] + c * hw, bytes);
    }
  return y;
}

}  // namespace

FusedBasicBlock::FusedBasicBlock(std::shared_ptr<FusedConv> c1, std::shared_ptr<FusedConv> c2,
                                 std::shared_ptr<FusedConv> sc)
    : Module("FusedBasicBlock") {
  DUET_CHECK(c1 && c2, "FusedBasicBlock: conv1 and conv2 are required");
  conv1 = register_module("conv1", std::move(c1));
  conv2 = register_module("conv2", std::move(c2));
  if (sc) shortcut = register_module("shortcut", std::move(sc));
}

Tensor FusedBasicBlock::forward(const Tensor& x) {
  const Tensor identity = shortcut ? shortcut->forward(x) : x;
  return conv2->forward(conv1->forward(x), identity);
}

FusedShuffleUnit::FusedShuffleUnit(std::shared_ptr<nn::Sequential> b1,
                                   std::shared_ptr<nn::Sequential> b2)
    : Module("FusedShuffleUnit") {
  DUET_CHECK(b2, "FusedShuffleUnit: branch2 is required");
  if (b1) branch1 = register_module("branch1", std::move(b1));
  branch2 = register_module("branch2", std::move(b2));
}

Tensor FusedShuffleUnit::forward(const Tensor& x) {
  if (branch1) return interleave_channels(branch1->forward(x), branch2->forward(x));
  const int64_t half = x.dim(1) / 2;
  return interleave_channels(ops::slice(x, 1, 0, half),
                             branch2->forward(ops::slice(x, 1, half, 2 * half)));
}

FoldedClassifier::FoldedClassifier(const std::string& type_name, std::shared_ptr<nn::Sequential> b,
                                   const std::string& head_name, std::shared_ptr<nn::Linear> h)
    : Classifier(type_name) {
  body = register_module("body", std::move(b));
  head = register_module(head_name, std::move(h));
}

Tensor FoldedClassifier::features(const Tensor& x) {
  const int64_t n = x.rank() == 4 ? x.dim(0) : 0, chunk = chunk_images;
  const int64_t f = head->weight.dim(1);
  const bool blocked = channel_blocked && x.rank() == 4 && runs_blocked(*body);
  auto pooled_body = [&](const Tensor& xs) {
    if (blocked) return ops::global_avg_pool2d_blocked(forward_blocked(*body, xs), f);
    return ops::global_avg_pool2d(body->forward(xs));
  };
  // Chunks only where nothing can need gradients or batch statistics (FusedConv throws there,
  // on the caller's thread) and no caller already parallelises around this call.
  if (chunk <= 0 || n < 2 * chunk || is_training() || autograd::grad_enabled() ||
      in_parallel_region())
    return pooled_body(x);
  const Tensor xc = ops::contiguous(x);
  const int64_t chunks = (n + chunk - 1) / chunk;
  Tensor out = Tensor::empty({n, f});
  // Threads take chunks from a shared counter; each image's result does not depend on which
  // thread or chunk computed it, so the output is the same for any thread count.
  std::atomic<int64_t> next{0};
  parallel_for(std::min<int64_t>(num_threads(), chunks), 1, [&](int64_t, int64_t) {
    autograd::NoGradGuard no_grad;  // grad mode is per thread; workers start with it on
    for (int64_t c = next.fetch_add(1); c < chunks; c = next.fetch_add(1)) {
      const int64_t b = c * chunk, e = std::min(n, b + chunk);
      const Tensor y = pooled_body(xc.slice(0, b, e));
      DUET_CHECK(y.rank() == 2 && y.dim(1) == f, "FoldedClassifier: the body gives features ",
                 y.shape().str(), ", the head expects ", f);
      std::memcpy(out.data<float>() + b * f, y.data<float>(), size_t((e - b) * f) * sizeof(float));
    }
  });
  return out;
}

Tensor FoldedClassifier::logits(const Tensor& f) {
  return head->forward(f);
}

}  // namespace duet::compress
