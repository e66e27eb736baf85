#include "duet/nn/module.h"

#include <cstring>
#include <set>

#include "duet/autograd/autograd.h"
#include "duet/tensor/error.h"

namespace duet::nn {
namespace {

void check_name(const std::string& name, const std::string& type) {
  DUET_CHECK(!name.empty() && name.find('.') == std::string::npos, type, ": member name '", name,
             "' must be non-empty and contain no '.'");
}

bool is_integer(DType t) {
  return t == DType::i64 || t == DType::i32 || t == DType::i16 || t == DType::i8 ||
         t == DType::u8 || t == DType::u16 || t == DType::u32 || t == DType::u64;
}

// Reads an integer scalar of any integer dtype as int64.
int64_t read_integer(const Tensor& t) {
  const void* p = t.raw_data();
  switch (t.dtype()) {
    case DType::i64:
      return *static_cast<const int64_t*>(p);
    case DType::i32:
      return *static_cast<const int32_t*>(p);
    case DType::i16:
      return *static_cast<const int16_t*>(p);
    case DType::i8:
      return *static_cast<const int8_t*>(p);
    case DType::u8:
      return *static_cast<const uint8_t*>(p);
    case DType::u16:
      return *static_cast<const uint16_t*>(p);
    case DType::u32:
      return *static_cast<const uint32_t*>(p);
    default:
      return static_cast<int64_t>(*static_cast<const uint64_t*>(p));
  }
}

}  // namespace

Tensor Module::forward(const Tensor&) {
  fail(type_name_, " has no single-input forward");
}

Tensor& Module::register_parameter(const std::string& name, Tensor value) {
  check_name(name, type_name_);
  autograd::set_requires_grad(value, true);
  params_.emplace_back(name, std::move(value));
  return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor value) {
  check_name(name, type_name_);
  buffers_.emplace_back(name, std::move(value));
  return buffers_.back().second;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> child) {
  check_name(name, type_name_);
  DUET_CHECK(child != nullptr, type_name_, ": child '", name, "' is null");
  children_.emplace_back(name, std::move(child));
}

void Module::collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor*>>& out,
                     bool params) {
  for (auto& [name, t] : params ? params_ : buffers_) out.emplace_back(prefix + name, &t);
  for (auto& [name, child] : children_) child->collect(prefix + name + ".", out, params);
}

std::vector<std::pair<std::string, Tensor*>> Module::named_parameters() {
  std::vector<std::pair<std::string, Tensor*>> out;
  collect("", out, true);
  return out;
}

std::vector<std::pair<std::string, Tensor*>> Module::named_buffers() {
  std::vector<std::pair<std::string, Tensor*>> out;
  collect("", out, false);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out{{"", this}};
  for (auto& [name, child] : children_)
    for (auto& [sub, m] : child->named_modules())
      out.emplace_back(sub.empty() ? name : name + "." + sub, m);
  return out;
}

std::vector<Tensor*> Module::parameters() {
  std::vector<Tensor*> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::parameter_count() {
  int64_t n = 0;
  for (Tensor* t : parameters()) n += t->numel();
  return n;
}

std::map<std::string, Tensor> Module::state_dict() {
  std::map<std::string, Tensor> out;
  for (auto& [name, t] : named_parameters()) out[name] = autograd::detached(*t);
  for (auto& [name, t] : named_buffers()) out[name] = *t;
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& values, bool strict) {
  auto targets = named_parameters();
  for (auto& b : named_buffers()) targets.push_back(b);
  std::set<std::string> used;
  for (auto& [name, t] : targets) {
    auto it = values.find(name);
    if (it == values.end()) {
      if (strict)
        fail("state_dict: missing key '", name, "' (expected shape ", t->shape().str(), ")");
      continue;
    }
    used.insert(name);
    const Tensor& src = it->second;
    if (src.shape() != t->shape())
      fail("state_dict: key '", name, "' has shape ", src.shape().str(), ", the model expects ",
           t->shape().str());
    if (is_integer(t->dtype()) && is_integer(src.dtype()) && src.dtype() != t->dtype()) {
      DUET_CHECK(t->numel() == 1 && t->dtype() == DType::i64, "state_dict: key '", name,
                 "': only integer scalars (counters) convert between integer dtypes");
      *t->data<int64_t>() = read_integer(src);
      continue;
    }
    if (src.dtype() != t->dtype())
      fail("state_dict: key '", name, "' has dtype ", dtype_name(src.dtype()),
           ", the model expects ", dtype_name(t->dtype()));
    DUET_CHECK(src.is_contiguous(), "state_dict: key '", name, "' is not contiguous");
    if (const int64_t at = first_non_finite(src); at >= 0)
      fail("state_dict: key '", name, "' holds NaN or infinity (element ", at,
           "); expected finite values");
    std::memcpy(t->raw_data(), src.raw_data(), t->nbytes());
  }
  for (auto& [name, m] : named_modules()) {
    try {
      m->state_changed();
    } catch (const Error& e) {
      fail("state_dict: module '", name.empty() ? m->type_name() : name, "': ", e.what());
    }
  }
  if (strict)
    for (auto& [name, t] : values)
      if (!used.count(name))
        fail("state_dict: unexpected key '", name, "' (shape ", t.shape().str(), ")");
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (Tensor* t : parameters()) autograd::zero_grad(*t);
}

}  // namespace duet::nn
