// The GPU side of the Profiler: an optional collector told of every phase range's open and
// close (Profiler::set_gpu_collector), which attributes GPU work to the phase that launched it.
// No CUDA here: builds without CUDA compile this header and get nullptr from the factory.
//
// Implementation (harness/profile/cuda/, built only with the CUDA backend): CUPTI's Activity
// API — kernel, memcpy and memset records attributed through an external correlation id pushed
// with each range — or, when CUPTI cannot be enabled (another CUPTI client such as Nsight
// Systems holds it, CUPTI not initialised, a second collector in the process) or when forced,
// CUDA events recorded on the backend's stream at each range's open and close, with a warning.
//
// Use (one collector at a time per process; ranges opened by one thread):
//   auto gpu = tb::make_gpu_collector({.stream = tb::cuda_stream_of(backend),
//                                      .trace = profiler.tracing(),
//                                      .trace_origin = profiler.origin()});
//   if (gpu) profiler.set_gpu_collector(gpu.get());
//   ... measured steps (Profiler ranges) ...
//   tb::GpuProfile g = gpu->collect();   // waits for the device; no range may be open
//   profiler.add_trace_events(g.trace);  result["gpu_profile"] = tb::gpu_profile_json(g);
//   profiler.set_gpu_collector(nullptr);  // before the collector is destroyed
#pragma once
#include <chrono>
#include <cstddef>
#include <memory>
#include <string_view>

#include "profile/gpu_profile.h"
#include "profile/profiler.h"

namespace tb {

class GpuPhaseCollector {
 public:
  virtual ~GpuPhaseCollector() = default;

  // Called by the Profiler when a range opens and closes (ranges nest; the innermost open
  // range owns the work launched). Never throw: a CUDA or CUPTI failure is kept and thrown by
  // collect().
  virtual void range_open(Phase p) noexcept = 0;
  virtual void range_close(Phase p) noexcept = 0;

  // Ends a measured region: waits for the device, flushes CUPTI's buffers (or reads the
  // events) and returns the GPU profile of the work since the previous collect(). Call with
  // no range open. Throws std::runtime_error (one line naming the CUDA/CUPTI call) on failure.
  virtual GpuProfile collect() = 0;

  // "cupti" or "cuda_events".
  virtual std::string_view source() const = 0;
};

struct GpuCollectorOptions {
  void* stream = nullptr;          // cuda_stream_of(backend): the stream events are put on
  bool force_cuda_events = false;  // skip CUPTI (tests of the fallback)
  bool trace = false;              // keep GPU activities for the Chrome trace (CUPTI only)
  std::chrono::steady_clock::time_point trace_origin{};  // Profiler::origin()
  std::size_t buffer_bytes = std::size_t{8} << 20;       // each CUPTI activity buffer
};

// A collector for the CUDA stream in `options`; nullptr when the build has no CUDA backend or
// options.stream is null (a CPU backend). Throws std::runtime_error (one line) when neither
// CUPTI nor CUDA events can be set up.
std::unique_ptr<GpuPhaseCollector> make_gpu_collector(const GpuCollectorOptions& options);

}  // namespace tb
