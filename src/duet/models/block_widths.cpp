#include "duet/models/block_widths.h"

#include "duet/models/config_fields.h"

namespace duet::models {

BlockWidths BlockWidths::from_json(const nlohmann::json& j, int num_stages, int num_blocks) {
  BlockWidths w;
  w.stages = config_int_list(j, "stage_widths", {}, 1);
  w.blocks = config_int_list(j, "block_widths", {}, 1);
  if (!w.stages.empty() && static_cast<int>(w.stages.size()) != num_stages)
    fail("model config: field 'stage_widths' must list ", num_stages,
         " widths (one per stage), got ", w.stages.size());
  if (!w.blocks.empty() && static_cast<int>(w.blocks.size()) != num_blocks)
    fail("model config: field 'block_widths' must list ", num_blocks,
         " widths (one per block), got ", w.blocks.size());
  return w;
}

void BlockWidths::add_to_json(nlohmann::json& j) const {
  if (!stages.empty()) j["stage_widths"] = stages;
  if (!blocks.empty()) j["block_widths"] = blocks;
}

}  // namespace duet::models
