// `duet reparam -m IN -o OUT`: a RepVGG checkpoint in its training form (3x3 + 1x1 + identity
// branches, each with BatchNorm) re-parameterised into the deploy form (one 3x3 conv with bias per
// block), written atomically with a config that says so. Prints what changed (parameters, MACs,
// file size), checks that the saved file computes the same logits, and times both forms against
// each other in one alternating run (the common bench helper).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_row.h"
#include "bench/infer_bench.h"
#include "bench/model_macs.h"
#include "duet/autograd/autograd.h"
#include "duet/cli/commands.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/models/repvgg.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"
#include "duet/tensor/rng.h"

namespace duet::cli {
namespace {

namespace fs = std::filesystem;

// Logits of both forms must agree this closely (the bound for re-parameterisation).
constexpr double kTolerance = 1e-4;

struct ReparamOptions {
  std::string in, out;
  int64_t check = 64;  // seeded random inputs for the logits check
  uint64_t seed = 0;
  std::string bench = "quick";  // quick | full | none
  std::vector<int64_t> batches = {64, 1};
};

// How a config names its model in messages: "resnet20", "repvgg", "shufflenet_v2", ...
std::string model_name(const nlohmann::json& config) {
  std::string name = config.value("family", std::string("unknown"));
  if (config.contains("depth") && config.at("depth").is_number_integer())
    name += std::to_string(config.at("depth").get<int64_t>());
  return name;
}

std::vector<float> logits_of(nn::Module& model, const Tensor& x) {
  autograd::NoGradGuard no_grad;
  model.eval();
  return model.forward(x).to_vector();
}

std::string mib(uintmax_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

// Deploy vs train form on the same inputs, alternating rounds (bench/infer_bench): once as the
// models are built (the branches are what re-parameterisation removes), once as `duet eval` runs
// them (its folding already merges the branches of a train-form model at load time).
void time_both(const ReparamOptions& o) {
  for (bool fold : {false, true}) {
    bench::InferBenchOptions b;
    b.model = o.out;
    b.vs = o.in;
    b.batches = o.batches;
    b.threads = num_threads();
    b.quick = o.bench == "quick";
    b.seed = o.seed;
    b.fold = fold;
    std::vector<std::string> notes;
    const auto rows = bench::bench_infer(b, [&](const std::string& n) { notes.push_back(n); });
    std::printf("speed, %s (median of alternating rounds, %d threads):\n",
                fold ? "folded for inference as duet eval runs them"
                     : "as built (conv, BatchNorm, ReLU as separate ops)",
                b.threads);
    for (const auto& r : rows) {
      if (r.unit != "ms") continue;  // the FMA peak row
      std::printf(
          "  batch %4ld: train form %9.3f ms, deploy form %9.3f ms, deploy/train "
          "throughput %.2fx\n",
          long(r.batch), r.theirs, r.ours, r.ratio);
    }
  }
}

void run_reparam(const ReparamOptions& o) {
  if (o.in.empty() || o.out.empty()) fail_usage("reparam: -m IN and -o OUT are both required");
  if (o.check < 1 || o.check > 4096)
    fail_usage("reparam: --check must be in 1..4096, got ", o.check);
  if (o.bench != "quick" && o.bench != "full" && o.bench != "none")
    fail_usage("reparam: --bench must be quick, full or none, got '", o.bench, "'");
  if (fs::exists(o.in) && fs::exists(o.out) && fs::equivalent(o.in, o.out))
    fail_usage("reparam: -o ", o.out, " is the input file; write the deploy form elsewhere");

  models::LoadedModel loaded = models::load_model(o.in);
  const nlohmann::json& config = loaded.config;
  if (config.value("family", std::string()) != "repvgg")
    fail_usage("reparam: ", o.in, " is a ", model_name(config),
               "; only repvgg_* models have branches to merge");
  if (config.value("deploy", false))
    fail_usage("reparam: ", o.in,
               " is already in the deploy form (one 3x3 conv per block); nothing to merge");
  auto* train_form = dynamic_cast<models::RepVGG*>(loaded.model.get());
  DUET_CHECK(train_form != nullptr, "reparam: ", o.in, ": the repvgg config built a ",
             loaded.model->type_name());
  train_form->eval();

  const std::shared_ptr<models::RepVGG> deploy = models::reparameterize_repvgg(*train_form);
  deploy->eval();
  nlohmann::json out_config = config;  // keeps preprocess, class names, ...
  out_config["deploy"] = true;
  models::save_model(o.out, *deploy, out_config);

  // The check runs on the file as written: what eval / classify / info will load.
  const models::LoadedModel reloaded = models::load_model(o.out);
  Shape shape = models::input_shape(config);
  shape[0] = o.check;
  Generator gen(o.seed);
  const Tensor x = Tensor::normal(shape, gen);
  const std::vector<float> want = logits_of(*train_form, x), got = logits_of(*reloaded.model, x);
  double diff = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    diff = std::max(diff, std::fabs(double(want[i]) - double(got[i])));
    scale = std::max(scale, std::fabs(double(want[i])));
  }
  if (want.size() != got.size() || !(diff <= kTolerance)) {
    std::error_code ec;
    fs::remove(o.out, ec);
    fail("reparam: the deploy form disagrees with ", o.in, ": max |logits difference| ", diff,
         " > ", kTolerance, " on ", o.check, " random inputs; ", o.out, " not written");
  }

  const double macs_train = bench::forward_macs_per_image(config);
  const double macs_deploy = bench::forward_macs_per_image(out_config);
  std::printf("reparam %s (repvgg, train form) -> %s (deploy form): %zu blocks merged\n",
              o.in.c_str(), o.out.c_str(), train_form->blocks().size());
  std::printf("%-16s %16s %16s\n", "", "train form", "deploy form");
  std::printf("%-16s %16lld %16lld\n", "parameters",
              static_cast<long long>(train_form->parameter_count()),
              static_cast<long long>(deploy->parameter_count()));
  std::printf("%-16s %15.2fM %15.2fM\n", "MACs per image", macs_train / 1e6, macs_deploy / 1e6);
  std::printf("%-16s %16s %16s\n", "file size", mib(fs::file_size(o.in)).c_str(),
              mib(fs::file_size(o.out)).c_str());
  std::printf(
      "logits check: max |train - deploy| %.3g over %lld seeded random inputs (seed %llu, "
      "max |logit| %.3g), limit %.0e\n",
      diff, static_cast<long long>(o.check), static_cast<unsigned long long>(o.seed), scale,
      kTolerance);
  std::fflush(stdout);
  if (o.bench != "none") time_both(o);
}

}  // namespace

Action add_reparam_command(CLI::App& app) {
  auto o = std::make_shared<ReparamOptions>();
  CLI::App* sub = app.add_subcommand(
      "reparam", "merge a RepVGG's train-time branches into one 3x3 conv per block (deploy form)");
  sub->add_option("-m,--model", o->in, "RepVGG checkpoint in the training form")->required();
  sub->add_option("-o,--output", o->out, "where to write the deploy-form checkpoint")->required();
  sub->add_option("--check", o->check, "random inputs for the logits check (default 64)");
  sub->add_option("-s,--seed", o->seed, "seed of the check and timing inputs (default 0)");
  sub->add_option("--bench", o->bench,
                  "time deploy vs train form: quick (default), full (more rounds) or none");
  sub->add_option("--batch", o->batches, "batch sizes timed, comma-separated (default 64,1)")
      ->delimiter(',');
  return [o] { run_reparam(*o); };
}

}  // namespace duet::cli
