// Training losses with their gradients: cross-entropy over class logits (with PyTorch's label
// smoothing) and mean squared error. Each returns the mean loss and, in the same pass, writes
// the gradient scaled by the upstream scalar gradient `grad`.
#pragma once

#include <cstdint>

namespace duet::kernels {

// logits [n, c] row-major, targets [n] in [0, c). Returns mean over n of
//   (1 - eps) * (-log p[target]) + eps * mean_k(-log p[k]),   p = softmax(logits row),
// and, when dlogits is not null, overwrites it with grad * d(loss)/d(logits)
//   = grad / n * (p - (1 - eps) * onehot(target) - eps / c).
// Throws duet::Error naming the first target outside [0, c) before touching dlogits.
float cross_entropy(int64_t n, int64_t c, const float* logits, const int32_t* targets,
                    float label_smoothing, float grad, float* dlogits);

// mean((a - b)^2) over n elements.
float mse_forward(int64_t n, const float* a, const float* b);
// da = grad * 2 (a - b) / n, db = -da (either may be null). Overwrites both.
void mse_backward(int64_t n, const float* a, const float* b, float grad, float* da, float* db);

namespace ref {
float cross_entropy(int64_t n, int64_t c, const float* logits, const int32_t* targets,
                    float label_smoothing, float grad, float* dlogits);
float mse_forward(int64_t n, const float* a, const float* b);
void mse_backward(int64_t n, const float* a, const float* b, float grad, float* da, float* db);
}  // namespace ref

}  // namespace duet::kernels
