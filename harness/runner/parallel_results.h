// The `parallel` object of a result line (docs/parallel.md): every rank's summary of its
// timed steps — step and phase times, memory peaks by category, traffic per parallel
// dimension with exposed and overlapped seconds, time waiting for the previous or next
// pipeline stage — and the job's view of them: traffic per dimension (mean over ranks), the
// measured pipeline bubble next to the analytic (p−1)/(m+p−1).
#pragma once
#include <nlohmann/json.hpp>
#include <vector>

#include "../model/gpt.h"
#include "../train/trainer.h"
#include "rank_setup.h"

namespace tb {

// This rank's summary over the timed steps.
nlohmann::json rank_summary(const RankSetup& r, const GptModel& model, const MemoryTracker& mem,
                            const std::vector<StepRecord>& timed);
// The job's `parallel` object from every rank's summary (rank order).
nlohmann::json parallel_json(const RunConfig& c, const RankSetup& r,
                             const std::vector<nlohmann::json>& ranks, const std::string& launcher);
// Per memory category, the largest rank's peak.
nlohmann::json max_memory_peaks(const std::vector<nlohmann::json>& ranks);

}  // namespace tb
