// trainbench's subcommands. Each registers its flags on a CLI11 subcommand and returns the
// function that runs it (after parsing); errors are thrown and reported by main.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace tb::cli {

using Run = std::function<int()>;
Run add_step_command(CLI::App& app, const std::string& command_line);
Run add_eval_command(CLI::App& app);
Run add_info_command(CLI::App& app, const std::string& command_line);
Run add_validate_command(CLI::App& app);
Run add_run_command(CLI::App& app, const std::string& command_line);
Run add_list_command(CLI::App& app);
Run add_compare_command(CLI::App& app);
Run add_report_command(CLI::App& app);
Run add_worker_command(CLI::App& app);  // hidden: one variant of `run`
Run add_comm_command(CLI::App& app, const std::string& command_line);
Run add_plan_command(CLI::App& app);
Run add_calibrate_command(CLI::App& app);

}  // namespace tb::cli
