#include "bench/peers/openblas_sgemm.h"

#include "duet/tensor/error.h"

#ifdef DUET_HAVE_OPENBLAS
#include <cblas.h>
// Declared here too: Debian's cblas.h alternative may be the netlib one, which lacks them.
extern "C" void openblas_set_num_threads(int num_threads);
extern "C" char* openblas_get_config(void);
#endif

namespace duet::bench::peers {

#ifdef DUET_HAVE_OPENBLAS

bool openblas_available() {
  return true;
}

std::string openblas_config() {
  return openblas_get_config();
}

void openblas_set_threads(int threads) {
  openblas_set_num_threads(threads);
}

void openblas_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                    int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, int(m), int(n), int(k), alpha, a, int(lda), b,
              int(ldb), beta, c, int(ldc));
}

#else

bool openblas_available() {
  return false;
}

std::string openblas_config() {
  return "unavailable";
}

void openblas_set_threads(int) {}

void openblas_sgemm(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                    const float*, int64_t, float, float*, int64_t) {
  fail("OpenBLAS is not available in this build");
}

#endif

}  // namespace duet::bench::peers
