// `duet synth -m GEN --per-class N [--steps 20 --cfg 2 --sampler heun -s SEED] [--verify-with C
// --best-of K] -o DIR`: a synthetic training set from a generator, as an IDX pair that
// `--data idx:...` reads (DIR/train-images-idx3-ubyte, DIR/train-labels-idx1-ubyte) and
// DIR/meta.json (generator sha256, command, seeds, class names, timings). The class names in
// meta.json are what `--data idx:` takes as the set's names, so a classifier trained on it names
// its classes like the generator does. Used for the Classification Accuracy Score and synthetic
// augmentation (docs/gap.md).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "duet/cli/commands.h"
#include "duet/compress/quantize.h"
#include "duet/data/dataset.h"
#include "duet/data/idx_write.h"
#include "duet/data/image_grid.h"
#include "duet/eval/judge.h"
#include "duet/gen/guidance.h"
#include "duet/gen/verify.h"
#include "duet/io/atomic_file.h"
#include "duet/models/checkpoint.h"
#include "duet/models/unified.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"
#include "duet/tensor/rng.h"
#include "duet/train/distill_digest.h"
#include "duet/train/run_io.h"
#include "duet/train/trainer.h"

namespace duet::cli {
namespace {

namespace fs = std::filesystem;

struct SynthFlags {
  std::string model;
  int64_t per_class = 0;
  int steps = 20;
  double cfg = 2.0;
  std::string sampler;  // empty: the objective's default
  double eta = 0.0;
  int64_t seed = -1;
  std::string verify_with;
  int best_of = 1;
  int64_t batch = 100;
  std::string out;
};

// Batch b draws its noise from its own Philox-derived seed, so the set is a function of (seed,
// batch size) and batches are independent draws however many there are.
uint64_t batch_seed(uint64_t seed, uint64_t b) {
  constexpr uint64_t kSynthStream = 0x73796e74;  // "synt": apart from the judge's and others'
  const auto w = philox4x32(b, kSynthStream, seed);
  return (static_cast<uint64_t>(w[0]) << 32) | w[1];
}

// The command that redraws this set bit for bit (same thread count), with the resolved seed.
std::string command_line(const SynthFlags& f, const std::string& sampler, uint64_t seed) {
  std::string c = "duet synth -m " + f.model + " --per-class " + std::to_string(f.per_class) +
                  " --steps " + std::to_string(f.steps) + " --cfg " +
                  train::format_number("%g", f.cfg) + " --sampler " + sampler;
  if (f.eta != 0.0) c += " --eta " + train::format_number("%g", f.eta);
  c += " --batch " + std::to_string(f.batch) + " -s " + std::to_string(seed);
  if (!f.verify_with.empty())
    c += " --verify-with " + f.verify_with + " --best-of " + std::to_string(f.best_of);
  return c + " -o " + f.out;
}

void run_synth(const SynthFlags& f) {
  if (f.out.empty()) fail_usage("synth: -o DIR is required");
  if (f.per_class < 1 || f.per_class > 100000)
    fail_usage("--per-class must be in [1, 100000], got ", f.per_class);
  if (f.batch < 1 || f.batch > 100000) fail_usage("--batch must be in [1, 100000], got ", f.batch);
  if (f.best_of != 1 && f.verify_with.empty())
    fail_usage("synth: --best-of needs --verify-with CLASSIFIER");
  // An int8 generator (duet quantize) samples through its int8 kernels.
  auto loaded = compress::load_inference_model(f.model);
  auto* unet = models::generator_network(*loaded.model);
  if (!unet)
    fail_usage(f.model, ": not a generator (family '", loaded.config.value("family", ""), "')");
  const models::UNetConfig& uc = unet->config();
  if (uc.in_channels != 1)
    fail_usage("synth: IDX files hold one channel; ", f.model, " generates ", uc.in_channels);
  const auto objective = gen::parse_objective(loaded.config.value("objective", "flow"));
  const std::vector<std::string> names = train::model_class_names(loaded.config);
  const int64_t k = std::ssize(names);
  if (k > 256) fail_usage("synth: ", k, " classes do not fit in IDX byte labels");

  const gen::SampleOptions opt = gen::sample_options(objective, f.sampler, f.steps, f.eta);
  models::LoadedModel verifier;
  models::Classifier* clf = nullptr;
  gen::Scorer score;
  const auto [lo, hi] = eval::value_range(loaded.config);
  if (!f.verify_with.empty()) {
    verifier = models::load_model(f.verify_with);
    clf = dynamic_cast<models::Classifier*>(verifier.model.get());
    if (!clf)
      fail_usage("synth: --verify-with ", f.verify_with, " is not a classifier (family '",
                 verifier.config.value("family", ""), "')");
    gen::validate_verifier(uc, verifier.config, f.best_of);
    const data::NormStats norm = train::model_norm_stats(verifier.config);
    score = gen::classifier_scorer(*clf, [norm, lo, hi](const Tensor& x) {
      return eval::to_classifier_input(x, norm, lo, hi);
    });
  }
  // Refuse a folder that is really a file before minutes of sampling, not after.
  fs::create_directories(f.out);
  const fs::path dir(f.out);
  const std::string images_path = (dir / "train-images-idx3-ubyte").string();
  const std::string labels_path = (dir / "train-labels-idx1-ubyte").string();
  const std::string meta_path = (dir / "meta.json").string();
  // meta.json is written last: while it is missing the folder holds no complete set (a crashed
  // run must not leave an old meta.json vouching for new, partial files).
  fs::remove(meta_path);

  const uint64_t seed = f.seed >= 0 ? static_cast<uint64_t>(f.seed) : random_seed() >> 1;
  const int64_t n = f.per_class * k, s = uc.image_size;
  const std::string sampler = gen::sampler_name(opt.kind);
  std::fprintf(stderr,
               "synth %lld images (%lld per class, %lld classes) from %s: %s, %s x %d steps, cfg "
               "%g, best-of-%d, seed %llu, batches of %lld, %d threads\n",
               static_cast<long long>(n), static_cast<long long>(f.per_class),
               static_cast<long long>(k), f.model.c_str(), gen::objective_name(objective).c_str(),
               sampler.c_str(), opt.steps, f.cfg, f.best_of, static_cast<unsigned long long>(seed),
               static_cast<long long>(f.batch), num_threads());

  // Labels interleave the classes (image i is class i mod K), so every prefix of the set, e.g.
  // `--limit`, and every batch are class-balanced.
  data::Dataset set;
  set.channels = 1, set.height = s, set.width = s;
  set.class_names = names;
  set.images = Tensor::empty(Shape{n, 1, s, s}, DType::u8);
  set.labels = Tensor::empty(Shape{n}, DType::i32);
  for (int64_t i = 0; i < n; ++i) set.labels.data<int32_t>()[i] = static_cast<int32_t>(i % k);

  const bool tty = ::isatty(2);
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&t0] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  std::vector<uint64_t> seeds;
  double mean_kept = 0.0, mean_first = 0.0;  // verifier log p(requested), over all images
  for (int64_t b0 = 0, b = 0; b0 < n; b0 += f.batch, ++b) {
    const int64_t b1 = std::min(n, b0 + f.batch);
    std::vector<int32_t> labels(set.labels.data<int32_t>() + b0, set.labels.data<int32_t>() + b1);
    seeds.push_back(batch_seed(seed, static_cast<uint64_t>(b)));
    Tensor images;
    if (clf) {
      const gen::Verified v =
          gen::best_of_k(*unet, objective, score, labels, f.cfg, opt, seeds.back(), f.best_of);
      images = v.images;
      const size_t m = labels.size();
      for (size_t i = 0; i < m; ++i) {
        mean_kept += v.scores[static_cast<size_t>(v.chosen[i]) * m + i] / static_cast<double>(n);
        mean_first += v.scores[i] / static_cast<double>(n);
      }
    } else {
      images = gen::generate(*unet, objective, labels, f.cfg, opt, seeds.back());
    }
    for (int64_t i = b0; i < b1; ++i) {
      const data::Image im = data::to_image(images, i - b0, lo, hi);
      std::copy(im.pixels.begin(), im.pixels.end(), set.images.data<uint8_t>() + i * s * s);
    }
    const double secs = elapsed();
    const double eta = secs / static_cast<double>(b1) * static_cast<double>(n - b1);
    std::fprintf(stderr, "%ssynth %lld/%lld images, %.0f s, %.2f images/s, eta %.0f s%s",
                 tty ? "\r\033[K" : "", static_cast<long long>(b1), static_cast<long long>(n), secs,
                 static_cast<double>(b1) / secs, eta, tty ? "" : "\n");
  }
  if (tty) std::fprintf(stderr, "\n");
  const double sample_secs = elapsed();

  data::write_idx_dataset(set, images_path, labels_path);
  nlohmann::json meta = {
      {"format", "duet synth v1"},
      {"command", command_line(f, sampler, seed)},
      {"generator",
       {{"path", f.model},
        {"sha256", train::sha256_file(f.model)},
        {"bytes", static_cast<int64_t>(fs::file_size(f.model))},
        {"config", loaded.config}}},
      {"images", "train-images-idx3-ubyte"},
      {"labels", "train-labels-idx1-ubyte"},
      {"count", n},
      {"per_class", f.per_class},
      {"class_names", names},
      {"label_order", "interleaved: image i has class i mod num_classes"},
      {"shape", {1, s, s}},
      {"value_range", {lo, hi}},
      {"sampler", {{"kind", sampler}, {"steps", opt.steps}, {"eta", opt.eta}, {"cfg", f.cfg}}},
      {"seed", seed},
      {"batch", f.batch},
      {"batch_seeds", seeds},
      {"threads", num_threads()},
      {"timings",
       {{"sample_seconds", sample_secs},
        {"images_per_second", static_cast<double>(n) / sample_secs},
        {"total_seconds", elapsed()}}}};
  if (clf) {
    meta["verifier"] = {{"path", f.verify_with},
                        {"sha256", train::sha256_file(f.verify_with)},
                        {"best_of", f.best_of},
                        {"mean_log_p_kept", mean_kept},
                        {"mean_log_p_first", mean_first}};
    std::printf(
        "best-of-%d verified by %s: mean log p(requested) %.4f kept vs %.4f for candidate 0\n",
        f.best_of, f.verify_with.c_str(), mean_kept, mean_first);
  }
  const std::string text = meta.dump(2) + "\n";
  io::write_file_atomic(meta_path, std::as_bytes(std::span(text)));
  std::printf("wrote %lld images (%lld per class) to %s in %.1f s (%.2f images/s)\n",
              static_cast<long long>(n), static_cast<long long>(f.per_class), f.out.c_str(),
              elapsed(), static_cast<double>(n) / sample_secs);
  std::printf("train on it: duet train --data idx:%s,%s --test-data fashion-mnist\n",
              images_path.c_str(), labels_path.c_str());
}

}  // namespace

Action add_synth_command(CLI::App& app) {
  auto f = std::make_shared<SynthFlags>();
  CLI::App* sub = app.add_subcommand(
      "synth", "draw a synthetic labelled training set (IDX + meta.json) from a generator");
  sub->add_option("-m,--model", f->model, "a generator checkpoint (.safetensors)")->required();
  sub->add_option("--per-class", f->per_class, "images per class")->required();
  sub->add_option("--steps", f->steps, "sampler steps")->capture_default_str();
  sub->add_option("--cfg", f->cfg, "classifier-free guidance scale (1: conditional, 0: none)")
      ->capture_default_str();
  sub->add_option("--sampler", f->sampler, "euler | heun (flow), ddim | ddpm (diffusion)");
  sub->add_option("--eta", f->eta, "DDIM noise (0: deterministic)")->capture_default_str();
  sub->add_option("-s,--seed", f->seed, "random seed (negative or absent: random, logged)");
  sub->add_option("--verify-with", f->verify_with,
                  "a classifier: keep the best of --best-of candidates per image");
  sub->add_option("--best-of", f->best_of, "candidates per image (with --verify-with)")
      ->capture_default_str();
  sub->add_option("--batch", f->batch, "images drawn per batch (the set depends on it)")
      ->capture_default_str();
  sub->add_option("-o,--output", f->out, "output folder")->required();
  return [f] { run_synth(*f); };
}

}  // namespace duet::cli
