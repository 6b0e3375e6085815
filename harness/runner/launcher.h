// Starts one variant's worker as its own process — directly, or as an MPI job through a launch
// template — and watches it until it ends: an exit, a signal, or the watchdog (no heartbeat
// from any rank for hang_timeout_s, or past variant_timeout_s). docs/parallel.md, "Launching".
#pragma once
#include <string>
#include <vector>

#include "heartbeat.h"

namespace tb {

// "mpirun -np {ranks} --oversubscribe --bind-to none", plus --allow-run-as-root as root.
std::string default_launch_template();
// The template split on whitespace with {ranks} replaced. Throws std::invalid_argument when
// it holds no command.
std::vector<std::string> expand_launch_template(const std::string& launch_template, int ranks);

struct WatchOptions {
  double hang_timeout_s = 45;    // no rank's heartbeat changed for this long: kill; 0: never
  double variant_timeout_s = 0;  // a hard cap on the whole run; 0: none
  double kill_grace_s = 5;       // SIGTERM, then SIGKILL after this long
  double poll_s = 0.1;
};

// One rank's last heartbeat and when (seconds after the start) its file last changed.
struct RankProgress {
  HeartbeatRecord last;
  double changed_s = 0;
};

struct ProcessEnd {
  bool started = false;
  std::string start_error;  // why it could not start
  bool exited = false;
  int exit_code = 0;     // when exited
  int signal = 0;        // when killed by a signal (0: not)
  std::string watchdog;  // "hang", "timeout" or "" (not killed by the watchdog)
  double watchdog_limit_s = 0;
  double elapsed_s = 0;
  std::vector<RankProgress> ranks;  // by rank, those that wrote a heartbeat
};

// Runs argv (argv[0] searched on PATH) in a new session, stdin from /dev/null, stdout and
// stderr to log_path, killed with SIGKILL if this process dies first; watches the heartbeat
// files in heartbeat_dir. Whatever of the session is left when it ends is killed.
ProcessEnd run_watched(const std::vector<std::string>& argv, const std::string& log_path,
                       const std::string& heartbeat_dir, const WatchOptions& options);

}  // namespace tb
