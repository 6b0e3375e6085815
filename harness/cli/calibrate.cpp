// `trainbench calibrate`: measures what the planner's time model needs on this machine
// (docs/planner.md, "Calibration") and writes it as a calibration file: every operation of
// the target model — each variant of --scenario, or the model given by step's flags — timed
// at its real shape and precision on the chosen device, and the write bandwidth of a state
// checkpoint (a file written and fsync'd next to --out).
#include <fcntl.h>
#include <unistd.h>

#include <fmt/core.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "../plan/available_memory.h"
#include "../plan/calibration.h"
#include "../plan/op_timer.h"
#include "../plan/time_model.h"
#include "../results/environment.h"
#include "../runner/device.h"
#include "../scenario/scenario.h"
#include "../train/pipeline_schedule.h"
#include "commands.h"
#include "model_options.h"

namespace tb::cli {

namespace {

struct CalibrateOptions {
  std::string scenario;
  ModelOptions model;
  int batch = 4;
  std::string precision = "fp32";
  std::string device = "auto";
  int threads = 0;
  double min_seconds = 0.05;
  std::string out;
};

// The distinct operations (op, shape, precision) of every stage of one configuration.
void collect(const ModelConfig& m, const RunConfig& r,
             std::vector<std::pair<OpCost, std::string>>& ops,
             std::set<std::tuple<std::string, std::array<std::int64_t, 4>, std::string>>& seen) {
  const PlanCandidate c = candidate_of(r);
  for (int s = 0; s < c.pp; ++s) {
    const auto [b, e] = stage_layers(m.n_layer, c.pp, s);
    // Parameter counts only size the per-iteration operations; the time model asks for the
    // same counts (plan/time_model.cpp), so measure them with its numbers.
    const StageWork w = stage_work(m, c, e - b, s == 0, s == c.pp - 1, 0, 0);
    for (const auto* list : {&w.per_micro_batch, &w.per_iteration}) {
      for (const OpCost& o : *list) {
        if (o.dims[0] == 0) continue;  // sized by parameters: measured below
        if (seen.insert({o.op, o.dims, r.precision}).second) ops.emplace_back(o, r.precision);
      }
    }
  }
}

// Bytes per second of writing `bytes` to a new file in `dir` and fsync'ing it.
double measure_write_bandwidth(const std::filesystem::path& dir, std::size_t bytes) {
  const std::filesystem::path p = dir / ".trainbench-calibrate-write.tmp";
  std::vector<char> block(std::size_t{8} << 20, 1);
  const auto t0 = std::chrono::steady_clock::now();
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    throw std::invalid_argument("--out directory " + dir.string() + ": cannot write a file there");
  std::size_t done = 0;
  bool ok = true;
  while (done < bytes && ok) {
    const std::size_t n = std::min(block.size(), bytes - done);
    ok = ::write(fd, block.data(), n) == static_cast<ssize_t>(n);
    done += n;
  }
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::filesystem::remove(p);
  if (!ok) throw std::runtime_error("calibration write test to " + p.string() + " failed");
  return double(bytes) / s;
}

int run_calibrate(const CalibrateOptions& o) {
  std::vector<std::pair<ModelConfig, RunConfig>> configs;
  if (!o.scenario.empty()) {
    const Scenario s = load_scenario(o.scenario);
    for (const Variant& v : s.variants) {
      configs.emplace_back(variant_model(v.config, preset(v.config.preset)), v.config);
    }
  } else {
    const ResolvedModel m = resolve(o.model);
    RunConfig r;
    r.micro_batch = o.batch;
    r.precision = o.precision;
    configs.emplace_back(m.proxy, r);
  }
  std::vector<std::pair<OpCost, std::string>> ops;
  std::set<std::tuple<std::string, std::array<std::int64_t, 4>, std::string>> seen;
  for (const auto& [m, r] : configs) collect(m, r, ops, seen);

  const DeviceChoice device = choose_device(o.device);
  auto be = make_backend(device, o.threads, 0);
  Calibration cal;
  const nlohmann::json env = capture_environment("", o.threads);
  cal.device_kind = device.kind == DeviceKind::cuda ? "cuda" : "cpu";
  cal.threads = o.threads;
  cal.device = device.kind == DeviceKind::cuda
                   ? device.name
                   : "cpu: " + env["cpu"].value("model", std::string("unknown")) + " (" +
                         (o.threads > 0 ? std::to_string(o.threads) : std::string("default")) +
                         " threads)";
  cal.created = utc_now_iso8601();
  if (const auto avail = available_memory(device.kind)) cal.memory_bytes = double(avail->bytes);
  fmt::print("calibrating {} operations on {}\n", ops.size(), cal.device);
  for (const auto& [op, precision] : ops) {
    const OpTiming t = time_operation(*be, op, precision, o.min_seconds);
    cal.ops.push_back({op.op, precision, op.dims, op.kind, op.flops, op.bytes, t.median_s});
    const double rate = (op.kind == OpKind::memory ? op.bytes : op.flops) / t.median_s;
    fmt::print("  {:<20} {:<6} [{}, {}, {}, {}]  {:.4g} s  {:.4g} {}\n", op.op, precision,
               op.dims[0], op.dims[1], op.dims[2], op.dims[3], t.median_s, rate / 1e9,
               op.kind == OpKind::memory ? "GB/s" : "GFLOP/s");
  }
  // Parameter-sized operations (optimizer, gradient zeroing and norm, the 16-bit weight copy)
  // at each configuration's parameter count on each stage, as the time model counts them.
  for (const auto& [m, r] : configs) {
    const PlanCandidate c = candidate_of(r);
    for (const std::string name : {"fill_zero", "sum_squares", "adamw_update", "convert"}) {
      if (name == "convert" && activation_bytes(r.precision) >= 4) continue;
      for (double stage_params : stage_parameter_counts(m, c)) {
        const double params =
            name == "adamw_update" && c.zero ? std::floor(stage_params / c.dp) : stage_params;
        OpCost op;
        op.op = name;
        op.kind = OpKind::memory;
        op.dims = {std::int64_t(params), 0, 0, 0};
        op.bytes = (name == "adamw_update" ? 28.0 : name == "convert" ? 6.0 : 4.0) * params;
        // Keyed by the run's precision, as the time model looks them up (they run in fp32).
        const std::string& precision = r.precision;
        if (!seen.insert({op.op, op.dims, precision}).second) continue;
        const OpTiming t = time_operation(*be, op, r.precision, o.min_seconds);
        cal.ops.push_back({op.op, precision, op.dims, op.kind, op.flops, op.bytes, t.median_s});
        fmt::print("  {:<20} {:<6} [{}]  {:.4g} s\n", op.op, precision, op.dims[0], t.median_s);
      }
    }
  }
  const std::filesystem::path dir =
      std::filesystem::absolute(std::filesystem::path(o.out)).parent_path();
  cal.checkpoint_write_bytes_per_s = measure_write_bandwidth(dir, std::size_t{256} << 20);
  fmt::print("state checkpoint write: {:.3g} GB/s (256 MiB, fsync'd, in {})\n",
             cal.checkpoint_write_bytes_per_s / 1e9, dir.string());
  save_calibration(cal, o.out);
  fmt::print("wrote {}\n", o.out);
  return 0;
}

}  // namespace

Run add_calibrate_command(CLI::App& app) {
  auto o = std::make_shared<CalibrateOptions>();
  app.add_option("--scenario", o->scenario, "calibrate for every variant of this scenario");
  add_model_options(app, o->model);
  app.add_option("--batch", o->batch, "micro-batch (without --scenario)")->capture_default_str();
  app.add_option("--precision", o->precision, "precision (without --scenario)")
      ->check(CLI::IsMember({"fp32", "tf32", "bf16", "fp16", "fp8"}))
      ->capture_default_str();
  app.add_option("--device", o->device, "auto, cpu or cuda")->capture_default_str();
  app.add_option("--threads", o->threads, "CPU threads (0: OpenMP default)")->capture_default_str();
  app.add_option("--min-seconds", o->min_seconds, "time each operation at least this long")
      ->capture_default_str();
  app.add_option("--out", o->out, "calibration file to write")->required();
  return [o] { return run_calibrate(*o); };
}

}  // namespace tb::cli
