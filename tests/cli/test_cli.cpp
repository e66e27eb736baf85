// The `duet` command's contract for train / eval / classify errors: one line on stderr and exit
// code 2 for usage mistakes, 1 for runtime failures. Runs the built binary; skipped when it has
// not been built (the test binary does not depend on it).
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace {

const std::string kDuet = std::string(DUET_BINARY_DIR) + "/duet";

// Exit status of `duet ARGS` with output discarded.
int run_duet(const std::string& args) {
  const std::string cmd = kDuet + " " + args + " >/dev/null 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
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
