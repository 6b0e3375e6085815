// `trainbench plan`: the capacity planner (docs/planner.md). Ranks every split and option of
// a GPU count for a model by the expected time to train, from a calibration file or datasheet
// peaks; with every dimension pinned it evaluates that one configuration. With --scenario it
// predicts the step time of each of a scenario's variants on the calibrated machine instead
// (what `trainbench run` then measures).
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>

#include "../plan/calibration.h"
#include "../plan/plan_json.h"
#include "../plan/search.h"
#include "../runner/rank_setup.h"
#include "../scenario/variant_filter.h"
#include "commands.h"

namespace tb::cli {

namespace {

struct PlanOptions {
  std::string model = "gpt3-175b";
  std::optional<int> layers, d_model, heads, vocab, seq, experts, top_k, moe_every;
  std::optional<double> capacity_factor;
  int gpus = 0;
  std::string gpu = "h100-sxm";
  std::optional<int> gpus_per_node;
  std::vector<std::string> calibration;
  double tokens = 300e9;
  int global_batch = 0;
  std::optional<double> price;
  double mtbf_hours = 50700;  // Llama 3 (search.h)
  bool no_failures = false;
  double restart_minutes = 10;
  double storage_gbps = 2000.0 / 16384;  // GB/s per GPU: Llama 3's 2 TB/s over 16,384 GPUs
  double headroom = 0.9;
  std::optional<double> intra_gbps, inter_gbps;
  std::optional<int> dp, tp, pp, virtual_stages, micro_batch, zero;
  std::string recompute, sequence_parallel;
  std::string precision = "bf16";
  std::string schedule = "1f1b";
  int top = 10;
  std::string json;
  std::string scenario, filter;
};

ModelConfig plan_model(const PlanOptions& o) {
  ModelConfig m = preset(o.model);
  if (o.layers) m.n_layer = *o.layers;
  if (o.d_model) m.d_model = *o.d_model;
  if (o.heads) m.n_head = *o.heads;
  if (o.vocab) m.vocab = *o.vocab;
  if (o.seq) m.seq_len = *o.seq;
  if (o.experts) m.moe.experts = *o.experts;
  if (o.top_k) m.moe.top_k = *o.top_k;
  if (o.moe_every) m.moe.every = *o.moe_every;
  if (o.capacity_factor) m.moe.capacity_factor = *o.capacity_factor;
  if (m.d_model % m.n_head != 0) {
    throw std::invalid_argument("--d-model " + std::to_string(m.d_model) + " with --heads " +
                                std::to_string(m.n_head) + " (expected heads dividing d_model)");
  }
  validate(m);
  return m;
}

// A CPU described by its calibration: its measured rates stand in for peaks.
Accelerator calibrated_cpu(const Calibration& c) {
  Accelerator a;
  a.key = "cpu";
  a.name = c.device;
  a.memory_bytes = c.memory_bytes;
  for (const CalibratedOp& op : c.ops) {
    const double rate = (op.kind == OpKind::memory ? op.bytes : op.flops) / op.seconds;
    if (op.kind == OpKind::memory) a.memory_bytes_per_s = std::max(a.memory_bytes_per_s, rate);
    if (op.kind != OpKind::gemm) continue;
    double* peak = op.precision == "fp32"   ? &a.fp32
                   : op.precision == "tf32" ? &a.tf32
                   : op.precision == "fp8"  ? &a.fp8
                                            : &a.bf16;
    *peak = std::max(*peak, rate);
  }
  if (!c.collectives.empty()) a.intra_node = a.inter_node = c.collectives.begin()->second;
  a.gpus_per_node = 1 << 20;  // one machine
  a.source = "calibration " + c.path;
  return a;
}

double positive(const char* flag, double v) {
  if (!(v > 0)) {
    throw std::invalid_argument(std::string(flag) + " " + std::to_string(v) +
                                " (expected a positive bandwidth)");
  }
  return v;
}

std::string gib(double bytes) { return fmt::format("{:.1f}", bytes / double(1ull << 30)); }

std::string duration(double s) {
  if (!std::isfinite(s)) return "never";
  if (s >= 86400) return fmt::format("{:.1f} d", s / 86400);
  if (s >= 3600) return fmt::format("{:.1f} h", s / 3600);
  return fmt::format("{:.3g} s", s);
}

void print_entries(const PlanRequest& r, const PlanResult& res, int top) {
  fmt::print(
      "{:>3}  {:>4} {:>3} {:>3} {:>2} {:>3}  {:<9} {:>2} {:>4}  {:>9}  {:>5}  {:>11}  {:>10}  "
      "{:>10}  {:>10}\n",
      "#", "dp", "tp", "pp", "v", "mb", "recompute", "sp", "zero", "iter", "MFU", "GiB/GPU",
      "train", "w/ failures", "GPU-hours");
  const int n = std::min<int>(top, int(res.ranked.size()));
  for (int i = 0; i < n; ++i) {
    const PlanEntry& e = res.ranked[std::size_t(i)];
    const PlanCandidate& c = e.candidate;
    fmt::print(
        "{:>3}  {:>4} {:>3} {:>3} {:>2} {:>3}  {:<9} {:>2} {:>4}  {:>8.3g}s  {:>4.1f}%  "
        "{:>5}/{:<5}  {:>10}  {:>10}  {:>10.3g}\n",
        i + 1, c.dp, c.tp, c.pp, c.virtual_stages, c.micro_batch, recompute_name(c.recompute),
        c.sequence_parallel ? "y" : "n", c.zero, e.iteration.time.iteration(), 100 * e.mfu,
        gib(e.memory.total()), gib(e.memory_usable_bytes), duration(e.time_to_train_s),
        e.goodput ? duration(e.goodput->wall_s) : std::string("-"), e.gpu_hours);
  }
  if (!res.ranked.empty()) {
    const PlanEntry& b = res.ranked.front();
    const TimeBreakdown& t = b.iteration.time;
    fmt::print(
        "best: forward {:.3g} s, backward {:.3g} s, recompute {:.3g} s, tensor-parallel comm "
        "{:.3g} s, pipeline comm {:.3g} s, bubble {:.3g} s, data-parallel comm {:.3g} s, expert "
        "all-to-all {:.3g} s, "
        "optimizer {:.3g} s\n",
        t.forward, t.backward, t.recompute, t.tensor_parallel_comm, t.pipeline_comm,
        t.pipeline_bubble, t.data_parallel_comm, t.expert_parallel_comm, t.optimizer);
    std::string mem;
    for (std::size_t i = 0; i < kMemoryCategoryCount; ++i) {
      if (b.memory.bytes[i] <= 0) continue;
      mem +=
          fmt::format("{}{} {} GiB", mem.empty() ? "" : ", ",
                      memory_category_name(static_cast<MemoryCategory>(i)), gib(b.memory.bytes[i]));
    }
    fmt::print("best memory per GPU (stage {}): {}\n", b.memory.stage, mem);
    if (b.cost) fmt::print("best cost: ${:.4g}\n", *b.cost);
    if (b.goodput) {
      fmt::print(
          "best goodput: state checkpoint {:.3g} GB written in {:.3g} s, every {:.3g} s (Daly), "
          "expected overhead {:.1f}% with a job MTBF of {:.3g} h\n",
          b.checkpoint_bytes / 1e9, b.checkpoint_write_s, b.goodput->interval_s,
          100 * b.goodput->overhead_fraction, *r.mtbf_gpu_hours / b.candidate.gpus());
    }
  }
}

int predict_scenario(const PlanOptions& o, const Calibration* cal) {
  const Scenario s = load_scenario(o.scenario);
  if (!cal) {
    throw std::invalid_argument("--scenario " + o.scenario +
                                " without --calibration (expected a calibration of this machine: "
                                "trainbench calibrate --scenario " +
                                o.scenario + ")");
  }
  const VariantFilter filter(o.filter);
  std::vector<const Variant*> selected;
  for (const Variant& v : s.variants)
    if (filter.selects(v.id)) selected.push_back(&v);
  if (selected.empty()) {
    throw std::invalid_argument("--filter '" + o.filter + "' selects none of the " +
                                std::to_string(s.variants.size()) + " variants of " + o.scenario +
                                " (expected a regex matching a variant id: trainbench validate " +
                                o.scenario + " lists them)");
  }
  const Accelerator device = calibrated_cpu(*cal);
  nlohmann::json out = nlohmann::json::array();
  fmt::print("{:<48} {:>12} {:>10} {:>10} {:>10} {:>10}\n", "variant", "predicted_s", "forward",
             "backward", "comm", "priced_by");
  for (const Variant* vp : selected) {
    const Variant& v = *vp;
    const ModelConfig m = variant_model(v.config, preset(v.config.preset));
    const PlanCandidate c = candidate_of(v.config);
    const RunConfig& r = v.config;
    Accelerator machine = device;
    if (r.ranks() > 1) {
      const auto tier = cal->collectives.find(r.ranks());
      if (tier == cal->collectives.end()) {
        throw std::invalid_argument(
            "variant " + v.id + ": " + std::to_string(r.ranks()) + " ranks, and calibration " +
            cal->path + " has no " + std::to_string(r.ranks()) +
            "-rank measurements (expected "
            "also: mpirun -np " +
            std::to_string(r.ranks()) + " trainbench calibrate --scenario " + o.scenario +
            " --out FILE, given as another --calibration)");
      }
      machine.intra_node = machine.inter_node = tier->second;
    }
    TimeModelInputs in;
    in.device = &machine;
    in.calibration = cal;
    in.gpus_per_node = device.gpus_per_node;
    in.bucket_bytes = r.bucket_mb * double(1 << 20);
    in.efficiency.network = 1;  // the fitted tier is what the ranks measured
    // The calibration's keys: each rank's threads as `run` gives them, and the job's ranks
    // (its operations were timed with that many ranks running at once).
    in.threads = rank_threads(r);
    in.ranks = r.ranks();
    in.shared_cores = cal->cores;
    const IterationPrediction p = predict_iteration(m, c, v.config.resolved_global_batch(), in);
    const TimeBreakdown& t = p.time;
    const double comm = t.tensor_parallel_comm + t.pipeline_comm + t.data_parallel_comm;
    fmt::print("{:<48} {:>12.4g} {:>10.4g} {:>10.4g} {:>10.4g} {:>10}\n", v.id, t.iteration(),
               t.forward, t.backward + t.recompute, comm, p.priced_by);
    out.push_back({{"variant", v.id},
                   {"predicted_step_s", t.iteration()},
                   {"priced_by", p.priced_by},
                   {"time_breakdown_s", time_breakdown_json(t)}});
  }
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << nlohmann::json{{"schema", "trainbench.scenario-prediction/1"},
                        {"scenario", s.path},
                        {"calibration", cal->path},
                        {"variants", out}}
             .dump(1)
      << "\n";
    if (!f) throw std::invalid_argument("--json " + o.json + ": cannot be written");
  }
  return 0;
}

int run_plan(const PlanOptions& o) {
  std::optional<Calibration> cal;
  for (const std::string& path : o.calibration) {
    if (!cal) {
      cal = load_calibration(path);
    } else {
      cal->merge(load_calibration(path));
    }
  }
  if (!o.scenario.empty()) return predict_scenario(o, cal ? &*cal : nullptr);

  PlanRequest r;
  r.model = plan_model(o);
  r.device = (cal && cal->device_kind == "cpu") ? calibrated_cpu(*cal) : accelerator(o.gpu);
  r.gpus = o.gpus;
  r.tokens = o.tokens;
  r.global_batch = o.global_batch > 0
                       ? o.global_batch
                       : int(std::max<std::int64_t>(1, r.model.batch_tokens / r.model.seq_len));
  r.memory_headroom = o.headroom;
  r.price_per_gpu_hour = o.price;
  if (!o.no_failures) r.mtbf_gpu_hours = o.mtbf_hours;
  if (!(o.mtbf_hours > 0)) {
    throw std::invalid_argument("--mtbf-hours " + std::to_string(o.mtbf_hours) +
                                " (expected a positive number of hours per GPU)");
  }
  if (o.global_batch < 0) {
    throw std::invalid_argument("--global-batch " + std::to_string(o.global_batch) +
                                " (expected a positive number of sequences, or 0 for the "
                                "preset's)");
  }
  if (o.price && !(*o.price >= 0)) {
    throw std::invalid_argument("--price-per-gpu-hour " + std::to_string(*o.price) +
                                " (expected dollars >= 0)");
  }
  if (!(o.restart_minutes >= 0)) {
    throw std::invalid_argument("--restart-minutes " + std::to_string(o.restart_minutes) +
                                " (expected minutes >= 0)");
  }
  r.restart_s = o.restart_minutes * 60;
  r.storage_bytes_per_s_per_gpu = positive("--storage-gbps", o.storage_gbps) * 1e9;
  if (o.intra_gbps)
    r.device.intra_node.bytes_per_s = positive("--intra-node-gbps", *o.intra_gbps) * 1e9;
  if (o.inter_gbps)
    r.device.inter_node.bytes_per_s = positive("--inter-node-gbps", *o.inter_gbps) * 1e9;
  r.dp = o.dp;
  r.tp = o.tp;
  r.pp = o.pp;
  r.virtual_stages = o.virtual_stages;
  r.micro_batch = o.micro_batch;
  r.zero = o.zero;
  if (!o.recompute.empty()) r.recompute = parse_recompute(o.recompute);
  if (!o.sequence_parallel.empty()) r.sequence_parallel = o.sequence_parallel == "on";
  r.precision = o.precision;
  r.schedule = o.schedule;
  r.calibration = cal ? &*cal : nullptr;
  r.time.gpus_per_node = o.gpus_per_node.value_or(r.device.gpus_per_node);
  if (r.time.gpus_per_node < 1) {
    throw std::invalid_argument("--gpus-per-node " + std::to_string(r.time.gpus_per_node) +
                                " (expected at least 1)");
  }
  PlanResult res = plan(r);
  // Every dimension pinned: that one configuration is evaluated and shown even when it does
  // not fit (never proposed: it is marked so).
  if (res.ranked.empty()) {
    const std::vector<PlanCandidate> only = enumerate_candidates(r);
    if (only.size() == 1) {
      res.ranked.push_back(evaluate_candidate(r, only.front()));
      fmt::print(
          "note: the pinned configuration does NOT fit: {} GiB per GPU predicted, {} GiB "
          "usable\n",
          gib(res.ranked.front().memory.total()), gib(res.ranked.front().memory_usable_bytes));
    }
  }

  nlohmann::json pinned = nlohmann::json::object();
  auto pin = [&](const char* k, const auto& v) {
    if (v) pinned[k] = *v;
  };
  pin("dp", r.dp);
  pin("tp", r.tp);
  pin("pp", r.pp);
  pin("virtual_stages", r.virtual_stages);
  pin("micro_batch", r.micro_batch);
  pin("zero", r.zero);
  if (r.recompute) pinned["recompute"] = recompute_name(*r.recompute);
  pin("sequence_parallel", r.sequence_parallel);
  pinned["precision"] = r.precision;

  fmt::print(
      "plan: {} ({:.3g}B parameters) on {} x {} ({} per node), {:.3g} tokens, global batch "
      "{} x {} tokens\n",
      r.model.name, double(parameter_count(r.model)) / 1e9, r.gpus, r.device.name,
      r.time.gpus_per_node, r.tokens, r.global_batch, r.model.seq_len);
  fmt::print("priced from: {}\n",
             cal ? "calibration " + cal->path + " (" + cal->device + ")"
                 : std::string("datasheet peaks x default efficiencies (no calibration file)"));
  fmt::print("{} configurations evaluated, {} fit in {} GiB per GPU\n", res.evaluated, res.feasible,
             gib(r.device.memory_bytes * r.memory_headroom));
  if (res.ranked.empty()) {
    throw std::invalid_argument(fmt::format(
        "no configuration of {} fits {} GPUs of {} GiB with headroom {} (expected more GPUs, "
        "a larger device or fewer pins)",
        r.model.name, r.gpus, gib(r.device.memory_bytes), r.memory_headroom));
  }
  print_entries(r, res, o.top);

  if (!o.json.empty()) {
    // The scaling plot's points: the best configuration from gpus/16 to gpus·4 in powers of 2.
    std::vector<ScalingPoint> scaling;
    for (int k = -4; k <= 2; ++k) {
      const double g = std::ldexp(double(r.gpus), k);
      if (g < 1 || g != std::floor(g) || g > (1 << 20)) continue;
      PlanRequest q = r;
      q.gpus = int(g);
      q.keep = 1;
      ScalingPoint p{q.gpus, std::nullopt};
      try {
        PlanResult pr = plan(q);
        if (!pr.ranked.empty()) p.best = pr.ranked.front();
      } catch (const std::invalid_argument&) {
        // pins that do not divide this count: no point
      }
      scaling.push_back(p);
    }
    std::ofstream f(o.json);
    f << plan_json(r, res, scaling, pinned).dump(1) << "\n";
    if (!f) throw std::invalid_argument("--json " + o.json + ": cannot be written");
  }
  return 0;
}

}  // namespace

Run add_plan_command(CLI::App& app) {
  auto o = std::make_shared<PlanOptions>();
  app.add_option("--model", o->model, "GPT-3 size: gpt3-125m … gpt3-175b (Brown et al. 2020)")
      ->capture_default_str();
  app.add_option("--layers", o->layers, "override: blocks");
  app.add_option("--d-model", o->d_model, "override: width");
  app.add_option("--heads", o->heads, "override: attention heads");
  app.add_option("--vocab", o->vocab, "override: vocabulary");
  app.add_option("--seq", o->seq, "override: sequence length");
  app.add_option("--experts", o->experts, "mixture of experts: experts per MoE block");
  app.add_option("--top-k", o->top_k, "mixture of experts: experts per token");
  app.add_option("--moe-every", o->moe_every, "mixture of experts: every k-th block");
  app.add_option("--capacity-factor", o->capacity_factor, "mixture of experts: capacity factor");
  app.add_option("--gpus", o->gpus, "GPUs in the job (not with --scenario)");
  app.add_option("--gpu", o->gpu, "a100-40gb, a100-80gb, h100-sxm or h200")->capture_default_str();
  app.add_option("--gpus-per-node", o->gpus_per_node, "GPUs per node (default: the device's, 8)");
  app.add_option("--calibration", o->calibration,
                 "calibration file(s) from `trainbench calibrate` (one per job size)");
  app.add_option("--tokens", o->tokens, "tokens to train on")->capture_default_str();
  app.add_option("--global-batch", o->global_batch,
                 "sequences per iteration (default: the preset's published batch)");
  app.add_option("--price-per-gpu-hour", o->price, "dollars per GPU-hour, for the cost");
  app.add_option("--mtbf-hours", o->mtbf_hours,
                 "mean time between failures of one GPU, hours (default: Llama 3's 419 "
                 "interruptions in 54 days on 16,384 GPUs)")
      ->capture_default_str();
  app.add_flag("--no-failures", o->no_failures, "rank by failure-free time to train");
  app.add_option("--restart-minutes", o->restart_minutes, "time to restart after a failure")
      ->capture_default_str();
  app.add_option("--storage-gbps", o->storage_gbps,
                 "checkpoint storage bandwidth per GPU, GB/s (default: Llama 3's 2 TB/s over its "
                 "16,384 GPUs)")
      ->capture_default_str();
  app.add_option("--memory-headroom", o->headroom, "fraction of device memory a plan may use")
      ->capture_default_str();
  app.add_option("--intra-node-gbps", o->intra_gbps,
                 "override: NVLink bandwidth per GPU and direction, GB/s");
  app.add_option("--inter-node-gbps", o->inter_gbps,
                 "override: network bandwidth between nodes per GPU and direction, GB/s");
  app.add_option("--dp", o->dp, "pin: data-parallel replicas");
  app.add_option("--tp", o->tp, "pin: tensor-parallel ranks");
  app.add_option("--pp", o->pp, "pin: pipeline stages");
  app.add_option("--virtual-stages", o->virtual_stages,
                 "pin: model chunks per stage (interleaved)");
  app.add_option("--micro-batch", o->micro_batch, "pin: sequences per micro-batch");
  app.add_option("--zero", o->zero, "pin: 0 or 1 (ZeRO-1)")->check(CLI::IsMember({0, 1}));
  app.add_option("--recompute", o->recompute, "pin: none, selective or full")
      ->check(CLI::IsMember({"none", "selective", "full"}));
  app.add_option("--sequence-parallel", o->sequence_parallel, "pin: on or off")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--precision", o->precision, "fp32, tf32, bf16, fp16 or fp8")
      ->check(CLI::IsMember({"fp32", "tf32", "bf16", "fp16", "fp8"}))
      ->capture_default_str();
  app.add_option("--schedule", o->schedule, "pipeline schedule: gpipe or 1f1b")
      ->check(CLI::IsMember({"gpipe", "1f1b"}))
      ->capture_default_str();
  app.add_option("--top", o->top, "configurations printed")->capture_default_str();
  app.add_option("--json", o->json, "write the whole plan as JSON (trainbench.plan/1)");
  auto* scenario = app.add_option("--scenario", o->scenario,
                                  "instead: predict each variant's step time of this scenario on "
                                  "the calibrated machine (needs --calibration)");
  app.add_option("--filter", o->filter,
                 "with --scenario: only variants whose id matches this regex")
      ->needs(scenario);
  return [o] { return run_plan(*o); };
}

}  // namespace tb::cli
