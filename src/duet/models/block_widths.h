// Channel widths of a basic-block ResNet (CIFAR or ImageNet style): by default the width doubles
// from stage to stage and every block's inner width equals its stage's; structured pruning
// (`duet prune`) stores explicit lists instead, so a pruned network is an ordinary config.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

namespace duet::models {

struct BlockWidths {
  // Empty: the default. Otherwise one entry per stage (the residual stream's channels, the stem's
  // output for stage 0) and one per block in network order (the channels between conv1 and conv2).
  std::vector<int> stages, blocks;

  // Reads the optional "stage_widths" / "block_widths" fields and checks their lengths against the
  // architecture; Error naming the field otherwise.
  static BlockWidths from_json(const nlohmann::json& j, int num_stages, int num_blocks);
  // Adds the fields to `j` when they are explicit (default configs stay as they were).
  void add_to_json(nlohmann::json& j) const;

  // Widths with the defaults resolved: stage s of a base `width` has width << s.
  int stage(int s, int width) const { return stages.empty() ? width << s : stages[s]; }
  int block(int global_block, int stage_width) const {
    return blocks.empty() ? stage_width : blocks[global_block];
  }
};

}  // namespace duet::models
