// Run-time instruction-set dispatch. One binary carries AVX2/FMA kernels (files *_avx2.cpp,
// compiled with -mavx2 -mfma; *_vnni.cpp add AVX-VNNI) and portable ones; active_isa() picks
// AVX2 when the CPU has it, unless $DUET_ISA=generic (or set_isa) forces the portable path so
// tests cover both.
#pragma once

#include <string_view>

namespace duet::kernels {

enum class Isa { generic, avx2 };

Isa active_isa();
void set_isa(Isa isa);  // throws duet::Error when the CPU lacks the requested ISA
std::string_view isa_name(Isa isa);
bool cpu_has_avx2_fma();

// AVX-VNNI (vpdpbusd on 256-bit registers: four u8 x s8 products summed into int32 in one
// instruction) for the int8 kernels, on top of AVX2. Used when active_isa() is avx2, the CPU has
// it, and $DUET_ISA is not "avx2" (which pins the plain AVX2 int8 path, e.g. to measure what a
// Zen 3 without VNNI runs). set_avx_vnni(false) does the same from code (tests).
bool cpu_has_avx_vnni();
bool use_avx_vnni();
void set_avx_vnni(bool on);  // throws duet::Error when turning it on on a CPU without it

}  // namespace duet::kernels
