// Knowledge distillation for classifiers (Hinton et al. 2015): the loss that mixes the teacher's
// temperature-softened distribution with the hard labels, and the teacher a classification run
// consults each step (its folded inference form, eval mode, no gradients).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "duet/data/augment.h"
#include "duet/nn/module.h"
#include "duet/tensor/tensor.h"

namespace duet::train {

struct KdOptions {
  float temperature = 4.0f;
  float alpha = 0.9f;  // weight of the soft (teacher) term
  float label_smoothing = 0.0f;
};

// alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(s, labels), the KL summed
// over classes and averaged over the batch (PyTorch's reduction "batchmean"); the T^2 keeps the
// soft term's gradient on the scale of the hard one. student [N, K] (differentiable), teacher
// [N, K] (a constant: no gradient flows into it), labels [N] int32. Composed of existing
// differentiable ops (log_softmax, mul, sum), so its backward is theirs.
Tensor kd_loss(const Tensor& student_logits, const Tensor& teacher_logits, const Tensor& labels,
               const KdOptions& options);

// A trained classifier checkpoint used as the teacher of a run.
class Teacher {
 public:
  // Loads `path` and checks it against the student's config (the data's classes, channels and
  // image size): usage Error naming the file and the field on a mismatch or a non-classifier.
  // `student_norm` is how the run normalises its batches; the teacher's own "preprocess" stats
  // (absent: raw pixels) are restored from it per channel when they differ.
  Teacher(const std::string& path, const nlohmann::json& student_config,
          const data::NormStats& student_norm);

  // Teacher logits [N, K] for a batch normalised like the student's; no autograd history.
  Tensor logits(const Tensor& student_images);

  const nlohmann::json& config() const { return config_; }
  int64_t parameter_count() const { return parameters_; }  // of the checkpoint as trained

 private:
  std::shared_ptr<nn::Module> model_;  // folded for inference when the family allows
  nlohmann::json config_;
  int64_t parameters_ = 0;
  // Per channel: teacher input = student input * scale + shift (identity: convert_ false).
  std::vector<float> scale_, shift_;
  bool convert_ = false;
};

}  // namespace duet::train
