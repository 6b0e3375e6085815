#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

#include "../runner/runner.h"
#include "../scenario/scenario.h"
#include "commands.h"

namespace tb::cli {

namespace {

struct RunCommandOptions {
  std::string file, out, device, filter, launcher;
  std::vector<std::string> sets;
  bool resume = false, trace = false;
  double hang_timeout_s = 45, variant_timeout_s = 0;
};

std::string eta_text(double s) {
  if (s < 0) return "ETA --";
  const int t = static_cast<int>(s + 0.5);
  return fmt::format("ETA {}:{:02d}", t / 60, t % 60);
}

// On a terminal: one progress line rewritten in place. Otherwise: plain log lines.
ProgressFn make_progress(bool tty) {
  return [tty](int i, int n, const Variant& v, const nlohmann::json* line, double eta) {
    if (!line) {
      if (tty) {
        fmt::print(stderr, "\r\033[K[{}/{}] {} running  {}", i, n, v.id, eta_text(eta));
      } else {
        fmt::print(stderr, "[{}/{}] {} running\n", i, n, v.id);
      }
      std::fflush(stderr);
      return;
    }
    const std::string status = (*line)["status"].get<std::string>();
    std::string detail;
    if (status == "ok") {
      detail = fmt::format("step {:.1f} ms, {:.0f} tokens/s",
                           (*line)["timing"]["step_s"]["median"].get<double>() * 1e3,
                           (*line)["throughput"]["tokens_per_s"].get<double>());
      if (line->contains("accuracy")) {
        detail +=
            fmt::format(", eval loss {:.4f}", (*line)["accuracy"]["eval_loss_mean"].get<double>());
      }
    } else {
      detail = line->value("reason", "");
    }
    fmt::print(stderr, "{}[{}/{}] {} {}: {}  {}\n", tty ? "\r\033[K" : "", i, n, v.id, status,
               detail, eta_text(eta));
  };
}

int run(const RunCommandOptions& o, const std::string& command_line) {
  const Scenario s = load_scenario(o.file, o.sets);
  RunOptions ro;
  ro.out_dir = o.out.empty() ? "out/" + s.name : o.out;
  if (!o.device.empty()) {
    if (o.device != "auto" && o.device != "cpu" && o.device != "cuda") {
      throw std::invalid_argument("--device '" + o.device + "' (expected auto, cpu or cuda)");
    }
    ro.device = o.device;
  }
  ro.filter = o.filter;
  ro.resume = o.resume;
  ro.trace = o.trace;
  ro.command_line = command_line;
  if (o.launcher.find_first_not_of(" \t") == std::string::npos && !o.launcher.empty()) {
    throw std::invalid_argument("--launcher '" + o.launcher +
                                "' holds no command (expected e.g. 'srun -n {ranks}')");
  }
  ro.launcher = o.launcher;
  if (!(o.hang_timeout_s >= 0)) {
    throw std::invalid_argument("--hang-timeout " + fmt::format("{}", o.hang_timeout_s) +
                                " (expected seconds >= 0; 0: no watchdog)");
  }
  if (!(o.variant_timeout_s >= 0)) {
    throw std::invalid_argument("--variant-timeout " + fmt::format("{}", o.variant_timeout_s) +
                                " (expected seconds >= 0; 0: none)");
  }
  ro.hang_timeout_s = o.hang_timeout_s;
  ro.variant_timeout_s = o.variant_timeout_s;
  const RunSummary sum = run_scenario(s, ro, make_progress(isatty(STDERR_FILENO) != 0));
  std::string statuses;
  for (const auto& [status, n] : sum.by_status) statuses += fmt::format(" {}={}", status, n);
  fmt::print(
      "run  {}: {} variants, {} selected, {} ran,{} {} resumed; results in {}/results.jsonl\n",
      s.name, sum.variants, sum.selected, sum.ran, statuses.empty() ? "" : statuses + ",",
      sum.resumed, ro.out_dir);
  return 0;
}

}  // namespace

Run add_run_command(CLI::App& app, const std::string& command_line) {
  auto o = std::make_shared<RunCommandOptions>();
  app.add_option("file", o->file, "scenario file (JSON; docs/scenarios.md)")->required();
  app.add_option("--out", o->out, "output directory (default: out/<scenario name>)");
  app.add_option("--device", o->device, "auto, cpu or cuda: overrides every variant's device");
  app.add_option("--filter", o->filter, "run only variants whose id matches this regex");
  app.add_option("--set", o->sets, "override a scenario key: KEY=VALUE (repeatable)");
  app.add_flag("--resume", o->resume, "skip variants already in DIR/results.jsonl");
  app.add_flag("--trace", o->trace, "write a Chrome trace per variant to DIR/traces/");
  app.add_option("--launcher", o->launcher,
                 "launch command for variants of several ranks, {ranks} replaced (default: "
                 "mpirun -np {ranks} --oversubscribe --bind-to none)");
  app.add_option("--hang-timeout", o->hang_timeout_s,
                 "seconds without a heartbeat from any rank before a variant is killed as hung "
                 "(default 45; 0: never)");
  app.add_option("--variant-timeout", o->variant_timeout_s,
                 "seconds before any variant is killed (default 0: no limit)");
  return [o, command_line]() { return run(*o, command_line); };
}

}  // namespace tb::cli
