// `duet synth` on a tiny random UNet (tests/harness/tiny_unet.h): the same seed and thread count
// give the same IDX files byte for byte, another seed other images; the labels interleave the
// classes; meta.json records the generator's sha256, the seed and the class names, which
// `--data idx:` then uses; best-of-K with a tiny verifier runs; bad flags are usage errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../harness/tiny_unet.h"
#include "cli_run.h"
#include "duet/data/dataset.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/tensor/rng.h"
#include "duet/train/distill_digest.h"

namespace {

namespace fs = std::filesystem;
using duet::cli_test::kDuet;
using duet::cli_test::Result;

Result run(const std::string& args) {
  return duet::cli_test::run_duet(args, "synth");
}

std::vector<char> bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class CliSynth : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kDuet)) GTEST_SKIP() << "duet binary missing";
    dir_ = fs::temp_directory_path() / ("duet_synth_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    nlohmann::json gc = duet::test::tiny_unet_config(3, 8);
    gc["class_names"] = {"ant", "bee", "cow"};
    duet::Generator g1(5);
    duet::models::save_model(gen_.string(), *duet::models::build_model(gc, g1), gc);
    const nlohmann::json cc = {{"family", "resnet"}, {"depth", 8},       {"width", 4},
                               {"in_channels", 1},   {"num_classes", 3}, {"image_size", 8}};
    duet::Generator g2(6);
    duet::models::save_model(clf_.string(), *duet::models::build_model(cc, g2), cc);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    fs::remove(gen_, ec);
    fs::remove(clf_, ec);
  }
  std::string synth(const std::string& out, const std::string& flags) {
    const Result r =
        run("-t 1 synth -m " + gen_.string() + " " + flags + " -o " + (dir_ / out).string());
    EXPECT_EQ(r.code, 0) << r.err;
    return (dir_ / out).string();
  }

  fs::path dir_;
  fs::path gen_ =
      fs::temp_directory_path() / ("duet_synth_gen_" + std::to_string(::getpid()) + ".safetensors");
  fs::path clf_ =
      fs::temp_directory_path() / ("duet_synth_clf_" + std::to_string(::getpid()) + ".safetensors");
};

TEST_F(CliSynth, SameSeedSameFilesAndReadableAsData) {
  // 12 images in batches of 5: the last batch is partial.
  const std::string flags = "--per-class 4 --steps 2 --batch 5 -s 11";
  const std::string a = synth("a", flags), b = synth("b", flags);
  const std::string c = synth("c", "--per-class 4 --steps 2 --batch 5 -s 12");
  for (const char* f : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"})
    EXPECT_EQ(bytes(fs::path(a) / f), bytes(fs::path(b) / f)) << f;
  EXPECT_NE(bytes(fs::path(a) / "train-images-idx3-ubyte"),
            bytes(fs::path(c) / "train-images-idx3-ubyte"));
  EXPECT_EQ(bytes(fs::path(a) / "train-labels-idx1-ubyte"),
            bytes(fs::path(c) / "train-labels-idx1-ubyte"));

  const auto d = duet::data::load_dataset("idx:" + a + "/train-images-idx3-ubyte," + a +
                                          "/train-labels-idx1-ubyte");
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"ant", "bee", "cow"}));
  ASSERT_EQ(d.size(), 12);
  EXPECT_EQ(d.height, 8);
  for (int64_t i = 0; i < 12; ++i) EXPECT_EQ(d.label(i), i % 3) << i;
  // Not a constant image: the sampler's output really landed in the file.
  const uint8_t* px = d.image(0);
  EXPECT_NE(*std::min_element(px, px + 64), *std::max_element(px, px + 64));

  std::ifstream in(fs::path(a) / "meta.json");
  const nlohmann::json meta = nlohmann::json::parse(in);
  EXPECT_EQ(meta.at("seed"), 11);
  EXPECT_EQ(meta.at("count"), 12);
  EXPECT_EQ(meta.at("batch_seeds").size(), 3u);
  EXPECT_EQ(meta.at("generator").at("sha256"), duet::train::sha256_file(gen_.string()));
  EXPECT_NE(meta.at("command").get<std::string>().find(
                "--per-class 4 --steps 2 --cfg 2 --sampler heun --batch 5 -s 11 -o "),
            std::string::npos);
  EXPECT_GT(meta.at("timings").at("sample_seconds").get<double>(), 0.0);
}

TEST_F(CliSynth, BestOfKWithAVerifierIsDeterministic) {
  const std::string flags =
      "--per-class 2 --steps 2 --cfg 1 -s 3 --verify-with " + clf_.string() + " --best-of 3";
  const std::string a = synth("a", flags), b = synth("b", flags);
  EXPECT_EQ(bytes(fs::path(a) / "train-images-idx3-ubyte"),
            bytes(fs::path(b) / "train-images-idx3-ubyte"));
  std::ifstream in(fs::path(a) / "meta.json");
  const nlohmann::json meta = nlohmann::json::parse(in);
  EXPECT_EQ(meta.at("verifier").at("best_of"), 3);
  // The kept candidate is the verifier's best, so its mean score is never below candidate 0's.
  EXPECT_GE(meta.at("verifier").at("mean_log_p_kept").get<double>(),
            meta.at("verifier").at("mean_log_p_first").get<double>());
}

TEST_F(CliSynth, BadFlagsAreUsageErrors) {
  const std::string out = (dir_ / "x").string();
  EXPECT_EQ(run("synth -m " + gen_.string() + " --per-class 0 -o " + out).code, 2);
  EXPECT_EQ(run("synth -m " + gen_.string() + " --per-class 2 --best-of 2 -o " + out).code, 2);
  const Result r = run("synth -m " + clf_.string() + " --per-class 2 -o " + out);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("not a generator"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
