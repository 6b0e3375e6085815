// `trainbench calibrate`: measures what the planner's time model needs on this machine
// (docs/planner.md, "Calibration") and writes it as a calibration file: every operation of
// the target model — each variant of --scenario, or the model given by step's flags — timed
// at its real shape and precision on the chosen device, in the order a rank runs them, and the
// write bandwidth of a state checkpoint (a file written and fsync'd next to --out). Under mpirun
// -np N it calibrates the scenario's N-rank variants: every rank times each operation at once, on
// the threads `run` gives a rank, the ranks' mean is kept, the ranks' all-reduce is measured and
// fitted to the α–β tier, ZeRO-1's reduce-scatter and all-gather are timed at the variant's
// bytes, their synchronisation wait after segments of computation is measured, and
// on a CPU the speed of busy ranks while the others wait (a pipeline's bubble on shared cores);
// `trainbench plan` takes one file per job size.

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "../io/safetensors_file.h"
#include "../parallel/grid.h"
#include "../parallel/mpi_comm.h"
#include "../plan/available_memory.h"
#include "../plan/calibration.h"
#include "../plan/op_timer.h"
#include "../plan/time_model.h"
#include "../results/environment.h"
#include "../runner/device.h"
#include "../runner/rank_setup.h"
#include "../scenario/scenario.h"
#include "../scenario/variant_filter.h"
#include "commands.h"
#include "model_options.h"

namespace tb::cli {

namespace {

using clock = std::chrono::steady_clock;

// Seconds on the steady clock since `t`.
double since(clock::time_point t) {
  return std::chrono::duration<double>(clock::now() - t).count();
}

struct CalibrateOptions {
  std::string scenario, filter;
  ModelOptions model;
  int batch = 4;
  std::string precision = "fp32";
  std::string device = "auto";
  int threads = 0;
  double min_seconds = 0.05;
  int passes = 5;
  std::string out;
};

// An operation to time: what, at which precision, on how many threads.
struct Pending {
  OpCost op;
  std::string precision;
  int threads = 0;
};
using OpKey = std::tuple<std::string, std::array<std::int64_t, 4>, std::string, int>;
// An operation list in the order one rank runs it (one stage of one configuration: its
// micro-batch's forward, recompute and backward, then its optimizer's), as indices into the
// distinct operations.
using Sequence = std::vector<std::size_t>;

// The distinct operations (op, shape, precision, threads) of every stage of one
// configuration, on the threads each of its ranks gets, and each stage's sequence of them:
// the time model's own list of what a rank runs (plan/time_model.h rank_work), so every
// operation it prices is measured.
void collect(const ModelConfig& m, const RunConfig& r, std::vector<Pending>& ops,
             std::map<OpKey, std::size_t>& index, std::vector<Sequence>& sequences) {
  const int threads = rank_threads(r);
  const PlanCandidate c = candidate_of(r);
  for (int s = 0; s < c.pp; ++s) {
    const StageWork w = rank_work(m, c, s);
    Sequence seq;
    for (const auto* list : {&w.per_micro_batch, &w.per_iteration}) {
      for (const OpCost& o : *list) {
        const auto [it, added] =
            index.try_emplace({o.op, o.dims, r.precision, threads}, ops.size());
        if (added) ops.push_back({o, r.precision, threads});
        seq.push_back(it->second);
      }
    }
    if (std::find(sequences.begin(), sequences.end(), seq) == sequences.end()) {
      sequences.push_back(std::move(seq));
    }
  }
}

// Bytes per second of writing a training-state-like file of `bytes` — fp32 tensors standing
// for weights and AdamW's two moments — in `dir` through the writer `step --save-state` uses
// (io/safetensors_file.h: streamed, fsync'd, renamed into place).
double measure_write_bandwidth(const std::filesystem::path& dir, std::size_t bytes) {
  const std::filesystem::path p = dir / ".trainbench-calibrate-state.safetensors";
  constexpr std::int64_t kTensor = std::int64_t{2} << 20;  // floats: 8 MiB tensors
  const auto tensors = static_cast<int>(bytes / (kTensor * sizeof(float)));
  SafetensorsWriter w;
  for (int i = 0; i < tensors; ++i) {
    const char* kind = i % 3 == 0 ? "weight" : i % 3 == 1 ? "optimizer.m" : "optimizer.v";
    w.add(std::string(kind) + "." + std::to_string(i), "F32", {kTensor}, [](void* dst) {
      auto* f = static_cast<float*>(dst);
      for (std::int64_t j = 0; j < kTensor; ++j) f[j] = 1e-3f * static_cast<float>(j % 1000);
    });
  }
  const auto t0 = clock::now();
  std::uint64_t written = 0;
  try {
    written = w.write(p.string(), "calibration state file");
  } catch (const std::runtime_error& e) {
    throw std::invalid_argument("--out directory " + dir.string() +
                                ": cannot write a state file there (" + e.what() + ")");
  }
  const double s = since(t0);
  std::filesystem::remove(p);
  return double(written) / s;
}

// The job's ranks: under mpirun/srun every rank times the same operations at once (so each
// measurement carries the others' load, as a parallel run's ranks do) and rank 0 writes.
struct Job {
  std::unique_ptr<MpiComm> world;
  int rank = 0, size = 1;
  void barrier() {
    if (world) world->barrier();
  }
  // Every rank's value, in rank order.
  std::vector<double> gather(double v) {
    std::vector<double> all(static_cast<std::size_t>(size), 0.0);
    all[static_cast<std::size_t>(rank)] = v;
    if (world) world->all_reduce(Tensor(all.data(), DType::f64, {size}));
    return all;
  }
  double max(double v) {
    const std::vector<double> all = gather(v);
    return *std::max_element(all.begin(), all.end());
  }
  double mean(double v) {
    double sum = 0;
    for (const double x : gather(v)) sum += x;
    return sum / size;
  }
};

// The synchronisation wait: every rank computes a segment (the model's GEMM, repeated) and
// then meets the others at a barrier, as a parallel step's ranks meet at each collective.
// What a collective costs beyond the computation the time model already prices is the time
// from a segment's start to the barrier's end less the segment's computation at the rate the
// ranks get running freely (no barriers; each rank's calls over a fixed 0.5 s, so every rank
// is busy all along): with each rank on its own cores that is the ranks' jitter (the slowest
// arrives last); on cores the ranks share, a rank's own segment time already holds its share
// of the others' computation, and only the cores left idle while ranks wait count. The mean
// over ranks and repeats is kept, for segments of about 1 ms, 10 ms, 100 ms and 1 s, as
// (segment at the free rate, wait beyond it).
std::vector<SyncWaitPoint> measure_sync_wait(Job& job, TimedOp& segment_op, double op_s) {
  job.barrier();
  int free_calls = 0;
  const auto free_start = clock::now();
  while (since(free_start) < 0.5) {
    segment_op.run();
    ++free_calls;
  }
  const double free_s = job.mean(since(free_start) / free_calls);  // per call
  std::vector<SyncWaitPoint> points;
  int last_calls = 0;
  for (const double target : {1e-3, 1e-2, 1e-1, 1.0}) {
    const int calls = std::max(1, static_cast<int>(std::lround(target / op_s)));
    if (calls == last_calls) continue;
    last_calls = calls;
    const int repeats = std::clamp(static_cast<int>(2.0 / target), 5, 50);
    double until_met = 0;
    job.barrier();
    for (int i = 0; i < repeats; ++i) {
      const auto t0 = clock::now();
      for (int k = 0; k < calls; ++k) segment_op.run();
      job.barrier();
      until_met += since(t0);
    }
    const double segment = calls * free_s;
    points.push_back({segment, std::max(0.0, job.mean(until_met / repeats) - segment)});
  }
  return points;
}

// The sets of k of n ranks a busy-speed repeat times: all of them when there are at most 2n,
// else the n cyclic windows {r, …, r + k − 1 mod n}.
std::vector<std::vector<bool>> busy_sets(int n, int k) {
  std::vector<std::vector<bool>> sets;
  double combinations = 1;
  for (int i = 0; i < k; ++i) combinations = combinations * (n - i) / (i + 1);
  if (combinations <= 2.0 * n) {
    std::vector<bool> set(static_cast<std::size_t>(n), false);
    std::fill(set.begin(), set.begin() + k, true);
    do {
      sets.push_back(set);
    } while (std::prev_permutation(set.begin(), set.end()));
    return sets;
  }
  for (int r = 0; r < n; ++r) {
    std::vector<bool> set(static_cast<std::size_t>(n), false);
    for (int i = 0; i < k; ++i) set[static_cast<std::size_t>((r + i) % n)] = true;
    sets.push_back(set);
  }
  return sets;
}

// The speed of a busy rank while only k of the job's N ranks are busy, relative to all N
// (a pipeline's warm-up and cool-down on cores the ranks share): k ranks run every
// calibrated operation of the job in turn (the model's own mix of GEMMs and memory-bound
// work: the two contend differently for a core's units, caches and memory bandwidth) for
// about 0.2 s at the all-busy rate while the others wait in an MPI barrier — how MPI waits
// (polling, yielding the core when oversubscribed) is part of what this measures. Which k
// ranks are busy matters: the scheduler places the ranks on cores once, and two busy ranks
// that share a core run at half the speed of two that do not; a pipeline's busy stages
// change through its schedule, so each k is timed over every set of k ranks (busy_sets) and
// the sets' mean time kept. Each of 5 repeats times k = N … 1 back to back and takes the busy
// ranks' mean time relative to its own all-busy time, so a shared machine's slow drift moves
// a repeat's times together, not its ratios; the median ratio per k is kept.
std::vector<double> measure_busy_speed(Job& job, std::vector<std::unique_ptr<TimedOp>>& ops,
                                       double round_s) {
  const int rounds = std::max(1, static_cast<int>(std::lround(0.2 / round_s)));
  const auto n = static_cast<std::size_t>(job.size);
  std::vector<std::vector<double>> ratios(n);  // per busy count − 1, one per repeat
  for (int r = 0; r < 5; ++r) {
    std::vector<double> seconds(n);
    for (int busy = job.size; busy >= 1; --busy) {
      const std::vector<std::vector<bool>> sets = busy_sets(job.size, busy);
      double total = 0;
      for (const std::vector<bool>& set : sets) {
        job.barrier();
        double mine = 0;
        if (set[static_cast<std::size_t>(job.rank)]) {
          const auto t0 = clock::now();
          for (int k = 0; k < rounds; ++k) {
            for (auto& op : ops) op->run();
          }
          mine = since(t0);
        }
        total += job.mean(mine) * job.size / busy;  // the busy ranks' mean
      }
      seconds[std::size_t(busy - 1)] = total / double(sets.size());
    }
    for (std::size_t k = 0; k < n; ++k) ratios[k].push_back(seconds.back() / seconds[k]);
  }
  std::vector<double> speed;
  for (std::vector<double>& v : ratios) {
    std::sort(v.begin(), v.end());
    speed.push_back(v[v.size() / 2]);
  }
  return speed;
}

// One pass of the in-sequence timing: each sequence runs as a rank runs it, every operation
// once in order, cycle after cycle, so a call finds the caches as the rank's other operations
// left them rather than as its own previous call did (an operation timed alone in a loop
// keeps its tensors in cache, which a step of many operations does not: docs/planner.md,
// "Calibration"). A sequence cycles until `min_seconds` per operation in it have passed and
// at least 5 cycles have run, after one warm-up cycle; host clock around each call and its
// synchronize. Returns every operation's calls' times (from each sequence it is part of).
std::vector<std::vector<double>> time_sequences(Job& job,
                                                std::vector<std::unique_ptr<TimedOp>>& timed,
                                                const std::vector<Sequence>& sequences,
                                                double min_seconds) {
  std::vector<std::vector<double>> calls(timed.size());
  for (const Sequence& seq : sequences) {
    job.barrier();
    for (const std::size_t i : seq) timed[i]->run();
    const double budget = min_seconds * double(seq.size());
    const auto start = clock::now();
    for (int cycle = 0; cycle < 1000 && (cycle < 5 || since(start) < budget); ++cycle) {
      for (const std::size_t i : seq) {
        const auto t0 = clock::now();
        timed[i]->run();
        calls[i].push_back(since(t0));
      }
    }
  }
  return calls;
}

// The ranks' all-reduce time at sizes 4 KiB … 16 MiB (f32, host buffers, mean of 10 calls
// after 2), fitted to the α–β tier.
LinkTier measure_all_reduce(Job& job) {
  std::vector<std::pair<double, double>> points;
  for (std::size_t bytes = std::size_t{4} << 10; bytes <= (std::size_t{16} << 20); bytes *= 4) {
    std::vector<float> buf(bytes / sizeof(float), 1.0f);
    Tensor t(buf.data(), DType::f32, {std::int64_t(buf.size())});
    for (int i = 0; i < 2; ++i) job.world->all_reduce(t);
    job.barrier();
    const auto t0 = clock::now();
    constexpr int kCalls = 10;
    for (int i = 0; i < kCalls; ++i) job.world->all_reduce(t);
    const double s = since(t0);
    points.emplace_back(double(bytes), job.max(s / kCalls));
  }
  return fit_all_reduce_tier(job.size, points);
}

// The collectives the time model prices by measurement (plan/time_model.h rank_collectives)
// for every stage of every configuration, each distinct (collective, group, bytes) timed once:
// the world split into the configuration's data-parallel groups (parallel/grid.h's rank order),
// every group running it at once on host buffers of f32, the slowest rank's mean of 10 calls
// after 2. Every rank walks the same list, so the collectives match up.
std::vector<CalibratedCollective> measure_collectives(
    Job& job, const std::vector<std::pair<ModelConfig, RunConfig>>& configs) {
  std::vector<CalibratedCollective> out;
  for (const auto& [m, r] : configs) {
    const PlanCandidate c = candidate_of(r);
    const GridCoord me = grid_coord({c.dp, c.tp, c.pp}, job.rank);
    std::unique_ptr<MpiComm> group;  // this rank's data-parallel group, split once when needed
    for (int s = 0; s < c.pp; ++s) {
      for (const CollectiveCall& k : rank_collectives(m, c, s)) {
        const bool done = std::any_of(out.begin(), out.end(), [&](const auto& x) {
          return x.collective == k.collective && x.group == k.group && x.bytes == k.bytes;
        });
        if (done) continue;
        if (!group) {
          group = job.world->split(me.tp_rank + c.tp * me.pp_rank, me.dp_rank, ParallelDim::data);
        }
        // The whole buffer in f32 elements, rounded up to split evenly (as ZeRO-1 pads it).
        const auto n = static_cast<std::int64_t>(std::ceil(k.bytes / 4 / k.group)) * k.group;
        std::vector<float> whole(static_cast<std::size_t>(n), 1.0f);
        std::vector<float> part(static_cast<std::size_t>(n / k.group), 1.0f);
        const Tensor all(whole.data(), DType::f32, {n}),
            mine(part.data(), DType::f32, {n / k.group});
        auto call = [&] {
          if (k.collective == "reduce_scatter") {
            group->reduce_scatter(mine, all);
          } else {
            group->all_gather(all, mine);
          }
        };
        for (int i = 0; i < 2; ++i) call();
        job.barrier();
        constexpr int kCalls = 10;
        const auto t0 = clock::now();
        for (int i = 0; i < kCalls; ++i) call();
        const double seconds = job.max(since(t0) / kCalls);
        out.push_back({k.collective, job.size, k.group, k.bytes, seconds});
      }
    }
  }
  return out;
}

int run_calibrate(const CalibrateOptions& o) {
  Job job;
  if (MpiRuntime::launched() && MpiRuntime::launched_size() > 1) {
    job.world = MpiComm::world();
    job.rank = MpiRuntime::world_rank();
    job.size = MpiRuntime::world_size();
  }
  std::vector<std::pair<ModelConfig, RunConfig>> configs;
  if (!o.scenario.empty()) {
    const Scenario s = load_scenario(o.scenario);
    const VariantFilter filter(o.filter);
    for (const Variant& v : s.variants) {
      if (!filter.selects(v.id)) continue;
      if (v.config.ranks() != job.size) continue;  // its own job size calibrates it
      configs.emplace_back(variant_model(v.config, preset(v.config.preset)), v.config);
    }
    if (configs.empty()) {
      throw std::invalid_argument(
          "--scenario " + o.scenario + (o.filter.empty() ? "" : " --filter '" + o.filter + "'") +
          ": no variant runs on " + std::to_string(job.size) +
          " ranks (expected this calibration's job size to be a selected variant's dp·tp·pp: "
          "run it under mpirun -np N)");
    }
  } else {
    if (o.batch < 1) {
      throw std::invalid_argument("--batch " + std::to_string(o.batch) +
                                  " (expected at least 1 sequence)");
    }
    const ResolvedModel m = resolve(o.model);
    RunConfig r;
    r.micro_batch = o.batch;
    r.precision = o.precision;
    configs.emplace_back(m.proxy, r);
  }
  std::vector<Pending> ops;
  std::map<OpKey, std::size_t> index;
  std::vector<Sequence> sequences;
  for (const auto& [m, r] : configs) collect(m, r, ops, index, sequences);
  const DeviceChoice device = choose_device(o.device);
  Calibration cal;
  const nlohmann::json env = capture_environment("", o.threads);
  cal.device_kind = device.kind == DeviceKind::cuda ? "cuda" : "cpu";
  cal.threads = o.threads;
  cal.cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  cal.device = device.kind == DeviceKind::cuda
                   ? device.name
                   : "cpu: " + env["cpu"].value("model", std::string("unknown")) + " (" +
                         std::to_string(cal.cores) + " hardware threads)";
  cal.created = utc_now_iso8601();
  if (const auto avail = available_memory(device.kind)) cal.memory_bytes = double(avail->bytes);
  const bool lead = job.rank == 0;
  if (lead) {
    fmt::print(
        "calibrating {} operations in {} rank sequence(s) (each in the order a rank runs it) on "
        "{}, {} rank(s) at once\n",
        ops.size(), sequences.size(), cal.device, job.size);
  }
  // One backend per thread count (a parallel variant's ranks each get cores/ranks threads).
  std::map<int, std::unique_ptr<Backend>> backends;
  auto backend = [&](const Pending& p) -> Backend& {
    const int threads = p.threads > 0 ? p.threads : o.threads;
    auto& be = backends[threads];
    if (!be) be = make_backend(device, threads, 0);
    return *be;
  };
  // Each pass times every operation in the sequences the ranks run (time_sequences); an
  // operation's time is the median of its passes, so a transient slowdown of a shared machine
  // moves one pass, not the result. Under mpirun every rank runs the same sequence at once and
  // the ranks' mean is kept (their spread is the synchronisation wait, measured below).
  // Ranks whose threads oversubscribe the cores time-share them: there an operation's time is
  // its calls' mean (what a rank gets), elsewhere their median (op_timer.h).
  auto oversubscribed = [&](const Pending& p) {
    return device.kind == DeviceKind::cpu && job.size > 1 &&
           job.size * std::max(1, p.threads > 0 ? p.threads : o.threads) > cal.cores;
  };
  std::vector<std::unique_ptr<TimedOp>> timed;
  for (const Pending& p : ops)
    timed.push_back(std::make_unique<TimedOp>(backend(p), p.op, p.precision));
  std::vector<std::vector<double>> passes(ops.size());
  for (int pass = 0; pass < o.passes; ++pass) {
    std::vector<std::vector<double>> calls = time_sequences(job, timed, sequences, o.min_seconds);
    for (std::size_t i = 0; i < ops.size(); ++i) {
      std::vector<double>& t = calls[i];
      double total = 0;
      for (const double x : t) total += x;
      std::sort(t.begin(), t.end());
      passes[i].push_back(
          job.mean(oversubscribed(ops[i]) ? total / double(t.size()) : t[t.size() / 2]));
    }
  }
  const Pending* segment = nullptr;  // the GEMM the sync-wait segments repeat
  std::size_t segment_i = 0;
  double segment_s = 0;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const Pending& p = ops[i];
    const OpCost& op = p.op;
    std::vector<double>& t = passes[i];
    std::sort(t.begin(), t.end());
    const double seconds = t[t.size() / 2];
    cal.ops.push_back(
        {op.op, p.precision, op.dims, op.kind, op.flops, op.bytes, seconds, p.threads, job.size});
    // The segment repeats a GEMM short enough to build a 1 ms segment: the largest under
    // 1 ms, else the quickest.
    const bool fits = seconds <= 1e-3, better = !segment            ? true
                                                : segment_s <= 1e-3 ? fits && seconds > segment_s
                                                                    : seconds < segment_s;
    if (op.kind == OpKind::gemm && better) {
      segment = &p;
      segment_i = i;
      segment_s = seconds;
    }
    const double rate = (op.kind == OpKind::memory ? op.bytes : op.flops) / seconds;
    if (lead) {
      fmt::print(
          "  {:<20} {:<6} [{}, {}, {}, {}] {} threads  {:.4g} s ({} passes {:.4g}–{:.4g})  "
          "{:.4g} {}\n",
          op.op, p.precision, op.dims[0], op.dims[1], op.dims[2], op.dims[3],
          p.threads > 0 ? std::to_string(p.threads) : std::string("default"), seconds, t.size(),
          t.front(), t.back(), rate / 1e9, op.kind == OpKind::memory ? "GB/s" : "GFLOP/s");
    }
  }
  if (job.world && segment) {
    cal.sync_wait[job.size] = measure_sync_wait(job, *timed[segment_i], segment_s);
    for (const SyncWaitPoint& w : cal.sync_wait[job.size]) {
      if (lead) {
        fmt::print("sync wait over {} ranks after {:.3g} ms of {}: {:.3g} ms ({:.1f}%)\n", job.size,
                   w.segment_s * 1e3, segment->op.op, w.wait_s * 1e3, 100 * w.wait_s / w.segment_s);
      }
    }
  }
  if (job.world && device.kind == DeviceKind::cpu) {
    double round_s = 0;
    for (const CalibratedOp& c : cal.ops) round_s += c.seconds;
    cal.busy_speed[job.size] = measure_busy_speed(job, timed, round_s);
    if (lead) {
      fmt::print(
          "busy-rank speed over {} ranks (1 … {} busy, the rest waiting in MPI; {} operations):",
          job.size, job.size, ops.size());
      for (const double v : cal.busy_speed[job.size]) fmt::print(" {:.3g}", v);
      fmt::print("\n");
    }
  }
  if (job.world) {
    const LinkTier t = measure_all_reduce(job);
    cal.collectives[job.size] = t;
    if (lead) {
      fmt::print("all-reduce over {} ranks: latency {:.3g} us, bandwidth {:.3g} GB/s\n", job.size,
                 t.latency_s * 1e6, t.bytes_per_s / 1e9);
    }
    cal.collective_times = measure_collectives(job, configs);
    for (const CalibratedCollective& k : cal.collective_times) {
      if (!lead) continue;
      fmt::print("{} over {} of {} ranks, {:.4g} MB: {:.3g} ms ({:.2f}× the fitted all-reduce)\n",
                 k.collective, k.group, job.size, k.bytes / 1e6, k.seconds * 1e3,
                 k.seconds / ring_all_reduce_s(k.bytes, k.group, t, 1.0));
    }
  }
  job.barrier();
  if (!lead) return 0;
  const std::filesystem::path dir =
      std::filesystem::absolute(std::filesystem::path(o.out)).parent_path();
  cal.checkpoint_write_bytes_per_s = measure_write_bandwidth(dir, std::size_t{256} << 20);
  fmt::print("state checkpoint write: {:.3g} GB/s (256 MiB safetensors, fsync'd, in {})\n",
             cal.checkpoint_write_bytes_per_s / 1e9, dir.string());
  save_calibration(cal, o.out);
  fmt::print("wrote {}\n", o.out);
  return 0;
}

}  // namespace

Run add_calibrate_command(CLI::App& app) {
  auto o = std::make_shared<CalibrateOptions>();
  auto* scenario =
      app.add_option("--scenario", o->scenario, "calibrate for every variant of this scenario");
  app.add_option("--filter", o->filter,
                 "with --scenario: only variants whose id matches this regex")
      ->needs(scenario);
  add_model_options(app, o->model);
  app.add_option("--batch", o->batch, "micro-batch (without --scenario)")->capture_default_str();
  app.add_option("--precision", o->precision, "precision (without --scenario)")
      ->check(CLI::IsMember({"fp32", "tf32", "bf16", "fp16", "fp8"}))
      ->capture_default_str();
  app.add_option("--device", o->device, "auto, cpu or cuda")->capture_default_str();
  app.add_option("--threads", o->threads, "CPU threads (0: OpenMP default)")->capture_default_str();
  app.add_option("--min-seconds", o->min_seconds, "time each operation at least this long")
      ->capture_default_str();
  app.add_option("--passes", o->passes, "time every operation this many times, spread in time")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--out", o->out, "calibration file to write")->required();
  return [o] { return run_calibrate(*o); };
}

}  // namespace tb::cli
