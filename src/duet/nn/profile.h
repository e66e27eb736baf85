// Per-layer accounting for `duet info`: while a ProfileScope is alive on this thread, every leaf
// layer's forward records its output shape and multiply-accumulates, in execution order.
#pragma once

#include <vector>

#include "duet/tensor/tensor.h"

namespace duet::nn {

class Module;

struct LayerRecord {
  const Module* module;
  Shape output;
  double macs;  // multiply-accumulates of this call (0 for layers without products)
};

class ProfileScope {
 public:
  ProfileScope();
  ~ProfileScope();
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;
  const std::vector<LayerRecord>& records() const { return records_; }

 private:
  friend void record_layer(const Module*, const Shape&, double);
  std::vector<LayerRecord> records_;
  ProfileScope* previous_;
};

// Whether a ProfileScope is alive on this thread (fused forwards that skip their leaf layers'
// forward step aside then, so that every layer is recorded).
bool profiling();

// Called by leaf layers at the end of forward; free when no scope is active.
void record_layer(const Module* module, const Tensor& output, double macs);
// The same for layers whose output tensor has another layout (channel-blocked): its logical shape.
void record_layer(const Module* module, const Shape& output, double macs);

}  // namespace duet::nn
