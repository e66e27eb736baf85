#include "duet/gen/guidance.h"

#include <cmath>

#include "duet/autograd/autograd.h"
#include "duet/ops/shape_ops.h"
#include "duet/tensor/error.h"

namespace duet::gen {

Predictor guided_predictor(models::UNet& model, std::vector<int32_t> labels, double scale) {
  // Every CLI's --cfg ends here; NaN or infinity would turn every image into garbage.
  if (!std::isfinite(scale)) fail_usage("--cfg must be a finite number, got ", scale);
  const int32_t none = model.config().null_class();
  for (int32_t y : labels)
    DUET_CHECK(y >= 0 && y <= none, "generation: label ", y, " is outside [0, ", none, "]");
  return [&model, labels = std::move(labels), scale, none](const Tensor& x, double t) {
    autograd::NoGradGuard no_grad;
    const int64_t n = x.dim(0);
    DUET_CHECK(n == static_cast<int64_t>(labels.size()), "generation: batch of ", n, " for ",
               labels.size(), " labels");
    if (scale == 1.0 || scale == 0.0) {
      std::vector<int32_t> y = scale == 1.0 ? labels : std::vector<int32_t>(labels.size(), none);
      return model.forward(x, Tensor::full(Shape{n}, static_cast<float>(t)),
                           Tensor::from_vector(y, Shape{n}));
    }
    std::vector<int32_t> both = labels;
    both.insert(both.end(), labels.size(), none);
    const Tensor out =
        model.forward(ops::concat({x, x}, 0), Tensor::full(Shape{2 * n}, static_cast<float>(t)),
                      Tensor::from_vector(both, Shape{2 * n}));
    const int64_t half = x.numel();
    Tensor guided = Tensor::empty(x.shape());
    const float* c = out.data<float>();
    const float* u = c + half;
    float* g = guided.data<float>();
    const float s = static_cast<float>(scale);
    for (int64_t i = 0; i < half; ++i) g[i] = u[i] + s * (c[i] - u[i]);
    return guided;
  };
}

double default_cfg(const nlohmann::json& generator_config, double fallback) {
  const auto it = generator_config.find("reflow");
  if (it == generator_config.end() || !it->is_object()) return fallback;
  const auto cfg = it->find("sample_cfg");
  return cfg != it->end() && cfg->is_number() ? cfg->get<double>() : fallback;
}

Tensor generate(models::UNet& model, Objective objective, const std::vector<int32_t>& labels,
                double cfg_scale, const SampleOptions& options, uint64_t seed) {
  model.eval();
  const auto& c = model.config();
  Generator gen(seed);
  const int64_t n = static_cast<int64_t>(labels.size());
  Tensor x1 = Tensor::normal(Shape{n, c.in_channels, c.image_size, c.image_size}, gen);
  return sample(guided_predictor(model, labels, cfg_scale), objective, x1, options, gen);
}

}  // namespace duet::gen
