// `duet gap --classifier A --generator B [--judge J] [--unified U] -o DIR`: the understanding /
// generation gap report (eval/gap_report.h) written as DIR/report.json and a self-contained
// DIR/report.html. Models and data are loaded and checked here, with the same helpers as `duet eval
// -m GEN
// --classifier C` (the judge's real images, the real-vs-real floor), before any long work; both
// files are written atomically at the end, so a failed run leaves no half-written report.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>

#include "duet/cli/commands.h"
#include "duet/cli/eval_distribution.h"
#include "duet/cli/guide_tools.h"
#include "duet/compress/quantize.h"
#include "duet/data/corrupt.h"
#include "duet/eval/gap_html.h"
#include "duet/eval/gap_report.h"
#include "duet/io/atomic_file.h"
#include "duet/kernels/isa.h"
#include "duet/models/checkpoint.h"
#include "duet/models/unified.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"
#include "duet/tensor/rng.h"
#include "duet/train/distill_digest.h"

namespace duet::cli {
namespace {

namespace fs = std::filesystem;

struct GapFlags {
  std::string classifier, generator, judge, unified, out;
  std::string data = "fashion-mnist";
  int64_t per_class = 50, batch = 100;
  int steps = 20;
  double cfg = 2.0;
  std::string sampler;
  double eta = 0.0;
  int best_of = 4;
  double classifier_guidance = 0.0, guide_cfg = 1.0;
  std::string guide_with;  // a noise-aware classifier: adds the classifier-guided mode
  int64_t seed = -1;
  int64_t robust_images = 200;
  uint64_t robust_seed = 0, corrupt_seed = 0;
  std::string severities = "2,4";
  std::string families = "noise,blur,contrast,occlusion";
  eval::GenerativeOptions generative;
  int64_t grid_columns = 8;
  bool json = false;
  CLI::App* app = nullptr;  // to tell which flags were given
};

std::vector<std::string> split_list(const std::string& s, const char* flag) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (item.empty()) fail_usage("gap: ", flag, " '", s, "' has an empty entry");
    out.push_back(item);
  }
  if (out.empty()) fail_usage("gap: ", flag, " is empty");
  return out;
}

// Loads a checkpoint that must be a classifier; usage Error naming the flag otherwise.
models::LoadedModel load_classifier(const std::string& path, const char* flag) {
  models::LoadedModel m = models::load_model(path);
  if (!dynamic_cast<models::Classifier*>(m.model.get()))
    fail_usage("gap: ", flag, " ", path, " is not a classifier (family '",
               m.config.value("family", ""), "')");
  return m;
}

nlohmann::json model_entry(const std::string& path, const models::LoadedModel& m) {
  return {{"path", path}, {"sha256", train::sha256_file(path)}, {"config", m.config}};
}

void write_text(const fs::path& path, const std::string& text) {
  io::write_file_atomic(path.string(), std::as_bytes(std::span(text.data(), text.size())));
}

void run_gap(const GapFlags& f) {
  const auto t_start = std::chrono::steady_clock::now();
  // Everything that can be wrong is checked before the long work.
  if (fs::exists(f.out) && !fs::is_directory(f.out))
    fail_usage("gap: -o ", f.out, " exists and is not a folder");
  eval::GapOptions o;
  o.severities.clear();
  for (const auto& s : split_list(f.severities, "--severities")) {
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != s.size() || v < 1 || v > 5)
      fail_usage("gap: --severities entries must be integers in 1..5, got '", s, "'");
    o.severities.push_back(v);
  }
  o.families.clear();
  for (const auto& s : split_list(f.families, "--families"))
    o.families.push_back(data::parse_corruption(s + ":1").kind);

  // An int8 generator (duet quantize) samples through its int8 kernels.
  models::LoadedModel gen = compress::load_inference_model(f.generator);
  auto* unet = models::generator_network(*gen.model);
  if (!unet)
    fail_usage("gap: --generator ", f.generator, " is not a generator (family '",
               gen.config.value("family", ""), "'); a classifier goes to --classifier");
  models::LoadedModel clf = load_classifier(f.classifier, "--classifier");
  models::LoadedModel judge;
  if (!f.judge.empty()) judge = load_classifier(f.judge, "--judge");
  models::LoadedModel unified;
  if (!f.unified.empty()) {
    unified = models::load_model(f.unified);
    if (!dynamic_cast<models::UnifiedNet*>(unified.model.get()))
      fail_usage("gap: --unified ", f.unified, " is not a unified model (family '",
                 unified.config.value("family", ""), "'; duet train --task unified makes one)");
  }
  const auto objective = gen::parse_objective(gen.config.value("objective", "flow"));
  const GuideClassifier guide =
      load_guide("gap", f.guide_with, f.classifier_guidance,
                 f.app->count("--classifier-guidance") > 0, *unet, objective, gen.config);
  if (f.app->count("--guide-cfg") > 0 && !guide.on())
    fail_usage("gap: --guide-cfg needs --classifier-guidance and --guide-with");

  o.per_class = f.per_class;
  o.batch = f.batch;
  o.sample = gen::sample_options(objective, f.sampler, f.steps, f.eta);
  o.cfg = f.cfg;
  o.best_of = f.best_of;
  o.classifier_guidance = f.classifier_guidance;
  o.guide_cfg = f.guide_cfg;
  o.seed = f.seed >= 0 ? static_cast<uint64_t>(f.seed) : random_seed() >> 1;
  o.robust_images = f.robust_images;
  o.robust_seed = f.robust_seed;
  o.corrupt_seed = f.corrupt_seed;
  o.generative = f.generative;
  // The default grid width shrinks to a small --per-class; a given one must fit.
  o.grid_columns =
      f.app->count("--grid-columns") ? f.grid_columns : std::min(f.grid_columns, f.per_class);

  // The real data as `duet eval -m GEN --classifier C` loads it: the test split at the
  // generator's size, and the floor's images from the train split.
  eval::JudgeOptions jo;
  jo.per_class = f.per_class;
  jo.batch = f.batch;
  jo.seed = o.seed;
  jo.data = f.data;
  jo.split = data::Split::test;
  const auto& g = unet->config();
  eval::validate_judge(*unet, objective, clf.config, jo);
  if (!f.judge.empty()) eval::validate_judge(*unet, objective, judge.config, jo);
  jo.real = eval::load_real_images(jo, g.in_channels, g.image_size, g.num_classes);
  ReferenceSetup floor =
      prepare_reference("", f.classifier, jo, g.in_channels, g.image_size, g.num_classes);

  eval::GapInputs in;
  in.generator = unet;
  in.generator_config = gen.config;
  in.classifier = dynamic_cast<models::Classifier*>(clf.model.get());
  in.classifier_config = clf.config;
  if (!f.judge.empty()) {
    in.judge = dynamic_cast<models::Classifier*>(judge.model.get());
    in.judge_config = judge.config;
  }
  in.test = *jo.real;
  in.floor_set = floor.floor_set;
  in.floor_skip = floor.floor_skip;
  in.floor_source = floor.floor_source;
  in.classifier_path = f.classifier;
  in.classifier_sha256 = floor.sha256;  // the reference network is the classifier
  std::error_code ec;
  in.judge_is_classifier = !f.judge.empty() && fs::equivalent(f.judge, f.classifier, ec);
  if (!f.unified.empty()) {
    in.unified = static_cast<models::UnifiedNet*>(unified.model.get());
    in.unified_config = unified.config;
  }
  if (guide.on()) {
    in.guide = guide.classifier;
    in.guide_config = guide.loaded.config;
    in.guide_path = guide.path;
  }
  o.progress = [t_start](const std::string& line) {
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    std::fprintf(stderr, "gap [%7.1f s] %s\n", s, line.c_str());
  };
  eval::validate_gap(in, o);  // before the folder is made and anything is printed
  fs::create_directories(f.out);
  if (in.judge_is_classifier)
    std::fprintf(stderr, "gap: --judge is the classifier itself: judged accuracy is optimistic\n");
  eval::GapReport r = eval::gap_report(in, o);

  r.provenance = {
      {"command", command_line()},
      {"duet_version", kDuetVersion},
      {"isa", std::string(kernels::isa_name(kernels::active_isa()))},
      {"threads", num_threads()},
      {"data", f.data},
      {"floor_source", floor.floor_source},
      {"models",
       {{"classifier", model_entry(f.classifier, clf)},
        {"generator", model_entry(f.generator, gen)},
        {"judge", f.judge.empty() ? nlohmann::json() : model_entry(f.judge, judge)},
        {"unified", f.unified.empty() ? nlohmann::json() : model_entry(f.unified, unified)},
        {"guide", guide.on() ? model_entry(guide.path, guide.loaded) : nlohmann::json()}}}};
  r.timings["wall"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  const nlohmann::json j = r.to_json();
  std::vector<std::vector<uint8_t>> pngs;
  for (const auto& s : r.sampling) pngs.push_back(data::encode_png(s.grid));
  const std::string html = eval::gap_html(j, pngs);
  write_text(fs::path(f.out) / "report.json", j.dump(1) + "\n");
  write_text(fs::path(f.out) / "report.html", html);
  std::fprintf(stderr, "gap: wrote %s and %s (%.1f s)\n", (fs::path(f.out) / "report.json").c_str(),
               (fs::path(f.out) / "report.html").c_str(), r.timings["wall"].get<double>());
  if (f.json) {
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  const auto& gap = j["gap"];
  std::printf("understanding: classifier accuracy %.4f, ECE %.4f on %lld test images",
              gap["understanding"]["accuracy"].get<double>(),
              gap["understanding"]["ece"].get<double>(),
              static_cast<long long>(gap["understanding"]["images"].get<int64_t>()));
  if (!gap["understanding"]["judge_accuracy"].is_null())
    std::printf("; judge %.4f", gap["understanding"]["judge_accuracy"].get<double>());
  if (!gap["understanding"]["unified_accuracy"].is_null())
    std::printf("; unified model %.4f (%lld parameters; classifier + generator %lld)",
                gap["understanding"]["unified_accuracy"].get<double>(),
                static_cast<long long>(gap["understanding"]["unified_parameters"].get<int64_t>()),
                static_cast<long long>(gap["understanding"]["separate_parameters"].get<int64_t>()));
  std::printf("\n%-32s %9s %9s %8s %18s %6s %6s %7s %7s\n", "generation", "acc.clf", "acc.judge",
              "FID-ref", "KID-ref ± s.e.", "prec", "recall", "div", "s/img");
  auto n = [](const nlohmann::json& v) { return v.is_number() ? v.get<double>() : NAN; };
  for (const auto& m : gap["generation"])
    std::printf("%-32s %9.4f %9.4f %8.3f %9.4f ± %6.4f %6.3f %6.3f %7.3f %7.3f\n",
                m["label"].get<std::string>().c_str(), n(m["cond_acc_classifier"]),
                n(m["cond_acc_judge"]), n(m["fid_ref"]), n(m["kid_ref"]), n(m["kid_ref_se"]),
                n(m["precision"]), n(m["recall"]), n(m["diversity"]), n(m["seconds_per_image"]));
  const auto& fl = gap["floor"];
  std::printf("%-32s %9s %9s %8.3f %9.4f ± %6.4f %6.3f %6.3f %7.3f\n", "real vs real floor", "", "",
              n(fl["fid_ref"]), n(fl["kid_ref"]), n(fl["kid_ref_se"]), n(fl["precision"]),
              n(fl["recall"]), n(fl["diversity"]));
  for (const auto& t : j["targets"])
    std::printf("target: %s: %s (measured %.4f, margin %+.4f)\n",
                t["target"].get<std::string>().c_str(), t["met"].get<bool>() ? "met" : "missed",
                t["measured"].get<double>(), t["margin"].get<double>());
}

}  // namespace

Action add_gap_command(CLI::App& app) {
  auto f = std::make_shared<GapFlags>();
  CLI::App* sub = app.add_subcommand(
      "gap", "report: classifier vs generator side by side, samples, corruption robustness");
  f->app = sub;
  sub->add_option("--classifier", f->classifier,
                  "classifier checkpoint: understanding side, verifier, feature network")
      ->required();
  sub->add_option("--generator", f->generator, "class-conditional generator checkpoint")
      ->required();
  sub->add_option("--judge", f->judge,
                  "independent classifier for conditional accuracy (other seed and architecture)");
  sub->add_option("--unified", f->unified,
                  "a unified model (train --task unified): its accuracy and samples next to the "
                  "separate classifier and generator");
  sub->add_option("-o,--out", f->out, "output folder for report.json and report.html")->required();
  sub->add_option("--data", f->data, "real images: fashion-mnist[:DIR] or folder:ROOT with splits")
      ->capture_default_str();
  sub->add_option("--per-class", f->per_class, "generated images per class and sampling mode")
      ->check(CLI::Range(int64_t{2}, int64_t{100000}))
      ->capture_default_str();
  sub->add_option("--batch", f->batch, "images per sampler call")
      ->check(positive_number())
      ->capture_default_str();
  sub->add_option("--steps", f->steps, "sampler steps")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  sub->add_option("--cfg", f->cfg, "guidance scale of the guided and verified modes")
      ->capture_default_str();
  sub->add_option("--sampler", f->sampler,
                  "euler | heun (flow), ddim | ddpm (default: the objective's)");
  sub->add_option("--eta", f->eta, "DDIM noise")->capture_default_str();
  sub->add_option("--best-of", f->best_of, "candidates per image of verified sampling")
      ->capture_default_str();
  sub->add_option("--classifier-guidance", f->classifier_guidance,
                  "adds a classifier-guided mode of this scale (with --guide-with)");
  sub->add_option("--guide-with", f->guide_with,
                  "noise-aware classifier of the classifier-guided mode (train --noised flow)");
  sub->add_option("--guide-cfg", f->guide_cfg, "CFG scale of the classifier-guided mode")
      ->capture_default_str();
  sub->add_option("-s,--seed", f->seed, "sampling seed (negative or absent: random, logged)");
  sub->add_option("--robust-images", f->robust_images, "test images of the robustness section")
      ->check(CLI::Range(int64_t{1}, int64_t{10000000}))
      ->capture_default_str();
  sub->add_option("--robust-seed", f->robust_seed, "seed of the robustness subset")
      ->capture_default_str();
  sub->add_option("--corrupt-seed", f->corrupt_seed, "seed of the corruptions' random draws")
      ->capture_default_str();
  sub->add_option("--severities", f->severities, "corruption severities, e.g. 1,3,5")
      ->capture_default_str();
  sub->add_option("--families", f->families, "corruption families")->capture_default_str();
  sub->add_option("--gen-times", f->generative.times, "generative classifier: times on the t grid")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  sub->add_option("--prune-margin", f->generative.prune_margin,
                  "generative classifier: pruning margin (inf: never)")
      ->capture_default_str();
  sub->add_option("--gen-seed", f->generative.seed, "generative classifier: seed of its noises")
      ->capture_default_str();
  sub->add_option("--grid-columns", f->grid_columns, "samples per class in each grid")
      ->check(CLI::Range(int64_t{1}, int64_t{100}))
      ->capture_default_str();
  sub->add_flag("--json", f->json, "also print the report's JSON to stdout");
  return [f] { run_gap(*f); };
}

}  // namespace duet::cli
