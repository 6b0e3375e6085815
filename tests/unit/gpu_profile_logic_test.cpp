// The GPU profiler's pure logic, without a GPU: the union of intervals, external correlation
// ids, attribution of activities to phases, the kernel table, the CUPTI-to-host clock offset,
// CUDA-event exclusive times, demangling, the JSON form, the Profiler's collector hook and the
// GPU tracks of the Chrome trace.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "profile/gpu_collector.h"
#include "profile/gpu_intervals.h"
#include "profile/gpu_profile.h"
#include "profile/profiler.h"
#include "unit/temp_dir.h"

namespace tb {
namespace {

using Intervals = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

TEST(GpuProfileLogic, UnionCountsOverlapOnce) {
  EXPECT_EQ(union_ns({}), 0u);
  EXPECT_EQ(union_ns({{10, 20}}), 10u);
  EXPECT_EQ(union_ns({{10, 20}, {30, 35}}), 15u);            // disjoint: summed
  EXPECT_EQ(union_ns({{10, 20}, {15, 30}}), 20u);            // overlapping
  EXPECT_EQ(union_ns({{10, 40}, {15, 20}, {25, 30}}), 30u);  // nested
  EXPECT_EQ(union_ns({{30, 35}, {10, 20}, {20, 30}}), 25u);  // touching, unsorted
  EXPECT_EQ(union_ns({{10, 10}, {20, 15}}), 0u);             // empty and reversed ignored
}

TEST(GpuProfileLogic, ExternalIdsCarryThePhase) {
  for (std::size_t p = 0; p < kPhaseCount; ++p) {
    const auto phase = static_cast<Phase>(p);
    for (std::uint64_t seq : {1ull, 2ull, 12345678901ull}) {
      const auto decoded = decode_external_id(encode_external_id(seq, phase));
      ASSERT_TRUE(decoded.has_value());
      EXPECT_EQ(*decoded, phase);
    }
  }
  EXPECT_FALSE(decode_external_id(0).has_value());  // no sequence number
  EXPECT_FALSE(decode_external_id(3).has_value());
  EXPECT_FALSE(decode_external_id((1u << 3) | 7u).has_value());  // no such phase
  EXPECT_NE(encode_external_id(1, Phase::forward), encode_external_id(2, Phase::forward));
}

// Kernels "_Z4gemmv" (forward ×2, concurrent; backward ×1; outside any range ×1) and
// "softmax" (backward), a memcpy in forward, a record of an unknown external id, an
// incomplete record.
GpuActivityBatch sample_batch() {
  GpuActivityBatch b;
  b.names = {"_Z4gemmv", "softmax", "memcpy HtoD"};
  const auto K = GpuActivityKind::kernel;
  b.activities = {
      {K, 0, 1000, 1100, 0, 7, 1},                        // gemm, forward
      {K, 0, 1050, 1200, 0, 8, 2},                        // gemm, forward, overlaps the first
      {GpuActivityKind::memcpy, 2, 1300, 1320, 0, 7, 3},  // forward
      {K, 0, 2000, 2400, 0, 7, 4},                        // gemm, backward
      {K, 1, 2400, 2500, 0, 7, 5},                        // softmax, backward
      {K, 0, 3000, 3010, 0, 7, 6},                        // gemm, no external id
      {K, 1, 3100, 3105, 0, 7, 9},                        // softmax, external id of no phase
      {K, 1, 0, 0, 0, 7, 4},                              // incomplete
  };
  const std::uint64_t fwd = encode_external_id(1, Phase::forward);
  const std::uint64_t bwd = encode_external_id(2, Phase::backward);
  b.external = {{1, fwd}, {2, fwd}, {3, fwd}, {4, bwd}, {5, bwd}, {9, 0}};
  b.overhead_ns = 2500;
  return b;
}

const GpuKernelStat* find_kernel(const GpuProfile& p, const std::string& name) {
  for (const GpuKernelStat& k : p.kernels) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

TEST(GpuProfileLogic, AttributesRecordsToTheirPhase) {
  const GpuProfile p = summarize_activities(sample_batch(), {});
  EXPECT_EQ(p.source, "cupti");
  const auto at = [&](Phase ph) { return p.phase_gpu_s[static_cast<std::size_t>(ph)]; };
  EXPECT_NEAR(at(Phase::forward), 220e-9, 1e-15);  // union 1000..1200 + memcpy 20
  EXPECT_NEAR(at(Phase::backward), 500e-9, 1e-15);
  EXPECT_EQ(at(Phase::optimizer), 0.0);
  EXPECT_NEAR(p.unattributed_gpu_s, 15e-9, 1e-15);
  EXPECT_NEAR(p.cupti_overhead_s, 2.5e-6, 1e-15);
  EXPECT_EQ(p.incomplete_records, 1u);
  EXPECT_NE(p.warning.find("no timestamps"), std::string::npos) << p.warning;
  EXPECT_TRUE(p.trace.empty());  // not asked for
}

TEST(GpuProfileLogic, KernelTableCountsCallsPerKernelAndPhase) {
  const GpuProfile p = summarize_activities(sample_batch(), {});
  ASSERT_EQ(p.kernels.size(), 2u);                       // the memcpy is not a kernel
  const GpuKernelStat* gemm = find_kernel(p, "gemm()");  // demangled
  const GpuKernelStat* softmax = find_kernel(p, "softmax");
  ASSERT_NE(gemm, nullptr);
  ASSERT_NE(softmax, nullptr);
  EXPECT_EQ(p.kernels[0].name, "gemm()");  // largest total first
  EXPECT_EQ(gemm->calls, 4u);
  EXPECT_EQ(gemm->total_ns, 100u + 150u + 400u + 10u);
  EXPECT_DOUBLE_EQ(gemm->mean_ns(), 660.0 / 4);
  EXPECT_EQ(gemm->calls_by_phase[static_cast<std::size_t>(Phase::forward)], 2u);
  EXPECT_EQ(gemm->calls_by_phase[static_cast<std::size_t>(Phase::backward)], 1u);
  EXPECT_EQ(gemm->calls_unattributed, 1u);
  EXPECT_EQ(softmax->calls, 2u);
  EXPECT_EQ(softmax->calls_by_phase[static_cast<std::size_t>(Phase::backward)], 1u);
  EXPECT_EQ(softmax->calls_unattributed, 1u);
}

TEST(GpuProfileLogic, DroppedRecordsAndBufferWarningsAreReported) {
  GpuActivityBatch b = sample_batch();
  b.dropped = 17;
  b.warning = "a buffer was skipped";
  const GpuProfile p = summarize_activities(b, {});
  EXPECT_EQ(p.dropped_records, 17u);
  EXPECT_NE(p.warning.find("dropped 17"), std::string::npos) << p.warning;
  EXPECT_NE(p.warning.find("a buffer was skipped"), std::string::npos) << p.warning;
}

TEST(GpuProfileLogic, ClockOffsetUsesTheNarrowestSample) {
  // True offset 1'000'000 ns; the wide sample's midpoint would say 999'500.
  const ClockOffset c =
      ClockOffset::from_samples({{0, 1'000'500, 2000}, {5000, 1'005'010, 5020}, {-10, 0, -20}});
  EXPECT_EQ(c.cupti_minus_host_ns, 1'000'000);
  // A CUPTI timestamp of 1'010'000 is host 10'000 ns; 4'000 ns after an origin at 6'000.
  EXPECT_DOUBLE_EQ(c.trace_us(1'010'000, 6'000), 4.0);
  EXPECT_EQ(ClockOffset::from_samples({}).cupti_minus_host_ns, 0);
}

TEST(GpuProfileLogic, TraceEventsOnGpuStreamTracks) {
  SummaryOptions o;
  o.trace = true;
  o.clock.cupti_minus_host_ns = 500;
  o.trace_origin_ns = 0;
  const GpuProfile p = summarize_activities(sample_batch(), o);
  ASSERT_EQ(p.trace.size(), 7u);  // every complete record
  const TraceEvent& first = p.trace[0];
  EXPECT_EQ(first.name, "gemm()");
  EXPECT_EQ(first.category, "kernel");
  EXPECT_EQ(first.pid, 1);  // device 0
  EXPECT_EQ(first.tid, 7);
  EXPECT_EQ(first.phase, "forward");
  EXPECT_DOUBLE_EQ(first.start_us, 0.5);  // (1000 − 500) ns
  EXPECT_DOUBLE_EQ(first.duration_us, 0.1);
  EXPECT_EQ(p.trace[2].category, "memcpy");
  EXPECT_EQ(p.trace[5].phase, "");  // unattributed
}

TEST(GpuProfileLogic, EventRangesAreExclusive) {
  // forward 10 s containing recompute 3 s; backward 5 s containing recompute 1 s; optimizer 2 s.
  const std::vector<EventRange> r = {{Phase::forward, -1, 10.0},
                                     {Phase::recompute, 0, 3.0},
                                     {Phase::backward, -1, 5.0},
                                     {Phase::recompute, 2, 1.0},
                                     {Phase::optimizer, -1, 2.0}};
  const auto s = exclusive_phase_seconds(r);
  EXPECT_DOUBLE_EQ(s[static_cast<std::size_t>(Phase::forward)], 7.0);
  EXPECT_DOUBLE_EQ(s[static_cast<std::size_t>(Phase::recompute)], 4.0);
  EXPECT_DOUBLE_EQ(s[static_cast<std::size_t>(Phase::backward)], 4.0);
  EXPECT_DOUBLE_EQ(s[static_cast<std::size_t>(Phase::optimizer)], 2.0);
}

TEST(GpuProfileLogic, Demangles) {
  EXPECT_EQ(demangle("_Z3fooi"), "foo(int)");
  EXPECT_EQ(demangle("_ZN2tb4cuda6kernelIfEEvPKT_i"),
            "void tb::cuda::kernel<float>(float const*, int)");
  EXPECT_EQ(demangle("plain_c_kernel"), "plain_c_kernel");
  EXPECT_EQ(demangle("_Z"), "_Z");  // not demangleable: unchanged
  EXPECT_EQ(demangle(""), "");
}

TEST(GpuProfileLogic, JsonShape) {
  GpuProfile p = summarize_activities(sample_batch(), {});
  const nlohmann::json j = gpu_profile_json(p);
  EXPECT_EQ(j.at("source"), "cupti");
  EXPECT_TRUE(j.at("warning").is_string());
  ASSERT_TRUE(j.at("phases_gpu_s").is_object());
  EXPECT_EQ(j.at("phases_gpu_s").size(), kPhaseCount);
  for (std::size_t i = 0; i < kPhaseCount; ++i) {
    EXPECT_TRUE(
        j.at("phases_gpu_s").at(std::string(phase_name(static_cast<Phase>(i)))).is_number());
  }
  EXPECT_NEAR(j.at("phases_gpu_s").at("backward").get<double>(), 500e-9, 1e-15);
  ASSERT_TRUE(j.at("kernels").is_array());
  ASSERT_EQ(j.at("kernels").size(), 2u);
  const nlohmann::json& k = j.at("kernels").at(0);
  EXPECT_EQ(k.at("name"), "gemm()");
  EXPECT_EQ(k.at("calls"), 4);
  EXPECT_NEAR(k.at("total_s").get<double>(), 660e-9, 1e-15);
  EXPECT_NEAR(k.at("mean_s").get<double>(), 165e-9, 1e-15);
  EXPECT_EQ(k.at("calls_by_phase"), (nlohmann::json{{"forward", 2}, {"backward", 1}}));
  EXPECT_NEAR(j.at("cupti_overhead_s").get<double>(), 2.5e-6, 1e-15);
  EXPECT_EQ(j.at("dropped_records"), 0);
  EXPECT_EQ(j.at("incomplete_records"), 1);
  EXPECT_TRUE(j.at("unattributed_gpu_s").is_number());

  GpuProfile events;
  events.source = "cuda_events";
  events.warning = "CUPTI not used: forced";
  const nlohmann::json e = gpu_profile_json(events);
  EXPECT_EQ(e.at("source"), "cuda_events");
  EXPECT_EQ(e.at("warning"), "CUPTI not used: forced");
  EXPECT_TRUE(e.at("kernels").empty());
}

TEST(GpuProfileLogic, AccumulateMergesRegions) {
  GpuProfile total;
  const GpuProfile one = summarize_activities(sample_batch(), {});
  accumulate(total, one);
  accumulate(total, one);
  EXPECT_EQ(total.source, "cupti");
  EXPECT_DOUBLE_EQ(total.phase_gpu_s[static_cast<std::size_t>(Phase::backward)],
                   2 * one.phase_gpu_s[static_cast<std::size_t>(Phase::backward)]);
  ASSERT_EQ(total.kernels.size(), 2u);
  EXPECT_EQ(total.kernels[0].calls, 8u);
  EXPECT_EQ(total.incomplete_records, 2u);
  EXPECT_EQ(total.warning, one.warning);  // the same warning once
}

// A collector that logs the hook calls.
class LoggingCollector final : public GpuPhaseCollector {
 public:
  void range_open(Phase p) noexcept override { add('+', p); }
  void range_close(Phase p) noexcept override { add('-', p); }
  GpuProfile collect() override { return {}; }
  std::string_view source() const override { return "test"; }
  std::vector<std::string> log;

 private:
  void add(char sign, Phase p) {
    std::string entry(1, sign);
    entry.append(phase_name(p));
    log.push_back(std::move(entry));
  }
};

TEST(GpuProfileLogic, ProfilerCallsTheCollectorOnEveryRange) {
  Profiler prof;
  LoggingCollector c;
  prof.set_gpu_collector(&c);
  {
    const auto f = prof.range(Phase::backward);
    const auto r = prof.range(Phase::recompute);
  }
  { const auto o = prof.range(Phase::optimizer); }
  prof.set_gpu_collector(nullptr);
  { const auto d = prof.range(Phase::data_wait); }  // detached: not seen
  EXPECT_EQ(c.log, (std::vector<std::string>{"+backward", "+recompute", "-recompute", "-backward",
                                             "+optimizer", "-optimizer"}));
}

TEST(GpuProfileLogic, NoCollectorWithoutACudaStream) {
  EXPECT_EQ(make_gpu_collector(GpuCollectorOptions{}), nullptr);
}

class GpuProfileTrace : public test::TempDirTest {};

TEST_F(GpuProfileTrace, GpuActivitiesGetTheirOwnTracks) {
  Profiler prof(true);
  { const auto f = prof.range(Phase::forward); }
  SummaryOptions o;
  o.trace = true;
  prof.add_trace_events(summarize_activities(sample_batch(), o).trace);
  const std::string file = path("trace.json");
  write_chrome_trace(file, prof.trace_events(), "gpu test", nlohmann::json());
  const nlohmann::json j = nlohmann::json::parse(std::ifstream(file));

  std::set<std::string> threads;
  int gpu_events = 0, host_ranges = 0;
  for (const nlohmann::json& e : j.at("traceEvents")) {
    if (e.at("ph") == "M" && e.at("name") == "thread_name") {
      threads.insert(std::to_string(e.at("pid").get<int>()) + ":" +
                     e.at("args").at("name").get<std::string>());
    }
    if (e.at("ph") == "M" && e.at("name") == "process_name" && e.at("pid") == 1) {
      EXPECT_EQ(e.at("args").at("name"), "GPU 0");
    }
    if (e.at("ph") != "X") continue;
    if (e.at("pid") == 0) {
      ++host_ranges;
      EXPECT_EQ(e.at("cat"), "phase");
      continue;
    }
    ++gpu_events;
    EXPECT_EQ(e.at("pid"), 1);
    EXPECT_TRUE(e.at("tid") == 7 || e.at("tid") == 8);
    EXPECT_TRUE(e.at("args").contains("phase"));
  }
  EXPECT_EQ(host_ranges, 1);
  EXPECT_EQ(gpu_events, 7);
  EXPECT_EQ(threads, (std::set<std::string>{"0:host", "1:GPU stream 7", "1:GPU stream 8"}));
}

}  // namespace
}  // namespace tb
