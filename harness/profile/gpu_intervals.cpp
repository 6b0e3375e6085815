#include "gpu_intervals.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string_view>

namespace tb {

namespace {

constexpr std::uint64_t kPhaseBits = 3;
constexpr std::uint64_t kPhaseMask = (std::uint64_t{1} << kPhaseBits) - 1;
static_assert(kPhaseCount <= kPhaseMask + 1, "phases must fit the external id's low bits");

std::string_view kind_category(GpuActivityKind k) {
  switch (k) {
    case GpuActivityKind::memcpy:
      return "memcpy";
    case GpuActivityKind::memset:
      return "memset";
    default:
      return "kernel";
  }
}

}  // namespace

std::uint64_t encode_external_id(std::uint64_t sequence, Phase p) {
  return (sequence << kPhaseBits) | static_cast<std::uint64_t>(p);
}

std::optional<Phase> decode_external_id(std::uint64_t id) {
  const std::uint64_t p = id & kPhaseMask;
  if ((id >> kPhaseBits) == 0 || p >= kPhaseCount) return std::nullopt;
  return static_cast<Phase>(p);
}

std::uint64_t union_ns(std::vector<std::pair<std::uint64_t, std::uint64_t>> intervals) {
  std::sort(intervals.begin(), intervals.end());
  std::uint64_t total = 0, cur_start = 0, cur_end = 0;
  bool open = false;
  for (const auto& [s, e] : intervals) {
    if (e <= s) continue;
    if (open && s <= cur_end) {
      cur_end = std::max(cur_end, e);
      continue;
    }
    if (open) total += cur_end - cur_start;
    cur_start = s;
    cur_end = e;
    open = true;
  }
  if (open) total += cur_end - cur_start;
  return total;
}

ClockOffset ClockOffset::from_samples(const std::vector<ClockSample>& samples) {
  ClockOffset best;
  std::int64_t best_width = std::numeric_limits<std::int64_t>::max();
  for (const ClockSample& s : samples) {
    const std::int64_t width = s.host_after_ns - s.host_before_ns;
    if (width < 0 || width >= best_width) continue;
    best_width = width;
    best.cupti_minus_host_ns = s.cupti_ns - (s.host_before_ns + width / 2);
  }
  return best;
}

double ClockOffset::trace_us(std::uint64_t cupti_ns, std::int64_t origin_host_ns) const {
  const std::int64_t host_ns = static_cast<std::int64_t>(cupti_ns) - cupti_minus_host_ns;
  return static_cast<double>(host_ns - origin_host_ns) / 1e3;
}

std::int64_t steady_ns(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

GpuProfile summarize_activities(const GpuActivityBatch& batch, const SummaryOptions& options) {
  GpuProfile out;
  out.source = "cupti";
  out.cupti_overhead_s = static_cast<double>(batch.overhead_ns) * 1e-9;
  out.dropped_records = batch.dropped;

  // Phase of each record: CUPTI correlation id → external id → phase (kPhaseCount: none).
  using Intervals = std::vector<std::pair<std::uint64_t, std::uint64_t>>;
  std::array<Intervals, kPhaseCount + 1> by_phase;
  std::vector<GpuKernelStat> stats(batch.names.size());
  std::vector<bool> used(batch.names.size(), false);
  std::vector<std::string> pretty;  // demangled names, for the trace
  if (options.trace) {
    pretty.reserve(batch.names.size());
    for (const std::string& n : batch.names) pretty.push_back(demangle(n));
  }
  for (const GpuActivity& a : batch.activities) {
    if (a.start_ns == 0 || a.end_ns == 0 || a.end_ns < a.start_ns) {
      ++out.incomplete_records;
      continue;
    }
    std::size_t phase = kPhaseCount;
    if (const auto it = batch.external.find(a.correlation); it != batch.external.end()) {
      if (const auto p = decode_external_id(it->second)) phase = static_cast<std::size_t>(*p);
    }
    by_phase[phase].emplace_back(a.start_ns, a.end_ns);
    if (a.kind == GpuActivityKind::kernel && a.name < stats.size()) {
      GpuKernelStat& k = stats[a.name];
      used[a.name] = true;
      ++k.calls;
      k.total_ns += a.end_ns - a.start_ns;
      if (phase < kPhaseCount) {
        ++k.calls_by_phase[phase];
      } else {
        ++k.calls_unattributed;
      }
    }
    if (options.trace) {
      const double ts = options.clock.trace_us(a.start_ns, options.trace_origin_ns);
      out.trace.push_back(
          TraceEvent{a.name < pretty.size() ? pretty[a.name] : std::string(), ts,
                     static_cast<double>(a.end_ns - a.start_ns) / 1e3, 0,
                     1 + static_cast<int>(a.device), a.stream, std::string(kind_category(a.kind)),
                     phase < kPhaseCount ? std::string(phase_name(static_cast<Phase>(phase)))
                                         : std::string()});
    }
  }
  for (std::size_t p = 0; p < kPhaseCount; ++p) {
    out.phase_gpu_s[p] = static_cast<double>(union_ns(std::move(by_phase[p]))) * 1e-9;
  }
  out.unattributed_gpu_s = static_cast<double>(union_ns(std::move(by_phase[kPhaseCount]))) * 1e-9;

  // Kernel table by demangled name (two mangled names may demangle alike: merged).
  for (std::size_t i = 0; i < stats.size(); ++i) {
    if (!used[i]) continue;
    GpuKernelStat s = stats[i];
    s.name = demangle(batch.names[i]);
    const auto same = std::find_if(out.kernels.begin(), out.kernels.end(),
                                   [&](const GpuKernelStat& k) { return k.name == s.name; });
    if (same == out.kernels.end()) {
      out.kernels.push_back(std::move(s));
      continue;
    }
    same->calls += s.calls;
    same->total_ns += s.total_ns;
    same->calls_unattributed += s.calls_unattributed;
    for (std::size_t p = 0; p < kPhaseCount; ++p) same->calls_by_phase[p] += s.calls_by_phase[p];
  }
  std::stable_sort(
      out.kernels.begin(), out.kernels.end(),
      [](const GpuKernelStat& a, const GpuKernelStat& b) { return a.total_ns > b.total_ns; });

  out.warning = batch.warning;
  if (out.dropped_records > 0) {
    if (!out.warning.empty()) out.warning += "; ";
    out.warning += "CUPTI dropped " + std::to_string(out.dropped_records) +
                   " activity records (its buffers were full): GPU times are too low";
  }
  if (out.incomplete_records > 0) {
    if (!out.warning.empty()) out.warning += "; ";
    out.warning += std::to_string(out.incomplete_records) +
                   " CUPTI records had no timestamps and were left out";
  }
  return out;
}

std::array<double, kPhaseCount> exclusive_phase_seconds(const std::vector<EventRange>& ranges) {
  std::vector<double> child(ranges.size(), 0.0);
  for (const EventRange& r : ranges) {
    if (r.parent >= 0 && static_cast<std::size_t>(r.parent) < ranges.size()) {
      child[static_cast<std::size_t>(r.parent)] += r.elapsed_s;
    }
  }
  std::array<double, kPhaseCount> out{};
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    const auto p = static_cast<std::size_t>(ranges[i].phase);
    if (p < kPhaseCount) out[p] += ranges[i].elapsed_s - child[i];
  }
  return out;
}

std::string demangle(const std::string& name) {
  if (name.size() < 2 || name[0] != '_' || name[1] != 'Z') return name;
  int status = 0;
  const std::unique_ptr<char, decltype(&std::free)> d(
      abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status), &std::free);
  return status == 0 && d ? std::string(d.get()) : name;
}

}  // namespace tb
