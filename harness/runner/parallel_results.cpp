#include "parallel_results.h"

#include <algorithm>

#include "../profile/stats.h"

namespace tb {

namespace {

using nlohmann::json;

double median_of(std::vector<double> v) { return v.empty() ? 0.0 : summarize(v).median; }

// Medians over the timed steps of one communicator's per-step stats. Exposed: seconds the
// rank spent blocked in calls and waits; overlapped (data parallelism with buckets only):
// seconds from the first bucket's issue to the end of backward, the all-reduces in flight
// while backward ran (GradientBuckets).
json comm_json(const std::vector<CommStats>& steps, const std::vector<double>& overlapped = {}) {
  std::vector<double> bytes, seconds, calls, exposed;
  for (const CommStats& s : steps) {
    bytes.push_back(s.bytes);
    seconds.push_back(s.seconds);
    calls.push_back(double(s.calls));
    exposed.push_back(s.seconds);
  }
  return {{"bytes_per_step", median_of(bytes)},
          {"seconds_per_step", median_of(seconds)},
          {"calls_per_step", median_of(calls)},
          {"exposed_s", median_of(exposed)},
          {"overlapped_s", median_of(overlapped)}};
}

constexpr const char* kDims[] = {"data", "tensor", "pipeline"};

}  // namespace

json rank_summary(const RankSetup& r, const GptModel& model, const MemoryTracker& mem,
                  const std::vector<StepRecord>& timed) {
  json j;
  j["rank"] = r.rank();
  const GridCoord c = r.grid ? r.grid->coord : GridCoord{};
  j["dp_rank"] = c.dp_rank;
  j["tp_rank"] = c.tp_rank;
  j["pp_rank"] = c.pp_rank;
  j["layers"] = {model.layer_begin(), model.layer_end()};
  std::vector<double> step, recv;
  std::array<std::vector<double>, kPhaseCount> phases;
  std::array<std::vector<CommStats>, 3> comm;
  std::vector<CommStats> embedding;
  std::vector<double> overlapped;
  for (const StepRecord& s : timed) {
    overlapped.push_back(s.dp_overlapped_s);
    step.push_back(s.total_s());
    recv.push_back(s.pipeline_recv_s);
    for (std::size_t p = 0; p < kPhaseCount; ++p) phases[p].push_back(s.phase_s[p]);
    for (std::size_t d = 0; d < 3; ++d) comm[d].push_back(s.comm[d]);
    embedding.push_back(s.comm_embedding);
  }
  j["step_s"] = median_of(step);
  j["pipeline_recv_s"] = median_of(recv);
  json ph;
  for (std::size_t p = 0; p < kPhaseCount; ++p) {
    ph[std::string(phase_name(static_cast<Phase>(p)))] = median_of(phases[p]);
  }
  j["phases_s"] = ph;
  json peaks;
  for (std::size_t i = 0; i < kMemoryCategoryCount; ++i) {
    const auto cat = static_cast<MemoryCategory>(i);
    peaks[std::string(memory_category_name(cat))] = mem.peak_bytes(cat);
  }
  j["memory_peak_bytes"] = peaks;
  json cj;
  for (std::size_t d = 0; d < 3; ++d) cj[kDims[d]] = comm_json(comm[d], d == 0 ? overlapped : std::vector<double>{});
  cj["embedding"] = comm_json(embedding);
  j["communication"] = cj;
  return j;
}

json max_memory_peaks(const std::vector<json>& ranks) {
  json out = json::object();
  for (const json& r : ranks) {
    for (const auto& [k, v] : r["memory_peak_bytes"].items()) {
      out[k] = std::max(out.value(k, std::size_t{0}), v.get<std::size_t>());
    }
  }
  return out;
}

json parallel_json(const RunConfig& c, const RankSetup& r, const std::vector<json>& ranks,
                   const std::string& launcher) {
  const int m = c.micro_batches();
  json j = {{"dp", c.dp},
            {"tp", c.tp},
            {"pp", c.pp},
            {"world_size", c.ranks()},
            {"pp_schedule", c.pp_schedule},
            {"virtual_stages", c.virtual_stages},
            {"zero", c.zero},
            {"sequence_parallel", c.sequence_parallel},
            {"bucket_mb", c.bucket_mb},
            {"micro_batches", m},
            {"comm_backend", r.grid ? std::string(r.grid->data->backend_name()) : "none"},
            {"launcher", launcher.empty() ? json(nullptr) : json(launcher)}};
  // Per dimension: the mean over ranks of each rank's medians.
  json comm;
  for (const char* d : {"data", "tensor", "pipeline", "embedding"}) {
    json mean;
    for (const char* k :
         {"bytes_per_step", "seconds_per_step", "calls_per_step", "exposed_s", "overlapped_s"}) {
      double sum = 0;
      for (const json& rk : ranks) sum += rk["communication"][d][k].get<double>();
      mean[k] = sum / double(ranks.size());
    }
    comm[d] = mean;
  }
  j["communication"] = comm;
  // Measured: the share of a step each stage spent waiting for its neighbours (receives),
  // averaged over ranks; analytic: (p−1)/(m+p−1) (pipeline_schedule.h).
  double waited = 0;
  for (const json& rk : ranks) {
    const double step = rk["step_s"].get<double>();
    waited += step > 0 ? rk["pipeline_recv_s"].get<double>() / step : 0.0;
  }
  j["bubble"] = {{"measured_fraction", c.pp > 1 ? waited / double(ranks.size()) : 0.0},
                 {"analytic_fraction", analytic_bubble_fraction(c.pp, m)}};
  j["ranks"] = ranks;
  return j;
}

}  // namespace tb
