// Entry point of the `duet` command: global flags (-t/--threads, -v/--verbose), subcommand
// dispatch, and the single place that turns a duet::Error into one line and an exit code
// (2 for usage, 1 for runtime).
#include <cstdio>
#include <exception>
#include <vector>

#include "duet/cli/commands.h"
#include "duet/kernels/isa.h"
#include "duet/tensor/allocator.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

int main(int argc, char** argv) {
  CLI::App app{"duet: one engine that classifies and generates images, and measures the gap"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("duet ") + duet::cli::kDuetVersion);
  int threads = 0;
  bool verbose = false;
  app.add_option("-t,--threads", threads, "worker threads (default: $DUET_THREADS or all cores)")
      ->check(duet::cli::non_negative_number());
  app.add_flag("-v,--verbose", verbose, "print ISA, threads and peak memory");

  std::vector<std::pair<CLI::App*, duet::cli::Action>> commands;
  auto remember = [&](duet::cli::Action action) {
    commands.emplace_back(app.get_subcommands({}).back(), std::move(action));
  };
  remember(duet::cli::add_info_command(app));
  remember(duet::cli::add_bench_command(app));
  remember(duet::cli::add_train_command(app));
  remember(duet::cli::add_eval_command(app));
  remember(duet::cli::add_classify_command(app));
  remember(duet::cli::add_sample_command(app));
  remember(duet::cli::add_synth_command(app));
  remember(duet::cli::add_reparam_command(app));
  remember(duet::cli::add_distill_command(app));
  remember(duet::cli::add_quantize_command(app));
  remember(duet::cli::add_gap_command(app));
  remember(duet::cli::add_prune_command(app));
  remember(duet::cli::add_reflow_command(app));

  // The command line, shell-quoted where needed, for reports that record it.
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.empty() || a.find_first_of(" \t\n'\"\\$`*?;&|<>()") != std::string::npos) {
      std::string q = "'";
      for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
      a = q + "'";
    }
    duet::cli::command_line() += (i ? " " : "") + a;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    // One line, like every other usage error (CLI11's own message adds a second).
    std::fprintf(stderr, "duet: usage: %s (see --help)\n", e.what());
    return 2;
  }

  try {
    if (threads > 0) duet::set_num_threads(threads);
    if (verbose)
      std::fprintf(stderr, "duet: isa %s, %d threads\n",
                   std::string(duet::kernels::isa_name(duet::kernels::active_isa())).c_str(),
                   duet::num_threads());
    for (auto& [sub, action] : commands)
      if (sub->parsed()) action();
    if (verbose)
      std::fprintf(stderr, "duet: peak tensor memory %.1f MiB\n",
                   static_cast<double>(duet::memory::peak_bytes()) / (1 << 20));
  } catch (const duet::Error& e) {
    std::fprintf(stderr, "duet: error: %s\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "duet: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
