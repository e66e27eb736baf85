// Thin wrapper around OpenBLAS's cblas_sgemm so the rest of the bench code builds whether or
// not OpenBLAS was found (DUET_HAVE_OPENBLAS); without it every call reports "unavailable".
#pragma once

#include <cstdint>
#include <string>

namespace duet::bench::peers {

bool openblas_available();
std::string openblas_config();  // OpenBLAS's build string, or "unavailable"
// Fixes OpenBLAS's own thread pool size so it neither oversubscribes nor idles cores.
void openblas_set_threads(int threads);
// Row-major C = alpha * op(A) op(B) + beta * C; throws duet::Error when OpenBLAS is absent.
void openblas_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                    int64_t ldc);

}  // namespace duet::bench::peers
