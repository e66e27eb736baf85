// The gap report (eval/gap_report.h, gap_html.h, gap_svg.h) on a tiny random UNet and two tiny
// ResNets: every number equals what the underlying eval functions return for the same inputs
// (classifier metrics, judge runs for plain / guided / verified sampling, the independent judge on
// the same images, distribution metrics, robustness of both classifiers); the JSON has its
// sections; the targets say met / missed by how much; the HTML's tags balance, its base64 PNGs
// decode to the grids, and its SVG has one polyline per classifier and family.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "duet/data/corrupt.h"
#include "duet/data/image.h"
#include "duet/eval/gap_html.h"
#include "duet/eval/gap_report.h"
#include "duet/eval/gap_svg.h"
#include "duet/gen/guidance.h"
#include "duet/gen/verify.h"
#include "duet/models/registry.h"
#include "duet/tensor/error.h"
#include "duet/tensor/rng.h"
#include "duet/train/trainer.h"

#include "../harness/tiny_unet.h"

using namespace duet;
using namespace duet::eval;

namespace {

constexpr int64_t kClasses = 3, kSize = 8;

nlohmann::json resnet_config(int64_t width) {
  return {{"family", "resnet"},
          {"depth", 8},
          {"width", width},
          {"in_channels", 1},
          {"num_classes", kClasses},
          {"image_size", kSize},
          {"preprocess", {{"mean", {0.4}}, {"std", {0.3}}}},
          {"class_names", {"alpha", "beta", "gamma"}}};
}

// `per_class` random images of every class, classes interleaved.
data::Dataset dataset(int64_t per_class, uint64_t seed) {
  data::Dataset d;
  d.class_names = {"alpha", "beta", "gamma"};
  d.channels = 1, d.height = kSize, d.width = kSize;
  std::vector<int32_t> labels;
  for (int64_t i = 0; i < per_class * kClasses; ++i)
    labels.push_back(static_cast<int32_t>(i % kClasses));
  const int64_t n = std::ssize(labels);
  d.labels = Tensor::from_vector(labels, Shape{n});
  d.images = Tensor::empty(Shape{n, 1, kSize, kSize}, DType::u8);
  Generator g(seed);
  for (int64_t i = 0; i < d.images.numel(); ++i)
    d.images.data<uint8_t>()[i] = static_cast<uint8_t>(g.next_below(256));
  return d;
}

struct Fixture {
  std::shared_ptr<nn::Module> unet_module, clf_module, judge_module;
  GapInputs in;
  GapOptions o;

  Fixture() {
    Generator g1(7), g2(8), g3(9);
    unet_module = models::build_model(test::tiny_unet_config(kClasses, kSize), g1);
    clf_module = models::build_model(resnet_config(4), g2);
    judge_module = models::build_model(resnet_config(2), g3);
    in.generator = dynamic_cast<models::UNet*>(unet_module.get());
    in.generator_config = test::tiny_unet_config(kClasses, kSize);
    in.classifier = dynamic_cast<models::Classifier*>(clf_module.get());
    in.classifier_config = resnet_config(4);
    in.judge = dynamic_cast<models::Classifier*>(judge_module.get());
    in.judge_config = resnet_config(2);
    in.test = dataset(8, 1);
    in.floor_set = dataset(6, 2);
    o.per_class = 5;
    o.batch = 4;  // several batches, one split across classes
    o.sample.kind = gen::SamplerKind::euler;
    o.sample.steps = 2;
    o.cfg = 2.0;
    o.best_of = 2;
    o.seed = 3;
    o.robust_images = 7;
    o.robust_seed = 4;
    o.corrupt_seed = 5;
    o.families = {data::CorruptionKind::noise, data::CorruptionKind::occlusion};
    o.severities = {1, 2};
    o.generative.times = 2;
    o.grid_columns = 2;
  }

  JudgeOptions judge_options(double cfg) const {
    JudgeOptions jo;
    jo.per_class = o.per_class;
    jo.batch = o.batch;
    jo.sample = o.sample;
    jo.seed = o.seed;
    jo.cfg = cfg;
    jo.real = in.test;
    return jo;
  }
};

// One report for every test of this file (the tiny run still takes a moment).
const GapReport& report(Fixture& f) {
  static const GapReport r = gap_report(f.in, f.o);
  return r;
}
Fixture& fixture() {
  static Fixture f;
  return f;
}

train::ClassifyMetrics direct_metrics(models::Classifier& c, const nlohmann::json& config,
                                      const data::Dataset& d) {
  const auto p = train::predict_probs(c, d, train::model_norm_stats(config), 256);
  return train::classify_metrics(p.data(), d.labels.data<int32_t>(), d.size(), kClasses);
}

void expect_same(const train::ClassifyMetrics& a, const train::ClassifyMetrics& b) {
  EXPECT_EQ(a.count, b.count);
  EXPECT_DOUBLE_EQ(a.accuracy, b.accuracy);
  EXPECT_DOUBLE_EQ(a.ece, b.ece);
  EXPECT_DOUBLE_EQ(a.mean_loss, b.mean_loss);
  EXPECT_EQ(a.class_accuracy, b.class_accuracy);
  EXPECT_EQ(a.confusion, b.confusion);
}

void expect_same(const Judgement& a, const Judgement& b) {
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.probs, b.probs);
  EXPECT_EQ(a.features, b.features);
  EXPECT_EQ(a.images.to_vector(), b.images.to_vector());
  expect_same(a.metrics, b.metrics);
}

void expect_same(const DistributionMetrics& a, const DistributionMetrics& b) {
  EXPECT_DOUBLE_EQ(a.fid.fid, b.fid.fid);
  EXPECT_DOUBLE_EQ(a.kid.kid, b.kid.kid);
  EXPECT_DOUBLE_EQ(a.kid.std_error, b.kid.std_error);
  EXPECT_EQ(a.pr.precision, b.pr.precision);
  EXPECT_EQ(a.pr.recall, b.pr.recall);
  EXPECT_DOUBLE_EQ(a.diversity_candidate, b.diversity_candidate);
}

// Minimal base64 decoder for the test (standard alphabet, padding).
std::vector<uint8_t> base64_decode(const std::string& s) {
  const std::string abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<uint8_t> out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    const size_t v = abc.find(c);
    if (v == std::string::npos) ADD_FAILURE() << "bad base64 character " << c;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xff));
    }
  }
  return out;
}

// Open/close tags balance (void elements and self-closing tags aside); returns the tag counts.
std::map<std::string, int> check_tags(const std::string& html) {
  static const std::set<std::string> kVoid = {"meta", "img", "br", "hr", "link", "input"};
  std::vector<std::string> stack;
  std::map<std::string, int> counts;
  for (size_t i = html.find('<'); i != std::string::npos; i = html.find('<', i + 1)) {
    const size_t end = html.find('>', i);
    if (end == std::string::npos) {
      ADD_FAILURE() << "unterminated tag at " << i;
      break;
    }
    const std::string tag = html.substr(i + 1, end - i - 1);
    if (tag.starts_with("!")) continue;
    if (tag.starts_with("/")) {
      const std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name) {
        ADD_FAILURE() << "</" << name << "> closes <" << (stack.empty() ? "" : stack.back())
                      << "> at " << i;
        return counts;
      }
      stack.pop_back();
      continue;
    }
    const std::string name = tag.substr(0, tag.find_first_of(" \n/"));
    ++counts[name];
    if (tag.ends_with("/") || kVoid.count(name)) continue;
    stack.push_back(name);
  }
  EXPECT_TRUE(stack.empty()) << stack.size() << " unclosed, last <" << stack.back() << ">";
  return counts;
}

}  // namespace

TEST(GapReport, UnderstandingEqualsDirectClassifierMetrics) {
  Fixture& f = fixture();
  const GapReport& r = report(f);
  expect_same(r.understanding, direct_metrics(*f.in.classifier, f.in.classifier_config, f.in.test));
  ASSERT_TRUE(r.judge_accuracy.has_value());
  expect_same(*r.judge_accuracy, direct_metrics(*f.in.judge, f.in.judge_config, f.in.test));
  EXPECT_EQ(r.class_names, (std::vector<std::string>{"alpha", "beta", "gamma"}));
}

TEST(GapReport, SamplingModesEqualJudgeRuns) {
  Fixture& f = fixture();
  const GapReport& r = report(f);
  ASSERT_EQ(r.sampling.size(), 3u);
  EXPECT_EQ(r.sampling[0].name, "plain");
  EXPECT_EQ(r.sampling[1].name, "cfg");
  EXPECT_EQ(r.sampling[2].name, "verified");
  models::UNet& unet = *f.in.generator;
  const auto norm = train::model_norm_stats(f.in.classifier_config);
  const gen::Scorer scorer = gen::classifier_scorer(*f.in.classifier, [norm](const Tensor& x) {
    return to_classifier_input(x, norm, -1.0f, 1.0f);
  });
  for (size_t m = 0; m < 3; ++m) {
    SCOPED_TRACE(r.sampling[m].name);
    const GapSampling& s = r.sampling[m];
    JudgeOptions jo = f.judge_options(m == 0 ? 1.0 : 2.0);
    if (m == 2)
      jo.draw = [&](const std::vector<int32_t>& labels, uint64_t seed) {
        return gen::best_of_k(unet, gen::Objective::flow, scorer, labels, 2.0, f.o.sample, seed, 2)
            .images;
      };
    EXPECT_EQ(s.best_of, m == 2 ? 2 : 1);
    EXPECT_EQ(s.passes_per_image, gen::passes_per_image(f.o.sample, jo.cfg, s.best_of));
    const Judgement want =
        judge_generator(unet, gen::Objective::flow, *f.in.classifier, f.in.classifier_config, jo);
    expect_same(s.by_classifier, want);
    // The independent judge saw exactly these images: a fresh judge run with the same draws.
    const Judgement judged =
        judge_generator(unet, gen::Objective::flow, *f.in.judge, f.in.judge_config, jo);
    ASSERT_TRUE(s.by_judge.has_value());
    expect_same(*s.by_judge, judged);
    DistributionReportOptions dopt;
    dopt.seed = f.o.seed;
    dopt.batch = f.o.batch;
    const DistributionReport d =
        distribution_report(want, *f.in.classifier, f.in.classifier_config, f.in.test,
                            f.in.floor_set, dopt, nullptr, -1.0f, 1.0f);
    expect_same(s.distribution.overall, d.overall);
    expect_same(s.distribution.floor, d.floor);
    for (size_t c = 0; c < 3; ++c) expect_same(s.distribution.classes[c], d.classes[c]);
    // Grid: 3 labelled rows of 2 samples (a label margin on the left).
    EXPECT_GT(s.grid.width, 2 * kSize + 6);
    EXPECT_EQ(s.grid.height, 3 * kSize + 4 * 2);
  }
}

TEST(GapReport, RobustnessEqualsBothClassifiersOnTheCorruptedSubset) {
  Fixture& f = fixture();
  const GapReport& r = report(f);
  const std::vector<int64_t> idx = robust_subset(f.in.test.size(), 7, 4);
  EXPECT_EQ(r.robust_indices, idx);
  const data::Dataset subset = data::subset(f.in.test, idx);
  ASSERT_EQ(r.robustness.size(), 1u + 2 * 2);
  EXPECT_EQ(r.robustness[0].family, "clean");
  EXPECT_EQ(r.robustness[0].severity, 0);
  EXPECT_EQ(r.robustness[1].family, "noise");
  EXPECT_EQ(r.robustness[4].family, "occlusion");
  EXPECT_EQ(r.robustness[4].severity, 2);
  GenerativeOptions go = f.o.generative;
  for (const auto& p : r.robustness) {
    SCOPED_TRACE(p.family + std::to_string(p.severity));
    const data::Dataset d =
        p.family == "clean"
            ? subset
            : data::corrupt(subset,
                            data::parse_corruption(p.family + ":" + std::to_string(p.severity)), 5);
    expect_same(p.discriminative, direct_metrics(*f.in.classifier, f.in.classifier_config, d));
    const Tensor x = u8_to_generator_input(d.image(0), d.size(), 1, kSize, kSize, -1.0f, 1.0f);
    const GenerativeResult g = classify_generative(*f.in.generator, gen::Objective::flow, x, go);
    expect_same(p.generative, train::classify_metrics(g.probs.data(), d.labels.data<int32_t>(),
                                                      d.size(), kClasses));
    EXPECT_EQ(p.generative_passes, g.passes);
    EXPECT_EQ(p.generative_full_passes, 7 * kClasses * 2);
  }
}

TEST(GapReport, RobustSubsetIsSeededSortedAndDistinct) {
  const auto a = robust_subset(1000, 50, 1), b = robust_subset(1000, 50, 1),
             c = robust_subset(1000, 50, 2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  ASSERT_EQ(a.size(), 50u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::set<int64_t>(a.begin(), a.end()).size(), 50u);
  EXPECT_GE(a.front(), 0);
  EXPECT_LT(a.back(), 1000);
  EXPECT_EQ(robust_subset(10, 50, 1).size(), 10u);  // capped at the set
}

TEST(GapReport, JsonHasTheSectionsAndTheReportsNumbers) {
  Fixture& f = fixture();
  const GapReport& r = report(f);
  const nlohmann::json j = r.to_json();
  for (const char* key : {"provenance", "settings", "class_names", "gap", "understanding",
                          "generation", "per_class", "robustness", "targets", "timings"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["gap"]["understanding"]["accuracy"].get<double>(), r.understanding.accuracy);
  EXPECT_EQ(j["gap"]["understanding"]["ece"].get<double>(), r.understanding.ece);
  EXPECT_EQ(j["gap"]["understanding"]["judge_accuracy"].get<double>(), r.judge_accuracy->accuracy);
  ASSERT_EQ(j["gap"]["generation"].size(), 3u);
  for (size_t m = 0; m < 3; ++m) {
    const auto& g = j["gap"]["generation"][m];
    const auto& s = r.sampling[m];
    EXPECT_EQ(g["cond_acc_classifier"].get<double>(), s.by_classifier.metrics.accuracy);
    EXPECT_EQ(g["cond_acc_judge"].get<double>(), s.by_judge->metrics.accuracy);
    EXPECT_EQ(g["fid_ref"].get<double>(), s.distribution.overall.fid.fid);
    EXPECT_EQ(g["kid_ref_se"].get<double>(), s.distribution.overall.kid.std_error);
    EXPECT_EQ(g["recall"].get<double>(), s.distribution.overall.pr.recall);
    EXPECT_EQ(j["generation"][m]["by_classifier"]["accuracy"].get<double>(),
              s.by_classifier.metrics.accuracy);
  }
  EXPECT_EQ(j["gap"]["floor"]["fid_ref"].get<double>(), r.sampling[0].distribution.floor.fid.fid);
  ASSERT_EQ(j["per_class"].size(), 3u);
  EXPECT_EQ(j["per_class"][1]["name"], "beta");
  EXPECT_EQ(j["per_class"][1]["classifier_accuracy"].get<double>(),
            r.understanding.class_accuracy[1]);
  EXPECT_EQ(j["per_class"][2]["cond_acc_classifier"]["verified"].get<double>(),
            r.sampling[2].by_classifier.classes[2].accuracy);
  EXPECT_EQ(j["per_class"][0]["fid_ref"]["cfg"].get<double>(),
            r.sampling[1].distribution.classes[0].fid.fid);
  ASSERT_EQ(j["robustness"]["points"].size(), 5u);
  EXPECT_EQ(j["robustness"]["points"][2]["generative"]["accuracy"].get<double>(),
            r.robustness[2].generative.accuracy);
  EXPECT_EQ(j["robustness"]["indices"].get<std::vector<int64_t>>(), r.robust_indices);
  ASSERT_EQ(j["targets"].size(), 3u);
  EXPECT_EQ(j["targets"][0]["measured"].get<double>(), r.sampling[2].by_judge->metrics.accuracy);
  EXPECT_EQ(j["targets"][1]["measured"].get<double>(), r.robustness[0].generative.accuracy);
  EXPECT_EQ(j["settings"]["seed"], 3);
  EXPECT_EQ(j["settings"]["families"], (nlohmann::json{"noise", "occlusion"}));
}

TEST(GapReport, TargetsSayMetOrMissedByHowMuch) {
  GapReport r;
  GapSampling v;
  v.name = "verified", v.label = "best-of-4";
  v.by_classifier.metrics.accuracy = 0.995;
  v.by_judge = Judgement{};
  v.by_judge->metrics.accuracy = 0.97;
  r.sampling.push_back(v);
  auto point = [](const char* family, int sev, double d, double g) {
    GapRobustPoint p;
    p.family = family, p.severity = sev;
    p.discriminative.accuracy = d, p.generative.accuracy = g;
    return p;
  };
  r.robustness = {point("clean", 0, 0.95, 0.885), point("noise", 1, 0.5, 0.7),
                  point("noise", 3, 0.2, 0.6), point("blur", 1, 0.9, 0.8)};
  const nlohmann::json t = gap_targets(r);
  ASSERT_EQ(t.size(), 3u);
  EXPECT_DOUBLE_EQ(t[0]["measured"].get<double>(), 0.97);  // the judge, not the verifier
  EXPECT_FALSE(t[0]["met"].get<bool>());
  EXPECT_NEAR(t[0]["margin"].get<double>(), -0.01, 1e-12);
  EXPECT_TRUE(t[1]["met"].get<bool>());
  EXPECT_NEAR(t[1]["margin"].get<double>(), 0.005, 1e-12);
  EXPECT_TRUE(t[2]["met"].get<bool>());  // noise: mean (0.7 + 0.6) / 2 - (0.5 + 0.2) / 2 = 0.3
  EXPECT_NEAR(t[2]["measured"].get<double>(), 0.3, 1e-12);
  EXPECT_NE(t[2]["detail"].get<std::string>().find("best family noise"), std::string::npos);
  // Without a judge the verifier's own number is used, and said to be optimistic.
  r.sampling[0].by_judge.reset();
  const nlohmann::json u = gap_targets(r);
  EXPECT_DOUBLE_EQ(u[0]["measured"].get<double>(), 0.995);
  EXPECT_NE(u[0]["detail"].get<std::string>().find("optimistic"), std::string::npos);
}

TEST(GapReport, HtmlIsSelfContainedAndWellFormed) {
  Fixture& f = fixture();
  GapReport r = report(f);
  r.provenance = {{"command", "duet gap --classifier a<b> & 'c'"},
                  {"models",
                   {{"classifier", {{"path", "c.safetensors"}, {"sha256", "ab"}, {"config", {}}}},
                    {"judge", nullptr}}}};
  const nlohmann::json j = r.to_json();
  std::vector<std::vector<uint8_t>> pngs;
  for (const auto& s : r.sampling) pngs.push_back(data::encode_png(s.grid));
  const std::string html = gap_html(j, pngs);
  const auto counts = check_tags(html);
  EXPECT_EQ(counts.at("img"), 3);
  EXPECT_EQ(counts.at("svg"), 1);
  EXPECT_EQ(counts.at("polyline"), 2 * 2);  // two classifiers x two families
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_NE(html.find("a&lt;b&gt; &amp; &#39;c&#39;"), std::string::npos);  // escaped command
  // Every image is a base64 PNG that decodes to its grid.
  size_t at = 0;
  for (size_t i = 0; i < 3; ++i) {
    const std::string key = "src=\"data:image/png;base64,";
    at = html.find(key, at);
    ASSERT_NE(at, std::string::npos);
    at += key.size();
    const std::string b64 = html.substr(at, html.find('"', at) - at);
    const data::Image img = data::decode_png(base64_decode(b64), "grid");
    EXPECT_EQ(img.width, r.sampling[i].grid.width);
    EXPECT_EQ(img.height, r.sampling[i].grid.height);
    EXPECT_EQ(img.pixels, r.sampling[i].grid.pixels);
  }
  // One polyline per classifier and family.
  for (const char* family : {"noise", "occlusion"})
    for (const char* cls : {"discriminative", "generative"}) {
      const std::string want =
          "<polyline class=\"" + std::string(cls) + "\" data-family=\"" + family + "\"";
      EXPECT_NE(html.find(want), std::string::npos) << want;
    }
}

TEST(GapReport, SvgPolylinesFollowTheAccuracies) {
  const nlohmann::json points = nlohmann::json::parse(R"([
    {"family": "clean", "severity": 0, "discriminative": {"accuracy": 1.0}, "generative": {"accuracy": 0.5}},
    {"family": "blur", "severity": 5, "discriminative": {"accuracy": 0.0}, "generative": {"accuracy": 0.5}}])");
  const std::string svg = robustness_svg(points);
  check_tags(svg);
  // Panel 0: x from 42 (severity 0) to 42 + 178 (severity 5); y from 26 (100 %) to 26 + 130 (0 %).
  EXPECT_NE(svg.find("class=\"discriminative\" data-family=\"blur\""), std::string::npos);
  EXPECT_NE(svg.find("points=\"42.0,26.0 220.0,156.0\""), std::string::npos);
  EXPECT_NE(svg.find("points=\"42.0,91.0 220.0,91.0\""), std::string::npos);
}

TEST(GapReport, Base64AndEscaping) {
  auto enc = [](const std::string& s) {
    return base64_encode(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  };
  // RFC 4648 section 10 test vectors.
  EXPECT_EQ(enc(""), "");
  EXPECT_EQ(enc("f"), "Zg==");
  EXPECT_EQ(enc("fo"), "Zm8=");
  EXPECT_EQ(enc("foo"), "Zm9v");
  EXPECT_EQ(enc("foob"), "Zm9vYg==");
  EXPECT_EQ(enc("fooba"), "Zm9vYmE=");
  EXPECT_EQ(enc("foobar"), "Zm9vYmFy");
  EXPECT_EQ(html_escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
}

TEST(GapReport, BadOptionsAreUsageErrorsBeforeWork) {
  Fixture& f = fixture();
  GapOptions o = f.o;
  o.best_of = 0;
  EXPECT_THROW(gap_report(f.in, o), Error);
  o = f.o;
  o.grid_columns = o.per_class + 1;
  EXPECT_THROW(gap_report(f.in, o), Error);
  o = f.o;
  o.severities = {6};
  EXPECT_THROW(gap_report(f.in, o), Error);
  GapInputs wrong = f.in;
  wrong.judge_config["image_size"] = 16;  // the judge takes other images
  try {
    gap_report(wrong, f.o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2) << e.what();
  }
}
