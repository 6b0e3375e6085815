#include "profiler.h"

#include "gpu_collector.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <numeric>
#include <set>
#include <stdexcept>
#include <utility>

#ifdef TB_HAVE_NVTX
#include <nvtx3/nvToolsExt.h>
#endif

namespace tb {

namespace {

constexpr std::array<std::string_view, kPhaseCount> kPhaseNames = {
    "forward", "backward", "recompute", "optimizer", "communication", "data_wait"};

std::size_t index_of(Phase p) { return static_cast<std::size_t>(p); }

bool is_phase_name(std::string_view name) {
  return std::find(kPhaseNames.begin(), kPhaseNames.end(), name) != kPhaseNames.end();
}

#ifdef TB_HAVE_NVTX
// One "trainbench" domain; each phase's name registered once and drawn in its own colour.
// Without a tool attached (Nsight Systems sets NVTX_INJECTION64_PATH) every call is a no-op.
struct Nvtx {
  nvtxDomainHandle_t domain;
  std::array<nvtxEventAttributes_t, kPhaseCount> phase;

  Nvtx() : domain(nvtxDomainCreateA("trainbench")), phase{} {
    // ARGB, one hue per phase (forward blue, backward orange, recompute green, optimizer red,
    // communication purple, data wait grey).
    constexpr std::array<std::uint32_t, kPhaseCount> colors = {
        0xFF4C72B0u, 0xFFDD8452u, 0xFF55A868u, 0xFFC44E52u, 0xFF8172B3u, 0xFF8C8C8Cu};
    for (std::size_t i = 0; i < kPhaseCount; ++i) {
      nvtxEventAttributes_t& a = phase[i];
      a.version = NVTX_VERSION;
      a.size = static_cast<std::uint16_t>(sizeof(nvtxEventAttributes_t));
      a.colorType = NVTX_COLOR_ARGB;
      a.color = colors[i];
      a.messageType = NVTX_MESSAGE_TYPE_REGISTERED;
      a.message.registered = nvtxDomainRegisterStringA(domain, kPhaseNames[i].data());
    }
  }
};

const Nvtx& nvtx() {
  static const Nvtx state;
  return state;
}

void nvtx_push(Phase p) {
  const Nvtx& n = nvtx();
  nvtxDomainRangePushEx(n.domain, &n.phase[index_of(p)]);
}

void nvtx_pop() { nvtxDomainRangePop(nvtx().domain); }

void nvtx_mark(const std::string& name) {
  nvtxEventAttributes_t a{};
  a.version = NVTX_VERSION;
  a.size = static_cast<std::uint16_t>(sizeof(nvtxEventAttributes_t));
  a.messageType = NVTX_MESSAGE_TYPE_ASCII;
  a.message.ascii = name.c_str();
  nvtxDomainMarkEx(nvtx().domain, &a);
}
#else
void nvtx_push(Phase) {}
void nvtx_pop() {}
void nvtx_mark(const std::string&) {}
#endif

}  // namespace

std::string_view phase_name(Phase p) {
  const std::size_t i = index_of(p);
  return i < kPhaseCount ? kPhaseNames[i] : std::string_view("unknown");
}

Profiler::Profiler(bool record_trace) : record_trace_(record_trace), origin_(Clock::now()) {
  stack_.reserve(8);  // deeper nesting than this is unusual; the vector grows if needed
}

Profiler::Range::Range(Profiler& p, Phase phase) : profiler_(p) { p.push(phase); }

Profiler::Range::~Range() { profiler_.pop(); }

void Profiler::push(Phase p) {
  // The stack first (the only step that may throw), then NVTX, then the clock last, so the
  // range's own bookkeeping is not timed as the phase.
  stack_.push_back(Open{p, Clock::time_point{}, 0.0});
  nvtx_push(p);
  if (gpu_) gpu_->range_open(p);
  stack_.back().start = Clock::now();
}

void Profiler::pop() {
  const Clock::time_point end = Clock::now();
  const Open o = stack_.back();
  stack_.pop_back();
  const double total = std::chrono::duration<double>(end - o.start).count();
  seconds_[index_of(o.phase)] += total - o.child_s;
  if (!stack_.empty()) stack_.back().child_s += total;
  if (record_trace_) {
    // Phase names fit the short-string buffer: recording allocates only when events_ grows.
    events_.push_back(
        TraceEvent{std::string(phase_name(o.phase)),
                   std::chrono::duration<double, std::micro>(o.start - origin_).count(),
                   total * 1e6, static_cast<int>(stack_.size())});
  }
  if (gpu_) gpu_->range_close(o.phase);
  nvtx_pop();
}

std::array<double, kPhaseCount> Profiler::take_phase_seconds() {
  return std::exchange(seconds_, std::array<double, kPhaseCount>{});
}

void Profiler::add_trace_events(const std::vector<TraceEvent>& events) {
  events_.insert(events_.end(), events.begin(), events.end());
}

void Profiler::mark(std::string name) {
  nvtx_mark(name);
  if (!record_trace_) return;
  const double now_us = std::chrono::duration<double, std::micro>(Clock::now() - origin_).count();
  events_.push_back(TraceEvent{std::move(name), now_us, 0.0, static_cast<int>(stack_.size())});
}

void write_chrome_trace(const std::string& path, const std::vector<TraceEvent>& events,
                        const std::string& process_name, const nlohmann::json& metadata) {
  write_chrome_trace(path, std::vector<std::vector<TraceEvent>>{events}, process_name, metadata);
}

void write_chrome_trace(const std::string& path, const std::vector<std::vector<TraceEvent>>& ranks,
                        const std::string& process_name, const nlohmann::json& metadata) {
  using nlohmann::json;
  json trace = json::array();
  const bool parallel = ranks.size() > 1;
  for (std::size_t r = 0; r < ranks.size(); ++r) {
    const std::vector<TraceEvent>& events = ranks[r];
    const int base = static_cast<int>(r) * kTracePidsPerRank;
    trace.push_back(
        {{"name", "process_name"},
         {"ph", "M"},
         {"pid", base},
         {"tid", 0},
         {"args",
          {{"name", parallel ? process_name + " rank " + std::to_string(r) : process_name}}}});
    trace.push_back({{"name", "thread_name"},
                     {"ph", "M"},
                     {"pid", base},
                     {"tid", 0},
                     {"args", {{"name", "host"}}}});
    if (parallel) {  // ranks in order, top to bottom
      trace.push_back({{"name", "process_sort_index"},
                       {"ph", "M"},
                       {"pid", base},
                       {"tid", 0},
                       {"args", {{"sort_index", base}}}});
    }

    // Ranges are recorded when they close (inner before outer): write them in start order,
    // an enclosing range before the ranges it contains.
    std::vector<std::size_t> order(events.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      const TraceEvent &x = events[a], &y = events[b];
      if (x.start_us != y.start_us) return x.start_us < y.start_us;
      return x.depth < y.depth;
    });
    // GPU tracks: one process per device, one thread per stream, named once each.
    std::set<std::pair<int, std::int64_t>> gpu_tracks;
    for (const TraceEvent& e : events) {
      if (!e.category.empty()) gpu_tracks.emplace(e.pid, e.tid);
    }
    int named_pid = -1;
    for (const auto& [pid, tid] : gpu_tracks) {
      if (pid != named_pid) {
        const std::string gpu = "GPU " + std::to_string(pid - 1);
        trace.push_back(
            {{"name", "process_name"},
             {"ph", "M"},
             {"pid", base + pid},
             {"tid", 0},
             {"args", {{"name", parallel ? "rank " + std::to_string(r) + " " + gpu : gpu}}}});
        named_pid = pid;
      }
      trace.push_back({{"name", "thread_name"},
                       {"ph", "M"},
                       {"pid", base + pid},
                       {"tid", tid},
                       {"args", {{"name", "GPU stream " + std::to_string(tid)}}}});
    }

    for (const std::size_t i : order) {
      const TraceEvent& e = events[i];
      // GPU activities carry a category; host ranges a phase's name; anything else is a
      // marker.
      if (!e.category.empty()) {
        trace.push_back({{"name", e.name},
                         {"cat", e.category},
                         {"ph", "X"},
                         {"ts", e.start_us},
                         {"dur", e.duration_us},
                         {"pid", base + e.pid},
                         {"tid", e.tid},
                         {"args", {{"phase", e.phase}}}});
      } else if (is_phase_name(e.name)) {
        trace.push_back({{"name", e.name},
                         {"cat", "phase"},
                         {"ph", "X"},
                         {"ts", e.start_us},
                         {"dur", e.duration_us},
                         {"pid", base},
                         {"tid", 0},
                         {"args", {{"depth", e.depth}}}});
      } else {
        trace.push_back({{"name", e.name},
                         {"cat", "mark"},
                         {"ph", "i"},
                         {"s", "t"},
                         {"ts", e.start_us},
                         {"pid", base},
                         {"tid", 0}});
      }
    }
  }

  const json doc = {{"traceEvents", std::move(trace)},
                    {"displayTimeUnit", "ms"},
                    {"otherData", metadata.is_null() ? json::object() : metadata},
                    {"distributedInfo", {{"rank", 0}, {"world_size", ranks.size()}}}};
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write trace file '" + path + "'");
  out << doc.dump() << "\n";
  out.close();
  if (!out) throw std::runtime_error("cannot write trace file '" + path + "' (write failed)");
}

nlohmann::json trace_events_to_json(const std::vector<TraceEvent>& events) {
  nlohmann::json rows = nlohmann::json::array();
  for (const TraceEvent& e : events) {
    rows.push_back({e.name, e.start_us, e.duration_us, e.depth, e.pid, e.tid, e.category, e.phase});
  }
  return rows;
}

std::vector<TraceEvent> trace_events_from_json(const nlohmann::json& rows) {
  if (!rows.is_array()) throw std::invalid_argument("trace events (expected a JSON array)");
  auto malformed = [](const nlohmann::json& r) {
    return std::invalid_argument("trace event " + r.dump() +
                                 " (expected [name, start_us, duration_us, depth, pid, tid, "
                                 "category, phase])");
  };
  std::vector<TraceEvent> out;
  for (const nlohmann::json& r : rows) {
    if (!r.is_array() || r.size() != 8) throw malformed(r);
    try {
      out.push_back(TraceEvent{r[0].get<std::string>(), r[1].get<double>(), r[2].get<double>(),
                               r[3].get<int>(), r[4].get<int>(), r[5].get<std::int64_t>(),
                               r[6].get<std::string>(), r[7].get<std::string>()});
    } catch (const nlohmann::json::exception&) {
      throw malformed(r);
    }
  }
  return out;
}

}  // namespace tb
