// <immintrin.h> for the *_avx512.cpp files. GCC 12.2 flags -Wuninitialized inside its own
// AVX-512 intrinsics once they are inlined (many start from _mm512_undefined_ps()); the warning
// is switched off for the intrinsic headers alone, so a file must include this (or
// simd_lanes_avx512.h, which does) before anything that includes <immintrin.h> itself.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
