// Exponential moving average of a model's weights, the copy that is evaluated and shipped:
// after each optimizer step, ema = d * ema + (1 - d) * value for every parameter and every float
// buffer, and integer buffers (counters) are copied as they are. The float buffers are BatchNorm's
// running statistics: averaged with the weights, they describe the averaged network. Copied from
// the live network, they disagree with the averaged weights: a ResNet-20 after 13 one-cycle epochs
// with --ema 0.999 tested at 92.59 % that way, and its same averaged weights at 93.55 % with the
// statistics recomputed on 12,800 training images. swap() exchanges the averaged values with the
// live ones for evaluation; EmaScope does that for one scope.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "duet/tensor/tensor.h"

namespace duet::nn {
class Module;
}

namespace duet::train {

class Ema {
 public:
  // Starts as a copy of the model's parameters and buffers. With warmup, the n-th update
  // (n = 1, 2, ...) uses d_n = min(decay, (1 + n) / (10 + n)), so early averages are not
  // dominated by the random initialisation; without it every update uses `decay`.
  Ema(nn::Module& model, double decay, bool warmup = false);

  // One update from the model's current values (the model must have the same names and shapes).
  void update(nn::Module& model);
  // The decay the next update() will use.
  double next_decay() const { return decay_for(num_updates_ + 1); }
  double decay_for(int64_t n) const;
  int64_t num_updates() const { return num_updates_; }
  double decay() const { return decay_; }

  // Exchanges the averaged values with the model's (parameters and buffers); calling it again
  // restores the model.
  void swap(nn::Module& model);
  // Copies the averaged values into the model (e.g. before saving the model for inference).
  void copy_to(nn::Module& model) const;

  // The averaged value of a parameter or buffer by state_dict key; throws when absent.
  const Tensor& at(const std::string& name) const;

  // "ema.<key>" for every parameter and buffer, and "ema.num_updates" (i64 scalar); copies.
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  // Restores it; keys outside "ema." are ignored, every "ema." key must match exactly.
  void load_state_dict(const std::map<std::string, Tensor>& state);

 private:
  struct Entry {
    std::string name;
    Tensor value;
    bool averaged;  // parameters and float buffers are averaged, integer buffers copied
  };
  // The model's parameters then buffers, checked against entries_ (names, shapes, dtypes).
  std::vector<Tensor*> targets(nn::Module& model) const;

  std::vector<Entry> entries_;
  double decay_;
  bool warmup_;
  int64_t num_updates_ = 0;
};

// Swaps the EMA weights into the model for the lifetime of the scope.
class EmaScope {
 public:
  EmaScope(Ema& ema, nn::Module& model) : ema_(ema), model_(model) { ema_.swap(model_); }
  ~EmaScope() { ema_.swap(model_); }
  EmaScope(const EmaScope&) = delete;
  EmaScope& operator=(const EmaScope&) = delete;

 private:
  Ema& ema_;
  nn::Module& model_;
};

}  // namespace duet::train
