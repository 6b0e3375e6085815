// The collector: CUPTI records attributed through external correlation ids, or CUDA events.
// Attribution: each range open pushes an external id (a sequence number with the phase in its
// low bits, gpu_intervals.h) with cuptiActivityPushExternalCorrelationId(CUSTOM0) and each close
// pops it; CUPTI tags every API call made meanwhile on this thread with the innermost id, and a
// kernel/memcpy/memset record carries the correlation id of the call that launched it. So work
// goes to the innermost open range, as host time does (exclusive phases).
#include "cuda_collector.h"

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <utility>

#include "profile/cuda/cupti_session.h"
#include "profile/cuda/event_phase_timer.h"
#include "profile/gpu_intervals.h"

namespace tb {

namespace {

void check(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();
  throw std::runtime_error(std::string(call) + " failed: " + cudaGetErrorName(status) + " (" +
                           cudaGetErrorString(status) + ")");
}

class CudaCollector final : public GpuPhaseCollector {
 public:
  CudaCollector(const GpuCollectorOptions& o, std::unique_ptr<CuptiSession> cupti,
                std::string warning)
      : stream_(static_cast<cudaStream_t>(o.stream)),
        trace_(o.trace),
        origin_ns_(steady_ns(o.trace_origin)),
        cupti_(std::move(cupti)),
        events_(stream_),
        warning_(std::move(warning)) {}

  void range_open(Phase p) noexcept override {
    ++depth_;
    note(cupti_ ? cupti_->push(encode_external_id(++sequence_, p)) : events_.open(p));
  }

  void range_close(Phase p) noexcept override {
    --depth_;
    note(cupti_ ? cupti_->pop() : events_.close(p));
  }

  GpuProfile collect() override {
    if (!error_.empty()) throw std::runtime_error(std::exchange(error_, std::string()));
    if (depth_ != 0) {
      throw std::runtime_error("GPU collector: collect() called with a phase range still open");
    }
    if (!cupti_) {
      GpuProfile out;
      out.source = "cuda_events";
      out.warning = warning_;
      out.phase_gpu_s = events_.take_seconds();
      return out;
    }
    // Every record of the region is complete once the stream is idle; then a forced flush
    // hands over every buffer (cuptiActivityFlushAll: "it's the client's responsibility to
    // issue necessary CUDA synchronization calls before calling this function").
    check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize(backend stream)");
    SummaryOptions so;
    so.trace = trace_;
    so.trace_origin_ns = origin_ns_;
    if (trace_) so.clock = cupti_->clock_offset();  // re-measured per region: no drift builds up
    return summarize_activities(cupti_->take(), so);
  }

  std::string_view source() const override { return cupti_ ? "cupti" : "cuda_events"; }

 private:
  void note(std::string err) noexcept {
    if (!err.empty() && error_.empty()) error_ = std::move(err);
  }

  cudaStream_t stream_;
  bool trace_;
  std::int64_t origin_ns_;
  std::unique_ptr<CuptiSession> cupti_;  // null: CUDA events
  EventPhaseTimer events_;
  std::string warning_;  // why CUDA events are used
  std::string error_;    // first failure in a range hook, thrown by collect()
  std::uint64_t sequence_ = 0;
  int depth_ = 0;
};

}  // namespace

std::unique_ptr<GpuPhaseCollector> make_cuda_collector(const GpuCollectorOptions& options) {
  std::string why;
  std::unique_ptr<CuptiSession> cupti;
  if (options.force_cuda_events) {
    why = "CUDA-event timing forced (GpuCollectorOptions::force_cuda_events)";
  } else {
    cupti = CuptiSession::start(options.buffer_bytes, &why);
    if (cupti) why.clear();
  }
  if (!cupti) {
    // The fallback must work, or there is nothing to report: probe event creation now.
    cudaEvent_t probe = nullptr;
    check(cudaEventCreateWithFlags(&probe, cudaEventDefault),
          "cudaEventCreateWithFlags(&probe, cudaEventDefault)");
    check(cudaEventDestroy(probe), "cudaEventDestroy(probe)");
    why = "CUPTI not used: " + why +
          "; GPU seconds per phase are CUDA-event times on the backend's stream (idle gaps "
          "inside ranges included; no kernel table, CUPTI overhead or GPU trace tracks)";
  }
  return std::make_unique<CudaCollector>(options, std::move(cupti), std::move(why));
}

}  // namespace tb
