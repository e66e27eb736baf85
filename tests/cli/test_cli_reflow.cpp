// `duet reflow` on a tiny random UNet at 28x28 judged by the shipped classifier: the pairs, the
// student's run and checkpoint (with its "reflow" provenance) are written, the table has the
// teacher's pair setting plus teacher and student at each step count, a rerun reuses the pairs,
// and bad flags or a diffusion teacher are usage errors that write nothing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "../harness/tiny_unet.h"
#include "cli_run.h"
#include "duet/data/dataset.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/tensor/rng.h"
#include "duet/train/distill_digest.h"

namespace {

namespace fs = std::filesystem;
using duet::cli_test::kClf;
using duet::cli_test::kDuet;
using duet::cli_test::Result;

Result run(const std::string& args) {
  return duet::cli_test::run_duet(args, "reflow");
}

class CliReflow : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kDuet)) GTEST_SKIP() << "duet binary missing";
    if (!fs::exists(kClf)) GTEST_SKIP() << "shipped classifier missing";
    dir_ = fs::temp_directory_path() / ("duet_reflow_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    save_teacher(teacher_, "flow");
    save_teacher(diffusion_, "ddpm-eps");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void save_teacher(const fs::path& path, const std::string& objective) {
    nlohmann::json c = duet::test::tiny_unet_config(10, 28);
    c["objective"] = objective;
    c["class_names"] = duet::data::fashion_mnist_classes();
    duet::Generator g(5);
    duet::models::save_model(path.string(), *duet::models::build_model(c, g), c);
  }
  fs::path dir_;
  fs::path teacher_ = fs::temp_directory_path() /
                      ("duet_reflow_teacher_" + std::to_string(::getpid()) + ".safetensors");
  fs::path diffusion_ = fs::temp_directory_path() /
                        ("duet_reflow_ddpm_" + std::to_string(::getpid()) + ".safetensors");
};

TEST_F(CliReflow, PairsStudentAndTable) {
  if (!fs::exists(duet::data::fashion_mnist_dir())) GTEST_SKIP() << "Fashion-MNIST missing";
  const std::string out = (dir_ / "student.safetensors").string();
  const std::string args = "-t 1 reflow -m " + teacher_.string() + " -o " + out +
                           " --pairs 10 --pair-steps 2 --pair-batch 4 --epochs 1 --batch 5 "
                           "--classifier " +
                           kClf + " --per-class 1 --eval-steps 1,2 -s 3 --json";
  const Result r = run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.at("table").size(), 5u);  // teacher at heun x 2, then teacher/student at 1 and 2
  EXPECT_EQ(j["table"][0]["sampler"], "heun");
  EXPECT_EQ(j["table"][0]["passes_per_image"], 8);  // 2 Heun steps, 2 evaluations, 2 for CFG
  EXPECT_EQ(j["table"][1]["model"], "teacher");
  EXPECT_EQ(j["table"][2]["model"], "student");
  EXPECT_EQ(j["table"][2]["passes_per_image"], 1);  // one Euler step, no guidance pass
  EXPECT_EQ(j["table"][4]["steps"], 2);
  for (const auto& row : j["table"]) {
    const double acc = row.at("conditional_accuracy");
    EXPECT_TRUE(acc >= 0.0 && acc <= 1.0) << row.dump();
    EXPECT_GE(row.at("fid_ref").get<double>(), 0.0) << row.dump();
  }
  EXPECT_TRUE(fs::exists(dir_ / "student.reflow" / "pairs.safetensors"));
  EXPECT_TRUE(fs::exists(dir_ / "student.reflow" / "train_log.jsonl"));
  const nlohmann::json config =
      duet::models::read_model_config(duet::io::SafetensorsFile::load(out));
  EXPECT_EQ(config.at("reflow").at("from_sha256"), duet::train::sha256_file(teacher_.string()));
  EXPECT_EQ(config.at("reflow").at("pairs"), 10);

  // Same flags again: the pairs are reused, not drawn anew.
  const Result again = run("-t 1 reflow -m " + teacher_.string() + " -o " + out +
                           " --pairs 10 --pair-steps 2 --epochs 1 --batch 5 -s 3");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("reusing 10 pairs"), std::string::npos) << again.out;
}

TEST_F(CliReflow, BadFlagsAreUsageErrors) {
  const std::string out = (dir_ / "s.safetensors").string();
  const std::string base = "reflow -m " + teacher_.string() + " --pairs 4 ";
  EXPECT_EQ(run(base + "-o " + teacher_.string()).code, 2);
  EXPECT_EQ(run(base + "-o " + out + " --eval-steps 1,x").code, 2);
  EXPECT_EQ(run(base + "-o " + out + " --pairs 0").code, 2);
  EXPECT_EQ(run(base + "-o " + out + " --pair-sampler ddim").code, 2);
  const Result clf = run(base + "-o " + out + " --classifier " + teacher_.string());
  EXPECT_EQ(clf.code, 2);
  EXPECT_NE(clf.err.find("not a classifier"), std::string::npos) << clf.err;
  const Result ddpm = run("reflow -m " + diffusion_.string() + " -o " + out);
  EXPECT_EQ(ddpm.code, 2);
  EXPECT_NE(ddpm.err.find("flow"), std::string::npos) << ddpm.err;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(dir_ / "s.reflow"));
}

}  // namespace
