// The subcommands of `duet`. Each registers its flags on the CLI11 app and returns the action
// to run when it is selected; main() owns parsing, threads/ISA set-up and error reporting.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <functional>
#include <string>

namespace duet::cli {

using Action = std::function<void()>;

Action add_info_command(CLI::App& app);
Action add_bench_command(CLI::App& app);
// `duet bench` subcommands in files of their own; each action returns at once unless selected.
Action add_bench_infer_command(CLI::App& bench);
Action add_bench_train_command(CLI::App& bench);
Action add_bench_gen_command(CLI::App& bench);
Action add_train_command(CLI::App& app);
Action add_eval_command(CLI::App& app);
Action add_classify_command(CLI::App& app);
Action add_sample_command(CLI::App& app);
Action add_synth_command(CLI::App& app);
Action add_reparam_command(CLI::App& app);
Action add_distill_command(CLI::App& app);
Action add_quantize_command(CLI::App& app);
Action add_prune_command(CLI::App& app);
Action add_gap_command(CLI::App& app);
Action add_reflow_command(CLI::App& app);

// Number checks for flags in place of CLI11's PositiveNumber / NonNegativeNumber, whose message
// reads "Value 0 not in range 0.000000 to 1797693134862315708...": these say what is wanted
// ("--batch: must be > 0, got 0") and refuse NaN. Text that is no number passes through to the
// option's own conversion error.
inline CLI::Validator number_check(bool strictly_positive) {
  return CLI::Validator(
      [strictly_positive](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0') return {};
        if (strictly_positive ? v > 0 : v >= 0) return {};
        return std::string("must be ") + (strictly_positive ? "> 0" : ">= 0") + ", got " + text;
      },
      strictly_positive ? "POSITIVE" : "NONNEGATIVE");
}
inline CLI::Validator positive_number() {
  return number_check(true);
}
inline CLI::Validator non_negative_number() {
  return number_check(false);
}

// The version main() reports, and the command line as typed (main() sets it before parsing),
// for reports that record how they were made.
inline constexpr const char* kDuetVersion = "0.1.0";
inline std::string& command_line() {
  static std::string line;
  return line;
}

}  // namespace duet::cli
