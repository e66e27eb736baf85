// `duet gap` on the shipped models: bad input is a one-line error (exit 2 for usage) and leaves
// no report behind; a tiny run writes report.json with every section and a self-contained
// report.html, and --json prints the same JSON. Skipped when the binary or models are missing.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cli_run.h"

namespace {

namespace fs = std::filesystem;
using duet::cli_test::kClf;
using duet::cli_test::kDuet;
using duet::cli_test::kGen;
using duet::cli_test::Result;
using duet::cli_test::slurp;

Result run(const std::string& args) {
  return duet::cli_test::run_duet(args, "gap_report");
}

bool ready() {
  return fs::exists(kDuet) && fs::exists(kGen) && fs::exists(kClf);
}

}  // namespace

TEST(CliGapReport, BadInputIsOneLineAndWritesNothing) {
  if (!ready()) GTEST_SKIP() << "duet or the shipped models are missing";
  const fs::path dir = fs::temp_directory_path() / "duet_cli_gap_report_bad";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string file = (dir / "a_file").string();
  std::ofstream(file) << "x";
  const std::string out = (dir / "out").string();
  const std::string ok = " --per-class 2 --steps 1 --robust-images 2 -o " + out;
  for (const std::string& args : {
           "gap --classifier " + kClf + " --generator " + kClf + ok,  // classifier as generator
           "gap --classifier " + kGen + " --generator " + kGen + ok,  // generator as classifier
           "gap --classifier " + kClf + " --generator " + kGen + " --judge " + kGen + ok,
           "gap --classifier " + kClf + " --generator " + kGen + " --severities 0" + ok,
           "gap --classifier " + kClf + " --generator " + kGen + " --severities 1,,2" + ok,
           "gap --classifier " + kClf + " --generator " + kGen + " --families fog" + ok,
           "gap --classifier " + kClf + " --generator " + kGen + " --best-of 0" + ok,
           "gap --classifier " + kClf + " --generator " + kGen + " --grid-columns 3" + ok,
           "gap --classifier " + kClf + " --generator " + kGen + " --sampler ddim" + ok,
           "gap --classifier " + kClf + " --generator " + kGen + " --per-class 2 -o " + file,
       }) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
    EXPECT_FALSE(fs::exists(out)) << args;  // every check runs before the folder is made
  }
  // Flags CLI11 itself rejects: exit 2, its message names the flag (plus a "--help" hint line).
  for (const auto& [args, flag] : std::vector<std::pair<std::string, std::string>>{
           {"gap --classifier " + kClf + ok, "--generator"},
           {"gap --generator " + kGen + ok, "--classifier"},
           {"gap --classifier " + kClf + " --generator " + kGen + ok + " --steps 0", "--steps"}}) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.err;
    EXPECT_NE(r.err.find(flag), std::string::npos) << args << ": " << r.err;
  }
  // --unified must be a unified model, not a plain generator.
  const Result unified =
      run("gap --classifier " + kClf + " --generator " + kGen + " --unified " + kGen + ok);
  EXPECT_EQ(unified.code, 2);
  EXPECT_EQ(std::count(unified.err.begin(), unified.err.end(), '\n'), 1) << unified.err;
  EXPECT_NE(unified.err.find("--unified"), std::string::npos) << unified.err;
  EXPECT_FALSE(fs::exists(out));
  // A missing model file: one line, a non-zero exit, no report.
  const Result missing =
      run("gap --classifier " + (dir / "nope.safetensors").string() + " --generator " + kGen + ok);
  EXPECT_NE(missing.code, 0);
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << missing.err;
  EXPECT_NE(missing.err.find("nope.safetensors"), std::string::npos) << missing.err;
  EXPECT_FALSE(fs::exists(fs::path(out) / "report.json"));
}

TEST(CliGapReport, TinyRunWritesJsonAndSelfContainedHtml) {
  if (!ready()) GTEST_SKIP() << "duet or the shipped models are missing";
  const fs::path out = fs::temp_directory_path() / "duet_cli_gap_report_run";
  fs::remove_all(out);
  const Result r = run("-t 2 gap --classifier " + kClf + " --generator " + kGen +
                       " --per-class 4 --steps 1 --best-of 2 --robust-images 4 --severities 2 "
                       "--families noise,blur --gen-times 1 --grid-columns 2 -s 1 --json -o " +
                       out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("understanding"), std::string::npos) << r.err;  // progress per section
  EXPECT_NE(r.err.find("robustness 3/3"), std::string::npos) << r.err;
  const auto file = nlohmann::json::parse(slurp(out / "report.json"));
  const auto printed = nlohmann::json::parse(r.out);
  EXPECT_EQ(file, printed);
  for (const char* key : {"provenance", "settings", "gap", "understanding", "generation",
                          "per_class", "robustness", "targets", "timings"})
    EXPECT_TRUE(file.contains(key)) << key;
  EXPECT_EQ(file["generation"].size(), 3u);
  EXPECT_EQ(file["per_class"].size(), 10u);
  EXPECT_EQ(file["robustness"]["points"].size(), 3u);
  EXPECT_EQ(file["gap"]["understanding"]["images"], 10000);
  EXPECT_EQ(file["settings"]["seed"], 1);
  EXPECT_NE(file["provenance"]["command"].get<std::string>().find("--grid-columns 2"),
            std::string::npos);
  EXPECT_EQ(file["provenance"]["models"]["generator"]["sha256"].get<std::string>().size(), 64u);
  EXPECT_TRUE(file["provenance"]["models"]["judge"].is_null());  // no --judge: the verifier judges
  EXPECT_NE(file["targets"][0]["detail"].get<std::string>().find("optimistic"), std::string::npos);
  // The shipped ResNet-20's test accuracy (models/README.md: 93.56 %, folded: within rounding).
  EXPECT_NEAR(file["gap"]["understanding"]["accuracy"].get<double>(), 0.9356, 0.0005);
  const std::string html = slurp(out / "report.html");
  EXPECT_NE(html.find("data:image/png;base64,"), std::string::npos);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_TRUE(html.ends_with("</html>\n"));
  // No temp files left beside the report.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(out)) ++entries, (void)e;
  EXPECT_EQ(entries, 2);
}

// A unified model (trained here for a few steps) joins the report: its accuracy next to the
// classifier's, its samples as one more generation mode, and two more target rows.
TEST(CliGapReport, UnifiedModelJoinsTheReport) {
  if (!ready()) GTEST_SKIP() << "duet or the shipped models are missing";
  const fs::path dir = fs::temp_directory_path() / "duet_cli_gap_report_unified";
  fs::remove_all(dir);
  const Result trained = duet::cli_test::train_tiny_unified((dir / "u").string(), "gap_report");
  ASSERT_EQ(trained.code, 0) << trained.err;
  const std::string model = (dir / "u" / "model.safetensors").string();
  const Result r =
      run("-t 2 gap --classifier " + kClf + " --generator " + kGen + " --unified " + model +
          " --per-class 2 --steps 1 --best-of 2 --robust-images 2 --severities 2 "
          "--families noise --gen-times 1 --grid-columns 2 -s 1 -o " +
          (dir / "gap").string());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(slurp(dir / "gap" / "report.json"));
  ASSERT_EQ(j["generation"].size(), 4u);
  EXPECT_EQ(j["generation"][3]["name"], "unified");
  const auto& u = j["gap"]["understanding"];
  ASSERT_TRUE(u["unified_accuracy"].is_number());
  EXPECT_EQ(j["understanding"]["unified"]["count"], 10000);
  // The separate pair's parameters: the shipped ResNet-20 (272,186) and unet-xs (681,009).
  EXPECT_EQ(u["separate_parameters"], 272186 + 681009);
  EXPECT_EQ(j["provenance"]["models"]["unified"]["sha256"].get<std::string>().size(), 64u);
  int unified_rows = 0;
  for (const auto& t : j["targets"])
    if (t["target"].get<std::string>().find("unified") != std::string::npos) {
      ++unified_rows;
      EXPECT_TRUE(t["measured"].is_number());
    }
  EXPECT_EQ(unified_rows, 2);
  EXPECT_NE(slurp(dir / "gap" / "report.html").find("unified model"), std::string::npos);
  fs::remove_all(dir);
}
