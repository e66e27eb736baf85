#include "duet/cli/eval_distribution.h"

#include <cstdio>
#include <filesystem>

#include "duet/eval/reference_version.h"
#include "duet/tensor/error.h"
#include "duet/train/distill_digest.h"

namespace duet::cli {
namespace {

namespace fs = std::filesystem;

// True when `spec` names a data set with separate train and test splits.
bool has_splits(const std::string& spec) {
  const size_t colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  if (kind == "fashion-mnist") return true;
  if (kind != "folder" || colon == std::string::npos) return false;
  const fs::path root = spec.substr(colon + 1);
  return fs::is_directory(root / "train") && fs::is_directory(root / "test");
}

void print_row(const char* label, const char* set, const eval::DistributionMetrics& m) {
  std::printf("%-16.16s %-10s %9.3f %9.4f ± %7.4f %7.4f %7.4f %8.4f %8.4f\n", label, set, m.fid.fid,
              m.kid.kid, m.kid.std_error, m.pr.precision, m.pr.recall, m.diversity_candidate,
              m.diversity_reference);
}

}  // namespace

ReferenceSetup prepare_reference(const std::string& reference, const std::string& classifier,
                                 const eval::JudgeOptions& o, int64_t c, int64_t s, int64_t k) {
  ReferenceSetup r;
  std::error_code ec;
  r.path = reference.empty() ? classifier : reference;
  r.is_judge = reference.empty() || fs::equivalent(reference, classifier, ec);
  if (!r.is_judge) {
    r.loaded = models::load_model(r.path);
    if (!dynamic_cast<models::Classifier*>(r.loaded.model.get()))
      fail_usage("eval: --reference ", r.path, " is not a classifier (family '",
                 r.loaded.config.value("family", ""), "')");
    const int64_t rc = r.loaded.config.value("in_channels", 1),
                  rs = r.loaded.config.value("image_size", 28);
    if (rc != c || rs != s)
      fail_usage("eval: --reference ", r.path, " takes ", rc, "x", rs, "x", rs,
                 " images, the generator makes ", c, "x", s, "x", s);
  }
  r.sha256 = train::sha256_file(r.path);

  // The floor: real images of the other split when the data set has one, else more images of
  // the same set, so that the floor never compares an image with itself.
  if (!o.real || has_splits(o.data)) {
    eval::JudgeOptions other = o;
    other.real.reset();
    other.split = o.split == data::Split::test ? data::Split::train : data::Split::test;
    r.floor_set = eval::load_real_images(other, c, s, k);
    r.floor_source = o.data + (other.split == data::Split::train ? " train" : " test");
  } else {
    r.floor_set = *o.real;
    r.floor_skip = o.per_class;
    r.floor_source = o.data + " (no split: the next images of each class)";
  }
  return r;
}

eval::DistributionReport distribution_for(ReferenceSetup& setup, const eval::Judgement& j,
                                          models::Classifier& judge_classifier,
                                          const nlohmann::json& judge_config,
                                          const eval::JudgeOptions& o) {
  DUET_CHECK(o.real.has_value(), "eval: the distribution metrics need the judge's real images");
  eval::DistributionReportOptions opt;
  opt.seed = o.seed;
  opt.batch = o.batch;
  opt.floor_skip = setup.floor_skip;
  models::Classifier& reference =
      setup.is_judge ? judge_classifier
                     : *dynamic_cast<models::Classifier*>(setup.loaded.model.get());
  const nlohmann::json& config = setup.is_judge ? judge_config : setup.loaded.config;
  eval::DistributionReport r =
      eval::distribution_report(j, reference, config, *o.real, setup.floor_set, opt,
                                setup.is_judge ? &j.features : nullptr, o.lo, o.hi);
  r.reference_path = setup.path;
  r.reference_sha256 = setup.sha256;
  r.reference_is_judge = setup.is_judge;
  r.floor_source = setup.floor_source;
  return r;
}

void print_distribution(const eval::DistributionReport& r, const std::vector<std::string>& names,
                        const std::string& real_label, double seconds) {
  const auto& first = r.classes.empty() ? r.overall : r.classes.front();
  const std::string version = eval::reference_version(r.reference_sha256);
  std::printf(
      "\ndistribution metrics (%.1f s) in the %lld-dim penultimate features of the reference"
      " network\n%s (sha256 %.12s): %s%s\n",
      seconds, static_cast<long long>(r.feature_dim), fs::path(r.reference_path).filename().c_str(),
      r.reference_sha256.c_str(),
      version.empty() ? "not a versioned reference (compare only with runs of this same file)"
                      : ("reference " + version).c_str(),
      r.reference_is_judge ? "; also the judge" : "");
  std::printf("real: %s; floor: the same counts of %s images vs the same real images\n",
              real_label.c_str(), r.floor_source.c_str());
  std::printf(
      "KID-ref ± s.e. over %lld subsets of %lld (per class) / %lld (all); precision /"
      " recall with k = %lld; div = mean pairwise L2 distance\n\n",
      static_cast<long long>(first.kid.subsets), static_cast<long long>(first.kid.subset_size),
      static_cast<long long>(r.overall.kid.subset_size), static_cast<long long>(first.pr.k));
  std::printf("%-16s %-10s %9s %20s %7s %7s %8s %8s\n", "class", "vs real", "FID-ref",
              "KID-ref ± s.e.", "prec", "recall", "div", "div.real");
  for (size_t i = 0; i < r.classes.size(); ++i) {
    const std::string label =
        std::to_string(i) + " " + (i < names.size() ? names[i] : std::to_string(i));
    print_row(label.c_str(), "generated", r.classes[i]);
    print_row("", "floor", r.floor_classes[i]);
  }
  print_row("all classes", "generated", r.overall);
  print_row("", "floor", r.floor);
}

}  // namespace duet::cli
