// The `duet` command's contract for train / eval / classify / sample errors: one line on stderr
// and exit code 2 for usage mistakes, 1 for runtime failures. Runs the built binary; skipped when
// it has not been built (the test binary does not depend on it).
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>

#include <gtest/gtest.h>

namespace {

const std::string kDuet = std::string(DUET_BINARY_DIR) + "/duet";

int run_duet_raw(const std::string& args_and_redirections) {
  const int status = std::system((kDuet + " " + args_and_redirections).c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Exit status of `duet ARGS` with output discarded.
int run_duet(const std::string& args) {
  return run_duet_raw(args + " >/dev/null 2>&1");
}

// Exit status and stderr of `duet ARGS` (stdout discarded).
std::pair<int, std::string> run_duet_stderr(const std::string& args) {
  const std::string err = std::filesystem::temp_directory_path() / "duet_cli_stderr.txt";
  const int code = run_duet_raw(args + " 2>" + err + " >/dev/null");
  std::FILE* f = std::fopen(err.c_str(), "r");
  std::string text;
  if (f) {
    for (int ch; (ch = std::fgetc(f)) != EOF;) text.push_back(static_cast<char>(ch));
    std::fclose(f);
  }
  return {code, text};
}

#define REQUIRE_DUET()                                                          \
  do {                                                                          \
    if (!std::filesystem::exists(kDuet)) GTEST_SKIP() << kDuet << " not built"; \
  } while (0)

TEST(Cli, TrainUsageErrorsExitWith2) {
  REQUIRE_DUET();
  EXPECT_EQ(run_duet("train --arch resnet99 -o /tmp/duet_cli_never"), 2);
  EXPECT_EQ(run_duet("train --optimizer lion -o /tmp/duet_cli_never"), 2);
  EXPECT_EQ(run_duet("train --schedule step -o /tmp/duet_cli_never"), 2);
  EXPECT_EQ(run_duet("train --augment rotate -o /tmp/duet_cli_never"), 2);
  EXPECT_EQ(run_duet("train --lr abc -o /tmp/duet_cli_never"), 2);
  EXPECT_EQ(run_duet("train --task draw -o /tmp/duet_cli_never"), 2);
  EXPECT_EQ(run_duet("train --epochs 0 -o /tmp/duet_cli_never"), 2);
  EXPECT_EQ(run_duet("train --data nosuchset -o /tmp/duet_cli_never"), 2);
  EXPECT_FALSE(std::filesystem::exists("/tmp/duet_cli_never"));
}

TEST(Cli, MissingFilesExitWith1) {
  REQUIRE_DUET();
  EXPECT_EQ(run_duet("eval -m /nonexistent/model.safetensors"), 1);
  EXPECT_EQ(run_duet("classify -m /nonexistent/model.safetensors /nonexistent.png"), 1);
  EXPECT_EQ(run_duet("train --resume -o /nonexistent/run"), 1);
  EXPECT_EQ(run_duet("classify -m /nonexistent/model.safetensors"), 2);  // no IMAGE
}

}  // namespace

TEST(Cli, GenerateTrainSampleAndTheirErrors) {
  REQUIRE_DUET();
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist") && !std::getenv("DUET_DATA"))
    GTEST_SKIP() << "Fashion-MNIST not installed";
  const auto dir = std::filesystem::temp_directory_path() / "duet_cli_gen";
  std::filesystem::remove_all(dir);
  const std::string run = (dir / "run").string(), model = run + "/model.safetensors";
  ASSERT_EQ(run_duet("-t 2 train --task generate --arch unet-xs --width 8 --limit 64 --batch 32 "
                     "--epochs 1 --sample-steps 1 -s 1 -o " +
                     run),
            0);
  const std::string grid = (dir / "bags.png").string();
  EXPECT_EQ(run_duet("sample -m " + model + " --class bag -n 3 --steps 2 -s 1 -o " + grid), 0);
  EXPECT_TRUE(std::filesystem::exists(grid));
  EXPECT_EQ(run_duet("sample -m " + model + " --class 3 --steps 1 -s 1 --out-dir " +
                     (dir / "each").string() + " -n 2"),
            0);
  EXPECT_TRUE(std::filesystem::exists(dir / "each" / "00001-dress.png"));

  // Usage errors: one line naming the problem, exit 2.
  for (const std::string& args :
       {"sample -m " + model + " --class purse -o " + grid,
        "sample -m " + model + " --sampler ddim -o " + grid,
        "sample -m " + model + " --steps 0 -o " + grid, "sample -m " + model, "eval -m " + model,
        "train --task generate --arch resnet20 -o " + run + "2",
        "train --task generate --objective gan -o " + run + "2",
        "train --task classify --sample-cfg 3 -o " + run + "2"}) {
    const auto [code, err] = run_duet_stderr(args);
    EXPECT_EQ(code, 2) << args << ": " << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << args << ": " << err;
  }
  EXPECT_NE(run_duet_stderr("sample -m " + model + " --class purse -o " + grid).second.find("Bag"),
            std::string::npos);  // the error lists the valid class names
  EXPECT_EQ(run_duet("sample -m /nonexistent.safetensors -o " + grid), 1);
  std::filesystem::remove_all(dir);
}
