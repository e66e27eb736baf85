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

// The whole file as text (empty when it cannot be read).
std::string slurp(const std::string& path) {
  std::string text;
  if (std::FILE* f = std::fopen(path.c_str(), "r")) {
    for (int ch; (ch = std::fgetc(f)) != EOF;) text.push_back(static_cast<char>(ch));
    std::fclose(f);
  }
  return text;
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

TEST(Cli, ParserErrorsAreOneLine) {
  REQUIRE_DUET();
  for (const std::string args : {"", "train --bogus-flag 1 -o /tmp/duet_cli_never", "eval",
                                 "train --lr abc", "sample -m x.safetensors --steps"}) {
    const auto [code, err] = run_duet_stderr(args);
    EXPECT_EQ(code, 2) << args << ": " << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << args << ": " << err;
    EXPECT_NE(err.find("--help"), std::string::npos) << err;
  }
  EXPECT_EQ(run_duet("--help"), 0);
  EXPECT_EQ(run_duet("eval --help"), 0);
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
  // The grid's format follows -o's name: JPEG for .jpg (its SOI marker, FF D8).
  const std::string jpeg = (dir / "bags.jpg").string();
  EXPECT_EQ(run_duet("sample -m " + model + " --class bag -n 2 --steps 1 -s 1 -o " + jpeg), 0);
  EXPECT_EQ(slurp(jpeg).substr(0, 2), std::string("\xFF\xD8"));

  // Usage errors: one line naming the problem, exit 2.
  for (const std::string& args :
       {"sample -m " + model + " --class purse -o " + grid,
        "sample -m " + model + " --sampler ddim -o " + grid,
        "sample -m " + model + " --steps 0 -o " + grid, "sample -m " + model + " -n 0 -o " + grid,
        "sample -m " + model + " -o " + (dir / "bags.gif").string(), "sample -m " + model,
        "eval -m " + model, "eval -m " + model + " --tta flip --classifier " + model,
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

// `duet quantize` on the shipped classifier: the int8 file is written and then works with every
// inference command (info, eval, classify, bench infer --vs); its errors are one line with the
// right exit code; the training-side loader refuses it by name.
TEST(Cli, QuantizeAndUseTheInt8Model) {
  REQUIRE_DUET();
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist") && !std::getenv("DUET_DATA"))
    GTEST_SKIP() << "Fashion-MNIST not installed";
  const std::string shipped = std::string(DUET_SOURCE_DIR) + "/models/resnet20-fmnist.safetensors";
  if (!std::filesystem::exists(shipped)) GTEST_SKIP() << shipped << " missing";
  const auto dir = std::filesystem::temp_directory_path() / "duet_cli_quantize";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string out = (dir / "int8.safetensors").string();
  const std::string json = (dir / "report.json").string();
  ASSERT_EQ(run_duet_raw("-t 2 quantize -m " + shipped + " -o " + out +
                         " --calib fashion-mnist:200 --method percentile --eval-limit 300 "
                         "--bench none --json >" +
                         json + " 2>/dev/null"),
            0);
  const std::string text = slurp(json);
  // The report carries both accuracies on the same 300 test images and the int8 layer count.
  EXPECT_NE(text.find("\"accuracy\":{\"float\":"), std::string::npos) << text;
  EXPECT_NE(text.find("\"test_images\":300"), std::string::npos) << text;
  EXPECT_NE(text.find("\"int8_layers\":21"), std::string::npos) << text;
  EXPECT_NE(text.find("\"weight_bits\":8"), std::string::npos) << text;
  EXPECT_LT(std::filesystem::file_size(out), std::filesystem::file_size(shipped) / 3);

  const std::string info = (dir / "info.txt").string();
  EXPECT_EQ(run_duet_raw("info -m " + out + " >" + info + " 2>/dev/null"), 0);
  EXPECT_NE(slurp(info).find("8-bit weights"), std::string::npos) << slurp(info);
  // 7-bit weights: the report and info say so.
  const std::string out7 = (dir / "int8-w7.safetensors").string();
  ASSERT_EQ(run_duet_raw("-t 2 quantize -m " + shipped + " -o " + out7 +
                         " --calib fashion-mnist:200 --weight-bits 7 --eval-limit 300 "
                         "--bench none --json >" +
                         json + " 2>/dev/null"),
            0);
  EXPECT_NE(slurp(json).find("\"weight_bits\":7"), std::string::npos) << slurp(json);
  EXPECT_EQ(run_duet_raw("info -m " + out7 + " >" + info + " 2>/dev/null"), 0);
  EXPECT_NE(slurp(info).find("7-bit weights"), std::string::npos) << slurp(info);
  EXPECT_EQ(run_duet("eval -m " + out + " --limit 100"), 0);
  EXPECT_EQ(run_duet("eval -m " + out + " --limit 100 --tta flip"), 0);
  EXPECT_EQ(run_duet("eval -m " + out + " --limit 100 --tta five-crop"), 2);
  // Number flags say what they want (not CLI11's "Value 0 not in range 0.000000 to 1.79e308"),
  // and NaN is no number for them.
  for (const auto& [args, want] : std::vector<std::pair<std::string, std::string>>{
           {"eval -m " + out + " --batch 0", "--batch: must be > 0, got 0"},
           {"eval -m " + out + " --limit -5", "--limit: must be >= 0, got -5"},
           {"-t -1 info -m " + out, "--threads: must be >= 0, got -1"},
           {"quantize -m " + shipped + " -o " + out + "x --max-layer-error nan",
            "--max-layer-error: must be >= 0, got nan"},
           {"quantize -m " + shipped + " -o " + out + "x --percentile 101",
            "--percentile must be in (0, 100], got 101"}}) {
    const auto [code, err] = run_duet_stderr(args);
    EXPECT_EQ(code, 2) << args << ": " << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << args << ": " << err;
    EXPECT_NE(err.find(want), std::string::npos) << args << ": " << err;
  }
  EXPECT_EQ(run_duet("bench infer -m " + out + " --vs " + shipped + " --batch 4 --quick"), 0);

  for (const std::string& args :
       {"quantize -m " + shipped + " -o " + out + " --method entropy",
        "quantize -m " + shipped + " -o " + out + " --keep-fp32 body.9",
        "quantize -m " + shipped + " -o " + out + " --calib fashion-mnist:0",
        "quantize -m " + shipped + " -o " + out + " --weight-bits 9",
        "quantize -m " + out + " -o " + (dir / "again.safetensors").string()}) {
    const auto [c, e] = run_duet_stderr(args + " --bench none --eval-limit 10");
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << args << ": " << e;
    EXPECT_NE(c, 0) << args;
  }
  EXPECT_EQ(run_duet("quantize -m " + shipped + " -o " + out + " --method entropy"), 2);
  // Re-quantising an int8 file: it is not a float model (runtime error naming the file).
  const auto [c1, e1] = run_duet_stderr("quantize -m " + out + " -o " + (dir / "x").string());
  EXPECT_EQ(c1, 1);
  EXPECT_NE(e1.find("int8 inference checkpoint"), std::string::npos) << e1;
  std::filesystem::remove_all(dir);
}

// A generator through `duet quantize`: the JSON report, a file that samples, the wrong family's
// flags refused with one line.
TEST(Cli, QuantizeAGenerator) {
  REQUIRE_DUET();
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist") && !std::getenv("DUET_DATA"))
    GTEST_SKIP() << "Fashion-MNIST not installed";
  const std::string gen = std::string(DUET_SOURCE_DIR) + "/models/unet-xs-fmnist.safetensors";
  const std::string clf = std::string(DUET_SOURCE_DIR) + "/models/resnet20-fmnist.safetensors";
  if (!std::filesystem::exists(gen) || !std::filesystem::exists(clf)) GTEST_SKIP() << "no models";
  const auto dir = std::filesystem::temp_directory_path() / "duet_cli_quantize_gen";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string out = (dir / "int8.safetensors").string();
  const std::string json = (dir / "report.json").string();
  ASSERT_EQ(run_duet_raw("-t 2 quantize -m " + gen + " -o " + out + " --calib fashion-mnist:100 " +
                         "--classifier " + clf + " --per-class 2 --steps 2 --bench none --json >" +
                         json + " 2>/dev/null"),
            0);
  const std::string text = slurp(json);
  // Every one of unet-xs's 38 convolutions is int8 at the default error limit; both sides judged.
  EXPECT_NE(text.find("\"int8_layers\":38"), std::string::npos) << text;
  EXPECT_NE(text.find("\"cond_acc\":{\"float\":"), std::string::npos) << text;
  EXPECT_NE(text.find("\"fid_ref\":{\"float\":"), std::string::npos) << text;
  EXPECT_LT(std::filesystem::file_size(out), std::filesystem::file_size(gen) / 2);
  EXPECT_EQ(run_duet("sample -m " + out + " --class bag -n 2 --steps 2 -o " +
                     (dir / "bags.png").string()),
            0);
  EXPECT_TRUE(std::filesystem::exists(dir / "bags.png"));
  EXPECT_EQ(run_duet("info -m " + out), 0);
  for (const std::string& args :
       {"quantize -m " + gen + " -o " + (dir / "x").string() + " --eval-limit 10",
        "quantize -m " + clf + " -o " + (dir / "x").string() + " --classifier " + clf}) {
    const auto [c, e] = run_duet_stderr(args + " --bench none");
    EXPECT_EQ(c, 2) << args << ": " << e;
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << args << ": " << e;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "x"));
  std::filesystem::remove_all(dir);
}
