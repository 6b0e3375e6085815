// The pure logic of the GPU collector, testable without a GPU: GPU activities (kernels,
// memcpys, memsets as CUPTI reports them) attributed to phases through external correlation
// ids, per-phase busy time as the union of intervals, the kernel table, the CUPTI-to-host clock
// offset for the Chrome trace, exclusive per-phase times of CUDA-event ranges, and demangling.
#pragma once
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "profile/gpu_profile.h"
#include "profile/profiler.h"

namespace tb {

enum class GpuActivityKind : std::uint8_t { kernel, memcpy, memset };

// One record, CUPTI's timestamps in ns. name indexes GpuActivityBatch::names.
struct GpuActivity {
  GpuActivityKind kind = GpuActivityKind::kernel;
  std::uint32_t name = 0;
  std::uint64_t start_ns = 0, end_ns = 0;
  std::uint32_t device = 0, stream = 0;
  std::uint32_t correlation = 0;  // CUPTI's correlation id of the API call that launched it
};

// What the CUPTI buffers of a region held, parsed.
struct GpuActivityBatch {
  std::vector<GpuActivity> activities;
  std::vector<std::string> names;  // interned (mangled) names
  // CUPTI correlation id → our external id (EXTERNAL_CORRELATION records, kind CUSTOM0).
  std::unordered_map<std::uint32_t, std::uint64_t> external;
  std::uint64_t overhead_ns = 0;
  std::uint64_t dropped = 0;
  std::string warning;  // e.g. a buffer whose records could not all be read
};

// External correlation ids pushed with each phase range: a non-zero sequence number and the
// phase in the low 3 bits, so a record's phase is read from the id alone.
std::uint64_t encode_external_id(std::uint64_t sequence, Phase p);
std::optional<Phase> decode_external_id(std::uint64_t id);

// Total length of the union of [start, end) intervals (ns); empty or reversed ones ignored.
std::uint64_t union_ns(std::vector<std::pair<std::uint64_t, std::uint64_t>> intervals);

// CUPTI's clock against the host's steady clock: offset = cupti − host, both in ns, measured
// by reading the host clock before and after cuptiGetTimestamp (midpoint; the sample with the
// narrowest bracket wins).
struct ClockSample {
  std::int64_t host_before_ns, cupti_ns, host_after_ns;
};
struct ClockOffset {
  std::int64_t cupti_minus_host_ns = 0;
  static ClockOffset from_samples(const std::vector<ClockSample>& samples);
  // A CUPTI timestamp as µs since `origin_host_ns` on the host clock (the trace's time base).
  double trace_us(std::uint64_t cupti_ns, std::int64_t origin_host_ns) const;
};
std::int64_t steady_ns(std::chrono::steady_clock::time_point t);

// How to turn a batch into a GpuProfile.
struct SummaryOptions {
  bool trace = false;                // also emit GpuProfile::trace
  ClockOffset clock;                 // for the trace
  std::int64_t trace_origin_ns = 0;  // Profiler::origin() on the host clock
};

// Attributes every activity to the phase of its correlation id's external id (none:
// unattributed), sums each phase's union of intervals, builds the kernel table (demangled
// names, by total time), copies overhead and dropped counts. Records with a zero timestamp or
// end < start are counted as incomplete and left out. source = "cupti"; warning names dropped
// and incomplete records and carries the batch's own warning.
GpuProfile summarize_activities(const GpuActivityBatch& batch, const SummaryOptions& options);

// CUDA-event ranges: each closed range's elapsed seconds and the index of its enclosing range
// in the same vector (-1: none). Exclusive seconds per phase = elapsed − enclosed ranges' elapsed.
struct EventRange {
  Phase phase;
  int parent;
  double elapsed_s;
};
std::array<double, kPhaseCount> exclusive_phase_seconds(const std::vector<EventRange>& ranges);

// abi::__cxa_demangle of an Itanium-mangled name ("_Z…"); the name unchanged otherwise or when
// it cannot be demangled.
std::string demangle(const std::string& name);

}  // namespace tb
