#include "duet/train/optimizer.h"

#include <cmath>
#include <set>

#include "duet/autograd/autograd.h"
#include "duet/nn/module.h"

namespace duet::train {

bool is_no_decay(const std::string& name, const std::string& owner_type) {
  if (name == "bias" || name.ends_with(".bias")) return true;
  // BatchNorm1d/2d, GroupNorm, LayerNorm, RMSNorm...: their scale is a norm weight.
  return owner_type.find("Norm") != std::string::npos;
}

std::vector<ParamGroup> split_decay_groups(nn::Module& model, double weight_decay) {
  DUET_CHECK(weight_decay >= 0.0, "split_decay_groups: weight_decay must be >= 0, got ",
             weight_decay);
  // A parameter's owner is the module whose dotted path is its name minus the last component.
  std::map<std::string, std::string> owner_type;
  for (auto& [path, module] : model.named_modules()) owner_type[path] = module->type_name();
  std::vector<ParamGroup> groups(2);
  groups[0].weight_decay = weight_decay;
  groups[1].weight_decay = 0.0;
  for (auto& [name, tensor] : model.named_parameters()) {
    const size_t dot = name.rfind('.');
    const std::string owner = dot == std::string::npos ? "" : name.substr(0, dot);
    auto it = owner_type.find(owner);
    const std::string type = it == owner_type.end() ? "" : it->second;
    groups[is_no_decay(name, type) ? 1 : 0].params.push_back({name, tensor});
  }
  return groups;
}

Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr) : groups_(std::move(groups)) {
  set_lr(lr);
  std::set<std::string> names;
  std::set<const Tensor*> tensors;
  for (const ParamGroup& g : groups_) {
    DUET_CHECK(g.weight_decay >= 0.0, "optimizer: weight_decay must be >= 0, got ", g.weight_decay);
    for (const NamedParam& p : g.params) {
      DUET_CHECK(p.tensor != nullptr && p.tensor->defined(), "optimizer: parameter '", p.name,
                 "' is undefined");
      DUET_CHECK(p.tensor->dtype() == DType::f32 && p.tensor->is_contiguous(),
                 "optimizer: parameter '", p.name, "' must be contiguous f32");
      DUET_CHECK(names.insert(p.name).second, "optimizer: parameter name '", p.name,
                 "' appears twice");
      DUET_CHECK(tensors.insert(p.tensor).second, "optimizer: parameter '", p.name,
                 "' is listed in two places");
      slots_.push_back({p, g.weight_decay, {}});
    }
  }
}

void Optimizer::set_lr(double lr) {
  DUET_CHECK(lr >= 0.0 && std::isfinite(lr),
             "optimizer: learning rate must be finite and >= 0, got ", lr);
  lr_ = lr;
}

void Optimizer::ensure_state(Slot& slot) {
  if (!slot.state.empty()) return;
  for (const StateSpec& spec : state_specs())
    slot.state.push_back(spec.counter ? Tensor::zeros(Shape{}, DType::i64)
                                      : Tensor::zeros(slot.param.tensor->shape()));
}

void Optimizer::step() {
  const std::vector<StateSpec> specs = state_specs();
  std::vector<Work> work;
  std::vector<int64_t> sizes;
  for (Slot& slot : slots_) {
    const Tensor g = autograd::grad(*slot.param.tensor);
    if (!g.defined()) continue;
    const Tensor& p = *slot.param.tensor;
    DUET_CHECK(g.shape() == p.shape() && g.dtype() == DType::f32 && g.is_contiguous(),
               "optimizer: gradient of '", slot.param.name, "' has shape ", g.shape().str(),
               ", expected contiguous f32 ", p.shape().str());
    ensure_state(slot);
    Work w;
    w.param = p.data<float>();
    w.grad = g.data<float>();
    w.n = p.numel();
    w.weight_decay = slot.weight_decay;
    int64_t counters[4] = {0, 0, 0, 0};
    int n_float = 0, n_counter = 0;
    for (size_t s = 0; s < specs.size(); ++s) {
      if (specs[s].counter)
        counters[n_counter++] = *slot.state[s].data<int64_t>();
      else
        w.state[n_float++] = slot.state[s].data<float>();
    }
    prepare(w, counters);
    n_counter = 0;
    for (size_t s = 0; s < specs.size(); ++s)
      if (specs[s].counter) *slot.state[s].data<int64_t>() = counters[n_counter++];
    work.push_back(w);
    sizes.push_back(w.n);
  }
  for_each_element_range(sizes,
                         [&](size_t i, int64_t begin, int64_t end) { apply(work[i], begin, end); });
  ++step_count_;
}

void Optimizer::zero_grad() {
  for (Slot& slot : slots_) autograd::zero_grad(*slot.param.tensor);
}

std::vector<std::pair<std::string, Tensor>> Optimizer::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> out;
  Tensor step = Tensor::zeros(Shape{}, DType::i64);
  *step.data<int64_t>() = step_count_;
  out.emplace_back("optim.step", step);
  const std::vector<StateSpec> specs = state_specs();
  for (const Slot& slot : slots_)
    for (size_t s = 0; s < slot.state.size(); ++s)
      out.emplace_back("optim." + slot.param.name + "." + specs[s].name, slot.state[s].clone());
  return out;
}

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& state) {
  const std::vector<StateSpec> specs = state_specs();
  std::set<std::string> expected{"optim.step"};
  auto step_it = state.find("optim.step");
  DUET_CHECK(step_it != state.end(), "optimizer state: missing key 'optim.step'");
  const Tensor& step = step_it->second;
  DUET_CHECK(step.numel() == 1 && step.dtype() == DType::i64,
             "optimizer state: 'optim.step' must be an i64 scalar");
  DUET_CHECK(*step.data<int64_t>() >= 0, "optimizer state: 'optim.step' is negative");

  // Validate everything before changing anything, so a bad file leaves the optimizer intact.
  std::vector<std::vector<Tensor>> loaded(slots_.size());
  for (size_t k = 0; k < slots_.size(); ++k) {
    const Slot& slot = slots_[k];
    int found = 0;
    std::string missing;
    for (const StateSpec& spec : specs) {
      const std::string key = "optim." + slot.param.name + "." + spec.name;
      expected.insert(key);
      auto it = state.find(key);
      if (it == state.end()) {
        missing = key;
        continue;
      }
      ++found;
      const Tensor& t = it->second;
      const Shape want = spec.counter ? Shape{} : slot.param.tensor->shape();
      const DType want_dtype = spec.counter ? DType::i64 : DType::f32;
      DUET_CHECK(t.shape() == want && t.dtype() == want_dtype && t.is_contiguous(),
                 "optimizer state: key '", key, "' has shape ", t.shape().str(), " ",
                 dtype_name(t.dtype()), ", expected ", want.str(), " ", dtype_name(want_dtype));
      if (spec.counter) {
        DUET_CHECK(*t.data<int64_t>() >= 0, "optimizer state: key '", key, "' is negative (",
                   *t.data<int64_t>(), ")");
      } else {
        const int64_t at = first_non_finite(t);
        DUET_CHECK(at < 0, "optimizer state: key '", key, "' holds NaN or infinity (element ", at,
                   "); expected finite values");
        if (spec.non_negative) {
          const float* v = t.data<float>();
          for (int64_t i = 0; i < t.numel(); ++i)
            DUET_CHECK(v[i] >= 0.0f, "optimizer state: key '", key, "' element ", i, " is ", v[i],
                       "; expected >= 0");
        }
      }
      loaded[k].push_back(t.clone());
    }
    DUET_CHECK(found == 0 || missing.empty(), "optimizer state: missing key '", missing,
               "' (the parameter's other state is present)");
  }
  for (const auto& [key, value] : state)
    if (key.rfind("optim.", 0) == 0)
      DUET_CHECK(expected.count(key), "optimizer state: unexpected key '", key,
                 "' (a different optimizer or model?)");

  step_count_ = *step.data<int64_t>();
  for (size_t k = 0; k < slots_.size(); ++k) slots_[k].state = std::move(loaded[k]);
}

}  // namespace duet::train
