// Profiler: exclusive per-phase seconds under nesting, take_phase_seconds() resetting, trace
// events only when tracing, the Chrome trace file, NVTX ranges, and the Trainer's phases.
// Timing checks rest only on sleep_for's lower bound and on the profiler's own recorded
// durations, never on how long anything took, so a loaded machine cannot make them flake.
#include "profile/profiler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <deque>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "data/markov_source.h"
#include "model/gpt.h"
#include "tb/cpu_backend.h"
#include "train/trainer.h"
#include "unit/temp_dir.h"

// ---- a static NVTX injection that records what the profiler emits ----
// NVTX3's loader (compiled into tb_harness when TB_HAVE_NVTX) calls the function this
// strong symbol points to — overriding the loader's weak null definition — at the first
// NVTX call in the process; the callbacks below then receive every NVTX call. The types
// mirror NVTX3's stable ABI (nvtxDetail/nvtxTypes.h, nvToolsExt.h). In a build without
// NVTX, nothing calls it and the NVTX test skips.
namespace {

using NvtxFunctionPointer = void (*)();
using NvtxGetExportTable = const void* (*)(std::uint32_t export_table_id);
struct NvtxCallbacksTable {  // NvtxExportTableCallbacks
  std::size_t struct_size;
  int (*get_module_function_table)(int module, NvtxFunctionPointer*** table, unsigned* size);
};
struct NvtxAttributes {  // nvtxEventAttributes_v2
  std::uint16_t version, size;
  std::uint32_t category;
  std::int32_t color_type;
  std::uint32_t color;
  std::int32_t payload_type, reserved0;
  std::uint64_t payload;
  std::int32_t message_type;
  const void* message;
};
static_assert(sizeof(NvtxAttributes) == 48);
constexpr std::uint32_t kEtidCallbacks = 1;
constexpr int kModuleCore2 = 5;
constexpr unsigned kDomainMarkEx = 1, kDomainRangePushEx = 4, kDomainRangePop = 5,
                   kDomainRegisterStringA = 10, kDomainCreateA = 12;
constexpr std::int32_t kMessageAscii = 1, kMessageRegistered = 3;

struct NvtxRecord {
  int inits = 0;
  std::string domain_name;
  std::deque<std::string> strings;  // registered strings; a handle points at one
  std::vector<std::string> pushes, marks;
  std::vector<std::uint32_t> colors;
  int pops = 0;
  int foreign_domain = 0;  // calls on a domain other than the one created
};
NvtxRecord g_nvtx;
char g_domain_token;

std::string message_of(const NvtxAttributes* a) {
  if (a == nullptr || a->size < sizeof(NvtxAttributes)) return "<bad attributes>";
  if (a->message_type == kMessageRegistered) return *static_cast<const std::string*>(a->message);
  if (a->message_type == kMessageAscii) return static_cast<const char*>(a->message);
  return "<no message>";
}

void* fake_domain_create(const char* name) {
  g_nvtx.domain_name = name;
  return &g_domain_token;
}
const void* fake_register_string(void* domain, const char* s) {
  if (domain != &g_domain_token) ++g_nvtx.foreign_domain;
  return &g_nvtx.strings.emplace_back(s);
}
int fake_push(void* domain, const NvtxAttributes* a) {
  if (domain != &g_domain_token) ++g_nvtx.foreign_domain;
  g_nvtx.pushes.push_back(message_of(a));
  g_nvtx.colors.push_back(a != nullptr ? a->color : 0);
  return static_cast<int>(g_nvtx.pushes.size()) - g_nvtx.pops - 1;
}
int fake_pop(void* domain) {
  if (domain != &g_domain_token) ++g_nvtx.foreign_domain;
  ++g_nvtx.pops;
  return 0;
}
void fake_mark(void* domain, const NvtxAttributes* a) {
  if (domain != &g_domain_token) ++g_nvtx.foreign_domain;
  g_nvtx.marks.push_back(message_of(a));
}

template <class F>
void install(NvtxFunctionPointer** table, unsigned size, unsigned id, F* f) {
  if (id < size && table[id] != nullptr) *table[id] = reinterpret_cast<NvtxFunctionPointer>(f);
}

int fake_nvtx_init(NvtxGetExportTable get_export_table) {
  ++g_nvtx.inits;
  const auto* cb = static_cast<const NvtxCallbacksTable*>(get_export_table(kEtidCallbacks));
  if (cb == nullptr) return 0;
  NvtxFunctionPointer** table = nullptr;
  unsigned size = 0;
  if (!cb->get_module_function_table(kModuleCore2, &table, &size) || table == nullptr) return 0;
  install(table, size, kDomainCreateA, &fake_domain_create);
  install(table, size, kDomainRegisterStringA, &fake_register_string);
  install(table, size, kDomainRangePushEx, &fake_push);
  install(table, size, kDomainRangePop, &fake_pop);
  install(table, size, kDomainMarkEx, &fake_mark);
  return 1;
}

}  // namespace

extern "C" {
// NOLINTNEXTLINE: the name and type are NVTX3's static-injection hook.
int (*InitializeInjectionNvtx2_fnptr)(NvtxGetExportTable) = &fake_nvtx_init;
}

namespace tb {
namespace {

using namespace std::chrono_literals;
using test::TempDirTest;
using test::thrown_message;

std::size_t idx(Phase p) { return static_cast<std::size_t>(p); }

// The recorded event named `name` (the n-th such), failing the test if there is none.
const TraceEvent& event(const Profiler& p, const std::string& name, int n = 0) {
  for (const TraceEvent& e : p.trace_events()) {
    if (e.name == name && n-- == 0) return e;
  }
  ADD_FAILURE() << "no trace event " << name;
  static const TraceEvent none;
  return none;
}
double seconds(const TraceEvent& e) { return e.duration_us * 1e-6; }

TEST(Profiler, PhaseNames) {
  const char* want[] = {"forward",   "backward",      "recompute",
                        "optimizer", "communication", "data_wait"};
  for (std::size_t i = 0; i < kPhaseCount; ++i)
    EXPECT_EQ(phase_name(static_cast<Phase>(i)), want[i]);
}

TEST(Profiler, NestedRangeTimeIsExcludedFromItsParent) {
  Profiler p(/*record_trace=*/true);
  {
    const auto outer = p.range(Phase::forward);
    std::this_thread::sleep_for(3ms);
    {
      const auto inner = p.range(Phase::recompute);
      std::this_thread::sleep_for(10ms);
    }
    std::this_thread::sleep_for(3ms);
  }
  const auto s = p.take_phase_seconds();
  const TraceEvent &fwd = event(p, "forward"), &rec = event(p, "recompute");
  // Each phase has at least its own sleeps...
  EXPECT_GE(s[idx(Phase::recompute)], 0.010);
  EXPECT_GE(s[idx(Phase::forward)], 0.006);
  // ...and the outer one exactly its own time: its whole range less the inner range.
  EXPECT_NEAR(s[idx(Phase::recompute)], seconds(rec), 1e-9);
  EXPECT_NEAR(s[idx(Phase::forward)], seconds(fwd) - seconds(rec), 1e-9);
  EXPECT_LT(s[idx(Phase::forward)], seconds(fwd) - 0.010);  // the inner sleep is not in it
  for (Phase q : {Phase::backward, Phase::optimizer, Phase::communication, Phase::data_wait})
    EXPECT_EQ(s[idx(q)], 0.0) << phase_name(q);
}

TEST(Profiler, OnlyDirectChildrenAreSubtracted) {
  Profiler p(true);
  {
    const auto opt = p.range(Phase::optimizer);
    std::this_thread::sleep_for(2ms);
    {
      const auto comm = p.range(Phase::communication);
      std::this_thread::sleep_for(2ms);
      {
        const auto wait = p.range(Phase::data_wait);
        std::this_thread::sleep_for(4ms);
      }
    }
    {
      const auto comm = p.range(Phase::communication);
      std::this_thread::sleep_for(2ms);
    }
  }
  const auto s = p.take_phase_seconds();
  const double opt = seconds(event(p, "optimizer")), comm1 = seconds(event(p, "communication")),
               comm2 = seconds(event(p, "communication", 1)), wait = seconds(event(p, "data_wait"));
  EXPECT_NEAR(s[idx(Phase::data_wait)], wait, 1e-9);
  EXPECT_NEAR(s[idx(Phase::communication)], comm1 - wait + comm2, 1e-9);
  EXPECT_NEAR(s[idx(Phase::optimizer)], opt - comm1 - comm2, 1e-9);
  EXPECT_NEAR(s[idx(Phase::optimizer)] + s[idx(Phase::communication)] + s[idx(Phase::data_wait)],
              opt, 1e-9);  // the phases partition the outermost range
  EXPECT_GE(s[idx(Phase::data_wait)], 0.004);
  EXPECT_GE(s[idx(Phase::communication)], 0.004);
  EXPECT_GE(s[idx(Phase::optimizer)], 0.002);
}

TEST(Profiler, PhaseNestedInItselfCountsOnce) {
  Profiler p(true);
  {
    const auto a = p.range(Phase::forward);
    std::this_thread::sleep_for(2ms);
    const auto b = p.range(Phase::forward);
    std::this_thread::sleep_for(2ms);
  }
  const auto s = p.take_phase_seconds();
  ASSERT_EQ(p.trace_events().size(), 2u);
  const TraceEvent& outer = p.trace_events()[1];  // recorded when it closes, after the inner
  EXPECT_EQ(outer.depth, 0);
  EXPECT_EQ(p.trace_events()[0].depth, 1);
  EXPECT_NEAR(s[idx(Phase::forward)], seconds(outer), 1e-9);
}

TEST(Profiler, TakePhaseSecondsAccumulatesThenResets) {
  Profiler p;
  for (int i = 0; i < 2; ++i) {
    const auto r = p.range(Phase::backward);
    std::this_thread::sleep_for(2ms);
  }
  const auto first = p.take_phase_seconds();
  EXPECT_GE(first[idx(Phase::backward)], 0.004);  // both ranges
  const auto second = p.take_phase_seconds();
  for (double x : second) EXPECT_EQ(x, 0.0);

  // A range still open when the seconds are taken counts when it closes.
  {
    const auto r = p.range(Phase::optimizer);
    std::this_thread::sleep_for(2ms);
    for (double x : p.take_phase_seconds()) EXPECT_EQ(x, 0.0);
  }
  EXPECT_GE(p.take_phase_seconds()[idx(Phase::optimizer)], 0.002);
}

TEST(Profiler, NoTraceEventsUnlessTracing) {
  Profiler p;  // tracing off by default
  EXPECT_FALSE(p.tracing());
  p.mark("step 0");
  {
    const auto a = p.range(Phase::forward);
    const auto b = p.range(Phase::backward);
  }
  EXPECT_TRUE(p.trace_events().empty());
  // The phase seconds are kept all the same.
  const auto s = p.take_phase_seconds();
  EXPECT_GT(s[idx(Phase::forward)] + s[idx(Phase::backward)], 0.0);
}

TEST(Profiler, TraceEventsWhenTracing) {
  Profiler p(true);
  EXPECT_TRUE(p.tracing());
  p.mark("step 0");
  {
    const Profiler::Range fwd(p, Phase::forward);
    std::this_thread::sleep_for(1ms);
    {
      const auto bwd = p.range(Phase::backward);
      std::this_thread::sleep_for(1ms);
      p.mark("inside");
    }
  }
  p.mark("step 1");
  const auto& ev = p.trace_events();
  ASSERT_EQ(ev.size(), 5u);
  EXPECT_EQ(ev[0].name, "step 0");
  EXPECT_EQ(ev[1].name, "inside");
  EXPECT_EQ(ev[2].name, "backward");
  EXPECT_EQ(ev[3].name, "forward");
  EXPECT_EQ(ev[4].name, "step 1");
  EXPECT_EQ(ev[0].duration_us, 0.0);
  EXPECT_EQ(ev[1].depth, 2);
  EXPECT_EQ(ev[2].depth, 1);
  EXPECT_EQ(ev[3].depth, 0);
  const TraceEvent &b = ev[2], &f = ev[3];
  EXPECT_GE(f.start_us, ev[0].start_us);
  EXPECT_GE(b.start_us, f.start_us);
  EXPECT_GE(b.duration_us, 1000.0);
  EXPECT_LE(b.start_us + b.duration_us, f.start_us + f.duration_us);
  EXPECT_GE(f.duration_us, 2000.0);
  EXPECT_GE(ev[1].start_us, b.start_us);
  EXPECT_GE(ev[4].start_us, f.start_us + f.duration_us);
}

class ChromeTrace : public TempDirTest {};

TEST_F(ChromeTrace, WritesTheJsonObjectFormat) {
  Profiler p(true);
  p.mark("step 0");
  {
    const auto f = p.range(Phase::forward);
    const auto r = p.range(Phase::recompute);
    std::this_thread::sleep_for(1ms);
  }
  const nlohmann::json meta = {{"git_revision", "abc123"}, {"steps", 1}};
  const std::string file = path("trace.json");
  write_chrome_trace(file, p.trace_events(), "trainbench test", meta);

  const nlohmann::json j = nlohmann::json::parse(std::ifstream(file));  // throws if invalid
  EXPECT_EQ(j.at("displayTimeUnit"), "ms");
  EXPECT_EQ(j.at("otherData"), meta);
  EXPECT_EQ(j.at("distributedInfo"), (nlohmann::json{{"rank", 0}, {"world_size", 1}}));
  const nlohmann::json& events = j.at("traceEvents");
  ASSERT_TRUE(events.is_array());
  int process_names = 0, thread_names = 0, marks = 0;
  std::vector<nlohmann::json> ranges;
  for (const nlohmann::json& e : events) {
    EXPECT_EQ(e.at("pid"), 0);
    EXPECT_EQ(e.at("tid"), 0);
    const std::string ph = e.at("ph");
    if (ph == "M" && e.at("name") == "process_name") {
      ++process_names;
      EXPECT_EQ(e.at("args").at("name"), "trainbench test");
    } else if (ph == "M" && e.at("name") == "thread_name") {
      ++thread_names;
      EXPECT_EQ(e.at("args").at("name"), "host");
    } else if (ph == "X") {
      ranges.push_back(e);
    } else if (ph == "i") {
      ++marks;
      EXPECT_EQ(e.at("name"), "step 0");
      EXPECT_TRUE(e.at("ts").is_number());
    } else {
      ADD_FAILURE() << "unexpected event " << e.dump();
    }
  }
  EXPECT_EQ(process_names, 1);
  EXPECT_EQ(thread_names, 1);
  EXPECT_EQ(marks, 1);
  ASSERT_EQ(ranges.size(), 2u);
  // In start order, the enclosing range first; times in microseconds as recorded.
  EXPECT_EQ(ranges[0].at("name"), "forward");
  EXPECT_EQ(ranges[1].at("name"), "recompute");
  for (const nlohmann::json& r : ranges) EXPECT_EQ(r.at("cat"), "phase");
  const TraceEvent& rec = event(p, "recompute");
  EXPECT_DOUBLE_EQ(ranges[1].at("ts").get<double>(), rec.start_us);
  EXPECT_DOUBLE_EQ(ranges[1].at("dur").get<double>(), rec.duration_us);
  EXPECT_GE(ranges[1].at("dur").get<double>(), 1000.0);
  EXPECT_LE(ranges[0].at("ts").get<double>(), ranges[1].at("ts").get<double>());
}

TEST_F(ChromeTrace, HandMadeEventsAndEmptyMetadata) {
  const std::vector<TraceEvent> events = {
      {"backward", 20.0, 5.0, 0}, {"step 3", 2.5, 0.0, 0}, {"forward", 10.0, 8.0, 0}};
  const std::string file = path("t.json");
  write_chrome_trace(file, events, "p", nlohmann::json());
  const nlohmann::json j = nlohmann::json::parse(std::ifstream(file));
  EXPECT_TRUE(j.at("otherData").is_object());
  std::vector<std::string> order;
  for (const nlohmann::json& e : j.at("traceEvents")) {
    if (e.at("ph") != "M")
      order.push_back(e.at("ph").get<std::string>() + " " + e.at("name").get<std::string>());
  }
  EXPECT_EQ(order, (std::vector<std::string>{"i step 3", "X forward", "X backward"}));
  EXPECT_EQ(j.at("traceEvents").back().at("dur"), 5.0);
}

// A parallel job's ranks in one file: a host track per rank (pid r·kTracePidsPerRank), GPU
// tracks beside it, every rank's events on its own track.
TEST_F(ChromeTrace, RanksGetATrackEach) {
  TraceEvent gpu{"gemm", 12.0, 3.0, 0, 1, 7, "kernel", "forward"};
  const std::vector<std::vector<TraceEvent>> ranks = {
      {{"forward", 10.0, 8.0, 0}, {"step 1", 1.0, 0.0, 0}},
      {{"backward", 20.0, 5.0, 0}, gpu}};
  const std::string file = path("ranks.json");
  write_chrome_trace(file, ranks, "trainbench v", nlohmann::json());
  const nlohmann::json j = nlohmann::json::parse(std::ifstream(file));
  EXPECT_EQ(j.at("distributedInfo"), (nlohmann::json{{"rank", 0}, {"world_size", 2}}));
  std::map<int, std::string> process_names;
  std::vector<std::pair<int, std::string>> events;
  for (const nlohmann::json& e : j.at("traceEvents")) {
    if (e.at("ph") == "M" && e.at("name") == "process_name") {
      process_names[e.at("pid").get<int>()] = e.at("args").at("name").get<std::string>();
    } else if (e.at("ph") != "M") {
      events.emplace_back(e.at("pid").get<int>(), e.at("name").get<std::string>());
    }
  }
  const int second = kTracePidsPerRank;
  EXPECT_EQ(process_names, (std::map<int, std::string>{{0, "trainbench v rank 0"},
                                                      {second, "trainbench v rank 1"},
                                                      {second + 1, "rank 1 GPU 0"}}));
  EXPECT_EQ(events, (std::vector<std::pair<int, std::string>>{
                        {0, "step 1"}, {0, "forward"}, {second + 1, "gemm"}, {second, "backward"}}));
}

TEST(TraceEventRows, RoundTripAndMalformedRows) {
  const std::vector<TraceEvent> events = {{"forward", 10.5, 8.25, 1},
                                          {"gemm", 12.0, 3.0, 0, 1, 7, "kernel", "forward"}};
  const std::vector<TraceEvent> back = trace_events_from_json(trace_events_to_json(events));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].name, "forward");
  EXPECT_EQ(back[0].start_us, 10.5);
  EXPECT_EQ(back[0].duration_us, 8.25);
  EXPECT_EQ(back[0].depth, 1);
  EXPECT_EQ(back[1].pid, 1);
  EXPECT_EQ(back[1].tid, 7);
  EXPECT_EQ(back[1].category, "kernel");
  EXPECT_EQ(back[1].phase, "forward");
  const std::string msg = thrown_message<std::invalid_argument>(
      [] { trace_events_from_json(nlohmann::json::parse(R"([["forward", "x", 1, 0, 0, 0, "", ""]])")); });
  EXPECT_NE(msg.find("expected [name, start_us"), std::string::npos) << msg;
  EXPECT_THROW(trace_events_from_json(nlohmann::json::object()), std::invalid_argument);
}

TEST_F(ChromeTrace, UnwritablePathIsAnErrorNamingIt) {
  const std::string file = path("no_such_dir/trace.json");
  const std::string msg = thrown_message<std::runtime_error>(
      [&] { write_chrome_trace(file, std::vector<TraceEvent>{}, "p", nlohmann::json::object()); });
  EXPECT_NE(msg.find(file), std::string::npos) << msg;
}

// Each range pushes an NVTX range in the "trainbench" domain, named for its phase with a
// colour per phase, and pops it when it closes; marks become NVTX markers.
TEST(ProfilerNvtx, RangesPushAndPopInTheTrainbenchDomain) {
  Profiler p;
  { const auto warm = p.range(Phase::data_wait); }  // the first NVTX call loads the "tool"
  if (g_nvtx.inits == 0) GTEST_SKIP() << "built without NVTX (TB_HAVE_NVTX off)";
  ASSERT_EQ(g_nvtx.inits, 1);
  EXPECT_EQ(g_nvtx.domain_name, "trainbench");
  g_nvtx.pushes.clear();
  g_nvtx.marks.clear();
  g_nvtx.colors.clear();
  g_nvtx.pops = 0;
  {
    const auto f = p.range(Phase::forward);
    {
      const auto r = p.range(Phase::recompute);
      EXPECT_EQ(g_nvtx.pops, 0);
    }
    EXPECT_EQ(g_nvtx.pops, 1);
    p.mark("step 7");
    const auto c = p.range(Phase::communication);
  }
  EXPECT_EQ(g_nvtx.pushes, (std::vector<std::string>{"forward", "recompute", "communication"}));
  EXPECT_EQ(g_nvtx.pops, 3);
  EXPECT_EQ(g_nvtx.marks, (std::vector<std::string>{"step 7"}));
  ASSERT_EQ(g_nvtx.colors.size(), 3u);
  EXPECT_NE(g_nvtx.colors[0], g_nvtx.colors[1]);
  EXPECT_NE(g_nvtx.colors[1], g_nvtx.colors[2]);
  EXPECT_EQ(g_nvtx.foreign_domain, 0);
}

// Without a tool attached, NVTX calls are no-ops: many ranges simply run. (In this binary
// the recording injection above is attached; the trainbench executable has none.)
TEST(ProfilerNvtx, ManyRangesRun) {
  Profiler p;
  for (int i = 0; i < 10000; ++i) {
    const auto a = p.range(Phase::forward);
    const auto b = p.range(Phase::backward);
  }
  const auto s = p.take_phase_seconds();
  EXPECT_GT(s[idx(Phase::forward)], 0.0);
  EXPECT_GT(s[idx(Phase::backward)], 0.0);
}

// Trainer::step() times its phases on the profiler and takes them; evaluate() opens none.
TEST(TrainerPhases, StepFillsItsPhasesAndEvaluateOpensNoRanges) {
  auto be = make_cpu_backend(1);
  ModelConfig c;
  c.name = "profiler-test";
  c.n_layer = 1;
  c.d_model = 16;
  c.n_head = 2;
  c.seq_len = 8;
  c.vocab = 16;
  GptModel model(*be, c, DType::f32);
  model.init_weights(1);
  MarkovSource data(16, 4, 1, /*eval_windows=*/4);
  Profiler profiler(true);
  Trainer trainer(model, data, OptimizerConfig{}, TrainingConfig(2), profiler);
  const StepRecord r = trainer.step();
  EXPECT_TRUE(std::isfinite(r.loss));
  for (Phase q : {Phase::forward, Phase::backward, Phase::optimizer, Phase::data_wait})
    EXPECT_GT(r.phase_s[idx(q)], 0.0) << phase_name(q);
  EXPECT_EQ(r.phase_s[idx(Phase::recompute)], 0.0);
  EXPECT_EQ(r.phase_s[idx(Phase::communication)], 0.0);
  double sum = 0;
  for (double x : r.phase_s) sum += x;
  EXPECT_DOUBLE_EQ(r.total_s(), sum);
  for (double x : profiler.take_phase_seconds()) EXPECT_EQ(x, 0.0);  // step() took them

  const std::size_t events = profiler.trace_events().size();
  EXPECT_EQ(events, 4u);
  trainer.evaluate(4);
  EXPECT_EQ(profiler.trace_events().size(), events);
  for (double x : profiler.take_phase_seconds()) EXPECT_EQ(x, 0.0);
}

}  // namespace
}  // namespace tb
