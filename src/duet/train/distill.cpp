#include "duet/train/distill.h"

#include <cmath>

#include "duet/autograd/autograd.h"
#include "duet/compress/fold.h"
#include "duet/models/checkpoint.h"
#include "duet/models/classifier.h"
#include "duet/models/registry.h"
#include "duet/ops/eltwise.h"
#include "duet/ops/loss.h"
#include "duet/ops/reduce.h"
#include "duet/ops/shape_ops.h"
#include "duet/tensor/error.h"
#include "duet/train/trainer.h"

namespace duet::train {

Tensor kd_loss(const Tensor& student, const Tensor& teacher_in, const Tensor& labels,
               const KdOptions& o) {
  DUET_CHECK(student.defined() && teacher_in.defined() && student.rank() == 2 &&
                 teacher_in.shape() == student.shape(),
             "kd_loss: expected student and teacher logits of the same shape [N, K], got ",
             student.shape().str(), " and ", teacher_in.shape().str());
  DUET_CHECK(o.temperature > 0.0f && std::isfinite(o.temperature),
             "kd_loss: the temperature must be > 0, got ", o.temperature);
  DUET_CHECK(o.alpha >= 0.0f && o.alpha <= 1.0f, "kd_loss: alpha must be in [0, 1], got ", o.alpha);
  const float inv_t = 1.0f / o.temperature;
  const float inv_n = 1.0f / static_cast<float>(std::max<int64_t>(student.dim(0), 1));
  Tensor soft_targets, log_targets;
  {
    autograd::NoGradGuard no_grad;  // the teacher is a constant of the student's loss
    const Tensor t = ops::mul_scalar(autograd::detached(teacher_in), inv_t);
    soft_targets = ops::softmax(t);
    log_targets = ops::log_softmax(t);
  }
  // KL(p || q) = sum p (log p - log q); the p log p part carries no gradient but makes the value
  // the true divergence (0 when the student matches the teacher), as PyTorch's kl_div reports.
  const Tensor log_q = ops::log_softmax(ops::mul_scalar(student, inv_t));
  const Tensor kl =
      ops::mul_scalar(ops::sum_all(ops::mul(soft_targets, ops::sub(log_targets, log_q))), inv_n);
  Tensor loss = ops::mul_scalar(kl, o.alpha * o.temperature * o.temperature);
  if (o.alpha < 1.0f)
    loss = ops::add(loss, ops::mul_scalar(ops::cross_entropy(student, labels, o.label_smoothing),
                                          1.0f - o.alpha));
  return loss;
}

Teacher::Teacher(const std::string& path, const nlohmann::json& student,
                 const data::NormStats& student_norm) {
  models::LoadedModel loaded = models::load_model(path);
  config_ = loaded.config;
  if (!dynamic_cast<models::Classifier*>(loaded.model.get()))
    fail_usage("--teacher ", path, ": a ", config_.value("family", std::string("?")),
               " model is not a classifier");
  const Shape want = models::input_shape(student), got = models::input_shape(config_);
  const int64_t want_k = student.value("num_classes", 0), got_k = config_.value("num_classes", 0);
  if (got_k != want_k)
    fail_usage("--teacher ", path, ": num_classes is ", got_k, ", the data has ", want_k,
               " classes");
  if (got.dim(1) != want.dim(1))
    fail_usage("--teacher ", path, ": in_channels is ", got.dim(1), ", the data has ", want.dim(1),
               " channels");
  if (got != want)
    fail_usage("--teacher ", path, ": it expects input ", got.str(), ", the student's data is ",
               want.str());

  // The student's batch is (x - m_s) / s_s per channel; the teacher wants (x - m_t) / s_t.
  const data::NormStats tn = model_norm_stats(config_);
  const auto c = static_cast<size_t>(want.dim(1));
  DUET_CHECK(student_norm.mean.size() == c && student_norm.std.size() == c,
             "Teacher: the student's normalisation has ", student_norm.mean.size(),
             " channels, expected ", c);
  for (size_t i = 0; i < c; ++i) {
    const double mt = tn.mean.empty() ? 0.0 : tn.mean[i], st = tn.std.empty() ? 1.0 : tn.std[i];
    const double scale = student_norm.std[i] / st;
    const double shift = (student_norm.mean[i] - mt) / st;
    scale_.push_back(static_cast<float>(scale));
    shift_.push_back(static_cast<float>(shift));
    convert_ = convert_ || scale_.back() != 1.0f || shift_.back() != 0.0f;
  }
  parameters_ = loaded.model->parameter_count();
  model_ = compress::inference_model(loaded.model);
  model_->eval();
}

Tensor Teacher::logits(const Tensor& images) {
  autograd::NoGradGuard no_grad;
  if (!convert_) return autograd::detached(model_->forward(images));
  const Tensor x = ops::contiguous(autograd::detached(images));
  Tensor y = Tensor::empty(x.shape());
  const int64_t n = x.dim(0), c = x.dim(1), hw = x.numel() / std::max<int64_t>(n * c, 1);
  const float* src = x.data<float>();
  float* dst = y.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float a = scale_[static_cast<size_t>(ch)], b = shift_[static_cast<size_t>(ch)];
      const int64_t base = (i * c + ch) * hw;
      for (int64_t k = 0; k < hw; ++k) dst[base + k] = src[base + k] * a + b;
    }
  return autograd::detached(model_->forward(y));
}

}  // namespace duet::train
