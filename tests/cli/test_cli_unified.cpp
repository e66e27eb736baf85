// A unified model from the command line: `duet train --task unified` makes one, and the same file
// is evaluated as a classifier by `duet eval` / `duet classify`, judged as a generator by `duet
// eval --classifier`, and drawn from by `duet sample`. Flags of the wrong task are usage errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_run.h"

namespace {

namespace fs = std::filesystem;
using duet::cli_test::kClf;
using duet::cli_test::kDuet;
using duet::cli_test::Result;

Result run(const std::string& args) {
  return duet::cli_test::run_duet(args, "unified");
}

}  // namespace

TEST(CliUnified, OneFileClassifiesAndGenerates) {
  if (!fs::exists(kDuet) || !fs::exists(kClf)) GTEST_SKIP() << "duet or the models are missing";
  const fs::path dir = fs::temp_directory_path() / "duet_cli_unified";
  fs::remove_all(dir);
  const Result trained = duet::cli_test::train_tiny_unified((dir / "u").string(), "unified");
  ASSERT_EQ(trained.code, 0) << trained.err;
  // The epoch line carries both losses and the head's accuracies.
  EXPECT_NE(trained.out.find(" mse "), std::string::npos) << trained.out;
  EXPECT_NE(trained.out.find(" test-acc "), std::string::npos) << trained.out;
  const std::string model = (dir / "u" / "model.safetensors").string();

  // As a classifier: eval without --classifier scores the head on real images.
  const Result ev = run("eval -m " + model + " --limit 50 --json");
  ASSERT_EQ(ev.code, 0) << ev.err;
  EXPECT_EQ(nlohmann::json::parse(ev.out).at("count"), 50);
  // As a generator: sample, and judge with a classifier.
  const std::string png = (dir / "s.png").string();
  ASSERT_EQ(run("sample -m " + model + " --class 3 -n 2 --steps 1 -s 1 -o " + png).code, 0);
  const Result classified = run("classify -m " + model + " --json " + png);
  ASSERT_EQ(classified.code, 0) << classified.err;
  EXPECT_EQ(nlohmann::json::parse(classified.out).at("file"), png);
  const Result judged =
      run("eval -m " + model + " --classifier " + kClf + " --per-class 1 --steps 1 -s 1");
  ASSERT_EQ(judged.code, 0) << judged.err;
  EXPECT_NE(judged.out.find("cond.acc"), std::string::npos) << judged.out;

  // Task and architecture must agree; unified-only flags belong to --task unified.
  for (const std::string& args : {
           std::string("train --task unified --arch unet-xs -o ") + (dir / "x").string(),
           std::string("train --task generate --arch unified-xs -o ") + (dir / "x").string(),
           std::string("train --task generate --classify-weight 0.5 -o ") + (dir / "x").string(),
           std::string("train --task classify --generate-weight 0 -o ") + (dir / "x").string(),
           std::string("train --task unified --generate-weight 0 --classify-weight 0 -o ") +
               (dir / "x").string(),
       }) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
    EXPECT_FALSE(fs::exists(dir / "x")) << args;
  }
  fs::remove_all(dir);
}
