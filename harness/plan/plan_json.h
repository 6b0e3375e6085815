// The plan as JSON, schema "trainbench.plan/1" (docs/planner.md, "Output"): the inputs, the
// device and calibration source, every feasible configuration ranked, and the best
// configuration at other GPU counts (the scaling plot's points).
#pragma once
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "search.h"

namespace tb {

// {forward, backward, recompute, tensor_parallel_comm, …}: the parts of an iteration, seconds.
nlohmann::json time_breakdown_json(const TimeBreakdown& t);
nlohmann::json plan_entry_json(const PlanEntry& e, int rank);
struct ScalingPoint {
  int gpus = 0;
  std::optional<PlanEntry> best;  // none when nothing fits
};
nlohmann::json plan_json(const PlanRequest& r, const PlanResult& result,
                         const std::vector<ScalingPoint>& scaling, const nlohmann::json& pinned);

}  // namespace tb
