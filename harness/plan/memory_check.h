// The check `trainbench step` and `run` make before a model allocates anything: the memory
// model's prediction (memory_model.h) against what the device really has
// (available_memory.h) and against the run's memory_limit_bytes. A configuration that cannot
// fit fails at once — `step` with one line naming the predicted and the available bytes, `run`
// with an `oom` result — instead of being killed by the kernel's OOM killer halfway through
// allocating.
//
// What must fit where: on a CPU the node's RAM holds every rank started on it (each its own
// stage), so the prediction is the sum over the node's ranks — the whole job's when all its
// ranks are local, else the largest stage times the local rank count; on a GPU, each rank's
// own stage on its own device. A tracker limit (memory_limit_bytes) bounds each rank's own
// stage.
#pragma once
#include <cstddef>
#include <string>

#include "memory_model.h"
#include "tb/memory.h"

namespace tb {

// OutOfMemory raised before allocating: the predicted peak does not fit. Its message is the
// check's one line.
class PredictedOutOfMemory : public OutOfMemory {
 public:
  PredictedOutOfMemory(std::size_t predicted, std::size_t available, std::string message)
      : OutOfMemory(predicted, available, "predicted peak"), message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

struct MemoryCheck {
  double predicted_bytes = 0;       // what must fit into available_bytes
  std::size_t available_bytes = 0;  // 0 with available_known false
  bool available_known = false;
  std::string available_source;
  MemoryPrediction rank;  // this rank's stage, by category
  int ranks = 1;          // ranks whose peaks predicted_bytes sums (a node's, on a CPU)
  bool fits = true;
  // One line: "predicted peak memory … bytes (…) exceeds the available … bytes (source)".
  std::string message() const;
};

// The check for the rank of pipeline stage `stage` of `run` on `device` (CUDA: device index
// `cuda_device`), with `local_ranks` of the job's ranks on this node (1 for a single process).
MemoryCheck check_memory(const ModelConfig& model, const RunConfig& run, DeviceKind device,
                         int stage, int local_ranks, int cuda_device = 0);
// Throws PredictedOutOfMemory when !c.fits.
void require_fits(const MemoryCheck& c);

}  // namespace tb
