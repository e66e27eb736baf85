// The distribution metrics of `duet eval -m GENERATOR --classifier C [--reference R]`: loading
// and checking the reference network and the real-vs-real floor's images before the long run,
// computing the report (eval/distribution_report.h) after it, and printing its table.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "duet/data/dataset.h"
#include "duet/eval/distribution_report.h"
#include "duet/eval/judge.h"
#include "duet/models/checkpoint.h"
#include "duet/models/classifier.h"

namespace duet::cli {

struct ReferenceSetup {
  std::string path, sha256;
  bool is_judge = false;       // the reference is the judging classifier: its features are reused
  models::LoadedModel loaded;  // the reference network when it is not the judge
  // The floor's candidates: the other split of the --data set, or (a set without splits) the
  // real set itself, skipping the images the judge compares against.
  data::Dataset floor_set;
  std::string floor_source;
  int64_t floor_skip = 0;
};

// `reference` empty means the judge `classifier`. Usage Errors for a reference that is not a
// classifier or does not take the generator's images; the floor set is loaded and conformed.
ReferenceSetup prepare_reference(const std::string& reference, const std::string& classifier,
                                 const eval::JudgeOptions& judge, int64_t channels, int64_t size,
                                 int64_t classes);

// The report for judge run `j` (whose real set is judge.real), with the setup's identity filled in.
eval::DistributionReport distribution_for(ReferenceSetup& setup, const eval::Judgement& j,
                                          models::Classifier& judge_classifier,
                                          const nlohmann::json& judge_config,
                                          const eval::JudgeOptions& judge);

// The table: per class, generated vs real and the floor vs real, then both pooled over classes.
void print_distribution(const eval::DistributionReport& r, const std::vector<std::string>& names,
                        const std::string& real_label, double seconds);

}  // namespace duet::cli
