// `--classifier-guidance SCALE --guide-with NOISY_CLASSIFIER` in `duet sample`, `eval` and `gap`
// on the shipped generator, guided by a tiny noise-aware ResNet trained here in seconds
// (`train --noised flow`): bad combinations are one-line usage errors (exit 2), scale 0 writes
// the plain sampler's PNG byte for byte, and eval / gap report the guided mode and its cost.
// Skipped when the binary, the shipped models or Fashion-MNIST are missing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli_run.h"

namespace {

namespace fs = std::filesystem;
using duet::cli_test::kClf;
using duet::cli_test::kDuet;
using duet::cli_test::kGen;
using duet::cli_test::Result;
using duet::cli_test::slurp;

Result run(const std::string& args) {
  return duet::cli_test::run_duet(args, "classifier_guidance");
}

bool ready() {
  const bool data = fs::exists("/usr/share/datasets/fashion-mnist") || std::getenv("DUET_DATA");
  return data && fs::exists(kDuet) && fs::exists(kGen) && fs::exists(kClf);
}

// A tiny noise-aware classifier (width 4, 256 images, one epoch): enough to exercise the paths.
std::string tiny_guide(const fs::path& dir) {
  const std::string out = (dir / "guide").string();
  const Result r =
      run("-t 2 train --task classify --arch resnet20 --width 4 --noised flow "
          "--limit 256 --test-limit 50 --epochs 1 --batch 64 -s 3 -o " +
          out);
  EXPECT_EQ(r.code, 0) << r.err;
  return out + "/model.safetensors";
}

}  // namespace

TEST(CliClassifierGuidance, SampleEvalAndGap) {
  if (!ready()) GTEST_SKIP() << "duet, the shipped models or Fashion-MNIST are missing";
  const fs::path dir = fs::temp_directory_path() / "duet_cli_classifier_guidance";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string guide = tiny_guide(dir);
  ASSERT_TRUE(fs::exists(guide));
  const std::string png = (dir / "x.png").string();
  const std::string base = "-t 2 sample -m " + kGen + " --class bag -n 3 --steps 2 -s 4 -o " + png;

  // Usage errors: one line, exit 2, nothing written.
  for (const std::string& extra :
       {std::string(" --classifier-guidance 1"),               // no --guide-with
        " --guide-with " + guide,                              // no scale
        " --classifier-guidance 1 --guide-with " + kClf,       // not noise-aware
        " --classifier-guidance 1 --guide-with " + kGen,       // not a classifier
        " --classifier-guidance -2 --guide-with " + guide}) {  // negative scale
    const Result r = run(base + extra);
    EXPECT_EQ(r.code, 2) << extra << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(png)) << extra;
  }
  const Result eval_err = run("eval -m " + kClf + " --classifier-guidance 1 --guide-with " + guide);
  EXPECT_EQ(eval_err.code, 2) << "a judge flag on a classifier";

  // Scale 0 is plain sampling, byte for byte; scale 1 differs and says what it costs.
  ASSERT_EQ(run(base).code, 0);
  const std::string plain = slurp(png);
  fs::remove(png);
  ASSERT_EQ(run(base + " --classifier-guidance 0 --guide-with " + guide).code, 0);
  EXPECT_EQ(slurp(png), plain);
  const Result guided = run(base + " --classifier-guidance 1 --guide-with " + guide);
  ASSERT_EQ(guided.code, 0) << guided.err;
  EXPECT_NE(slurp(png), plain);
  EXPECT_NE(guided.out.find("8 generator passes + 4 classifier forward+backward passes"),
            std::string::npos)
      << guided.out;
  // Verified sampling of classifier-guided candidates: best-of-1 is the guided image itself;
  // best-of-2 doubles both costs.
  const std::string guided_png = slurp(png);
  const std::string verify =
      " --classifier-guidance 1 --guide-with " + guide + " --verify-with " + kClf + " --best-of ";
  ASSERT_EQ(run(base + verify + "1").code, 0);
  EXPECT_EQ(slurp(png), guided_png);
  const Result both = run(base + verify + "2");
  ASSERT_EQ(both.code, 0) << both.err;
  EXPECT_NE(both.out.find("16 generator passes + 8 classifier forward+backward passes"),
            std::string::npos)
      << both.out;

  // The judge on classifier-guided samples.
  const Result ev = run("-t 2 eval -m " + kGen + " --classifier " + kClf +
                        " --per-class 2 --steps 2 --cfg 1 --classifier-guidance 2 --guide-with " +
                        guide + " -s 1 --json");
  ASSERT_EQ(ev.code, 0) << ev.err;
  const auto j = nlohmann::json::parse(ev.out);
  EXPECT_EQ(j.at("classifier_guidance"), 2.0);
  EXPECT_EQ(j.at("classifier_passes_per_image"), 4);
  EXPECT_EQ(j.at("passes_per_image"), 4);
  EXPECT_TRUE(j.contains("distribution"));

  // The gap report gains a classifier-guided row.
  const std::string out = (dir / "gap").string();
  const Result gap = run("-t 2 gap --classifier " + kClf + " --generator " + kGen +
                         " --per-class 2 --steps 1 --best-of 2 --robust-images 2 --severities 1 "
                         "--families noise --gen-times 2 --classifier-guidance 1 --guide-with " +
                         guide + " -s 1 -o " + out);
  ASSERT_EQ(gap.code, 0) << gap.err;
  const auto report = nlohmann::json::parse(slurp(fs::path(out) / "report.json"));
  const auto& rows = report.at("gap").at("generation");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[3].at("name"), "classifier-guided");
  EXPECT_EQ(rows[3].at("cfg"), 1.0);
  EXPECT_EQ(rows[3].at("classifier_passes_per_image"), 2);
  EXPECT_GT(rows[3].at("seconds_per_image").get<double>(), 0.0);
  EXPECT_EQ(report.at("settings").at("guide_with"), guide);
  EXPECT_FALSE(report.at("provenance").at("models").at("guide").is_null());
  EXPECT_EQ(run("-t 2 gap --classifier " + kClf + " --generator " + kGen + " --guide-cfg 2 -o " +
                (dir / "gap2").string())
                .code,
            2);
  fs::remove_all(dir);
}
