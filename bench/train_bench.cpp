#include "bench/train_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <sstream>

#include "bench/model_macs.h"
#include "bench/peer_process.h"
#include "bench/quiet_cpu.h"
#include "duet/autograd/autograd.h"
#include "duet/kernels/fma_peak.h"
#include "duet/models/registry.h"
#include "duet/nn/profile.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"
#include "duet/tensor/rng.h"
#include "duet/train/classify_step.h"
#include "duet/train/peak_memory.h"

namespace duet::bench {
namespace {

using Note = std::function<void(const std::string&)>;
constexpr double kMiB = 1024.0 * 1024.0;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// duet's side: the training run `duet train` would make from this recipe, stepped K at a time.
class DuetSide {
 public:
  explicit DuetSide(train::ClassifySetup& s) : s_(s) { s_.loader->start_epoch(0); }

  struct Round {
    double seconds = 0, mean_loss = 0;
    int64_t images = 0;
  };
  Round run(int steps) {
    Round r;
    double loss_sum = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) {
      while (!s_.loader->next(batch_)) s_.loader->start_epoch(++epoch_);  // epochs wrap around
      const train::StepStats st = train::train_step(s_, batch_, step_);
      DUET_CHECK(std::isfinite(st.loss), "bench train: the loss is ", st.loss, " at step ",
                 step_ + 1);
      ++step_;
      r.images += st.images;
      loss_sum += static_cast<double>(st.loss) * static_cast<double>(st.images);
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.mean_loss = loss_sum / static_cast<double>(std::max<int64_t>(r.images, 1));
    return r;
  }

 private:
  train::ClassifySetup& s_;
  data::Batch batch_;
  int64_t step_ = 0, epoch_ = 0;
};

// The PyTorch twin in server mode: "steps K" -> "ok SECONDS IMAGES MEAN_LOSS", "mem" -> "ok BYTES".
std::unique_ptr<PeerProcess> start_peer(const train::ClassifySetup& s, int threads, Note note) {
  const std::string script = find_source_file("bench/peers/torch_train.py");
  if (script.empty()) {
    note("peer: pytorch unavailable (bench/peers/torch_train.py not found; set DUET_SOURCE_DIR)");
    return nullptr;
  }
  const train::ClassifyRecipe& r = s.recipe;
  std::vector<std::string> argv = {"/usr/bin/python3",
                                   script,
                                   "--serve",
                                   "--config",
                                   s.config.dump(),
                                   "--data",
                                   r.data,
                                   "--epochs",
                                   std::to_string(r.epochs),
                                   "--batch",
                                   std::to_string(r.batch),
                                   "--lr",
                                   fmt("%.17g", r.lr),
                                   "--optimizer",
                                   r.optimizer,
                                   "--momentum",
                                   fmt("%.17g", r.momentum),
                                   "--wd",
                                   fmt("%.17g", r.weight_decay),
                                   "--schedule",
                                   r.schedule,
                                   "--label-smoothing",
                                   fmt("%.17g", r.label_smoothing),
                                   "--augment",
                                   r.augment,
                                   "--seed",
                                   std::to_string(r.seed),
                                   "--threads",
                                   std::to_string(threads)};
  auto peer =
      std::make_unique<PeerProcess>(argv, std::vector<std::pair<std::string, std::string>>{
                                              {"OMP_NUM_THREADS", std::to_string(threads)}});
  if (!peer->ok()) {
    note("peer: pytorch unavailable (" + peer->error() + "); timing duet alone");
    return nullptr;
  }
  note("peer: " + peer->ready_line());
  return peer;
}

struct PeerRound {
  double seconds = 0, mean_loss = 0;
  int64_t images = 0;
};

std::optional<PeerRound> peer_steps(PeerProcess& peer, int steps, Note note) {
  const auto answer = peer.request("steps " + std::to_string(steps));
  PeerRound r;
  if (answer) {
    std::istringstream in(*answer);
    if (in >> r.seconds >> r.images >> r.mean_loss && r.seconds > 0) return r;
  }
  note("peer: pytorch stopped answering (" + (answer ? *answer : peer.error()) +
       "); timing duet alone");
  return std::nullopt;
}

}  // namespace

std::vector<BenchRow> bench_train(const TrainBenchOptions& o, const Note& note) {
  DUET_CHECK(o.threads >= 1, "bench train: threads must be >= 1, got ", o.threads);
  if (o.steps < 1 || o.rounds < 1 || o.warmup < 0 || o.batch < 1)
    fail_usage("bench train: --steps, --rounds and --batch must be >= 1 (got ", o.steps, ", ",
               o.rounds, ", ", o.batch, ")");
  // The recipe of `duet train --arch A --batch B --augment crop,flip -s SEED` (one-cycle SGD,
  // max lr 0.2), long enough that the benchmark's steps stay inside its schedule.
  train::ClassifyRecipe recipe;
  recipe.arch = o.arch;
  recipe.data = o.data;
  recipe.batch = o.batch;
  recipe.augment = o.augment;
  recipe.seed = o.seed;
  recipe.validate();
  const int saved_threads = num_threads();
  set_num_threads(o.threads);
  const double peak = kernels::measure_fma_peak_gflops(o.threads);
  const int64_t needed = int64_t{o.warmup} + int64_t{o.steps} * o.rounds;
  train::ClassifySetup setup = train::make_classify_setup(recipe, /*load_test=*/false);
  if (needed > setup.total_steps) {
    setup.recipe.epochs = (needed + setup.batches_per_epoch - 1) / setup.batches_per_epoch;
    setup.total_steps = setup.recipe.epochs * setup.batches_per_epoch;
  }
  const double macs = forward_macs_per_image(setup.config);
  const double flops_per_image = 3.0 * 2.0 * macs;
  note("model " + o.arch + ": " + std::to_string(setup.model->parameter_count()) + " parameters, " +
       fmt("%.1f", macs / 1e6) + " M forward MACs per image; training counted as " +
       "3 x forward x 2 flops = " + fmt("%.3f", flops_per_image / 1e9) + " GFLOP per image");
  note("recipe: " + o.data + " (" + std::to_string(setup.train_set.size()) + " images), batch " +
       std::to_string(o.batch) + ", augment " + (o.augment.empty() ? "none" : o.augment) + ", " +
       setup.recipe.optimizer + " " + setup.recipe.schedule + " max lr " +
       fmt("%g", setup.recipe.lr) + ", seed " + std::to_string(o.seed) + "; " +
       std::to_string(o.warmup) + " warm-up + " + std::to_string(o.rounds) + " rounds x " +
       std::to_string(o.steps) + " steps per side, alternating");

  std::unique_ptr<PeerProcess> peer = start_peer(setup, o.threads, note);
  DuetSide duet(setup);
  // Worker threads of the side that just ran may keep spinning; the other side starts once
  // both processes are quiet, or on a 2-core machine the first side's tail slows the second.
  const auto settle = [&] { bench::settle(peer ? peer->pid() : 0); };
  const bool trace = std::getenv("DUET_BENCH_TRACE") != nullptr;
  if (o.warmup > 0) {
    duet.run(o.warmup);
    if (peer && !peer_steps(*peer, o.warmup, note)) peer.reset();
  }
  std::vector<double> ours, theirs;
  double our_loss = NAN, their_loss = NAN;
  for (int round = 0; round < o.rounds; ++round) {
    settle();
    const DuetSide::Round d = duet.run(o.steps);
    ours.push_back(static_cast<double>(d.images) / d.seconds);
    our_loss = d.mean_loss;
    if (trace)
      std::fprintf(stderr, "round %d duet: %d steps %.3f s %.1f img/s loss %.4f\n", round + 1,
                   o.steps, d.seconds, ours.back(), d.mean_loss);
    if (!peer) continue;
    settle();
    const auto p = peer_steps(*peer, o.steps, note);
    if (!p) {
      peer.reset();
      continue;
    }
    theirs.push_back(static_cast<double>(p->images) / p->seconds);
    their_loss = p->mean_loss;
    if (trace)
      std::fprintf(stderr, "round %d pytorch: %d steps %.3f s %.1f img/s loss %.4f\n", round + 1,
                   o.steps, p->seconds, theirs.back(), p->mean_loss);
  }
  const bool peer_ok = peer && theirs.size() == ours.size();
  note("mean loss of the last round: duet " + fmt("%.4f", our_loss) +
       (peer_ok ? ", pytorch " + fmt("%.4f", their_loss) : std::string()));
  // On a shared machine a round can lose whole seconds to other work; the best round of each
  // side is the steadier view of what each can do, printed beside the medians of the table.
  const double best_ours = *std::max_element(ours.begin(), ours.end());
  std::string best = "best round: duet " + fmt("%.1f", best_ours) + " img/s";
  if (peer_ok) {
    const double best_theirs = *std::max_element(theirs.begin(), theirs.end());
    best += ", pytorch " + fmt("%.1f", best_theirs) + " img/s, ratio " +
            fmt("%.3f", best_ours / best_theirs);
  }
  note(best);

  const std::string peer_name = peer_ok ? "pytorch-1.13" : "pytorch-1.13 (unavailable)";
  std::vector<BenchRow> rows;
  rows.push_back(fma_peak_row(peak));

  BenchRow speed;
  speed.name = "train " + o.arch + (o.augment.empty() ? "" : " (" + o.augment + ")");
  speed.batch = o.batch;
  speed.unit = "img/s";
  speed.peer = peer_name;
  speed.ours = median(ours);
  speed.theirs = peer_ok ? median(theirs) : NAN;
  speed.ratio = peer_ok ? speed.ours / speed.theirs : NAN;  // a rate: > 1 means duet is faster
  speed.gflops = speed.ours * flops_per_image / 1e9;
  speed.peak_fraction = peak > 0 ? speed.gflops / peak : 0.0;
  rows.push_back(speed);

  const train::PeakMemory mem = train::peak_memory();
  double their_rss = NAN;
  if (peer_ok)
    if (const auto answer = peer->request("mem")) their_rss = std::atof(answer->c_str());
  BenchRow rss;
  rss.name = "peak RSS (process)";
  rss.batch = o.batch;
  rss.unit = "MiB";
  rss.peer = peer_name;
  rss.ours = static_cast<double>(mem.rss_bytes) / kMiB;
  rss.theirs = their_rss > 0 ? their_rss / kMiB : NAN;
  rss.ratio = rss.theirs / rss.ours;  // > 1: duet needs less
  rows.push_back(rss);

  BenchRow tensors;
  tensors.name = "peak tensors (allocator)";
  tensors.batch = o.batch;
  tensors.unit = "MiB";
  tensors.peer = "-";
  tensors.ours = static_cast<double>(mem.tensor_bytes) / kMiB;
  tensors.theirs = tensors.ratio = NAN;
  rows.push_back(tensors);

  set_num_threads(saved_threads);
  return rows;
}

}  // namespace duet::bench
