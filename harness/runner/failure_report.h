// Why a variant's worker ended without a result: the failing rank, its signal or exit code or
// the watchdog, its last heartbeat and the end of the worker's log — the `failure` object of
// an `error` line (docs/results-schema.md) and its one-line `reason`.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "launcher.h"

namespace tb {

struct FailureReport {
  std::string reason;      // one line
  nlohmann::json failure;  // {"rank", "ranks", "signal", "signal_name", "exit_code", …}
};

// end: how the worker (or its launcher) ended; ranks: the variant's rank count; launcher: the
// launch command a multi-rank job ran under ("" when the worker ran directly); log: the end of
// the worker's log (OpenMPI's and srun's messages name the failing rank).
FailureReport describe_failure(const ProcessEnd& end, int ranks, const std::string& launcher,
                               const std::string& log);

// The last `max_bytes` of a file ("" when it cannot be read), and its last `n` lines.
std::string read_file_end(const std::string& path, std::size_t max_bytes);
std::vector<std::string> last_lines(const std::string& text, std::size_t n);

// "SIGSEGV" for 11; "SIGRTMIN+3"; "signal 99" for what is not a signal.
std::string signal_name(int sig);

}  // namespace tb
