// Run-time instruction-set dispatch. One binary carries AVX2/FMA kernels (files *_avx2.cpp,
// compiled with -mavx2 -mfma) and portable ones; active_isa() picks AVX2 when the CPU has it,
// unless $DUET_ISA=generic (or set_isa) forces the portable path so tests cover both.
#pragma once

#include <string_view>

namespace duet::kernels {

enum class Isa { generic, avx2 };

Isa active_isa();
void set_isa(Isa isa);  // throws duet::Error when the CPU lacks the requested ISA
std::string_view isa_name(Isa isa);
bool cpu_has_avx2_fma();

}  // namespace duet::kernels
