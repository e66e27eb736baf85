// Softmax and log-softmax over the last dimension of a row-major [rows, cols] buffer, forward
// and backward. Numerically stable (the row maximum is subtracted before exp); rows are split
// over threads and each row is reduced in one fixed order, so results do not depend on threads.
#pragma once

#include <cstdint>

namespace duet::kernels {

// y = softmax(x) per row. Overwrites y; y may alias x.
void softmax_forward(int64_t rows, int64_t cols, const float* x, float* y);
// dx = y * (dy - sum(dy * y)) per row, from the forward output y. Overwrites dx.
void softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx);
// y = x - max - log(sum(exp(x - max))) per row. Overwrites y; y may alias x.
void log_softmax_forward(int64_t rows, int64_t cols, const float* x, float* y);
// dx = dy - exp(y) * sum(dy) per row, from the forward output y. Overwrites dx.
void log_softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx);

namespace ref {
void softmax_forward(int64_t rows, int64_t cols, const float* x, float* y);
void softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx);
void log_softmax_forward(int64_t rows, int64_t cols, const float* x, float* y);
void log_softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx);
}  // namespace ref

}  // namespace duet::kernels
