#include "duet/cli/guide_tools.h"

#include <cstdio>

#include "duet/eval/judge.h"
#include "duet/gen/verify.h"
#include "duet/tensor/error.h"
#include "duet/train/trainer.h"

namespace duet::cli {

GuideClassifier load_guide(const std::string& command, const std::string& path, double scale,
                           bool scale_given, const models::UNet& generator,
                           gen::Objective objective, const nlohmann::json& generator_config) {
  GuideClassifier g;
  if (path.empty() && !scale_given) return g;
  if (path.empty())
    fail_usage(command,
               ": --classifier-guidance needs --guide-with NOISY_CLASSIFIER (a classifier "
               "trained with `duet train --task classify --noised flow`)");
  if (!scale_given)
    fail_usage(command, ": --guide-with ", path, " needs --classifier-guidance SCALE");
  g.path = path;
  g.scale = scale;
  g.loaded = models::load_model(path);
  g.classifier = dynamic_cast<models::Classifier*>(g.loaded.model.get());
  if (!g.classifier)
    fail_usage(command, ": --guide-with ", path, " is not a classifier (family '",
               g.loaded.config.value("family", ""), "')");
  gen::validate_guide_classifier(generator.config(), objective, g.loaded.config, scale,
                                 "--guide-with " + path);
  const data::NormStats norm = train::model_norm_stats(g.loaded.config);
  const auto [lo, hi] = eval::value_range(generator_config);
  g.map = gen::classifier_input_map(norm.mean, norm.std, lo, hi, generator.config().in_channels);
  return g;
}

std::string guide_summary(const GuideClassifier& g, const gen::SampleOptions& options, double cfg,
                          int best_of) {
  char line[512];
  std::snprintf(line, sizeof line,
                "classifier guidance %g by %s: %lld generator passes + %d classifier "
                "forward+backward passes per image",
                g.scale, g.path.c_str(),
                static_cast<long long>(gen::passes_per_image(options, cfg, best_of)),
                g.scale == 0.0 ? 0 : best_of * gen::evaluations(options));
  return line;
}

gen::PredictorWrap guide_wrap(const GuideClassifier& g, gen::Objective objective) {
  DUET_CHECK(g.on(), "guide_wrap: no guiding classifier");
  return [&g, objective](gen::Predictor cfg_predictor, const std::vector<int32_t>& labels) {
    return gen::classifier_guided_predictor(std::move(cfg_predictor), objective, *g.classifier,
                                            g.map, labels, g.scale);
  };
}

}  // namespace duet::cli
