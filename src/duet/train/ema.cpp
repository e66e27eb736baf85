#include "duet/train/ema.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "duet/autograd/autograd.h"
#include "duet/kernels/eltwise.h"
#include "duet/nn/module.h"
#include "duet/train/optimizer.h"

namespace duet::train {

Ema::Ema(nn::Module& model, double decay, bool warmup) : decay_(decay), warmup_(warmup) {
  DUET_CHECK(decay >= 0.0 && decay <= 1.0, "ema: decay must be in [0, 1], got ", decay);
  for (auto& [name, t] : model.named_parameters()) {
    DUET_CHECK(t->dtype() == DType::f32, "ema: parameter '", name, "' is not f32");
    entries_.push_back({name, autograd::detached(*t).clone(), true});
  }
  for (auto& [name, t] : model.named_buffers())
    entries_.push_back({name, autograd::detached(*t).clone(), t->dtype() == DType::f32});
}

double Ema::decay_for(int64_t n) const {
  if (!warmup_) return decay_;
  const double x = static_cast<double>(n);
  return std::min(decay_, (1.0 + x) / (10.0 + x));
}

std::vector<Tensor*> Ema::targets(nn::Module& model) const {
  std::vector<Tensor*> out;
  std::vector<std::pair<std::string, Tensor*>> named = model.named_parameters();
  for (auto& b : model.named_buffers()) named.push_back(b);
  DUET_CHECK(named.size() == entries_.size(), "ema: the model has ", named.size(),
             " parameters and buffers, the average has ", entries_.size());
  for (size_t i = 0; i < named.size(); ++i) {
    const Entry& e = entries_[i];
    const Tensor& t = *named[i].second;
    DUET_CHECK(named[i].first == e.name, "ema: model key '", named[i].first, "' where '", e.name,
               "' was expected");
    DUET_CHECK(t.shape() == e.value.shape() && t.dtype() == e.value.dtype() && t.is_contiguous(),
               "ema: '", e.name, "' has shape ", t.shape().str(), ", the average has ",
               e.value.shape().str());
    out.push_back(named[i].second);
  }
  return out;
}

void Ema::update(nn::Module& model) {
  const std::vector<Tensor*> live = targets(model);
  const double d = decay_for(num_updates_ + 1);
  const float keep = static_cast<float>(d), take = static_cast<float>(1.0 - d);
  std::vector<int64_t> sizes;
  for (const Entry& e : entries_) sizes.push_back(e.averaged ? e.value.numel() : 0);
  for_each_element_range(sizes, [&](size_t i, int64_t begin, int64_t end) {
    kernels::axpby(end - begin, take, live[i]->data<float>() + begin, keep,
                   entries_[i].value.data<float>() + begin);
  });
  for (size_t i = 0; i < entries_.size(); ++i)
    if (!entries_[i].averaged)
      std::memcpy(entries_[i].value.raw_data(), live[i]->raw_data(), live[i]->nbytes());
  ++num_updates_;
}

void Ema::swap(nn::Module& model) {
  const std::vector<Tensor*> live = targets(model);
  for (size_t i = 0; i < entries_.size(); ++i) {
    auto* a = static_cast<std::byte*>(live[i]->raw_data());
    auto* b = static_cast<std::byte*>(entries_[i].value.raw_data());
    std::swap_ranges(a, a + live[i]->nbytes(), b);
  }
}

void Ema::copy_to(nn::Module& model) const {
  const std::vector<Tensor*> live = targets(model);
  for (size_t i = 0; i < entries_.size(); ++i)
    std::memcpy(live[i]->raw_data(), entries_[i].value.raw_data(), live[i]->nbytes());
}

const Tensor& Ema::at(const std::string& name) const {
  for (const Entry& e : entries_)
    if (e.name == name) return e.value;
  fail("ema: no parameter or buffer named '", name, "'");
}

std::vector<std::pair<std::string, Tensor>> Ema::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const Entry& e : entries_) out.emplace_back("ema." + e.name, e.value.clone());
  Tensor n = Tensor::zeros(Shape{}, DType::i64);
  *n.data<int64_t>() = num_updates_;
  out.emplace_back("ema.num_updates", n);
  return out;
}

void Ema::load_state_dict(const std::map<std::string, Tensor>& state) {
  std::set<std::string> expected{"ema.num_updates"};
  auto it = state.find("ema.num_updates");
  DUET_CHECK(it != state.end(), "ema state: missing key 'ema.num_updates'");
  DUET_CHECK(it->second.numel() == 1 && it->second.dtype() == DType::i64 &&
                 *it->second.data<int64_t>() >= 0,
             "ema state: 'ema.num_updates' must be a non-negative i64 scalar");
  std::vector<Tensor> values;
  for (const Entry& e : entries_) {
    const std::string key = "ema." + e.name;
    expected.insert(key);
    auto v = state.find(key);
    DUET_CHECK(v != state.end(), "ema state: missing key '", key, "'");
    const Tensor& t = v->second;
    DUET_CHECK(t.shape() == e.value.shape() && t.dtype() == e.value.dtype() && t.is_contiguous(),
               "ema state: key '", key, "' has shape ", t.shape().str(), " ", dtype_name(t.dtype()),
               ", expected ", e.value.shape().str(), " ", dtype_name(e.value.dtype()));
    const int64_t at = first_non_finite(t);
    DUET_CHECK(at < 0, "ema state: key '", key, "' holds NaN or infinity (element ", at,
               "); expected finite values");
    values.push_back(t.clone());
  }
  for (const auto& [key, value] : state)
    if (key.rfind("ema.", 0) == 0)
      DUET_CHECK(expected.count(key), "ema state: unexpected key '", key, "'");
  for (size_t i = 0; i < entries_.size(); ++i) entries_[i].value = std::move(values[i]);
  num_updates_ = *it->second.data<int64_t>();
}

}  // namespace duet::train
