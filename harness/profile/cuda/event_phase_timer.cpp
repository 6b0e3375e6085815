#include "event_phase_timer.h"

#include <stdexcept>

namespace tb {

namespace {

// "cudaEventRecord(event, stream) failed: cudaErrorInvalidResourceHandle (invalid resource
// handle)": the call and the status's name and text, and the runtime's last error cleared.
std::string cuda_error(const char* call, cudaError_t status) {
  (void)cudaGetLastError();
  return std::string(call) + " failed: " + cudaGetErrorName(status) + " (" +
         cudaGetErrorString(status) + ")";
}

}  // namespace

EventPhaseTimer::~EventPhaseTimer() {
  for (cudaEvent_t e : events_) (void)cudaEventDestroy(e);  // destructor: nothing to report to
}

std::string EventPhaseTimer::next_event(std::size_t* index) noexcept {
  if (used_ == events_.size()) {
    cudaEvent_t e = nullptr;
    // Timing events: cudaEventDefault (cudaEventDisableTiming would make elapsed time fail).
    const cudaError_t st = cudaEventCreateWithFlags(&e, cudaEventDefault);
    if (st != cudaSuccess)
      return cuda_error("cudaEventCreateWithFlags(&event, cudaEventDefault)", st);
    events_.push_back(e);
  }
  *index = used_++;
  const cudaError_t st = cudaEventRecord(events_[*index], stream_);
  return st == cudaSuccess ? std::string() : cuda_error("cudaEventRecord(event, stream)", st);
}

std::string EventPhaseTimer::open(Phase p) noexcept {
  Pending r{p, open_.empty() ? -1 : static_cast<int>(open_.back()), 0, 0};
  std::string err = next_event(&r.start_event);
  open_.push_back(ranges_.size());
  ranges_.push_back(r);
  return err;
}

std::string EventPhaseTimer::close(Phase p) noexcept {
  if (open_.empty()) return "CUDA-event timer: range closed that was never opened";
  const std::size_t i = open_.back();
  open_.pop_back();
  if (ranges_[i].phase != p) return "CUDA-event timer: ranges closed out of order";
  return next_event(&ranges_[i].end_event);
}

std::array<double, kPhaseCount> EventPhaseTimer::take_seconds() {
  if (!open_.empty()) {
    throw std::runtime_error("GPU collector: collect() called with a phase range still open");
  }
  std::vector<EventRange> out;
  out.reserve(ranges_.size());
  if (used_ > 0) {
    const cudaError_t st = cudaEventSynchronize(events_[used_ - 1]);
    if (st != cudaSuccess)
      throw std::runtime_error(cuda_error("cudaEventSynchronize(last event)", st));
  }
  for (const Pending& r : ranges_) {
    float ms = 0;
    const cudaError_t st = cudaEventElapsedTime(&ms, events_[r.start_event], events_[r.end_event]);
    if (st != cudaSuccess) {
      throw std::runtime_error(
          cuda_error("cudaEventElapsedTime(&ms, open event, close event)", st));
    }
    out.push_back(EventRange{r.phase, r.parent, static_cast<double>(ms) * 1e-3});
  }
  ranges_.clear();
  used_ = 0;
  return exclusive_phase_seconds(out);
}

}  // namespace tb
