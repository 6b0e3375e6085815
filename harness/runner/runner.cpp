#include "runner.h"

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "../data/markov_source.h"
#include "../data/token_file.h"
#include "../parallel/mpi_comm.h"
#include "../profile/gpu_collector.h"
#include "../profile/gpu_profile.h"
#include "../profile/profiler.h"
#include "../profile/stats.h"
#include "../results/environment.h"
#include "../results/peaks.h"
#include "../results/record_json.h"
#include "../results/results_writer.h"
#include "../results/time_to_target.h"
#include "../results/uncertainty.h"
#include "../scenario/variant_filter.h"
#include "../train/trainer.h"
#include "device.h"
#include "heartbeat.h"
#include "moe_results.h"
#include "parallel_results.h"
#include "rank_memory_check.h"
#include "rank_setup.h"
#include "rank_trace.h"
#include "tb/cpu_backend.h"
#include "tb/cuda_backend.h"
#include "tb/devices.h"
#include "variant_process.h"

namespace tb {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kSchemaVersion = 1;
// A loss above this multiple of the first step's is "exploding"; non-finite always diverges.
constexpr double kExplodingLossFactor = 4.0;

struct Diverged : std::runtime_error {
  Diverged(int s, double l, const char* p)
      : std::runtime_error("loss " + std::to_string(l) + " at step " + std::to_string(s) + " (" +
                           p + ")"),
        step(s),
        loss(l),
        phase(p) {}
  int step;
  double loss;
  const char* phase;
};

void check_loss(double loss, double first, int step, const char* phase) {
  if (!std::isfinite(loss) || (step > 0 && loss > kExplodingLossFactor * first)) {
    throw Diverged(step, loss, phase);
  }
}

std::unique_ptr<TokenSource> make_source(const RunConfig& c, const ModelConfig& m,
                                         std::uint64_t seed) {
  if (c.data == "synthetic")
    return std::make_unique<MarkovSource>(m.vocab, c.markov_branching, seed);
  return std::make_unique<TokenFileSource>(c.data, parse_token_format(c.data_format), m.vocab, seed,
                                           m.seq_len);
}

OptimizerConfig optimizer_config(const RunConfig& c, const ModelConfig& m) {
  OptimizerConfig a;
  a.name = c.optimizer;
  a.lr = c.lr.value_or(m.lr);
  a.beta1 = c.beta1;
  a.beta2 = c.beta2;
  a.weight_decay = c.weight_decay;
  a.grad_clip = c.grad_clip;
  a.momentum = c.momentum;
  return a;
}

// The variant's pruning (train/pruning.h), or none. The accuracy run follows its schedule; the
// timing run prunes one-shot to the target at its first step, so it times the masked step.
std::optional<PruningConfig> pruning_config(const RunConfig& c, bool scheduled) {
  if (!c.pruning()) return std::nullopt;
  PruningConfig p;
  parse_prune_pattern(c.prune_pattern, p);
  p.sparsity = c.prune_sparsity;
  p.schedule = c.prune_schedule == "gradual" ? PruneSchedule::gradual : PruneSchedule::oneshot;
  p.begin_step = c.prune_begin_step;
  p.end_step = c.prune_end_step.value_or(-1);
  p.frequency = c.prune_frequency;
  if (!scheduled) {
    p.schedule = PruneSchedule::oneshot;
    p.begin_step = 0;
  }
  return p;
}

// A step is one optimizer step over global_batch sequences. The timing run steps at the peak
// lr (a constant schedule without warm-up); the accuracy run follows the variant's schedule,
// its cosine reaching min_lr_ratio at train_steps.
TrainingConfig training_config(const RunConfig& c, bool scheduled, int train_steps) {
  TrainingConfig t;
  t.micro_batch = c.micro_batch;
  t.accumulation = c.micro_batches();  // per data-parallel replica
  t.loss_scaling.dynamic = c.dynamic_loss_scaling();
  t.loss_scaling.init_scale = c.loss_scale_init;
  t.loss_scaling.growth_interval = c.loss_scale_growth_interval;
  if (scheduled) {
    t.schedule.kind = c.lr_schedule;
    t.schedule.warmup_steps = c.lr_warmup_steps;
    t.schedule.total_steps = train_steps;
    t.schedule.min_lr_ratio = c.min_lr_ratio;
  }
  t.pruning = pruning_config(c, scheduled);
  return t;
}

// What pruning did: the configuration, how it ran, and per pruned tensor the sparsity
// achieved — exact zeros counted in the weights after `after` (each element once: a
// tensor-parallel tensor summed over its shards, data-parallel replicas counted once).
json sparsity_json(const RunConfig& c, const Pruner& pruner, const RankSetup& rs,
                   const std::string& after) {
  json mine = json::array();
  if (!rs.grid || rs.grid->coord.dp_rank == 0) {
    for (const TensorSparsity& t : pruner.measure()) {
      mine.push_back({{"name", t.name},
                      {"elements", t.elements},
                      {"zeros", t.zeros},
                      {"nm_violations", t.nm_violations}});
    }
  }
  std::map<std::string, TensorSparsity> sum;
  std::vector<std::string> order;
  for (const json& rank : gather_json(rs, mine)) {
    for (const json& t : rank) {
      const std::string name = t.at("name").get<std::string>();
      auto [it, fresh] = sum.try_emplace(name);
      if (fresh) order.push_back(name);
      it->second.elements += t.at("elements").get<std::int64_t>();
      it->second.zeros += t.at("zeros").get<std::int64_t>();
      it->second.nm_violations = std::max<std::int64_t>(it->second.nm_violations, 0) +
                                 t.at("nm_violations").get<std::int64_t>();
    }
  }
  const PruningConfig& p = pruner.config();
  const bool nm = p.pattern == PrunePattern::n_of_m;
  json tensors = json::object();
  std::int64_t elements = 0, zeros = 0, violations = 0;
  for (const std::string& name : order) {
    const TensorSparsity& t = sum[name];
    json j = {{"elements", t.elements}, {"zeros", t.zeros}, {"sparsity", t.sparsity()}};
    if (nm) j["nm_violations"] = t.nm_violations;
    tensors[name] = j;
    elements += t.elements;
    zeros += t.zeros;
    violations += std::max<std::int64_t>(t.nm_violations, 0);
  }
  json j = {
      {"pattern", p.pattern_name()},
      {"schedule", c.prune_schedule},
      {"target", p.target()},
      {"begin_step", c.prune_begin_step},
      {"execution", "emulated"},
      {"note",
       "masked weights multiplied dense: the accuracy effect is real, the speed is not (the CPU "
       "has no sparse kernel that beats OpenBLAS dense GEMM at these sparsities; on a GPU the "
       "cuSPARSELt 2:4 path is not built); the timing run prunes one-shot at its first step"},
      {"measured_after", after},
      {"tensors", tensors},
      {"overall",
       {{"elements", elements},
        {"zeros", zeros},
        {"sparsity", elements > 0 ? double(zeros) / double(elements) : 0.0}}}};
  if (nm) j["overall"]["nm_violations"] = violations;
  if (c.prune_schedule == "gradual") {
    j["end_step"] = c.prune_end_step.value_or(-1);
    j["frequency"] = c.prune_frequency;
  }
  return j;
}

PrecisionPolicy precision_policy(const RunConfig& c) {
  return {parse_precision_mode(c.precision), c.fp8_amax_history, c.fp8_margin};
}

// The model as the variant configures it: checkpointing, precision, initial weights.
void configure_model(GptModel& model, const RunConfig& c, std::uint64_t seed) {
  model.set_checkpointing({c.checkpoint_interval, c.checkpoint_selective});
  model.set_precision(precision_policy(c));
  model.init_weights(seed);
}

// What the precision mode did: formats, whether this device ran it natively, loss scaling.
json precision_json(const RunConfig& c, const Backend& backend) {
  const PrecisionMode mode = parse_precision_mode(c.precision);
  const bool cuda = backend.kind() == DeviceKind::cuda;
  // On the CPU, bf16 and fp16 GEMMs run natively through oneDNN where the CPU has the
  // instructions (AVX512-BF16, AMX, AVX512-FP16); the other kernels compute in fp32 on the
  // 16-bit tensors, widened per call, as the GPU's kernels do in registers.
  const bool cpu_native_gemm = !cuda && ((mode == PrecisionMode::bf16 && cpu_native_bf16_gemm()) ||
                                         (mode == PrecisionMode::fp16 && cpu_native_fp16_gemm()));
  const bool native = mode == PrecisionMode::fp32 || cuda || cpu_native_gemm;
  const DType storage = activation_dtype(mode) == DType::f16 ? DType::f16 : DType::bf16;
  std::string note;
  if (cpu_native_gemm) {
    note = "the GEMMs run natively in oneDNN on ISA " + cpu_gemm_isa() +
           " (16-bit operands, fp32 accumulation); attention, LayerNorm, GELU, softmax and the "
           "other kernels compute in fp32 on 16-bit tensors widened per call (memory category "
           "emulation)";
  } else if (!native) {
    note =
        "the CPU has no reduced-precision arithmetic: operands are rounded to the format (RNE) "
        "and multiplied in fp32, 16-bit tensors are stored 16-bit and widened for each kernel "
        "(memory category emulation)";
  }
  std::string gemm = "fp32 SGEMM (OpenBLAS) on operands rounded to the format";
  if (cuda) {
    gemm = "cuBLASLt";
  } else if (mode == PrecisionMode::bf16 || mode == PrecisionMode::fp16) {
    gemm = cpu_gemm_description(storage);
  }
  json j = {{"mode", c.precision},
            {"execution", native ? "native" : "emulated"},
            {"note", note},
            {"activation_dtype", dtype_name(activation_dtype(mode))},
            {"gemm", gemm},
            {"gemm_operands",
             {{"forward", number_format_name(forward_gemm_format(mode))},
              {"gradient", number_format_name(gradient_gemm_format(mode))}}},
            {"master_weights", "f32"},
            {"loss_scaling",
             {{"dynamic", c.dynamic_loss_scaling()},
              {"init_scale", c.dynamic_loss_scaling() ? json(c.loss_scale_init) : json(1.0)},
              {"growth_interval", c.loss_scale_growth_interval}}}};
  if (cpu_native_gemm) j["gemm_isa"] = cpu_gemm_isa();
  if (mode == PrecisionMode::fp8) {
    j["fp8"] = {{"amax_history", c.fp8_amax_history},
                {"margin", c.fp8_margin},
                {"recipe", "delayed scaling, per tensor; LM head in bf16"}};
  }
  return j;
}

json device_json(const DeviceChoice& d) {
  return {
      {"kind", d.kind == DeviceKind::cuda ? "cuda" : "cpu"}, {"name", d.name}, {"note", d.note}};
}

// The peak for MFU: the GPU's datasheet figure at the variant's precision, or the CPU's
// measured fp32 GEMM rate.
PeakFlops peak_for(const DeviceChoice& d, const RunConfig& c) {
  if (d.kind == DeviceKind::cpu) return cpu_measured_peak(cpu_thread_count());
  if (auto p = gpu_peak(d.name, d.sm_count, c.precision)) return *p;
  return {d.name, 0, "unknown: not in the peak table (harness/results/peaks.cpp)"};
}

std::string file_safe(const std::string& id) {
  std::string s;
  for (char ch : id)
    s += (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.') ? ch : '_';
  return s.substr(0, 120);
}

void time_variant(const Scenario& s, const Variant& v, const RunOptions& o, const ModelConfig& m,
                  const DeviceChoice& dev, json& line) {
  const RunConfig& c = v.config;
  const MeasureSettings& ms = s.measure;
  const int gpu_index = prepare_rank_device(c, dev.kind);
  auto backend =
      make_backend(dev, rank_threads(c), static_cast<std::size_t>(c.memory_limit_bytes), gpu_index);
  const RankSetup rs = make_rank_setup(c, m, *backend);
  // The memory model against the device before anything is allocated: `oom`, not a kill.
  require_rank_memory(c, m, dev.kind, rs, gpu_index);
  auto data = make_source(c, m, s.accuracy.seed);
  GptModel model(*backend, m, DType::f32, rs.shard, rs.flat_multiple);
  configure_model(model, c, s.accuracy.seed);
  line["precision"] = precision_json(c, *backend);
  Profiler profiler(o.trace);
  // Collectives are communication ranges on this rank's profiler (host clock, NVTX).
  if (rs.grid) rs.grid->set_profiler(&profiler);
  Trainer trainer(model, *data, optimizer_config(c, m), training_config(c, false, 0), profiler,
                  rs.context());
  // On a GPU: CUPTI kernel timings attributed to the phase ranges (CUDA events if CUPTI is
  // held by another profiler); none on the CPU.
  GpuCollectorOptions gpu_options;
  gpu_options.stream = cuda_stream_of(*backend);
  gpu_options.trace = profiler.tracing();
  gpu_options.trace_origin = profiler.origin();
  std::unique_ptr<GpuPhaseCollector> gpu = make_gpu_collector(gpu_options);
  struct Detach {
    Profiler& p;
    ~Detach() { p.set_gpu_collector(nullptr); }
  } detach{profiler};
  if (gpu) profiler.set_gpu_collector(gpu.get());

  double first = 0;
  int step = 0;
  for (; step < ms.warmup_steps; ++step) {
    heartbeat("warmup", step);
    const double loss = trainer.step().loss;
    if (step == 0) first = loss;
    check_loss(loss, first, step, "timing");
  }
  if (gpu) (void)gpu->collect();  // the warm-up's records are dropped
  std::vector<double> samples;
  std::vector<StepRecord> timed;
  std::array<std::vector<double>, kPhaseCount> phases;
  double timed_s = 0;
  std::string stopped_by = "max_steps";
  long skipped = 0;
  while (static_cast<int>(samples.size()) < ms.max_steps) {
    heartbeat("timing", step);
    if (o.trace) profiler.mark("step " + std::to_string(step));
    const StepRecord r = trainer.step();
    skipped += r.skipped ? 1 : 0;
    if (step == 0) first = r.loss;
    check_loss(r.loss, first, step, "timing");
    ++step;
    samples.push_back(r.total_s());
    timed.push_back(r);
    for (std::size_t p = 0; p < kPhaseCount; ++p) phases[p].push_back(r.phase_s[p]);
    timed_s += r.total_s();
    // In a parallel run rank 0 decides for every rank (each must run as many steps).
    if (agree(rs, static_cast<int>(samples.size()) >= ms.min_steps &&
                      median_rel_noise(samples) <= ms.target_rel_noise)) {
      stopped_by = "noise";
      break;
    }
    if (agree(rs, timed_s >= ms.time_budget_s)) {
      stopped_by = "time_budget";
      break;
    }
  }
  // The job's step ends when its slowest rank's does.
  heartbeat("gather", step);
  samples = max_over_ranks(rs, samples);
  const std::vector<json> ranks =
      gather_json(rs, rank_summary(rs, model, backend->memory(), timed));
  line["parallel"] = parallel_json(c, rs, ranks, o.launcher);
  // With an accuracy run, its routing (every training step of every seed) is reported instead.
  if (m.moe.enabled() && s.accuracy.train_steps == 0) {
    line["moe"] =
        moe_json(m, model.moe_stats(), rs, c.micro_batch, "timing run: warm-up and timed steps");
  }
  const Summary st = summarize(samples);
  json step_s = summary_json(st);
  step_s["rel_noise"] = median_rel_noise(samples);
  json phase_json;
  for (std::size_t p = 0; p < kPhaseCount; ++p) {
    phase_json[std::string(phase_name(static_cast<Phase>(p)))] = summary_json(summarize(phases[p]));
  }
  line["precision"]["loss_scaling"]["timing_skipped_steps"] = skipped;
  if (const Pruner* pr = trainer.pruner()) {
    line["sparsity"] = sparsity_json(c, *pr, rs, "timing");
  }
  line["timing"] = {{"step_s", step_s},
                    {"samples_s", samples},
                    {"phases_s", phase_json},
                    {"warmup_steps", ms.warmup_steps},
                    {"stopped_by", stopped_by}};

  // A step is an optimizer step over the global batch (all its micro-batches).
  const double tokens_per_step = double(c.resolved_global_batch()) * m.seq_len;
  const double tokens_per_s = tokens_per_step / st.median;
  const double flops_per_s = tokens_per_s * model_flops_per_token(m);
  // The job's peak: every rank's device (on one CPU, each rank's share of its cores).
  heartbeat("peak", step);  // the CPU's peak is measured here (seconds)
  PeakFlops peak = peak_for(dev, c);
  peak.flops_per_s *= double(rs.world());
  line["throughput"] = {
      {"tokens_per_step", tokens_per_step},
      {"tokens_per_s", tokens_per_s},
      {"tokens_per_s_per_rank", tokens_per_s / double(rs.world())},
      {"model_flops_per_s", flops_per_s},
      {"mfu", peak.flops_per_s > 0 ? json(flops_per_s / peak.flops_per_s) : json(nullptr)},
      {"peak",
       {{"device", peak.device}, {"flops_per_s", peak.flops_per_s}, {"source", peak.source}}}};
  // Per category the largest rank's peak; the total is the largest rank's total.
  const json peaks = max_memory_peaks(ranks);
  std::size_t peak_total = backend->memory().peak_total_bytes();
  {
    std::vector<double> totals = max_over_ranks(rs, {double(peak_total)});
    peak_total = static_cast<std::size_t>(totals[0]);
  }
  line["memory"] = {{"peak_bytes", peaks},
                    {"peak_total_bytes", peak_total},
                    {"limit_bytes", c.memory_limit_bytes}};
  if (gpu) {
    const GpuProfile g = gpu->collect();
    profiler.add_trace_events(g.trace);
    line["gpu_profile"] = gpu_profile_json(g);
  }
  if (o.trace) {
    // Every rank's events in one file (a track per rank, rank 0's time base), written by rank 0.
    const std::vector<std::vector<TraceEvent>> rank_events = gather_trace_events(rs, profiler);
    const auto dir = std::filesystem::path(o.out_dir) / "traces";
    const auto path = dir / (std::to_string(v.index) + "-" + file_safe(v.id) + ".json");
    if (rs.rank() == 0) {
      std::filesystem::create_directories(dir);
      write_chrome_trace(path.string(), rank_events, "trainbench " + v.id,
                         {{"scenario", s.name}, {"variant", v.id}});
    }
    line["timing"]["trace"] = path.string();
  }
}

void accuracy_variant(const Scenario& s, const Variant& v, const ModelConfig& m,
                      const DeviceChoice& dev, json& line) {
  const AccuracySettings& a = s.accuracy;
  const RunConfig& c = v.config;
  std::vector<double> finals;
  std::vector<std::uint64_t> seeds;
  std::map<int, std::vector<double>> curve;
  std::map<int, std::vector<double>> curve_train_s;  // per seed: training seconds so far
  std::optional<double> floor;
  // Time to target (accuracy.target_loss): each seed's resolved target and crossing.
  const bool has_target = a.target_loss || a.target_floor_ratio;
  const std::int64_t tokens_per_step = std::int64_t{c.resolved_global_batch()} * m.seq_len;
  std::vector<double> targets;
  std::vector<TargetCrossing> crossings;
  std::vector<long> skipped;
  std::vector<double> final_scale;
  MoeStats moe_stats;
  RoundingStats rounding;
  bool rounding_counted = false;
  for (int k = 0; k < a.seeds; ++k) {
    const std::uint64_t seed = a.seed + static_cast<std::uint64_t>(k);
    seeds.push_back(seed);
    const int gpu_index = prepare_rank_device(c, dev.kind);
    auto backend = make_backend(dev, rank_threads(c),
                                static_cast<std::size_t>(c.memory_limit_bytes), gpu_index);
    const RankSetup rs = make_rank_setup(c, m, *backend);
    auto data = make_source(c, m, seed);
    floor = data->entropy_floor_nats();
    std::optional<double> target = a.target_loss;
    if (a.target_floor_ratio) {
      if (!floor) {
        throw std::invalid_argument(
            "accuracy.target_loss {\"floor_ratio\": " + json(*a.target_floor_ratio).dump() +
            "} needs the data's entropy floor, but " + c.data +
            " has none (expected an absolute loss in nats, or synthetic data)");
      }
      target = *a.target_floor_ratio * *floor;  // each seed's chain has its own floor
    }
    GptModel model(*backend, m, DType::f32, rs.shard, rs.flat_multiple);
    configure_model(model, c, seed);
    Profiler profiler(false);
    TrainingConfig tc = training_config(c, true, a.train_steps);
    tc.count_gradient_rounding = c.precision != "fp32";
    Trainer trainer(model, *data, optimizer_config(c, m), tc, profiler, rs.context());
    // Held-out batches of global_batch sequences, so variants that only split the global
    // batch differently are evaluated on the same windows.
    const std::int64_t windows = std::int64_t{a.eval_batches} * c.resolved_global_batch();
    double first = 0;
    // Training seconds: the wall clock of the step() calls only (evaluations excluded).
    double train_s = 0;
    std::vector<CurvePoint> evals;
    // Step 0 for the interpolation: the first step's loss is the untrained model's on data it
    // has not seen, an estimate of its held-out loss.
    std::optional<CurvePoint> start;
    const auto record_eval = [&](int at, double eval_loss) {
      curve[at].push_back(eval_loss);
      curve_train_s[at].push_back(train_s);
      evals.push_back({at, eval_loss, train_s, double(at * tokens_per_step)});
    };
    for (int step = 0; step < a.train_steps; ++step) {
      heartbeat("accuracy", step);
      const auto step_t0 = Clock::now();
      const double loss = trainer.step().loss;
      train_s += std::chrono::duration<double>(Clock::now() - step_t0).count();
      if (step == 0) {
        first = loss;
        start = CurvePoint{0, loss, 0, 0};
      }
      check_loss(loss, first, step, "accuracy");
      if (a.eval_interval > 0 && (step + 1) % a.eval_interval == 0 && step + 1 < a.train_steps) {
        record_eval(step + 1, trainer.evaluate(windows));
      }
    }
    const double final_loss = trainer.evaluate(windows);
    if (!std::isfinite(final_loss)) throw Diverged(a.train_steps, final_loss, "accuracy");
    record_eval(a.train_steps, final_loss);
    if (target) {
      targets.push_back(*target);
      crossings.push_back(time_to_target(evals, *target, start));
    }
    finals.push_back(final_loss);
    skipped.push_back(trainer.loss_scaler().skipped_steps());
    if (const auto r = trainer.gradient_rounding()) {
      rounding += *r;
      rounding_counted = true;
    }
    final_scale.push_back(trainer.loss_scaler().scale());
    accumulate(moe_stats, model.moe_stats());
    if (k + 1 == a.seeds && m.moe.enabled()) {
      line["moe"] = moe_json(m, moe_stats, rs, c.micro_batch,
                             "accuracy runs: every training step of every seed");
    }
    // The last seed's weights after the accuracy run replace the timing run's count.
    if (const Pruner* pr = trainer.pruner(); pr && k + 1 == a.seeds) {
      line["sparsity"] = sparsity_json(c, *pr, rs, "accuracy (seed " + std::to_string(seed) + ")");
    }
  }
  if (line.contains("precision")) {
    line["precision"]["loss_scaling"]["accuracy_skipped_steps"] = skipped;
    line["precision"]["loss_scaling"]["accuracy_final_scale"] = final_scale;
    // Over every seed's training steps: how the backward's roundings to reduced precision went.
    if (rounding_counted) {
      const double n = rounding.values > 0 ? double(rounding.values) : 1.0;
      line["precision"]["gradient_rounding"] = {
          {"values", rounding.values},
          {"underflow_fraction", double(rounding.underflow) / n},
          {"subnormal_fraction", double(rounding.subnormal) / n},
          {"overflow_fraction", double(rounding.overflow) / n}};
    }
  }
  json curve_json = json::array();
  for (const auto& [step, losses] : curve) {
    curve_json.push_back({{"step", step},
                          {"eval_loss", losses},
                          {"train_s", curve_train_s[step]},
                          {"tokens", step * tokens_per_step}});
  }
  const auto [lo, hi] = mean_ci95(finals);
  double mean = 0;
  for (double x : finals) mean += x / double(finals.size());
  line["accuracy"] = {{"train_steps", a.train_steps},
                      {"eval_batches", a.eval_batches},
                      {"seeds", seeds},
                      {"eval_loss", finals},
                      {"eval_loss_mean", mean},
                      {"eval_loss_ci95", {lo, hi}},
                      {"entropy_floor", floor ? json(*floor) : json(nullptr)},
                      {"curve", curve_json}};
  if (has_target) {
    line["accuracy"]["target"] = {
        {"spec",
         a.target_loss ? json(*a.target_loss) : json{{"floor_ratio", *a.target_floor_ratio}}},
        {"loss", targets}};
    line["accuracy"]["time_to_target"] = time_to_target_json(seeds, targets, crossings);
  }
}

}  // namespace

json run_variant(const Scenario& s, const Variant& v, const RunOptions& o,
                 const json& environment) {
  json line;
  line["schema_version"] = kSchemaVersion;
  line["scenario"] = {{"name", s.name}, {"path", s.path}, {"description", s.description}};
  line["variant"] = {
      {"index", v.index}, {"id", v.id}, {"keys", v.keys}, {"baseline", v.is_baseline}};
  Variant run = v;
  if (o.device) run.config.device = *o.device;
  line["config"] = run.config.to_json();
  line["started_utc"] = utc_now_iso8601();
  const auto t0 = Clock::now();
  try {
    const ModelConfig full = preset(run.config.preset);
    const ModelConfig m = variant_model(run.config, full);
    validate(m);
    line["model"] = {{"full", model_json(full)}, {"proxy", model_json(m)}};
    const DeviceChoice dev = choose_device(run.config.device);
    line["device"] = device_json(dev);
    time_variant(s, run, o, m, dev, line);
    if (s.accuracy.train_steps > 0) accuracy_variant(s, run, m, dev, line);
    line["status"] = "ok";
  } catch (const OutOfMemory& e) {
    line["status"] = "oom";
    line["reason"] = e.what();
    line["oom"] = {{"required_bytes", e.requested_bytes}, {"available_bytes", e.available_bytes}};
  } catch (const Diverged& e) {
    line["status"] = "diverged";
    line["reason"] = e.what();
    line["diverged"] = {{"step", e.step},
                        {"loss", std::isfinite(e.loss) ? json(e.loss) : json(nullptr)},
                        {"phase", e.phase}};
  } catch (const DeviceUnsupported& e) {
    line["status"] = "unsupported";
    line["reason"] = e.what();
  } catch (const std::exception& e) {
    line["status"] = "error";
    line["reason"] = e.what();
  }
  // In a parallel job a failure is one rank's: say which.
  if (line["status"] != "ok" && MpiRuntime::initialized() && MpiRuntime::world_size() > 1) {
    line["reason"] = "rank " + std::to_string(MpiRuntime::world_rank()) + ": " +
                     line["reason"].get<std::string>();
  }
  line["duration_s"] = std::chrono::duration<double>(Clock::now() - t0).count();
  line["environment"] = environment;
  return line;
}

void add_baseline_comparison(json& line, const json& baseline) {
  if (line["variant"]["id"] == baseline["variant"]["id"]) return;
  if (line.value("status", "") != "ok" || baseline.value("status", "") != "ok") return;
  const auto base_t = baseline["timing"]["samples_s"].get<std::vector<double>>();
  const auto t = line["timing"]["samples_s"].get<std::vector<double>>();
  json vs = {{"baseline_id", baseline["variant"]["id"]}};
  // step_time_ratio = baseline median step time ÷ this one (interval by bootstrap over both
  // sets of samples). speedup = this tokens/s ÷ the baseline's = (tokens per step ÷ the
  // baseline's) × step_time_ratio: a step of the whole job's global batch can hold a
  // different number of tokens (micro-batch, dp or pipeline splits), so only the throughput
  // ratio compares like with like. The token ratio is a constant, so it scales the interval.
  const double step_ratio = summarize(base_t).median / summarize(t).median;
  const auto [slo, shi] = ratio_of_medians_ci95(base_t, t);
  const double tokens_ratio = line.at("throughput").at("tokens_per_step").get<double>() /
                              baseline.at("throughput").at("tokens_per_step").get<double>();
  vs["speedup"] = tokens_ratio * step_ratio;
  vs["speedup_ci95"] = {tokens_ratio * slo, tokens_ratio * shi};
  vs["step_time_ratio"] = step_ratio;
  vs["step_time_ratio_ci95"] = {slo, shi};
  if (line.contains("accuracy") && baseline.contains("accuracy")) {
    const auto a = baseline["accuracy"]["eval_loss"].get<std::vector<double>>();
    const auto b = line["accuracy"]["eval_loss"].get<std::vector<double>>();
    const double base_mean = baseline["accuracy"]["eval_loss_mean"].get<double>();
    const double delta = line["accuracy"]["eval_loss_mean"].get<double>() - base_mean;
    // The same seeds on both sides (same initial weights and data order): the interval is
    // Student's t over the per-seed differences (paired), which removes the seed-to-seed
    // spread both sides share; otherwise Welch's t over the two samples.
    const auto base_seeds = baseline["accuracy"]["seeds"], seeds = line["accuracy"]["seeds"];
    const bool paired = base_seeds == seeds && a.size() == b.size() && a.size() >= 2;
    std::pair<double, double> ci;
    if (paired) {
      std::vector<double> d(a.size());
      for (std::size_t i = 0; i < a.size(); ++i) d[i] = b[i] - a[i];
      ci = mean_ci95(d);
    } else {
      ci = welch_diff_ci95(a, b);
    }
    vs["loss_delta"] = delta;
    vs["loss_delta_ci95"] = {ci.first, ci.second};
    vs["loss_delta_method"] = paired ? "paired" : "welch";
    vs["loss_delta_rel"] = delta / base_mean;
    // Time to the target loss, when both recorded it (time_to_target.h: ratio of means over
    // seeds, 95% interval by the delta method on its logarithm).
    const json ttt = time_to_target_vs_baseline(baseline["accuracy"], line["accuracy"]);
    for (const auto& [key, value] : ttt.items()) vs[key] = value;
  }
  line["vs_baseline"] = vs;
}

RunSummary run_scenario(const Scenario& s, const RunOptions& o, const ProgressFn& progress) {
  const VariantFilter filter(o.filter);
  ResultsWriter writer(o.out_dir, o.resume);
  const json environment = capture_environment(o.command_line, cpu_thread_count());
  // Each variant runs in a worker process of its own (an MPI job when it has several ranks):
  // a crash or hang becomes that variant's `error` line, never the sweep's end.
  const ProcessRunner workers(s, o, environment);
  RunSummary sum;
  sum.variants = static_cast<int>(s.variants.size());

  // The baseline runs first so every other variant can be compared with it as it lands.
  std::vector<const Variant*> order;
  for (const auto& v : s.variants) {
    if (v.is_baseline)
      order.insert(order.begin(), &v);
    else
      order.push_back(&v);
  }
  std::vector<const Variant*> todo;
  for (const Variant* v : order) {
    if (!filter.selects(v->id)) continue;
    ++sum.selected;
    if (writer.recorded().count(v->id)) {
      ++sum.resumed;
      continue;
    }
    todo.push_back(v);
  }
  const std::string baseline_id = order.front()->id;
  double spent_s = 0;
  for (std::size_t i = 0; i < todo.size(); ++i) {
    const Variant& v = *todo[i];
    const double eta = i ? spent_s / double(i) * double(todo.size() - i) : -1;
    if (progress) progress(static_cast<int>(i + 1), static_cast<int>(todo.size()), v, nullptr, eta);
    json line = workers.run(v);
    if (auto it = writer.recorded().find(baseline_id); it != writer.recorded().end()) {
      add_baseline_comparison(line, it->second);
    }
    writer.append(line);
    spent_s += line["duration_s"].get<double>();
    ++sum.ran;
    ++sum.by_status[line["status"].get<std::string>()];
    const double eta_after = spent_s / double(i + 1) * double(todo.size() - i - 1);
    if (progress)
      progress(static_cast<int>(i + 1), static_cast<int>(todo.size()), v, &line, eta_after);
  }
  return sum;
}

}  // namespace tb
