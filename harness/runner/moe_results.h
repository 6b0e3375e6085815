// A mixture-of-experts variant's result object (docs/results-schema.md, "moe"): the
// configuration, total and active parameters, and what the routing did — rows per expert,
// dropped choices, load balance — summed over the job's ranks (data-parallel replicas route
// their own tokens; pipeline stages hold their own blocks).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "../model/gpt.h"
#include "rank_setup.h"

namespace tb {

// Adds `from`'s counts to `into` block by block.
void accumulate(MoeStats& into, const MoeStats& from);

// measured_over says which steps the counts are from. Collective over the job's ranks.
nlohmann::json moe_json(const ModelConfig& m, const MoeStats& mine, const RankSetup& rs,
                        int micro_batch, const std::string& measured_over);

}  // namespace tb
