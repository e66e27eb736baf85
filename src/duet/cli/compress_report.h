// What every compress command (quantize, prune) reports about its output against its input, in
// one place: the test split the accuracies are measured on, a model's accuracy on it, file sizes,
// and the alternating speed run of the written file against the original (bench infer --vs).
#pragma once

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_row.h"
#include "duet/data/dataset.h"
#include "duet/nn/module.h"

#include "duet/compress/quantize.h"

namespace duet::cli {

// The test split of `spec` at the model's channels and size; the first `limit` images (0: all).
data::Dataset load_test_split(const std::string& spec, const nlohmann::json& config, int64_t limit);

// `n` training images of `spec` drawn by a seeded permutation, normalised like the model's training
// inputs, in batches of 100: what calibration (int8 ranges, BatchNorm statistics) runs on. `what`
// names the flag in the error for an empty data set.
std::vector<Tensor> training_batches(const char* what, const std::string& spec, int64_t n,
                                     uint64_t seed, const nlohmann::json& config);

// Top-1 accuracy of `model` (normalising inputs as `config` says) on `d`.
double test_accuracy(nn::Module& model, const data::Dataset& d, const nlohmann::json& config);

// The per-layer table of a quantisation: name, weight shape, int8 or not, error, input range, why.
void print_layer_table(const compress::QuantizeReport& report);

// The first rows of the float vs compressed table: parameters, MACs (`macs_label`) and file
// sizes, in columns of `label_width`.
void print_size_rows(int label_width, int64_t parameters, const char* macs_label, double macs,
                     double bytes_float, double bytes_int8);

// "1.23 MiB".
std::string mib(double bytes);

// `--bench quick|full|none`: usage Error naming `command` for anything else.
void check_bench_mode(const char* command, const std::string& mode);

// Times the checkpoint `model` against `vs` on the same inputs, alternating (bench infer --vs);
// ratio > 1: `model` is faster. Context lines go to `log`. Empty when mode is "none".
std::vector<bench::BenchRow> time_against(const std::string& model, const std::string& vs,
                                          const std::string& mode, uint64_t seed, std::FILE* log);

}  // namespace duet::cli
