#include "duet/cli/qat_report.h"

#include <cstdio>
#include <filesystem>
#include <vector>

#include "bench/bench_row.h"
#include "bench/model_macs.h"
#include "duet/cli/compress_report.h"
#include "duet/compress/quantize.h"
#include "duet/models/checkpoint.h"

namespace duet::cli {

namespace fs = std::filesystem;

void print_qat_report(const train::ClassifyRecipe& r, const std::string& run_dir,
                      const std::string& bench) {
  const std::string ptq_path = (fs::path(run_dir) / "ptq.safetensors").string();
  const std::string qat_path = (fs::path(run_dir) / "model.safetensors").string();
  const auto fp32 = compress::load_inference_model(r.qat_from);
  const auto ptq = compress::load_inference_model(ptq_path);
  const auto qat = compress::load_inference_model(qat_path);
  const int64_t params = models::load_model(r.qat_from).model->parameter_count();
  const double macs = bench::forward_macs_per_image(fp32.config);

  const std::string spec = r.test_data.empty() ? r.data : r.test_data;
  const data::Dataset test = load_test_split(spec, fp32.config, r.test_limit);
  std::printf("evaluating fp32, PTQ int8 and QAT int8 on %lld test images of %s\n",
              static_cast<long long>(test.size()), spec.c_str());
  std::fflush(stdout);
  const double acc_fp32 = test_accuracy(*fp32.model, test, fp32.config);
  const double acc_ptq = test_accuracy(*ptq.model, test, ptq.config);
  const double acc_qat = test_accuracy(*qat.model, test, qat.config);
  const std::vector<bench::BenchRow> rows = time_against(qat_path, r.qat_from, bench, 0, stdout);

  std::printf("\n%-16s %14s %14s %14s\n", "", "fp32", "PTQ int8", "QAT int8");
  std::printf("%-16s %14lld %14lld %14lld\n", "parameters", static_cast<long long>(params),
              static_cast<long long>(params), static_cast<long long>(params));
  std::printf("%-16s %14.2f %14.2f %14.2f\n", "MMACs/image", macs / 1e6, macs / 1e6, macs / 1e6);
  std::printf("%-16s %14s %14s %14s\n", "file", mib(double(fs::file_size(r.qat_from))).c_str(),
              mib(double(fs::file_size(ptq_path))).c_str(),
              mib(double(fs::file_size(qat_path))).c_str());
  std::printf(
      "%-16s %13.2f%% %13.2f%% %13.2f%%   (PTQ %+.2f, QAT %+.2f points; %lld test images)\n",
      "accuracy", 100 * acc_fp32, 100 * acc_ptq, 100 * acc_qat, 100 * (acc_ptq - acc_fp32),
      100 * (acc_qat - acc_fp32), static_cast<long long>(test.size()));
  for (const auto& row : rows)
    if (row.batch > 0)
      std::printf("%-16s %11.3f ms %14s %11.3f ms   (int8 %.2fx the float speed)\n",
                  ("batch " + std::to_string(row.batch)).c_str(), row.theirs, "", row.ours,
                  row.ratio);
  const auto& q = qat.config.at("quantization");
  std::printf("int8 layers: %zu; wrote %s (QAT) and %s (PTQ)\n", q.at("int8_layers").size(),
              qat_path.c_str(), ptq_path.c_str());
}

}  // namespace duet::cli
