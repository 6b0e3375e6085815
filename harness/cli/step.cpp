#include <fmt/core.h>

#include <array>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>

#include "../data/markov_source.h"
#include "../data/token_file.h"
#include "../io/safetensors.h"
#include "../parallel/mpi_comm.h"
#include "../plan/memory_check.h"
#include "../profile/profiler.h"
#include "../profile/stats.h"
#include "../results/environment.h"
#include "../results/record_json.h"
#include "../runner/device.h"
#include "../train/trainer.h"
#include "../train/training_state.h"
#include "commands.h"
#include "model_options.h"
#include "tb/cpu_backend.h"
#include "tb/devices.h"

namespace tb::cli {

namespace {

struct StepOptions {
  ModelOptions model;
  int micro_batch = 4;
  int global_batch = 0;  // 0: micro_batch
  int steps = 20;
  int warmup = 3;
  std::uint64_t seed = 1;
  std::string optimizer = "adamw";
  std::string precision = "fp32";
  std::string loss_scaling = "auto";
  std::optional<double> lr;
  std::string lr_schedule = "constant";
  int lr_warmup_steps = 0;
  long lr_total_steps = 0;  // 0: the steps run before (a loaded state's) + warmup + steps
  double min_lr_ratio = 0.1;
  double weight_decay = 0.1;
  double grad_clip = 1.0;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double momentum = 0.9;
  std::string data = "synthetic";
  std::string data_format = "bytes";
  int markov_branching = 4;
  int eval_batches = 4;
  int threads = 0;
  std::string device = "auto";
  std::string cpu_gemm = "native";  // CpuGemmPath: native (oneDNN where it runs) or emulated
  std::string json_path, trace_path, save_weights, load_weights, save_state, load_state;
  bool warmup_given = false;  // --warmup on the command line (else 0 after --load-state)
};

// What multiplies this precision's GEMMs on the device.
std::string gemm_description(DeviceKind device, const std::string& precision) {
  if (device == DeviceKind::cuda) return "cuBLASLt";
  if (precision == "bf16") return cpu_gemm_description(DType::bf16);
  if (precision == "fp16") return cpu_gemm_description(DType::f16);
  return "fp32 SGEMM (OpenBLAS) on operands rounded to the format";
}

void require_positive(const char* flag, long long v) {
  if (v <= 0)
    throw std::invalid_argument(std::string(flag) + " = " + std::to_string(v) + " (expected > 0)");
}

std::unique_ptr<TokenSource> make_source(const StepOptions& o, const ModelConfig& c) {
  if (o.data == "synthetic")
    return std::make_unique<MarkovSource>(c.vocab, o.markov_branching, o.seed);
  return std::make_unique<TokenFileSource>(o.data, parse_token_format(o.data_format), c.vocab,
                                           o.seed, c.seq_len);
}

int run_step(const StepOptions& o, const std::string& command_line) {
  const ResolvedModel m = resolve(o.model);
  require_positive("--batch", o.micro_batch);
  require_positive("--steps", o.steps);
  (void)parse_token_format(o.data_format);  // a bad value is an error even with synthetic data
  const int global_batch = o.global_batch == 0 ? o.micro_batch : o.global_batch;
  if (global_batch < o.micro_batch || global_batch % o.micro_batch != 0) {
    throw std::invalid_argument("--global-batch = " + std::to_string(o.global_batch) +
                                " is not a multiple of --batch = " + std::to_string(o.micro_batch) +
                                " (expected a positive multiple, or 0 for --batch)");
  }
  if (o.beta1 < 0 || o.beta1 >= 1 || o.beta2 < 0 || o.beta2 >= 1 || o.momentum < 0 ||
      o.momentum >= 1) {
    throw std::invalid_argument("--beta1, --beta2 and --momentum must lie in [0, 1)");
  }
  if (o.warmup < 0)
    throw std::invalid_argument("--warmup = " + std::to_string(o.warmup) + " (expected >= 0)");
  if (o.threads < 0)
    throw std::invalid_argument("--threads = " + std::to_string(o.threads) + " (expected >= 0)");
  if (o.eval_batches < 0) {
    throw std::invalid_argument("--eval-batches = " + std::to_string(o.eval_batches) +
                                " (expected >= 0)");
  }
  if ((!o.save_state.empty() || !o.load_state.empty()) && MpiRuntime::launched_size() > 1) {
    throw std::invalid_argument(
        std::string(o.save_state.empty() ? "--load-state" : "--save-state") + " in a job of " +
        std::to_string(MpiRuntime::launched_size()) +
        " processes (expected one: training-state checkpoints are single-process)");
  }
  // A resumed run continues: its steps follow the saved ones, and it warms up only when told.
  const long steps_before = o.load_state.empty() ? 0 : training_state_steps_run(o.load_state);
  const int warmup = !o.load_state.empty() && !o.warmup_given ? 0 : o.warmup;
  const DeviceChoice dev = choose_device(o.device);  // cuda without a GPU: one-line error
  // Before the memory check, which predicts the GEMM path's scratch.
  set_cpu_gemm_path(o.cpu_gemm == "emulated" ? CpuGemmPath::emulated : CpuGemmPath::native);
  const std::string device_note = dev.note;
  {
    // Before anything is allocated: the memory model's peak against what the device has
    // (plan/memory_check.h) — one line and exit 3, not the kernel's OOM killer.
    RunConfig rc;
    rc.micro_batch = o.micro_batch;
    rc.global_batch = global_batch;
    rc.precision = o.precision;
    rc.optimizer = o.optimizer;
    rc.momentum = o.momentum;
    require_fits(check_memory(m.proxy, rc, dev.kind, /*stage=*/0, /*local_ranks=*/1));
  }
  auto backend = make_backend(dev, o.threads, 0);
  auto source = make_source(o, m.proxy);
  GptModel model(*backend, m.proxy, DType::f32);
  model.set_precision({parse_precision_mode(o.precision)});
  if (!o.load_weights.empty()) {
    load_safetensors(o.load_weights, model);
  } else if (o.load_state.empty()) {  // a state's weights are loaded with the trainer
    model.init_weights(o.seed);
  }
  OptimizerConfig opt;
  opt.name = o.optimizer;
  opt.lr = o.lr.value_or(m.proxy.lr);
  opt.beta1 = o.beta1;
  opt.beta2 = o.beta2;
  opt.weight_decay = o.weight_decay;
  opt.grad_clip = o.grad_clip;
  opt.momentum = o.momentum;
  TrainingConfig training;
  training.micro_batch = o.micro_batch;
  training.accumulation = global_batch / o.micro_batch;
  training.schedule.kind = o.lr_schedule;
  training.schedule.warmup_steps = o.lr_warmup_steps;
  // The cosine ends with the last step of this run, or at --lr-total-steps.
  training.schedule.total_steps =
      o.lr_total_steps > 0 ? o.lr_total_steps : steps_before + warmup + o.steps;
  training.schedule.min_lr_ratio = o.min_lr_ratio;
  training.loss_scaling.dynamic =
      o.loss_scaling == "dynamic" || (o.loss_scaling == "auto" && o.precision == "fp16");
  Profiler profiler(/*record_trace=*/!o.trace_path.empty());
  Trainer trainer(model, *source, opt, training, profiler);
  std::optional<StateFileStats> loaded, saved;
  if (!o.load_state.empty()) loaded = load_training_state(o.load_state, trainer);

  std::vector<double> step_s, losses, lrs;
  std::array<std::vector<double>, kPhaseCount> phase_s;
  const int total = warmup + o.steps;
  for (int i = 0; i < total; ++i) {
    if (profiler.tracing())
      profiler.mark((i < warmup ? "warmup step " : "step ") + std::to_string(i));
    const StepRecord r = trainer.step();
    losses.push_back(r.loss);
    lrs.push_back(r.lr);
    if (i >= warmup) {
      step_s.push_back(r.total_s());
      for (std::size_t p = 0; p < kPhaseCount; ++p) phase_s[p].push_back(r.phase_s[p]);
    }
  }
  // Before evaluation: the state is that of the last training step.
  if (!o.save_state.empty()) saved = save_training_state(o.save_state, trainer);
  std::optional<double> eval_loss;
  if (o.eval_batches > 0) eval_loss = trainer.evaluate(std::int64_t{o.eval_batches} * global_batch);
  if (!o.save_weights.empty()) save_safetensors(o.save_weights, model);

  const Summary st = summarize(step_s);
  // A step is one optimizer step over the global batch.
  const double tokens_per_step = double(global_batch) * m.proxy.seq_len;
  const double tokens_per_s = tokens_per_step / st.median;
  const double flops_per_s = tokens_per_s * model_flops_per_token(m.proxy);
  const MemoryTracker& mem = backend->memory();

  fmt::print(
      "model      {}  L={} d={} heads={} T={} V={}  params={:.3f}M  (full {}: {:.3f}B params)\n",
      m.proxy.name, m.proxy.n_layer, m.proxy.d_model, m.proxy.n_head, m.proxy.seq_len,
      m.proxy.vocab, parameter_count(m.proxy) / 1e6, m.full.name, parameter_count(m.full) / 1e9);
  fmt::print("data       {}\n", source->describe());
  fmt::print(
      "step time  median {:.2f} ms  p10 {:.2f}  p90 {:.2f}  cv {:.1f}%  ({} timed steps, {} "
      "threads)\n",
      st.median * 1e3, st.p10 * 1e3, st.p90 * 1e3, st.cv() * 100, st.n, cpu_thread_count());
  fmt::print("throughput {:.0f} tokens/s  {:.2f} GFLOP/s (model FLOPs, 6N+12LdT)\n", tokens_per_s,
             flops_per_s / 1e9);
  fmt::print("loss       first {:.4f}  last {:.4f}", losses.front(), losses.back());
  if (eval_loss) fmt::print("  eval {:.4f}", *eval_loss);
  if (auto h = source->entropy_floor_nats()) fmt::print("  floor {:.4f}", *h);
  fmt::print("\nmemory     peak");
  for (std::size_t c = 0; c < kMemoryCategoryCount; ++c) {
    const auto cat = static_cast<MemoryCategory>(c);
    fmt::print(" {}={:.1f}MiB", memory_category_name(cat), mem.peak_bytes(cat) / 1048576.0);
  }
  fmt::print("\n");
  if (!device_note.empty()) fmt::print("device     {}\n", device_note);
  const std::string gemm = gemm_description(dev.kind, o.precision);
  fmt::print("gemm       {}\n", gemm);
  if (loaded) {
    fmt::print("state      loaded {} at step {}: {:.2f} MiB in {:.3f} s\n", o.load_state,
               loaded->steps_run, loaded->bytes / 1048576.0, loaded->seconds);
  }
  if (saved) {
    fmt::print("state      saved {} at step {}: {:.2f} MiB in {:.3f} s ({:.1f} MB/s)\n",
               o.save_state, saved->steps_run, saved->bytes / 1048576.0, saved->seconds,
               saved->bytes_per_s() / 1e6);
  }

  if (!o.json_path.empty()) {
    nlohmann::json j;
    j["schema_version"] = 1;
    j["kind"] = "step";
    j["device"] = {{"kind", dev.kind == DeviceKind::cuda ? "cuda" : "cpu"},
                   {"name", dev.name},
                   {"note", device_note}};
    j["model"] = {{"full", model_json(m.full)}, {"proxy", model_json(m.proxy)}};
    j["training"] = {{"micro_batch", o.micro_batch},
                     {"global_batch", global_batch},
                     {"accumulation", training.accumulation},
                     {"warmup_steps", warmup},
                     {"timed_steps", o.steps},
                     {"steps_before", steps_before},
                     {"seed", o.seed},
                     {"optimizer", opt.name},
                     {"lr", opt.lr},
                     {"lr_schedule", o.lr_schedule},
                     {"lr_warmup_steps", o.lr_warmup_steps},
                     {"lr_total_steps", training.schedule.total_steps},
                     {"min_lr_ratio", o.min_lr_ratio},
                     {"lr_per_step", lrs},
                     {"beta1", opt.beta1},
                     {"beta2", opt.beta2},
                     {"momentum", opt.momentum},
                     {"weight_decay", opt.weight_decay},
                     {"grad_clip", opt.grad_clip},
                     {"precision", o.precision},
                     {"gemm", gemm},
                     {"loss_scaling", training.loss_scaling.dynamic ? "dynamic" : "none"},
                     {"skipped_steps", trainer.loss_scaler().skipped_steps()},
                     {"loss_scale", trainer.loss_scaler().scale()},
                     {"data", source->describe()}};
    nlohmann::json phases;
    for (std::size_t p = 0; p < kPhaseCount; ++p)
      phases[std::string(phase_name(static_cast<Phase>(p)))] = summary_json(summarize(phase_s[p]));
    j["timing"] = {{"step_s", summary_json(st)}, {"phases_s", phases}};
    j["throughput"] = {{"tokens_per_step", tokens_per_step},
                       {"tokens_per_s", tokens_per_s},
                       {"model_flops_per_s", flops_per_s}};
    nlohmann::json loss = {{"train_per_step", losses}};
    if (eval_loss) loss["eval"] = *eval_loss;
    if (auto h = source->entropy_floor_nats()) loss["entropy_floor"] = *h;
    j["loss"] = loss;
    nlohmann::json peaks;
    for (std::size_t c = 0; c < kMemoryCategoryCount; ++c) {
      const auto cat = static_cast<MemoryCategory>(c);
      peaks[std::string(memory_category_name(cat))] = mem.peak_bytes(cat);
    }
    j["memory"] = {{"peak_bytes", peaks}, {"peak_total_bytes", mem.peak_total_bytes()}};
    if (loaded || saved) {
      const auto state_json = [](const std::string& path, const StateFileStats& s) {
        return nlohmann::json{{"path", path},         {"bytes", s.bytes},
                              {"seconds", s.seconds}, {"bytes_per_s", s.bytes_per_s()},
                              {"step", s.step},       {"steps_run", s.steps_run}};
      };
      nlohmann::json state = nlohmann::json::object();
      if (loaded) state["load"] = state_json(o.load_state, *loaded);
      if (saved) state["save"] = state_json(o.save_state, *saved);
      j["state"] = state;
    }
    j["environment"] = capture_environment(command_line, cpu_thread_count());
    std::ofstream out(o.json_path);
    if (!out) throw std::runtime_error("cannot write JSON file '" + o.json_path + "'");
    out << j.dump(2) << "\n";
  }
  if (!o.trace_path.empty()) {
    const nlohmann::json meta = {{"command_line", command_line},
                                 {"model", m.proxy.name},
                                 {"micro_batch", o.micro_batch},
                                 {"global_batch", global_batch},
                                 {"warmup_steps", warmup},
                                 {"timed_steps", o.steps},
                                 {"seed", o.seed},
                                 {"device", dev.name}};
    write_chrome_trace(o.trace_path, profiler.trace_events(), "trainbench step", meta);
  }
  return 0;
}

}  // namespace

Run add_step_command(CLI::App& app, const std::string& command_line) {
  auto o = std::make_shared<StepOptions>();
  add_model_options(app, o->model);
  app.add_option("--batch", o->micro_batch, "micro-batch (sequences per step)")
      ->capture_default_str();
  app.add_option("--global-batch", o->global_batch,
                 "sequences per optimizer step, a multiple of --batch: gradient accumulation "
                 "(0: --batch)")
      ->capture_default_str();
  app.add_option("--steps", o->steps, "timed training steps")->capture_default_str();
  app.add_option_function<int>(
         "--warmup",
         [o](int v) {
           o->warmup = v;
           o->warmup_given = true;
         },
         "untimed training steps first (they train too); with --load-state the default is 0")
      ->default_str(std::to_string(o->warmup));
  app.add_option("--seed", o->seed, "seed for weights and data")->capture_default_str();
  app.add_option_function<double>(
      "--lr", [o](double v) { o->lr = v; }, "learning rate (default: the preset's)");
  app.add_option("--optimizer", o->optimizer, "adamw, lamb or sgd")
      ->check(CLI::IsMember({"adamw", "lamb", "sgd"}))
      ->capture_default_str();
  app.add_option("--precision", o->precision,
                 "fp32, tf32, bf16, fp16 or fp8 (fp32 master weights always)")
      ->check(CLI::IsMember({"fp32", "tf32", "bf16", "fp16", "fp8"}))
      ->capture_default_str();
  app.add_option("--loss-scaling", o->loss_scaling, "auto (dynamic for fp16), dynamic or none")
      ->check(CLI::IsMember({"auto", "dynamic", "none"}))
      ->capture_default_str();
  app.add_option("--lr-schedule", o->lr_schedule,
                 "constant, or cosine decay to --min-lr-ratio at the last step")
      ->check(CLI::IsMember({"constant", "cosine"}))
      ->capture_default_str();
  app.add_option("--lr-warmup-steps", o->lr_warmup_steps, "linear lr warm-up, optimizer steps")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--lr-total-steps", o->lr_total_steps,
                 "cosine: the step the decay ends at (0: the last step of this run, counting "
                 "a loaded state's steps; give every part of a split run the same value)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--min-lr-ratio", o->min_lr_ratio, "cosine: final lr as a fraction of the peak")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--weight-decay", o->weight_decay,
                 "weight decay: decoupled for adamw and lamb, L2 (coupled) for sgd")
      ->capture_default_str();
  app.add_option("--beta1", o->beta1, "adamw, lamb: first-moment decay")->capture_default_str();
  app.add_option("--beta2", o->beta2, "adamw, lamb: second-moment decay")->capture_default_str();
  app.add_option("--momentum", o->momentum, "sgd: heavy-ball momentum")->capture_default_str();
  app.add_option("--grad-clip", o->grad_clip, "global gradient-norm clip (<= 0: off)")
      ->capture_default_str();
  app.add_option("--data", o->data, "'synthetic' (Markov chain of known entropy) or a token file")
      ->capture_default_str();
  app.add_option("--data-format", o->data_format, "token file format: bytes or u16")
      ->capture_default_str();
  app.add_option("--markov-branching", o->markov_branching, "synthetic data: successors per token")
      ->capture_default_str();
  app.add_option("--eval-batches", o->eval_batches,
                 "held-out batches to evaluate after training (0: none)")
      ->capture_default_str();
  app.add_option("--threads", o->threads, "CPU threads (0: OpenMP default)")->capture_default_str();
  app.add_option("--device", o->device, "auto, cpu or cuda")->capture_default_str();
  app.add_option("--cpu-gemm", o->cpu_gemm,
                 "CPU GEMMs on 16-bit operands: native (oneDNN, where the CPU has the "
                 "instructions) or emulated (fp32 stand-ins, OpenBLAS SGEMM)")
      ->check(CLI::IsMember({"native", "emulated"}))
      ->capture_default_str();
  app.add_option("--json", o->json_path, "write the results as JSON to this file");
  app.add_option("--trace", o->trace_path,
                 "write a Chrome trace of every step's phases to this file (Perfetto, "
                 "chrome://tracing)");
  app.add_option("--save-weights", o->save_weights, "save the trained weights (safetensors)");
  auto* load_weights =
      app.add_option("--load-weights", o->load_weights, "start from these weights (safetensors)");
  app.add_option("--save-state", o->save_state,
                 "after training, save the training state — weights, optimizer state and step, "
                 "data position, loss scale, fp8 scaling — to continue it with --load-state "
                 "(safetensors; docs/weights.md)");
  app.add_option("--load-state", o->load_state,
                 "continue training from a --save-state file: the steps follow the saved ones "
                 "(the warmup steps of the run that saved it trained too; --warmup defaults to "
                 "0), bit-identical to an uninterrupted run with the same settings")
      ->excludes(load_weights);
  return [o, command_line]() { return run_step(*o, command_line); };
}

}  // namespace tb::cli
