// The `duet` flags of verified sampling, generative classification and corruptions on the shipped
// models: bad combinations are one-line usage errors (exit 2); tiny good runs succeed and
// best-of-1 writes the same PNG as plain sampling. Skipped when the binary or models are missing.
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "cli_run.h"

namespace {

using duet::cli_test::kClf;
using duet::cli_test::kDuet;
using duet::cli_test::kGen;
using duet::cli_test::Result;

Result run(const std::string& args) {
  return duet::cli_test::run_duet(args, "gap");
}

bool ready() {
  return std::filesystem::exists(kDuet) && std::filesystem::exists(kGen) &&
         std::filesystem::exists(kClf);
}

}  // namespace

TEST(CliGap, BadFlagsAreOneLineUsageErrors) {
  if (!ready()) GTEST_SKIP() << "duet or the shipped models are missing";
  const std::string png = (std::filesystem::temp_directory_path() / "duet_cli_gap.png").string();
  for (const std::string& args : {
           "sample -m " + kGen + " --best-of 2 -o " + png,                 // no verifier
           "sample -m " + kGen + " --verify-with " + kGen + " -o " + png,  // not a classifier
           "sample -m " + kGen + " --verify-with " + kClf + " --best-of 0 -o " + png,
           "eval -m " + kGen + " --classifier " + kClf + " --best-of 2",  // no verifier
           "eval -m " + kGen + " --classifier " + kClf + " --verify-with " + kGen,
           "eval -m " + kGen + " --classifier " + kClf + " --verify-with " + kClf + " --best-of 0",
           "eval -m " + kGen + " --classifier " + kClf + " --corrupt noise:3",  // judge: no corrupt
           "eval -m " + kGen + " --generative --classifier " + kClf,            // two roles
           "eval -m " + kClf + " --generative",                                 // not a generator
           "eval -m " + kClf + " --verify-with " + kClf,                        // judge-only flag
           "eval -m " + kClf + " --corrupt fog:3",
           "eval -m " + kClf + " --corrupt noise:6",
           "eval -m " + kClf + " --corrupt noise",
           "eval -m " + kGen + " --generative --gen-times 0",
           "eval -m " + kGen + " --generative --gen-t-min 0.9 --gen-t-max 0.1",
           "eval -m " + kGen + " --generative --gen-signal-power -1",
           "eval -m " + kGen + " --gen-signal-power 2",  // needs --generative
           "classify -m " + kClf + " --generative " + png,
       }) {
    if (args.starts_with("classify")) {  // needs an image to get past reading it
      ASSERT_EQ(run("sample -m " + kGen + " --class bag -n 1 --steps 1 -s 1 -o " + png).code, 0);
    }
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
  }
}

TEST(CliGap, SmallRunsWork) {
  if (!ready()) GTEST_SKIP() << "duet or the shipped models are missing";
  const auto dir = std::filesystem::temp_directory_path() / "duet_cli_gap";
  std::filesystem::create_directories(dir);
  const std::string a = (dir / "a.png").string(), b = (dir / "b.png").string();
  const std::string base = "sample -m " + kGen + " --class bag -n 3 --steps 2 -s 4 -o ";
  ASSERT_EQ(run(base + a).code, 0);
  const Result v = run(base + b + " --verify-with " + kClf + " --best-of 1");
  ASSERT_EQ(v.code, 0) << v.err;
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  const std::string ba((std::istreambuf_iterator<char>(fa)), {}),
      bb((std::istreambuf_iterator<char>(fb)), {});
  EXPECT_EQ(ba, bb);  // best-of-1 is plain sampling
  const Result v2 = run(base + b + " --verify-with " + kClf + " --best-of 2");
  EXPECT_EQ(v2.code, 0) << v2.err;
  EXPECT_NE(v2.out.find("best-of-2"), std::string::npos);

  const Result c = run("classify --generative -m " + kGen + " --gen-times 2 --json " + a);
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.out.find("\"top1\""), std::string::npos) << c.out;
  std::filesystem::remove_all(dir);
}
