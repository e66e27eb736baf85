// `duet prune` end to end on the shipped ResNet-20: half the MACs, BatchNorm re-estimated, one
// short fine-tuning epoch, the JSON report agreeing with the file it wrote, and its usage errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_run.h"
#include "duet/models/checkpoint.h"

namespace duet {
namespace {

namespace fs = std::filesystem;
using cli_test::kClf;
using cli_test::kDuet;
using cli_test::run_duet;

bool have_inputs() {
  return fs::exists(kDuet) && fs::exists(kClf) &&
         (fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") ||
          std::getenv("DUET_DATA") != nullptr);
}

TEST(CliPrune, HalvesTheMacsAndFineTunes) {
  if (!have_inputs()) GTEST_SKIP() << "needs the duet binary, the shipped model and Fashion-MNIST";
  const fs::path dir = fs::temp_directory_path() / ("duet_cli_prune_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string out = (dir / "pruned.safetensors").string();
  const auto r = run_duet("-t 2 prune -m " + kClf + " -o " + out +
                              " --keep 0.5 --finetune-epochs 1 --limit 512 --eval-limit 200 "
                              "--bn-calib 1000 --bench none --json --run " +
                              (dir / "run").string(),
                          "prune");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);  // stdout is the JSON alone (epoch lines: stderr)
  const double macs0 = j["macs_per_image"]["original"], macs1 = j["macs_per_image"]["pruned"];
  EXPECT_LE(macs1, 0.5 * macs0);
  EXPECT_GT(macs1, 0.4 * macs0);
  EXPECT_EQ(j["parameters"]["original"], 272186);  // the shipped model (models/README.md)
  const auto loaded = models::load_model(out);
  EXPECT_EQ(loaded.model->parameter_count(), j["parameters"]["pruned"].get<int64_t>());
  EXPECT_EQ(loaded.config["pruned"]["keep"], 0.5);
  EXPECT_EQ(j["file_bytes"]["pruned"].get<double>(), double(fs::file_size(out)));
  // The shipped model scores 95.5 % on these 200 images. Cutting every block interior to 48 % of
  // its channels (the default scope) loses part of that; re-estimated BatchNorm statistics leave
  // 0.75 (measured) and 8 steps of fine-tuning bring 0.905; the floors leave room for other
  // thread counts.
  EXPECT_GE(j["accuracy"]["original"].get<double>(), 0.93);
  EXPECT_GE(j["accuracy"]["pruned"].get<double>(), 0.6);
  EXPECT_GE(j["accuracy"]["finetuned"].get<double>(), 0.8);
  EXPECT_EQ(loaded.config["stage_widths"], nlohmann::json({16, 32, 64}));  // streams kept whole
  EXPECT_TRUE(fs::exists(dir / "run" / "train_log.jsonl"));
  fs::remove_all(dir);
}

TEST(CliPrune, UsageErrorsExitWith2) {
  if (!fs::exists(kDuet) || !fs::exists(kClf)) GTEST_SKIP() << "needs the binary and model";
  const std::string out = (fs::temp_directory_path() / "duet_cli_prune_bad.safetensors").string();
  for (const std::string& args :
       {"prune -m " + kClf + " -o " + out + " --keep 0",
        "prune -m " + kClf + " -o " + out + " --criterion l7", "prune -m " + kClf + " -o " + kClf,
        "prune -m " + cli_test::kGen + " -o " + out}) {
    const auto r = run_duet(args, "prune_bad");
    EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
    EXPECT_NE(r.err.find("prune"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out)) << args;
  }
}

}  // namespace
}  // namespace duet
