// One configuration the capacity planner considers (docs/planner.md): how a model is split
// over GPUs and which memory-saving options it uses. It maps onto the RunConfig trainbench
// itself would run, so the planner's memory model is the one `step` checks before allocating.
#pragma once
#include <string>

#include "model/config.h"
#include "scenario/scenario.h"

namespace tb {

// Activation recomputation (Korthikanti et al. 2022): none; selective (the attention
// probabilities, §4.2); full (every block from its input, Chen et al. 2016 — trainbench's
// checkpoint interval 1).
enum class Recompute { none, selective, full };
const char* recompute_name(Recompute r);
// Throws std::invalid_argument naming the value.
Recompute parse_recompute(const std::string& s);

struct PlanCandidate {
  int dp = 1, tp = 1, pp = 1;
  int virtual_stages = 1;  // model chunks per pipeline stage (interleaved 1F1B)
  int micro_batch = 1;     // sequences per micro-batch
  Recompute recompute = Recompute::none;
  bool sequence_parallel = false;
  int zero = 0;  // 1: ZeRO-1 (optimizer state sharded over dp)
  std::string precision = "bf16";
  std::string schedule = "1f1b";  // gpipe | 1f1b
  bool expert_parallel = false;
  int gpus() const { return dp * tp * pp; }
  // Micro-batches each pipeline runs per iteration for a global batch of `global_batch`
  // sequences: global_batch / (micro_batch · dp).
  int micro_batches(int global_batch) const { return global_batch / (micro_batch * dp); }
};

// The run configuration trainbench executes for `c` (AdamW, the default bucket size).
RunConfig to_run_config(const PlanCandidate& c, const ModelConfig& model, int global_batch);
// The candidate a run configuration describes (checkpoint interval k >= 1 is `full`).
PlanCandidate candidate_of(const RunConfig& r);

}  // namespace tb
