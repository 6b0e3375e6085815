// A variant's memory check before its model allocates (plan/memory_check.h), on every rank of
// its job: each rank checks its own stage (on a CPU, the node's ranks together against the
// node's RAM; on a GPU, its own device), and the ranks agree — when any rank's check fails,
// every rank throws PredictedOutOfMemory with the first failing rank's numbers, so no rank is
// left waiting in a collective for one that stopped. The variant's status is then `oom`.
#pragma once
#include "../model/config.h"
#include "../scenario/scenario.h"
#include "rank_setup.h"
#include "tb/backend.h"

namespace tb {

void require_rank_memory(const RunConfig& c, const ModelConfig& m, DeviceKind device,
                         const RankSetup& rs, int cuda_device);

}  // namespace tb
