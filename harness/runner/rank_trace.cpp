#include "rank_trace.h"

#include <chrono>
#include <limits>
#include <nlohmann/json.hpp>

namespace tb {

namespace {

constexpr int kRoundTrips = 16;

double now_us(const Profiler& p) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - p.origin())
      .count();
}

// On rank 0: each rank's clock minus rank 0's (µs since their profilers' origins); elsewhere
// empty (the ranks answer rank 0's requests).
std::vector<double> clock_offsets(Comm& host, const Profiler& p) {
  std::vector<double> offsets(static_cast<std::size_t>(host.size()), 0.0);
  double value = 0;
  const Tensor t(&value, DType::f64, {1});
  for (int peer = 1; peer < host.size(); ++peer) {
    double best_round_trip = std::numeric_limits<double>::infinity();
    for (int i = 0; i < kRoundTrips; ++i) {
      if (host.rank() == 0) {
        const double asked = now_us(p);
        host.send(t, peer);
        host.recv(t, peer);
        const double answered = now_us(p);
        if (answered - asked < best_round_trip) {
          best_round_trip = answered - asked;
          offsets[static_cast<std::size_t>(peer)] = value - 0.5 * (asked + answered);
        }
      } else if (host.rank() == peer) {
        host.recv(t, 0);
        value = now_us(p);
        host.send(t, 0);
      }
    }
  }
  if (host.rank() != 0) offsets.clear();
  return offsets;
}

}  // namespace

std::vector<std::vector<TraceEvent>> gather_trace_events(const RankSetup& r, const Profiler& p) {
  if (!r.parallel()) return {p.trace_events()};
  const nlohmann::json mine = trace_events_to_json(p.trace_events());
  const std::vector<double> offsets = clock_offsets(*r.grid->host, p);
  std::vector<std::vector<TraceEvent>> out;
  for (const nlohmann::json& rank : gather_json(r, mine)) {
    std::vector<TraceEvent> events = trace_events_from_json(rank);
    if (!offsets.empty()) {
      for (TraceEvent& e : events) e.start_us -= offsets[out.size()];
    }
    out.push_back(std::move(events));
  }
  return out;
}

}  // namespace tb
