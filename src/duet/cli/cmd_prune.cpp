// `duet prune -m IN --keep 0.5 --finetune-epochs 3 -o OUT`: structured (channel) pruning of a
// classifier. Removes the least important channels of every channel group (compress/prune.h) until
// the network fits the budget, fine-tunes the smaller network on the training data (a normal
// classification run started from it, in a run folder with logs and checkpoints), writes OUT
// atomically, and prints the table every compress command prints: parameters, MACs, file size,
// accuracy of the original, of the pruned network before and after fine-tuning, and the measured
// speed of OUT against IN in one alternating run. A pruned model that is not faster says so.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "duet/cli/commands.h"
#include "duet/cli/compress_report.h"
#include "duet/compress/bn_recalibrate.h"
#include "duet/compress/prune.h"
#include "duet/models/checkpoint.h"
#include "duet/tensor/error.h"
#include "duet/train/distill_digest.h"
#include "duet/train/trainer.h"

namespace duet::cli {
namespace {

namespace fs = std::filesystem;

struct PruneFlags {
  std::string in, out, run_dir;
  compress::PruneOptions prune;
  std::string criterion = "l1", budget = "macs", scope = "inner";
  // Fine-tuning: a classification run from the pruned network (its recipe flags, own defaults:
  // a short cosine schedule at a low rate, since the weights are already trained).
  int64_t finetune_epochs = 3;
  train::ClassifyRecipe recipe = [] {
    train::ClassifyRecipe r;
    r.lr = 0.02;
    r.schedule = "cosine";
    r.augment = "crop,flip";
    r.seed = 0;
    return r;
  }();
  bool distill = false;     // fine-tune with the original as the teacher (train --teacher)
  int64_t bn_calib = 2000;  // training images that re-estimate BatchNorm statistics (0: off)
  int64_t eval_limit = 0;
  std::string bench = "quick";
  bool json = false;
};

// OUT without its extension + ".finetune": where the fine-tuning run keeps its logs.
std::string default_run_dir(const std::string& out) {
  fs::path p(out);
  return (p.parent_path() / (p.stem().string() + ".finetune")).string();
}

void run_prune(PruneFlags f) {
  f.prune.criterion = compress::prune_criterion_from_string(f.criterion);
  f.prune.budget = compress::prune_budget_from_string(f.budget);
  f.prune.scope = compress::prune_scope_from_string(f.scope);
  check_bench_mode("prune", f.bench);
  if (f.finetune_epochs < 0)
    fail_usage("prune: --finetune-epochs must be >= 0, got ", f.finetune_epochs);
  if (fs::exists(f.out) && fs::exists(f.in) && fs::equivalent(f.in, f.out))
    fail_usage("prune: -o must differ from -m (the original is kept for the comparison)");
  if (f.run_dir.empty()) f.run_dir = default_run_dir(f.out);
  // The fine-tuning recipe's flags are checked before any work (the file stands in for the
  // pruned checkpoint that does not exist yet).
  train::ClassifyRecipe check = f.recipe;
  check.init = f.in;
  check.validate();
  std::FILE* log = f.json ? stderr : stdout;

  models::LoadedModel original = models::load_model(f.in);
  const compress::PruneResult pruned =
      compress::prune_channels(*original.model, original.config, f.prune);
  nlohmann::json config = pruned.config;
  config["pruned"] = {{"from", f.in},
                      {"from_sha256", train::sha256_file(f.in)},
                      {"keep", f.prune.keep},
                      {"budget", compress::to_string(f.prune.budget)},
                      {"criterion", compress::to_string(f.prune.criterion)},
                      {"scope", compress::to_string(f.prune.scope)},
                      {"multiple", f.prune.multiple},
                      {"finetune_epochs", f.finetune_epochs},
                      {"distill", f.distill}};
  std::fprintf(log,
               "prune %s: keep %.3g of the %s (%s criterion, scope %s): every prunable group "
               "keeps %.1f%% of its channels\n",
               f.in.c_str(), f.prune.keep, compress::to_string(f.prune.budget), f.criterion.c_str(),
               f.scope.c_str(), 100 * pruned.fraction);
  if (!f.json) {
    std::printf("%-18s %8s %8s\n", "channel group", "before", "after");
    for (const auto& g : pruned.groups)
      std::printf("%-18s %8lld %8lld\n", g.name.c_str(), static_cast<long long>(g.before),
                  static_cast<long long>(g.after));
  }
  std::fflush(stdout);

  // The kept channels now see other inputs than their BatchNorm statistics describe.
  if (f.bn_calib > 0) {
    std::fprintf(log, "re-estimating BatchNorm statistics on %lld training images of %s\n",
                 static_cast<long long>(f.bn_calib), f.recipe.data.c_str());
    compress::recalibrate_batchnorm(*pruned.model,
                                    training_batches("prune: --data", f.recipe.data, f.bn_calib,
                                                     uint64_t(f.recipe.seed), config));
  }

  // Accuracy before fine-tuning, on the same test images as everything else.
  const data::Dataset test = load_test_split(f.recipe.data, original.config, f.eval_limit);
  std::fprintf(log, "evaluating on %lld test images of %s\n", static_cast<long long>(test.size()),
               f.recipe.data.c_str());
  std::fflush(log);
  const double acc_original = test_accuracy(*original.model, test, original.config);
  const double acc_pruned = test_accuracy(*pruned.model, test, config);

  double acc_finetuned = acc_pruned;
  if (f.finetune_epochs == 0) {
    models::save_model(f.out, *pruned.model, config);
  } else {
    fs::create_directories(f.run_dir);
    const std::string start = (fs::path(f.run_dir) / "pruned.safetensors").string();
    models::save_model(start, *pruned.model, config);
    train::ClassifyRecipe r = f.recipe;
    r.init = start;
    if (f.distill) r.teacher = f.in;
    r.arch = config.value("arch", std::string("pruned"));
    r.epochs = f.finetune_epochs;
    r.test_limit = f.eval_limit;
    train::TrainRunOptions o;
    o.out_dir = f.run_dir;
    o.lines_on_stderr = f.json;
    std::fprintf(log, "fine-tuning for %lld epochs in %s (lr %g, %s%s)\n",
                 static_cast<long long>(r.epochs), f.run_dir.c_str(), r.lr, r.schedule.c_str(),
                 f.distill ? ", distilling from the original" : "");
    std::fflush(log);
    train::train_classifier(r, o);
    models::LoadedModel tuned =
        models::load_model((fs::path(f.run_dir) / "model.safetensors").string());
    models::save_model(f.out, *tuned.model, tuned.config);
    acc_finetuned = test_accuracy(*tuned.model, test, tuned.config);
  }

  const double bytes_in = double(fs::file_size(f.in)), bytes_out = double(fs::file_size(f.out));
  const auto rows = time_against(f.out, f.in, f.bench, uint64_t(f.recipe.seed), log);

  nlohmann::json j = {
      {"model", f.in},
      {"output", f.out},
      {"parameters", {{"original", pruned.params_before}, {"pruned", pruned.params_after}}},
      {"macs_per_image", {{"original", pruned.macs_before}, {"pruned", pruned.macs_after}}},
      {"file_bytes", {{"original", bytes_in}, {"pruned", bytes_out}}},
      {"accuracy",
       {{"original", acc_original}, {"pruned", acc_pruned}, {"finetuned", acc_finetuned}}},
      {"test_images", test.size()},
      {"fraction", pruned.fraction},
      {"bn_calib_images", f.bn_calib},
      {"prune", config["pruned"]}};
  nlohmann::json groups = nlohmann::json::array(), speed = nlohmann::json::array();
  for (const auto& g : pruned.groups)
    groups.push_back({{"name", g.name}, {"before", g.before}, {"after", g.after}});
  j["groups"] = groups;
  for (const auto& r : rows)
    if (r.batch > 0)
      speed.push_back({{"batch", r.batch},
                       {"pruned_ms", r.ours},
                       {"original_ms", r.theirs},
                       {"speedup", r.ratio}});
  j["speed"] = speed;
  if (f.finetune_epochs > 0) j["finetune_run"] = f.run_dir;
  if (f.json) {
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("\n%-16s %14s %14s\n", "", "original", "pruned");
  std::printf("%-16s %14lld %14lld   (%.1f%%)\n", "parameters",
              static_cast<long long>(pruned.params_before),
              static_cast<long long>(pruned.params_after),
              100.0 * double(pruned.params_after) / double(pruned.params_before));
  std::printf("%-16s %14.2f %14.2f   (%.1f%%)\n", "MMACs/image", pruned.macs_before / 1e6,
              pruned.macs_after / 1e6, 100.0 * pruned.macs_after / pruned.macs_before);
  std::printf("%-16s %14s %14s\n", "file", mib(bytes_in).c_str(), mib(bytes_out).c_str());
  std::printf(
      "%-16s %13.2f%% %13.2f%%   (%+.2f points; before fine-tuning %.2f%%; %lld test "
      "images)\n",
      "accuracy", 100 * acc_original, 100 * acc_finetuned, 100 * (acc_finetuned - acc_original),
      100 * acc_pruned, static_cast<long long>(test.size()));
  for (const auto& r : rows)
    if (r.batch > 0)
      std::printf("%-16s %11.3f ms %11.3f ms   (pruned %.2fx the original's speed%s)\n",
                  ("batch " + std::to_string(r.batch)).c_str(), r.theirs, r.ours, r.ratio,
                  r.ratio < 1.0 ? ": NOT faster" : "");
  std::printf("wrote %s\n", f.out.c_str());
}

}  // namespace

Action add_prune_command(CLI::App& app) {
  auto f = std::make_shared<PruneFlags>();
  CLI::App* sub = app.add_subcommand(
      "prune", "structured channel pruning of a ResNet classifier, then fine-tuning");
  sub->add_option("-m,--model", f->in, "the trained classifier (.safetensors)")->required();
  sub->add_option("-o,--output", f->out, "the pruned (and fine-tuned) checkpoint to write")
      ->required();
  sub->add_option("--keep", f->prune.keep, "fraction of the budget kept, in (0, 1]")
      ->capture_default_str();
  sub->add_option("--budget", f->budget, "what --keep counts: macs | params")
      ->capture_default_str();
  sub->add_option("--criterion", f->criterion,
                  "channel importance: l1 (BN-folded filter L1) | bn (|gamma|)")
      ->capture_default_str();
  sub->add_option("--scope", f->scope, "all (residual streams too) | inner (block interiors only)")
      ->capture_default_str();
  sub->add_option("--multiple", f->prune.multiple, "round kept channel counts to a multiple")
      ->capture_default_str();
  sub->add_option("--finetune-epochs", f->finetune_epochs, "epochs of fine-tuning (0: none)")
      ->capture_default_str();
  sub->add_option("--run", f->run_dir, "fine-tuning run folder (default: OUT's stem + .finetune)");
  auto& r = f->recipe;
  sub->add_option("--data", r.data, "training and test data")->capture_default_str();
  sub->add_option("--lr", r.lr, "fine-tuning peak learning rate")->capture_default_str();
  sub->add_option("--schedule", r.schedule, "onecycle | cosine | constant")->capture_default_str();
  sub->add_option("--batch", r.batch, "fine-tuning batch size")->capture_default_str();
  sub->add_option("--augment", r.augment, "comma list of crop, flip, erase")->capture_default_str();
  sub->add_option("--limit", r.limit, "fine-tune on the first N training images only");
  sub->add_option("-s,--seed", r.seed, "fine-tuning seed")->capture_default_str();
  sub->add_flag("--distill", f->distill,
                "fine-tune with the original model as the teacher (knowledge distillation)");
  sub->add_option("--bn-calib", f->bn_calib,
                  "training images that re-estimate BatchNorm statistics after pruning (0: off)")
      ->capture_default_str()
      ->check(non_negative_number());
  sub->add_option("--eval-limit", f->eval_limit, "the first N test images only (0: all)")
      ->check(non_negative_number());
  sub->add_option("--bench", f->bench, "speed check pruned vs original: quick | full | none")
      ->capture_default_str();
  sub->add_flag("--json", f->json, "one JSON object instead of tables");
  return [f] { run_prune(*f); };
}

}  // namespace duet::cli
