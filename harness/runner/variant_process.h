// One variant of a sweep in a process of its own: `trainbench worker` started directly (one
// rank) or as an MPI job through the launch template (dp·tp·pp ranks), watched for crashes
// and hangs. The result is rank 0's line, or an `error` line with a `failure` object built
// here when the job ended without one — so no crash or hang of a variant loses the sweep.
//
// Files under OUT/.work/: environment.json (captured once per sweep) and per variant
// <index>/scenario.json (the effective scenario), worker.log (the worker's stdout and stderr),
// rank-<r>.json (heartbeats), result.json (rank 0's line). A variant's directory is removed
// once its `ok` line is recorded and kept otherwise, for inspection.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "runner.h"

namespace tb {

// The scenario as the sweep writes it for its workers — {"path", "document"}, the document
// after --set overrides with the sweep axes in file order — and read back by a worker (file
// only labels errors).
std::string worker_scenario_text(const Scenario& s);
Scenario parse_worker_scenario(const std::string& text, const std::string& file);

// The variant's rank count, dp·tp·pp of its configuration (1 without those keys).
int variant_ranks(const Variant& v);

class ProcessRunner {
 public:
  // Creates OUT/.work and writes the environment there; checks that the scenario, written
  // out for the workers, expands to the same variants.
  ProcessRunner(const Scenario& s, const RunOptions& o, const nlohmann::json& environment);
  // Removes environment.json, and OUT/.work when nothing else is left in it.
  ~ProcessRunner();
  ProcessRunner(const ProcessRunner&) = delete;
  ProcessRunner& operator=(const ProcessRunner&) = delete;

  // Runs `v` in a worker and returns its result line (without vs_baseline).
  nlohmann::json run(const Variant& v) const;

 private:
  nlohmann::json error_line(const Variant& v, const std::string& started_utc, double duration_s,
                            const std::string& reason, const nlohmann::json& failure) const;

  const Scenario& s_;
  const RunOptions& o_;
  const nlohmann::json& environment_;
  std::string work_root_;         // absolute OUT/.work
  std::string environment_path_;  // OUT/.work/environment.json
  std::string scenario_text_;     // {"path", "document"} for the workers
  std::string executable_;        // the trainbench binary
};

}  // namespace tb
