// Phase ranges on the host clock. One RAII Range per phase (forward, backward, recompute,
// optimizer, communication, data wait) reads the host clock, pushes an NVTX range of the same
// name (NVTX3 from the CUDA toolkit where present; compiled out otherwise) so Nsight Systems
// shows the same phases, and — when tracing — records an event for the Chrome trace.
// Ranges may nest; a phase's time is exclusive (an inner range's time is not also counted
// in the outer one). Not thread-safe: ranges are opened by the thread driving the step.
#pragma once
#include <array>
#include <nlohmann/json.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tb {

enum class Phase : std::uint8_t { forward, backward, recompute, optimizer, communication, data_wait };
inline constexpr std::size_t kPhaseCount = 6;
std::string_view phase_name(Phase p);  // "forward", …, "data_wait"

struct TraceEvent {
  std::string name;  // phase name, or a marker's name
  double start_us = 0;  // since the profiler was created
  double duration_us = 0;
  int depth = 0;  // nesting depth when opened
  // GPU activities (gpu_profile.h) only: pid 1 + device, tid = CUDA stream ("GPU stream N"),
  // category "kernel" | "memcpy" | "memset", and the phase that launched it ("" for none).
  // Host ranges and markers keep pid 0, tid 0 and an empty category.
  int pid = 0;
  std::int64_t tid = 0;
  std::string category = {};
  std::string phase = {};
};

class GpuPhaseCollector;  // profile/gpu_collector.h

class Profiler {
 public:
  explicit Profiler(bool record_trace = false);

  class Range {
   public:
    Range(Profiler& p, Phase phase);
    ~Range();
    Range(const Range&) = delete;
    Range& operator=(const Range&) = delete;

   private:
    Profiler& profiler_;
  };
  Range range(Phase p) { return Range(*this, p); }

  // Exclusive seconds per phase (indexed by Phase) since the last call; resets them.
  std::array<double, kPhaseCount> take_phase_seconds();
  // A zero-length marker on the trace (e.g. "step 12"), when tracing.
  void mark(std::string name);

  bool tracing() const { return record_trace_; }
  const std::vector<TraceEvent>& trace_events() const { return events_; }
  // Adds events recorded elsewhere (the GPU collector's activities) to the trace.
  void add_trace_events(const std::vector<TraceEvent>& events);
  // The trace's time base: trace timestamps are µs since this instant.
  std::chrono::steady_clock::time_point origin() const { return origin_; }

  // An optional GPU collector (not owned; nullptr detaches) told of every range's open and
  // close, outside the host-timed part of the range. Without one nothing changes.
  void set_gpu_collector(GpuPhaseCollector* collector) { gpu_ = collector; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Open {
    Phase phase;
    Clock::time_point start;
    double child_s = 0;  // time spent in nested ranges
  };
  void push(Phase p);
  void pop();

  bool record_trace_;
  Clock::time_point origin_;
  std::vector<Open> stack_;
  std::array<double, kPhaseCount> seconds_{};
  std::vector<TraceEvent> events_;
  GpuPhaseCollector* gpu_ = nullptr;
};

// Writes a Chrome trace (JSON object format: {"traceEvents": [...], ...}) that Perfetto and
// chrome://tracing open: one "X" event per range on pid 0 / tid 0 (the host thread), markers
// as "i" events, "displayTimeUnit", "otherData" = metadata, and "distributedInfo" {rank 0,
// world_size 1}. GPU activities (events with a category) are "X" events on their own pid
// ("GPU <device>") and tid ("GPU stream N") tracks, with the launching phase in args.
// Throws std::runtime_error naming the path if it cannot be written.
void write_chrome_trace(const std::string& path, const std::vector<TraceEvent>& events,
                        const std::string& process_name, const nlohmann::json& metadata);
// A parallel job's ranks in one trace (events on one time base): rank r's host track is
// process r·kTracePidsPerRank ("<process_name> rank r"), its GPU activities r·kTracePidsPerRank
// + their pid; "distributedInfo" is {rank 0, world_size ranks}. One rank writes what the
// single-rank overload writes.
inline constexpr int kTracePidsPerRank = 100;
void write_chrome_trace(const std::string& path, const std::vector<std::vector<TraceEvent>>& ranks,
                        const std::string& process_name, const nlohmann::json& metadata);

// Events as JSON rows and back (to gather them from ranks); from_json throws
// std::invalid_argument on a malformed row.
nlohmann::json trace_events_to_json(const std::vector<TraceEvent>& events);
std::vector<TraceEvent> trace_events_from_json(const nlohmann::json& rows);

}  // namespace tb
