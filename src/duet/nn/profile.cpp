#include "duet/nn/profile.h"

namespace duet::nn {
namespace {
thread_local ProfileScope* g_active = nullptr;
}

ProfileScope::ProfileScope() : previous_(g_active) {
  g_active = this;
}
ProfileScope::~ProfileScope() {
  g_active = previous_;
}

bool profiling() {
  return g_active != nullptr;
}

void record_layer(const Module* module, const Tensor& output, double macs) {
  if (g_active) record_layer(module, output.shape(), macs);
}

void record_layer(const Module* module, const Shape& output, double macs) {
  if (g_active) g_active->records_.push_back({module, output, macs});
}

}  // namespace duet::nn
