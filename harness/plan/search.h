// The capacity planner's search (docs/planner.md, "Search"): every split of a GPU count and
// every option trainbench can run — enumerated under the divisibility rules, kept only when
// the memory model says it fits with headroom, priced by the time model, and ranked by the
// expected time to train (failures and state checkpoints included when an MTBF is given).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "calibration.h"
#include "candidate.h"
#include "goodput.h"
#include "hardware.h"
#include "memory_model.h"
#include "time_model.h"

namespace tb {

struct PlanRequest {
  ModelConfig model;
  Accelerator device;
  int gpus = 0;
  double tokens = 0;             // to train on
  int global_batch = 0;          // sequences per iteration
  double memory_headroom = 0.9;  // fraction of the device's memory a plan may use
  std::optional<double> price_per_gpu_hour;
  // Failures: mean time between failures of ONE GPU (the job's is this ÷ gpus). Default from
  // Llama 3 (Dubey et al. 2024, §3.3.4, Table 5): 419 unexpected interruptions in 54 days on
  // 16,384 H100s — 54·24·16384/419 ≈ 50,700 GPU-hours.
  std::optional<double> mtbf_gpu_hours;
  double restart_s = 600;  // assumed: detect, reschedule, reload
  // Storage bandwidth for state checkpoints per GPU of the job (every rank writes its part at
  // once): Llama 3's sustained 2 TB/s over its 16,384 GPUs (§3.3.1), 122 MB/s each; a
  // calibration's measured per-process write rate caps it.
  double storage_bytes_per_s_per_gpu = 2e12 / 16384;
  // Pins: a set field fixes that dimension.
  std::optional<int> dp, tp, pp, virtual_stages, micro_batch, zero;
  std::optional<Recompute> recompute;
  std::optional<bool> sequence_parallel;
  std::string precision = "bf16";
  std::string schedule = "1f1b";
  const Calibration* calibration = nullptr;
  TimeModelInputs time;  // device and calibration filled in by plan()
  std::size_t keep = 0;  // configurations kept in the result (0: all feasible)
};

struct PlanEntry {
  PlanCandidate candidate;
  MemoryPrediction memory;
  double memory_usable_bytes = 0;
  bool fits = false;
  IterationPrediction iteration;
  double tokens_per_s = 0, mfu = 0, hfu = 0;
  double time_to_train_s = 0, gpu_hours = 0;
  std::optional<double> cost;
  double checkpoint_bytes = 0, checkpoint_write_s = 0;
  std::optional<Goodput> goodput;
  // What ranks it: the goodput's wall time when failures are modelled, else time_to_train_s.
  double expected_time_s() const { return goodput ? goodput->wall_s : time_to_train_s; }
};

struct PlanResult {
  std::vector<PlanEntry> ranked;  // feasible, fastest first
  long evaluated = 0;
  long feasible = 0;
};

// Valid splits and options for the request's GPU count (divisibility and the pins only).
std::vector<PlanCandidate> enumerate_candidates(const PlanRequest& r);
// Memory, time, cost and goodput of one candidate.
PlanEntry evaluate_candidate(const PlanRequest& r, const PlanCandidate& c);
// Throws std::invalid_argument for a request that cannot be planned (zero GPUs, no tokens,
// a model whose heads no tp divides, …) with the value and what was expected.
PlanResult plan(const PlanRequest& r);

}  // namespace tb
