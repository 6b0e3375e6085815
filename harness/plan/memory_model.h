// The memory model of one training step as trainbench implements it (docs/planner.md): the
// peak bytes of each tracked category (tb/memory.h) on one rank, predicted from the model's
// dimensions and the run's configuration alone — no allocation. The capacity planner ranks
// full-size configurations with it, and `step`/`run` check it against the device's free
// memory before allocating; tests/plan checks it against the tracker's peaks.
#pragma once
#include <array>
#include <cstddef>

#include "model/config.h"
#include "scenario/scenario.h"
#include "tb/backend.h"
#include "tb/memory.h"

namespace tb {

struct MemoryPrediction {
  // Peak bytes per category (indexed by MemoryCategory) on one rank of `stage`.
  std::array<double, kMemoryCategoryCount> bytes{};
  int stage = 0;  // the pipeline stage this rank runs
  double at(MemoryCategory c) const { return bytes[static_cast<std::size_t>(c)]; }
  // Sum of the category peaks: an upper bound on the peak of the total.
  double total() const;
};

// One rank of pipeline stage `stage` (tensor-parallel rank 0, data-parallel rank 0) running
// `run` on `model` (already reduced, MoE set) on a device of kind `device` (a CUDA device
// has no `emulation` memory).
MemoryPrediction predict_stage_memory(const ModelConfig& model, const RunConfig& run,
                                      DeviceKind device, int stage);
// The stage whose total is largest.
MemoryPrediction predict_peak_memory(const ModelConfig& model, const RunConfig& run,
                                     DeviceKind device);

}  // namespace tb
