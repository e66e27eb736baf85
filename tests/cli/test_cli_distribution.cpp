// `duet eval -m GENERATOR --classifier C [--reference R]`'s distribution metrics on the shipped
// models: a --reference that is not a classifier, or --reference without a generator, is a
// one-line usage error; a tiny --json run reports them per class, pooled and for the floor with
// the reference's sha256; naming a copy of the judge as --reference recomputes the generated
// images' features and gives the same numbers as reusing the judge's; the shipped independent
// judge with reference v1 runs as docs/gap.md says. Skipped when the binary,
// the shipped models or Fashion-MNIST are missing.
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "cli_run.h"

namespace {

using duet::cli_test::kClf;
using duet::cli_test::kDuet;
using duet::cli_test::kGen;
using duet::cli_test::kJudge;
using duet::cli_test::Result;

Result run(const std::string& args) {
  return duet::cli_test::run_duet(args, "dist");
}

bool ready() {
  const char* env = std::getenv("DUET_DATA");
  const std::string data = env ? env : "/usr/share/datasets/fashion-mnist";
  return std::filesystem::exists(kDuet) && std::filesystem::exists(kGen) &&
         std::filesystem::exists(kClf) && std::filesystem::is_directory(data);
}

}  // namespace

TEST(CliDistribution, BadReferenceIsAOneLineUsageError) {
  if (!ready()) GTEST_SKIP() << "duet, the shipped models or Fashion-MNIST are missing";
  for (const std::string& args :
       {"eval -m " + kGen + " --classifier " + kClf + " --reference " + kGen,
        "eval -m " + kClf + " --reference " + kClf}) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("--reference"), std::string::npos) << r.err;
  }
}

TEST(CliDistribution, TinyJsonRunReportsEveryMetricAndACopiedReferenceAgrees) {
  if (!ready()) GTEST_SKIP() << "duet, the shipped models or Fashion-MNIST are missing";
  const std::string tiny =
      "-t 2 eval -m " + kGen + " --classifier " + kClf + " --per-class 5 --steps 1 -s 3 --json";
  const Result a = run(tiny);
  ASSERT_EQ(a.code, 0) << a.err;
  const auto d = nlohmann::json::parse(a.out).at("distribution");
  EXPECT_EQ(d["reference"]["sha256"].get<std::string>().size(), 64u);
  // The shipped ResNet-20 is reference v1: its bytes must not change between releases.
  EXPECT_EQ(d["reference"]["version"], "v1");
  EXPECT_TRUE(d["reference"]["is_judge"].get<bool>());
  EXPECT_EQ(d["reference"]["feature_dim"], 64);
  EXPECT_EQ(d["floor_source"], "fashion-mnist train");
  ASSERT_EQ(d["classes"].size(), 10u);
  EXPECT_EQ(d["overall"]["n_candidate"], 50);
  EXPECT_EQ(d["overall"]["n_reference"], 50);
  EXPECT_EQ(d["classes"][3]["generated"]["n_candidate"], 5);
  EXPECT_EQ(d["classes"][3]["floor"]["kid_detail"]["subset_size"], 2);  // min(1000, 5 / 2)
  for (const char* key : {"precision", "recall"}) {
    const double v = d["overall"][key];
    EXPECT_TRUE(v >= 0.0 && v <= 1.0) << key;
  }
  EXPECT_GT(d["overall"]["fid_ref"].get<double>(), d["floor"]["fid_ref"].get<double>());

  const auto copy = std::filesystem::temp_directory_path() / "duet_cli_dist_reference.safetensors";
  std::filesystem::copy_file(kClf, copy, std::filesystem::copy_options::overwrite_existing);
  const Result b = run(tiny + " --reference " + copy.string());
  std::filesystem::remove(copy);
  ASSERT_EQ(b.code, 0) << b.err;
  const auto e = nlohmann::json::parse(b.out).at("distribution");
  EXPECT_FALSE(e["reference"]["is_judge"].get<bool>());
  EXPECT_EQ(e["reference"]["sha256"], d["reference"]["sha256"]);
  EXPECT_EQ(e["overall"].dump(), d["overall"].dump());
  EXPECT_EQ(e["floor"].dump(), d["floor"].dump());
  EXPECT_EQ(e["classes"].dump(), d["classes"].dump());
}

TEST(CliDistribution, ShippedJudgeIsIndependentOfReferenceV1) {
  if (!ready() || !std::filesystem::exists(kJudge))
    GTEST_SKIP() << "duet, the shipped models or Fashion-MNIST are missing";
  const Result a = run("-t 2 eval -m " + kGen + " --classifier " + kJudge + " --reference " + kClf +
                       " --per-class 5 --steps 1 -s 3 --json");
  ASSERT_EQ(a.code, 0) << a.err;
  const auto out = nlohmann::json::parse(a.out);
  EXPECT_EQ(out["classifier"], kJudge);
  const auto& reference = out.at("distribution").at("reference");
  EXPECT_EQ(reference["version"], "v1");
  EXPECT_FALSE(reference["is_judge"].get<bool>());
  // Another architecture (the seeds, 2 against 1, are in models/README.md).
  const Result judge = run("info -m " + kJudge), ref = run("info -m " + kClf);
  ASSERT_EQ(judge.code, 0) << judge.err;
  ASSERT_EQ(ref.code, 0) << ref.err;
  EXPECT_NE(judge.out.find("\"arch\":\"resnet32\""), std::string::npos) << judge.out;
  EXPECT_NE(ref.out.find("\"arch\":\"resnet20\""), std::string::npos) << ref.out;
}
