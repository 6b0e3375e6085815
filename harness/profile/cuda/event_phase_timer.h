// GPU time per phase from CUDA events (the collector's fallback): an event recorded on the
// backend's stream when a range opens and another when it closes; cudaEventElapsedTime of the
// pair, minus the pairs of ranges nested in it, is the phase's exclusive stream time. Unlike
// CUPTI's busy time this includes idle gaps on the stream inside the range.
#pragma once
#include <cuda_runtime.h>

#include <array>
#include <string>
#include <vector>

#include "profile/gpu_intervals.h"
#include "profile/profiler.h"

namespace tb {

class EventPhaseTimer {
 public:
  explicit EventPhaseTimer(cudaStream_t stream) : stream_(stream) {}
  ~EventPhaseTimer();
  EventPhaseTimer(const EventPhaseTimer&) = delete;
  EventPhaseTimer& operator=(const EventPhaseTimer&) = delete;

  // "" or a one-line error naming the CUDA call.
  std::string open(Phase p) noexcept;
  std::string close(Phase p) noexcept;

  // Waits for the last event, then the exclusive seconds per phase of the ranges closed since
  // the last call. Throws std::runtime_error (one line) on a CUDA failure or an open range.
  std::array<double, kPhaseCount> take_seconds();

 private:
  struct Pending {
    Phase phase;
    int parent;  // index into closed_ of the enclosing range, resolved when it closes
    std::size_t start_event, end_event;
  };
  std::string next_event(std::size_t* index) noexcept;

  cudaStream_t stream_;
  std::vector<cudaEvent_t> events_;  // a pool, reused after each take_seconds()
  std::size_t used_ = 0;
  std::vector<std::size_t> open_;  // indices into ranges_ of the open ranges
  std::vector<Pending> ranges_;    // in open order
};

}  // namespace tb
