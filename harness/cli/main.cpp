// trainbench: benchmarks and profiles the training of foundation models.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "commands.h"
#include "tb/memory.h"

int main(int argc, char** argv) {
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);

  CLI::App app{"trainbench: benchmarks and profiles the training of foundation models"};
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, tb::cli::Run>> commands;
  auto add = [&](const char* name, const char* help, auto&& make) {
    CLI::App* sub = app.add_subcommand(name, help);
    commands.emplace_back(sub, make(*sub));
  };
  add("step", "train one configuration and report step time, throughput, loss and memory",
      [&](CLI::App& s) { return tb::cli::add_step_command(s, command_line); });
  add("eval", "mean next-token loss of saved weights over a token file",
      [&](CLI::App& s) { return tb::cli::add_eval_command(s); });
  add("info", "this machine's devices and the build",
      [&](CLI::App& s) { return tb::cli::add_info_command(s, command_line); });
  add("run", "run a scenario's variants and append one result line each to DIR/results.jsonl",
      [&](CLI::App& s) { return tb::cli::add_run_command(s, command_line); });
  add("validate", "check a scenario file and list its expanded variants",
      [&](CLI::App& s) { return tb::cli::add_validate_command(s); });
  add("list", "presets, scenarios, configuration keys and their values",
      [&](CLI::App& s) { return tb::cli::add_list_command(s); });
  add("compare", "compare two results files: step time and loss changes with significance",
      [&](CLI::App& s) { return tb::cli::add_compare_command(s); });
  add("report", "plots and tables of a run: DIR/results.jsonl to DIR/report/ (index.html)",
      [&](CLI::App& s) { return tb::cli::add_report_command(s); });
  add("worker", "internal: one variant of `run` in a process of its own",
      [&](CLI::App& s) { return tb::cli::add_worker_command(s); });
  add("comm", "collective benchmark (nccl-tests style) over MPI or NCCL: run it under mpirun/srun",
      [&](CLI::App& s) { return tb::cli::add_comm_command(s, command_line); });
  add("plan", "capacity plan: the best split, memory, time, cost and goodput for a model on N GPUs",
      [&](CLI::App& s) { return tb::cli::add_plan_command(s); });
  add("calibrate", "measure this machine for the planner: the model's operations at their shapes",
      [&](CLI::App& s) { return tb::cli::add_calibrate_command(s); });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "trainbench: error: {}\n", e.what());
    return 2;
  }
  try {
    for (auto& [sub, run] : commands) {
      if (sub->parsed()) return run();
    }
  } catch (const tb::OutOfMemory& e) {
    fmt::print(stderr, "trainbench: error: {}\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    fmt::print(stderr, "trainbench: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
