// The table a finished `duet train --qat-from FP32` run prints, like `duet quantize`'s: the float
// model, its post-training int8 (the run's ptq.safetensors, same calibration) and the QAT int8
// (the run's model.safetensors) side by side: parameters, MACs, file size, test accuracy, and the
// QAT file's measured speed against the float file in one alternating run.
#pragma once

#include <string>

#include "duet/train/trainer.h"

namespace duet::cli {

// Loads the three files, evaluates them on the run's test split (--test-data or --data, after
// --test-limit) and times the QAT file against the float one (`bench`: quick | full | none).
void print_qat_report(const train::ClassifyRecipe& recipe, const std::string& run_dir,
                      const std::string& bench);

}  // namespace duet::cli
