// Module: the building block of every model. A module owns named parameters, buffers and child
// modules; their dotted paths ("layer1.0.conv1.weight") are exactly PyTorch's state_dict keys,
// so checkpoints move between duet and PyTorch by name. Train/eval mode propagates to children.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "duet/tensor/tensor.h"

namespace duet::nn {

class Module {
 public:
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The single-input forward most layers have; modules with other signatures add their own.
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  const std::string& type_name() const { return type_name_; }

  // Registration (during construction). Parameters are marked as requiring gradients.
  Tensor& register_parameter(const std::string& name, Tensor value);
  Tensor& register_buffer(const std::string& name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    add_child(name, child);
    return child;
  }

  // Depth-first, in registration order, with full dotted names.
  std::vector<std::pair<std::string, Tensor*>> named_parameters();
  std::vector<std::pair<std::string, Tensor*>> named_buffers();
  std::vector<std::pair<std::string, Module*>> named_modules();  // includes this one as ""
  std::vector<Tensor*> parameters();
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }
  int64_t parameter_count();

  // Parameters and buffers by state_dict key (tensors share storage with the module).
  std::map<std::string, Tensor> state_dict();
  // Copies values in by key. Strict: every key of the module must be present and no extra keys;
  // shapes must match. Errors name the key and both shapes. Integer counters (PyTorch's
  // num_batches_tracked) convert from any integer dtype.
  void load_state_dict(const std::map<std::string, Tensor>& values, bool strict = true);
  // Called on every module after load_state_dict wrote into its tensors. Modules that keep a
  // derived form of their parameters (FusedConv's packed weights) drop it here; code that writes
  // into such a module's parameters directly calls it too.
  virtual void state_changed() {}

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();

 protected:
  void add_child(const std::string& name, std::shared_ptr<Module> child);

 private:
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor*>>& out,
               bool params);

  std::string type_name_;
  bool training_ = true;
  // deques: references handed out by register_* stay valid as more members are added.
  std::deque<std::pair<std::string, Tensor>> params_;
  std::deque<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

}  // namespace duet::nn
