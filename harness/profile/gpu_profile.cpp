#include "gpu_profile.h"

#include <algorithm>

namespace tb {

namespace {

nlohmann::json by_phase(const std::array<std::uint64_t, kPhaseCount>& n) {
  nlohmann::json j = nlohmann::json::object();
  for (std::size_t p = 0; p < kPhaseCount; ++p) {
    if (n[p] > 0) j[std::string(phase_name(static_cast<Phase>(p)))] = n[p];
  }
  return j;
}

}  // namespace

nlohmann::json gpu_profile_json(const GpuProfile& p) {
  using nlohmann::json;
  json phases = json::object();
  for (std::size_t i = 0; i < kPhaseCount; ++i) {
    phases[std::string(phase_name(static_cast<Phase>(i)))] = p.phase_gpu_s[i];
  }
  json kernels = json::array();
  for (const GpuKernelStat& k : p.kernels) {
    kernels.push_back({{"name", k.name},
                       {"calls", k.calls},
                       {"total_s", static_cast<double>(k.total_ns) * 1e-9},
                       {"mean_s", k.mean_ns() * 1e-9},
                       {"calls_by_phase", by_phase(k.calls_by_phase)}});
  }
  return {{"source", p.source},
          {"warning", p.warning},
          {"phases_gpu_s", std::move(phases)},
          {"unattributed_gpu_s", p.unattributed_gpu_s},
          {"kernels", std::move(kernels)},
          {"cupti_overhead_s", p.cupti_overhead_s},
          {"dropped_records", p.dropped_records},
          {"incomplete_records", p.incomplete_records}};
}

void accumulate(GpuProfile& into, const GpuProfile& from) {
  if (into.source.empty()) into.source = from.source;
  if (!from.warning.empty() && into.warning.find(from.warning) == std::string::npos) {
    into.warning += into.warning.empty() ? from.warning : "; " + from.warning;
  }
  for (std::size_t p = 0; p < kPhaseCount; ++p) into.phase_gpu_s[p] += from.phase_gpu_s[p];
  into.unattributed_gpu_s += from.unattributed_gpu_s;
  for (const GpuKernelStat& k : from.kernels) {
    const auto it = std::find_if(into.kernels.begin(), into.kernels.end(),
                                 [&](const GpuKernelStat& x) { return x.name == k.name; });
    if (it == into.kernels.end()) {
      into.kernels.push_back(k);
      continue;
    }
    it->calls += k.calls;
    it->total_ns += k.total_ns;
    it->calls_unattributed += k.calls_unattributed;
    for (std::size_t p = 0; p < kPhaseCount; ++p) it->calls_by_phase[p] += k.calls_by_phase[p];
  }
  std::stable_sort(
      into.kernels.begin(), into.kernels.end(),
      [](const GpuKernelStat& a, const GpuKernelStat& b) { return a.total_ns > b.total_ns; });
  into.cupti_overhead_s += from.cupti_overhead_s;
  into.dropped_records += from.dropped_records;
  into.incomplete_records += from.incomplete_records;
  into.trace.insert(into.trace.end(), from.trace.begin(), from.trace.end());
}

}  // namespace tb
