// The GPU profiler (harness/profile/gpu_collector.h) on a real GPU: known kernels and GEMMs run
// through the CUDA backend inside Profiler phase ranges, then
//  (a) each phase's CUPTI busy time against CUDA-event timings of the same ranges (the test's
//      own events, recorded on the backend's stream just inside each range): within 5% — the
//      phases are GEMM-bound (milliseconds) so the stream has no idle gaps worth counting;
//  (b) the kernel table holds the elementwise kernels with their exact call counts;
//  (c) every record lands in the phase that launched it (calls_by_phase, nested recompute
//      inside backward included) and the trace's GPU events fall inside their host ranges;
//  (d) the CUDA-event fallback — forced, or because another collector holds CUPTI — gives
//      event timings and a warning.
// Skipped (GTEST_SKIP, reported by ctest as skipped) without a usable GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "gpu_test_util.h"
#include "profile/gpu_collector.h"
#include "profile/gpu_profile.h"
#include "profile/profiler.h"

namespace tb::gpu_test {
namespace {

constexpr std::int64_t kDim = 2048;       // GEMMs of 2048³: ~17 GFLOP each
constexpr std::int64_t kElems = 1 << 22;  // elementwise tensors: 16 MiB of f32
constexpr int kForwardGemms = 6, kForwardGelu = 7;
constexpr int kBackwardGemms = 4, kBackwardGeluBwd = 5, kRecomputeAdds = 3;
constexpr int kOptimizerGemms = 3, kOptimizerScales = 9;

std::size_t idx(Phase p) { return static_cast<std::size_t>(p); }

// The test's own CUDA events around each range (recorded just inside it).
struct EventPair {
  cudaEvent_t start = nullptr, end = nullptr;
};

class GpuCupti : public GpuTest {
 protected:
  void SetUp() override {
    GpuTest::SetUp();
    if (IsSkipped()) return;
    stream_ = static_cast<cudaStream_t>(cuda_stream_of(*gpu_));
    ASSERT_NE(stream_, nullptr);
    const std::vector<float> m = randn(static_cast<std::size_t>(kDim * kDim), 1, 0.05);
    const std::vector<float> v = randn(static_cast<std::size_t>(kElems), 2);
    a_ = t().make(DType::f32, {kDim, kDim}, m).gpu;
    w_ = t().make(DType::f32, {kDim, kDim}, m).gpu;
    out_ = t().output(DType::f32, {kDim, kDim}).gpu;
    dw_ = t().make(DType::f32, {kDim, kDim}, m).gpu;
    x_ = t().make(DType::f32, {kElems}, v).gpu;
    y_ = t().output(DType::f32, {kElems}).gpu;
    z_ = t().make(DType::f32, {kElems}, v).gpu;
    gpu_->synchronize();
  }
  void TearDown() override {
    for (EventPair& e : events_) {
      cudaEventDestroy(e.start);
      cudaEventDestroy(e.end);
    }
    GpuTest::TearDown();
  }

  EventPair& new_pair() {
    EventPair p;
    EXPECT_EQ(cudaEventCreate(&p.start), cudaSuccess);
    EXPECT_EQ(cudaEventCreate(&p.end), cudaSuccess);
    events_.push_back(p);
    return events_.back();
  }
  static double elapsed_s(const EventPair& p) {
    float ms = 0;
    EXPECT_EQ(cudaEventElapsedTime(&ms, p.start, p.end), cudaSuccess);
    return ms * 1e-3;
  }

  // One "step": forward (GEMMs + GELU), backward (GEMMs + GELU backward, with a nested
  // recompute of adds), optimizer (GEMMs + scales). Returns the test's event seconds per phase,
  // exclusive like the profiler's (recompute's subtracted from backward's).
  std::array<double, kPhaseCount> run_step(Profiler& prof) {
    EventPair *fwd, *bwd, *rec, *opt;
    {
      const auto r = prof.range(Phase::forward);
      fwd = &new_pair();
      cudaEventRecord(fwd->start, stream_);
      for (int i = 0; i < kForwardGemms; ++i) gpu_->matmul_forward(out_, a_, w_, Tensor(), false);
      for (int i = 0; i < kForwardGelu; ++i) gpu_->gelu_forward(y_, x_);
      cudaEventRecord(fwd->end, stream_);
    }
    {
      const auto r = prof.range(Phase::backward);
      bwd = &new_pair();
      cudaEventRecord(bwd->start, stream_);
      for (int i = 0; i < kBackwardGemms; ++i) {
        gpu_->matmul_backward(Tensor(), dw_, Tensor(), out_, a_, w_);
      }
      {
        const auto rr = prof.range(Phase::recompute);
        rec = &new_pair();
        cudaEventRecord(rec->start, stream_);
        for (int i = 0; i < kRecomputeAdds; ++i) gpu_->add(y_, x_, z_);
        cudaEventRecord(rec->end, stream_);
      }
      for (int i = 0; i < kBackwardGeluBwd; ++i) gpu_->gelu_backward(y_, x_, z_);
      cudaEventRecord(bwd->end, stream_);
    }
    {
      const auto r = prof.range(Phase::optimizer);
      opt = &new_pair();
      cudaEventRecord(opt->start, stream_);
      for (int i = 0; i < kOptimizerGemms; ++i) gpu_->matmul_forward(out_, a_, w_, Tensor(), false);
      for (int i = 0; i < kOptimizerScales; ++i) gpu_->scale(x_, 1.0);
      cudaEventRecord(opt->end, stream_);
    }
    EXPECT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
    std::array<double, kPhaseCount> s{};
    s[idx(Phase::forward)] = elapsed_s(*fwd);
    s[idx(Phase::recompute)] = elapsed_s(*rec);
    s[idx(Phase::backward)] = elapsed_s(*bwd) - s[idx(Phase::recompute)];
    s[idx(Phase::optimizer)] = elapsed_s(*opt);
    return s;
  }

  static const GpuKernelStat* kernel(const GpuProfile& p, const std::string& part) {
    const GpuKernelStat* found = nullptr;
    for (const GpuKernelStat& k : p.kernels) {
      if (k.name.find(part) == std::string::npos) continue;
      EXPECT_EQ(found, nullptr) << "two kernels match " << part;
      found = &k;
    }
    return found;
  }

  cudaStream_t stream_ = nullptr;
  Tensor a_, w_, out_, dw_, x_, y_, z_;
  std::deque<EventPair> events_;  // stable addresses
};

TEST_F(GpuCupti, PhaseTimesKernelTableAndAttribution) {
  Profiler prof(/*record_trace=*/true);
  GpuCollectorOptions o;
  o.stream = stream_;
  o.trace = true;
  o.trace_origin = prof.origin();
  const std::unique_ptr<GpuPhaseCollector> gpu = make_gpu_collector(o);
  ASSERT_NE(gpu, nullptr);
  ASSERT_EQ(gpu->source(), "cupti") << "CUPTI could not be enabled (is a profiler attached?)";
  prof.set_gpu_collector(gpu.get());

  run_step(prof);  // warm-up: cuBLASLt heuristics, lazy module loading
  (void)gpu->collect();
  const std::array<double, kPhaseCount> want = run_step(prof);
  const GpuProfile got = gpu->collect();
  prof.set_gpu_collector(nullptr);

  EXPECT_EQ(got.source, "cupti");
  EXPECT_EQ(got.warning, "");
  EXPECT_EQ(got.dropped_records, 0u);
  EXPECT_GE(got.cupti_overhead_s, 0.0);

  // (a) busy time against the events of the same ranges.
  for (Phase p : {Phase::forward, Phase::backward, Phase::recompute, Phase::optimizer}) {
    const double w = want[idx(p)], g = got.phase_gpu_s[idx(p)];
    EXPECT_GT(g, 0.0) << phase_name(p);
    // recompute is three adds (tens of µs): an absolute allowance for launch gaps.
    const double tol = p == Phase::recompute ? std::max(0.05 * w, 20e-6) : 0.05 * w;
    EXPECT_NEAR(g, w, tol) << phase_name(p) << ": CUPTI " << g << " s, events " << w << " s";
  }
  EXPECT_EQ(got.phase_gpu_s[idx(Phase::data_wait)], 0.0);
  EXPECT_EQ(got.phase_gpu_s[idx(Phase::communication)], 0.0);

  // (b) and (c): the elementwise kernels, their counts and their phases.
  struct Want {
    const char* name;
    Phase phase;
    int calls;
  };
  for (const Want& w : {Want{"gelu_forward_kernel", Phase::forward, kForwardGelu},
                        Want{"gelu_backward_kernel", Phase::backward, kBackwardGeluBwd},
                        Want{"add_kernel", Phase::recompute, kRecomputeAdds},
                        Want{"scale_kernel", Phase::optimizer, kOptimizerScales}}) {
    const GpuKernelStat* k = kernel(got, w.name);
    ASSERT_NE(k, nullptr) << w.name << " missing from the kernel table";
    EXPECT_EQ(k->calls, static_cast<std::uint64_t>(w.calls)) << w.name;
    EXPECT_EQ(k->calls_by_phase[idx(w.phase)], static_cast<std::uint64_t>(w.calls)) << w.name;
    EXPECT_EQ(k->calls_unattributed, 0u) << w.name;
    EXPECT_GT(k->total_ns, 0u);
  }
  // The GEMMs (cuBLASLt's kernels, whatever their names): every kernel call is in a phase.
  std::uint64_t calls = 0;
  for (const GpuKernelStat& k : got.kernels) {
    calls += k.calls;
    EXPECT_EQ(k.calls_unattributed, 0u) << k.name;
    EXPECT_EQ(k.calls_by_phase[idx(Phase::data_wait)], 0u) << k.name;
  }
  EXPECT_GE(calls, static_cast<std::uint64_t>(kForwardGemms + kForwardGelu + kBackwardGemms +
                                              kBackwardGeluBwd + kRecomputeAdds + kOptimizerGemms +
                                              kOptimizerScales));

  // The trace: GPU events on the backend stream's track, each starting no earlier than its
  // host range opened (less 100 µs for the clock offset's error).
  ASSERT_FALSE(got.trace.empty());
  prof.add_trace_events(got.trace);
  for (const TraceEvent& e : got.trace) {
    EXPECT_EQ(e.pid, 1);
    EXPECT_FALSE(e.phase.empty()) << e.name;
    double open_us = -1;
    for (const TraceEvent& h : prof.trace_events()) {
      if (h.category.empty() && h.name == e.phase && h.start_us <= e.start_us + 100.0) {
        open_us = std::max(open_us, h.start_us);
      }
    }
    EXPECT_GE(open_us, 0.0) << e.name << " at " << e.start_us << " µs precedes every " << e.phase
                            << " range";
  }
}

TEST_F(GpuCupti, ForcedFallbackGivesEventTimesAndAWarning) {
  Profiler prof;
  GpuCollectorOptions o;
  o.stream = stream_;
  o.force_cuda_events = true;
  const std::unique_ptr<GpuPhaseCollector> gpu = make_gpu_collector(o);
  ASSERT_NE(gpu, nullptr);
  EXPECT_EQ(gpu->source(), "cuda_events");
  prof.set_gpu_collector(gpu.get());
  run_step(prof);
  (void)gpu->collect();
  const std::array<double, kPhaseCount> want = run_step(prof);
  const GpuProfile got = gpu->collect();
  prof.set_gpu_collector(nullptr);

  EXPECT_EQ(got.source, "cuda_events");
  EXPECT_NE(got.warning.find("forced"), std::string::npos) << got.warning;
  EXPECT_TRUE(got.kernels.empty());
  for (Phase p : {Phase::forward, Phase::backward, Phase::optimizer}) {
    const double w = want[idx(p)], g = got.phase_gpu_s[idx(p)];
    EXPECT_GT(g, 0.0) << phase_name(p);
    EXPECT_NEAR(g, w, 0.05 * w) << phase_name(p);
  }
  EXPECT_GT(got.phase_gpu_s[idx(Phase::recompute)], 0.0);
}

TEST_F(GpuCupti, SecondCollectorFallsBackWithAWarning) {
  GpuCollectorOptions o;
  o.stream = stream_;
  const std::unique_ptr<GpuPhaseCollector> first = make_gpu_collector(o);
  ASSERT_NE(first, nullptr);
  const std::unique_ptr<GpuPhaseCollector> second = make_gpu_collector(o);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->source(), "cuda_events");
  Profiler prof;
  prof.set_gpu_collector(second.get());
  {
    const auto r = prof.range(Phase::forward);
    gpu_->matmul_forward(out_, a_, w_, Tensor(), false);
  }
  const GpuProfile got = second->collect();
  prof.set_gpu_collector(nullptr);
  EXPECT_EQ(got.source, "cuda_events");
  EXPECT_FALSE(got.warning.empty());
  EXPECT_GT(got.phase_gpu_s[idx(Phase::forward)], 0.0);
}

TEST_F(GpuCupti, CollectWithAnOpenRangeFails) {
  GpuCollectorOptions o;
  o.stream = stream_;
  const std::unique_ptr<GpuPhaseCollector> gpu = make_gpu_collector(o);
  ASSERT_NE(gpu, nullptr);
  Profiler prof;
  prof.set_gpu_collector(gpu.get());
  {
    const auto r = prof.range(Phase::forward);
    EXPECT_THROW((void)gpu->collect(), std::runtime_error);
  }
  prof.set_gpu_collector(nullptr);
  EXPECT_NO_THROW((void)gpu->collect());
}

}  // namespace
}  // namespace tb::gpu_test
