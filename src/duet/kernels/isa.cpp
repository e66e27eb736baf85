#include "duet/kernels/isa.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "duet/tensor/error.h"

namespace duet::kernels {
namespace {

Isa detect() {
  if (const char* env = std::getenv("DUET_ISA")) {
    const std::string v = env;
    if (v == "generic") return Isa::generic;
    if (v == "avx2" && cpu_has_avx2_fma()) return Isa::avx2;
  }
  return cpu_has_avx2_fma() ? Isa::avx2 : Isa::generic;
}

std::atomic<Isa>& current() {
  static std::atomic<Isa> isa{detect()};
  return isa;
}

std::atomic<bool>& vnni_enabled() {
  static std::atomic<bool> on{[] {
    const char* env = std::getenv("DUET_ISA");
    return cpu_has_avx_vnni() && !(env && std::string(env) == "avx2");
  }()};
  return on;
}

}  // namespace

bool cpu_has_avx_vnni() {
  __builtin_cpu_init();
  return cpu_has_avx2_fma() && __builtin_cpu_supports("avxvnni");
}

bool use_avx_vnni() {
  return active_isa() == Isa::avx2 && vnni_enabled().load(std::memory_order_relaxed);
}

void set_avx_vnni(bool on) {
  if (on && !cpu_has_avx_vnni()) fail("this CPU has no AVX-VNNI");
  vnni_enabled().store(on);
}

bool cpu_has_avx2_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

Isa active_isa() {
  return current().load(std::memory_order_relaxed);
}

void set_isa(Isa isa) {
  if (isa == Isa::avx2 && !cpu_has_avx2_fma()) fail("this CPU has no AVX2+FMA");
  current().store(isa);
}

std::string_view isa_name(Isa isa) {
  return isa == Isa::avx2 ? "avx2" : "generic";
}

}  // namespace duet::kernels
