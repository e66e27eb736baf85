// Run-time instruction-set dispatch. One binary carries AVX2/FMA kernels (files *_avx2.cpp,
// compiled with -mavx2 -mfma; *_vnni.cpp add AVX-VNNI), AVX-512 kernels (*_avx512.cpp) and
// portable ones. active_isa() picks the widest the CPU has; $DUET_ISA=generic|avx2|avx-vnni|avx512
// (or set_isa) pins a narrower one, so tests cover every path and a bench can show what a CPU
// without AVX-512 (Zen 3) runs. The levels nest: avx512 also runs every AVX2 kernel that has no
// AVX-512 version, so code asks isa_at_least(Isa::avx2), never active_isa() == Isa::avx2.
#pragma once

#include <string_view>

namespace duet::kernels {

enum class Isa { generic, avx2, avx512 };  // ordered: each level includes the previous

Isa active_isa();
void set_isa(Isa isa);  // throws duet::Error when the CPU lacks the requested ISA
std::string_view isa_name(Isa isa);
bool isa_at_least(Isa level);  // active_isa() is level or wider
bool cpu_has_avx2_fma();
bool cpu_has_avx512();  // AVX-512 F, BW, DQ and VL, on top of AVX2+FMA
bool cpu_has(Isa isa);

// AVX-VNNI (vpdpbusd on 256-bit registers: four u8 x s8 products summed into int32 in one
// instruction) for the int8 kernels, on top of AVX2. Used when isa_at_least(avx2), the CPU has
// it, and $DUET_ISA is not "avx2" (which pins the plain AVX2 int8 path, e.g. to measure what a
// Zen 3 without VNNI runs). set_avx_vnni(false) does the same from code (tests).
// $DUET_ISA=avx-vnni pins AVX2 with AVX-VNNI on (what an Alder Lake runs) where the CPU has it.
bool cpu_has_avx_vnni();
bool use_avx_vnni();
// One switch for both VNNI encodings (below): throws duet::Error when turning it on on a CPU
// with neither. vnni_switched_on() reads it (to restore it after a test).
void set_avx_vnni(bool on);
bool vnni_switched_on();
// AVX-512 VNNI (the same instruction on zmm, 16 int32 lanes): used when isa_at_least(avx512),
// the CPU has it and VNNI is not switched off by set_avx_vnni(false). A CPU may have it without
// AVX-VNNI (Zen 4).
bool cpu_has_avx512_vnni();
bool use_avx512_vnni();

}  // namespace duet::kernels
