// Runs a scenario: each variant is built, warmed up, timed until its median is steady (or
// its budget runs out), then trained from scratch over several seeds for its held-out loss,
// and becomes one line of DIR/results.jsonl (docs/results-schema.md). A variant that fails
// — out of memory, diverged, unsupported, any error — is recorded with its status and the
// sweep goes on; finished lines are never rewritten.
#pragma once
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "../scenario/scenario.h"

namespace tb {

struct RunOptions {
  std::string out_dir;
  std::optional<std::string> device;  // overrides every variant's device
  std::string filter;                 // ECMAScript regex on variant ids; empty: all
  bool resume = false;
  bool trace = false;  // DIR/traces/<index>-<id>.json per variant
  std::string command_line;
  // Every variant runs in its own process: `trainbench worker` from this executable (empty:
  // /proc/self/exe); one with dp·tp·pp > 1 ranks as an MPI job through `launcher`, a launch
  // template whose {ranks} is replaced (empty: default_launch_template() in launcher.h).
  // In a worker, `launcher` is the launch command its job runs under (empty: started directly).
  std::string worker_executable;
  std::string launcher;
  double hang_timeout_s = 45;    // no rank's heartbeat for this long: killed, `error`; 0: never
  double variant_timeout_s = 0;  // hard cap per variant; 0: none
};

struct RunSummary {
  int variants = 0;                      // in the scenario
  int selected = 0;                      // after --filter
  int ran = 0;                           // run in this invocation
  int resumed = 0;                       // already recorded, skipped
  std::map<std::string, int> by_status;  // over this invocation's runs
};

// Called when a variant starts (line == nullptr) and when it is recorded.
using ProgressFn = std::function<void(int position, int count, const Variant&,
                                      const nlohmann::json* line, double eta_s)>;

RunSummary run_scenario(const Scenario& s, const RunOptions& o, const ProgressFn& progress = {});

// One variant's result line (without vs_baseline); exposed for tests.
nlohmann::json run_variant(const Scenario& s, const Variant& v, const RunOptions& o,
                           const nlohmann::json& environment);

// Adds vs_baseline to `line` when both it and the baseline are ok.
void add_baseline_comparison(nlohmann::json& line, const nlohmann::json& baseline);

}  // namespace tb
