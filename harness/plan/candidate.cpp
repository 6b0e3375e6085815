#include "candidate.h"

#include <stdexcept>

namespace tb {

const char* recompute_name(Recompute r) {
  switch (r) {
    case Recompute::selective:
      return "selective";
    case Recompute::full:
      return "full";
    default:
      return "none";
  }
}

Recompute parse_recompute(const std::string& s) {
  if (s == "none") return Recompute::none;
  if (s == "selective") return Recompute::selective;
  if (s == "full") return Recompute::full;
  throw std::invalid_argument("recompute '" + s + "' (expected none, selective or full)");
}

RunConfig to_run_config(const PlanCandidate& c, const ModelConfig& model, int global_batch) {
  RunConfig r;
  r.preset = model.name;
  r.micro_batch = c.micro_batch;
  r.global_batch = global_batch;
  r.precision = c.precision;
  r.checkpoint_interval = c.recompute == Recompute::full ? 1 : 0;
  r.checkpoint_selective = c.recompute == Recompute::selective;
  r.dp = c.dp;
  r.tp = c.tp;
  r.pp = c.pp;
  r.virtual_stages = c.virtual_stages;
  r.pp_schedule = c.schedule;
  r.zero = c.zero;
  r.sequence_parallel = c.sequence_parallel;
  r.experts = model.moe.experts;
  r.top_k = model.moe.top_k;
  r.capacity_factor = model.moe.capacity_factor;
  r.moe_every = model.moe.every;
  r.expert_parallel = c.expert_parallel;
  return r;
}

PlanCandidate candidate_of(const RunConfig& r) {
  PlanCandidate c;
  c.dp = r.dp;
  c.tp = r.tp;
  c.pp = r.pp;
  c.virtual_stages = r.virtual_stages;
  c.micro_batch = r.micro_batch;
  c.recompute = r.checkpoint_selective      ? Recompute::selective
                : r.checkpoint_interval > 0 ? Recompute::full
                                            : Recompute::none;
  c.sequence_parallel = r.sequence_parallel;
  c.zero = r.zero;
  c.precision = r.precision;
  c.schedule = r.pp_schedule;
  c.expert_parallel = r.expert_parallel;
  return c;
}

}  // namespace tb
