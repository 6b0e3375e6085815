// What the GPU side of the profiler reports for one measured region: GPU busy seconds per
// phase, a per-kernel table, CUPTI's own overhead, dropped records, and (when tracing) the GPU
// activities as Chrome-trace events on "GPU stream N" tracks. Plain data, no CUDA: built by the
// collector (gpu_collector.h) and by the pure summary in gpu_intervals.h.
#pragma once
#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "profile/profiler.h"

namespace tb {

// One kernel (by demangled name) over the region.
struct GpuKernelStat {
  std::string name;
  std::uint64_t calls = 0;
  std::uint64_t total_ns = 0;
  std::array<std::uint64_t, kPhaseCount> calls_by_phase{};  // launched inside that phase
  std::uint64_t calls_unattributed = 0;                     // launched outside any range
  double mean_ns() const {
    return calls ? static_cast<double>(total_ns) / static_cast<double>(calls) : 0.0;
  }
};

struct GpuProfile {
  std::string source;   // "cupti" or "cuda_events"
  std::string warning;  // "" when the figures are complete; otherwise why they are not
  // GPU seconds per phase (indexed by Phase). cupti: the union of the phase's kernel, memcpy
  // and memset intervals (concurrent work counted once). cuda_events: the stream time between
  // the range's open and close, minus nested ranges (idle gaps on the stream included).
  std::array<double, kPhaseCount> phase_gpu_s{};
  double unattributed_gpu_s = 0;         // cupti: work launched outside every phase range
  std::vector<GpuKernelStat> kernels;    // cupti: by total time, largest first
  double cupti_overhead_s = 0;           // sum of CUPTI's OVERHEAD records
  std::uint64_t dropped_records = 0;     // records CUPTI could not store (buffers full)
  std::uint64_t incomplete_records = 0;  // records without timestamps, left out
  std::vector<TraceEvent> trace;  // GPU activities (when tracing), host-clock µs since origin
};

// {"source", "warning", "phases_gpu_s": {phase: s}, "unattributed_gpu_s", "kernels":
// [{"name", "calls", "total_s", "mean_s", "calls_by_phase": {phase: n}}], "cupti_overhead_s",
// "dropped_records", "incomplete_records"}. The trace is not included (it goes to the trace).
nlohmann::json gpu_profile_json(const GpuProfile& p);

// Adds `from` (a later region) into `into`: seconds and counts summed, kernels merged by name,
// warnings joined, trace events appended.
void accumulate(GpuProfile& into, const GpuProfile& from);

}  // namespace tb
