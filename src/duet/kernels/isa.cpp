#include "duet/kernels/isa.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "duet/tensor/error.h"

namespace duet::kernels {
namespace {

Isa widest() {
  if (cpu_has_avx512()) return Isa::avx512;
  return cpu_has_avx2_fma() ? Isa::avx2 : Isa::generic;
}

Isa detect() {
  const Isa best = widest();
  if (const char* env = std::getenv("DUET_ISA")) {
    const std::string v = env;
    // A request for more than the CPU has falls back to the widest it does have.
    if (v == "generic") return Isa::generic;
    if ((v == "avx2" || v == "avx-vnni") && best >= Isa::avx2) return Isa::avx2;
  }
  return best;
}

std::atomic<Isa>& current() {
  static std::atomic<Isa> isa{detect()};
  return isa;
}

std::atomic<bool>& vnni_enabled() {
  static std::atomic<bool> on{[] {
    const char* env = std::getenv("DUET_ISA");
    return (cpu_has_avx_vnni() || cpu_has_avx512_vnni()) && !(env && std::string(env) == "avx2");
  }()};
  return on;
}

}  // namespace

bool cpu_has_avx_vnni() {
  __builtin_cpu_init();
  return cpu_has_avx2_fma() && __builtin_cpu_supports("avxvnni");
}

bool use_avx_vnni() {
  return isa_at_least(Isa::avx2) && cpu_has_avx_vnni() &&
         vnni_enabled().load(std::memory_order_relaxed);
}

bool cpu_has_avx512_vnni() {
  __builtin_cpu_init();
  return cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
}

bool use_avx512_vnni() {
  return isa_at_least(Isa::avx512) && cpu_has_avx512_vnni() &&
         vnni_enabled().load(std::memory_order_relaxed);
}

bool vnni_switched_on() {
  return vnni_enabled().load(std::memory_order_relaxed);
}

void set_avx_vnni(bool on) {
  // One switch for both encodings: a CPU may have AVX-512 VNNI without AVX-VNNI (Zen 4).
  if (on && !cpu_has_avx_vnni() && !cpu_has_avx512_vnni())
    fail("this CPU has neither AVX-VNNI nor AVX-512 VNNI");
  vnni_enabled().store(on);
}

bool cpu_has_avx2_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

bool cpu_has_avx512() {
  __builtin_cpu_init();
  return cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
}

bool cpu_has(Isa isa) {
  switch (isa) {
    case Isa::generic:
      return true;
    case Isa::avx2:
      return cpu_has_avx2_fma();
    case Isa::avx512:
      return cpu_has_avx512();
  }
  return false;
}

Isa active_isa() {
  return current().load(std::memory_order_relaxed);
}

bool isa_at_least(Isa level) {
  return active_isa() >= level;
}

void set_isa(Isa isa) {
  if (!cpu_has(isa)) fail("this CPU has no ", isa_name(isa));
  current().store(isa);
}

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::generic:
      return "generic";
    case Isa::avx2:
      return "avx2";
    case Isa::avx512:
      return "avx512";
  }
  return "?";
}

}  // namespace duet::kernels
