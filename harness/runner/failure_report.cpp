#include "failure_report.h"

#include <algorithm>
#include <csignal>
#include <cstring>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>

namespace tb {

namespace {

using nlohmann::json;

std::string number_text(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

// What a launcher's own messages say failed first.
struct Blame {
  std::optional<int> rank, signal, exit_code;
};

std::optional<int> signal_from_description(const std::string& text) {
  for (int s = 1; s < 65; ++s) {
    const char* d = ::strsignal(s);
    if (d && *d && text.rfind(d, 0) == 0) return s;
  }
  return std::nullopt;
}

int to_int(const std::ssub_match& m) { return std::stoi(m.str()); }

// OpenMPI 4.1's mpirun (text as printed by mpirun 4.1.4):
//   mpirun noticed that process rank 1 with PID 0 on node vm exited on signal 11 (Segmentation
//   fault).
//   mpirun detected that one or more processes exited with non-zero status, thus causing
//   the job to be terminated. The first process to do so was:
//     Process name: [[17205,1],1]
//     Exit code:    5
//   MPI_ABORT was invoked on rank 1 in communicator MPI_COMM_WORLD
//   with errorcode 3.
// Slurm's srun:
//   srun: error: node12: task 1: Segmentation fault (core dumped)
//   srun: error: node12: task 1: Exited with exit code 3
std::optional<Blame> blame_from_log(const std::string& log) {
  static const std::regex signal_re(
      R"(process rank (\d+) with PID \d+ on node \S+ exited on signal (\d+))");
  static const std::regex status_re(
      R"(exited with non-zero status[\s\S]*?Process name: \[\[\d+,\d+\],(\d+)\]\s*Exit code:\s*(\d+))");
  static const std::regex abort_re(
      R"(MPI_ABORT was invoked on rank (\d+)[\s\S]*?errorcode (-?\d+))");
  static const std::regex srun_re(R"(srun: error: \S+: tasks? (\d+)[-,\d]*: ([^\n]*))");
  static const std::regex srun_exit_re(R"(Exited with exit code (\d+))");
  // The earliest message in the log is the first failure.
  std::optional<Blame> best;
  std::ptrdiff_t best_at = -1;
  auto consider = [&](const std::smatch& m, Blame b) {
    if (!best || m.position(0) < best_at) {
      best = b;
      best_at = m.position(0);
    }
  };
  std::smatch m;
  if (std::regex_search(log, m, signal_re)) consider(m, {to_int(m[1]), to_int(m[2]), {}});
  if (std::regex_search(log, m, status_re)) consider(m, {to_int(m[1]), {}, to_int(m[2])});
  if (std::regex_search(log, m, abort_re)) consider(m, {to_int(m[1]), {}, to_int(m[2])});
  if (std::regex_search(log, m, srun_re)) {
    Blame b{to_int(m[1]), {}, {}};
    const std::string what = m[2].str();
    std::smatch e;
    if (std::regex_search(what, e, srun_exit_re)) {
      b.exit_code = to_int(e[1]);
    } else {
      b.signal = signal_from_description(what);
    }
    consider(m, b);
  }
  return best;
}

// OpenMPI's own handler for fatal signals prints "[host:PID] Signal: Segmentation fault
// (11)" from the crashing process: its rank is the heartbeat with that pid.
std::optional<Blame> blame_from_signal_handler(const std::string& log,
                                               const std::vector<RankProgress>& ranks) {
  static const std::regex handler_re(R"(\[[^\]:]+:(\d+)\] Signal: [^\n]*\((\d+)\))");
  for (std::sregex_iterator it(log.begin(), log.end(), handler_re), end; it != end; ++it) {
    const long pid = std::stol((*it)[1].str());
    for (const auto& p : ranks) {
      if (p.last.pid == pid) return Blame{p.last.rank, to_int((*it)[2]), {}};
    }
  }
  return std::nullopt;
}

const RankProgress* progress_of(const std::vector<RankProgress>& ranks, int rank) {
  for (const auto& p : ranks) {
    if (p.last.rank == rank) return &p;
  }
  return nullptr;
}

// The rank that stopped first: one that never wrote a heartbeat while others did; else, among
// those not done (all, if every rank is), the one whose file changed earliest — ties (seen in
// the same poll) to the least progress. Unknown when no rank wrote anything.
std::optional<int> stalled_rank(const std::vector<RankProgress>& ranks, int count) {
  if (ranks.empty()) return count == 1 ? std::optional<int>(0) : std::nullopt;
  for (int r = 0; r < count; ++r) {
    if (!progress_of(ranks, r)) return r;
  }
  const bool all_done =
      std::all_of(ranks.begin(), ranks.end(), [](const RankProgress& p) { return p.last.done; });
  const RankProgress* first = nullptr;
  auto key = [](const RankProgress& p) {
    return std::make_tuple(p.changed_s, p.last.beats, p.last.step, p.last.time, p.last.rank);
  };
  for (const auto& p : ranks) {
    if (p.last.done && !all_done) continue;
    if (!first || key(p) < key(*first)) first = &p;
  }
  return first->last.rank;
}

json heartbeat_json(const RankProgress& p) {
  const HeartbeatRecord& h = p.last;
  return {{"rank", h.rank},   {"pid", h.pid},   {"where", h.where}, {"step", h.step},
          {"beats", h.beats}, {"time", h.time}, {"done", h.done},   {"changed_s", p.changed_s}};
}

// " at timing step 3", " before its first step", or "" without a heartbeat.
std::string where_text(const RankProgress* p) {
  if (!p) return "";
  if (p->last.where == "start") return " before its first step";
  if (p->last.done) return " after finishing its variant";
  return " at " + p->last.where + " step " + std::to_string(p->last.step);
}

// The worker's own one-line error, when it printed one.
std::string worker_error(const std::string& log) {
  static const std::string prefix = "trainbench: error: ";
  std::string found;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) == 0) found = line.substr(prefix.size());
  }
  return found;
}

}  // namespace

std::string signal_name(int sig) {
  static const std::pair<int, const char*> names[] = {
      {SIGHUP, "SIGHUP"},       {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"},   {SIGILL, "SIGILL"},
      {SIGTRAP, "SIGTRAP"},     {SIGABRT, "SIGABRT"}, {SIGBUS, "SIGBUS"},     {SIGFPE, "SIGFPE"},
      {SIGKILL, "SIGKILL"},     {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"},   {SIGUSR2, "SIGUSR2"},
      {SIGPIPE, "SIGPIPE"},     {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},   {SIGCHLD, "SIGCHLD"},
      {SIGCONT, "SIGCONT"},     {SIGSTOP, "SIGSTOP"}, {SIGTSTP, "SIGTSTP"},   {SIGTTIN, "SIGTTIN"},
      {SIGTTOU, "SIGTTOU"},     {SIGURG, "SIGURG"},   {SIGXCPU, "SIGXCPU"},   {SIGXFSZ, "SIGXFSZ"},
      {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"}, {SIGWINCH, "SIGWINCH"}, {SIGIO, "SIGIO"},
      {SIGSYS, "SIGSYS"}};
  for (const auto& [n, name] : names) {
    if (n == sig) return name;
  }
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) return "SIGRTMIN+" + std::to_string(sig - SIGRTMIN);
  return "signal " + std::to_string(sig);
}

std::string read_file_end(const std::string& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return "";
  const std::streamoff size = in.tellg();
  const std::streamoff from = std::max<std::streamoff>(0, size - std::streamoff(max_bytes));
  in.seekg(from);
  std::string text(static_cast<std::size_t>(size - from), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text;
}

std::vector<std::string> last_lines(const std::string& text, std::size_t n) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  if (lines.size() > n) lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(n));
  return lines;
}

FailureReport describe_failure(const ProcessEnd& end, int ranks, const std::string& launcher,
                               const std::string& log) {
  FailureReport out;
  json& f = out.failure;
  f = {{"rank", nullptr},
       {"ranks", ranks},
       {"signal", nullptr},
       {"signal_name", nullptr},
       {"exit_code", nullptr},
       {"watchdog", nullptr},
       {"launcher", launcher.empty() ? json(nullptr) : json(launcher)},
       {"last_heartbeat", nullptr},
       {"heartbeats", json::array()},
       {"log_tail", last_lines(log, 20)}};
  for (const auto& p : end.ranks) f["heartbeats"].push_back(heartbeat_json(p));

  if (!end.started) {
    out.reason = "the worker did not start: " + end.start_error;
    return out;
  }
  std::optional<int> rank, sig, code;
  std::string what;
  bool launcher_only = false;  // the signal or code is the launcher's, not a rank's
  if (!end.watchdog.empty()) {
    rank = stalled_rank(end.ranks, ranks);
    f["watchdog"] = end.watchdog;
    what = end.watchdog == "hang"
               ? "made no progress for " + number_text(end.watchdog_limit_s) + " s"
               : "was still running after " + number_text(end.watchdog_limit_s) + " s";
  } else {
    std::optional<Blame> blame;
    if (!launcher.empty()) blame = blame_from_log(log);
    if (!launcher.empty() && !blame) blame = blame_from_signal_handler(log, end.ranks);
    if (blame) {
      rank = blame->rank;
      sig = blame->signal;
      code = blame->exit_code;
    } else {
      // Directly: the worker is rank 0. Through a launcher that named no rank: its own exit,
      // and the rank that stopped first by the heartbeats.
      launcher_only = !launcher.empty();
      rank = launcher_only ? stalled_rank(end.ranks, ranks) : std::optional<int>(0);
      if (end.signal) sig = end.signal;
      if (end.exited) code = end.exit_code;
    }
    if (sig) {
      what = "was killed by signal " + std::to_string(*sig) + " (" + signal_name(*sig) + ")";
    } else if (code) {
      what = "exited with code " + std::to_string(*code);
    } else {
      what = "ended";
    }
  }
  const RankProgress* p = rank ? progress_of(end.ranks, *rank) : nullptr;
  if (rank) f["rank"] = *rank;
  if (sig) {
    f["signal"] = *sig;
    f["signal_name"] = signal_name(*sig);
  }
  if (code) f["exit_code"] = *code;
  if (p) f["last_heartbeat"] = heartbeat_json(*p);

  if (launcher_only) {
    out.reason = launcher.substr(0, launcher.find(' ')) + " " + what;
    if (rank) out.reason += "; rank " + std::to_string(*rank) + " stopped first" + where_text(p);
  } else {
    const std::string who =
        rank ? "rank " + std::to_string(*rank) : (launcher.empty() ? "the worker" : "the job");
    out.reason = who + " " + what + where_text(p);
  }
  if (!end.watchdog.empty()) {
    out.reason += end.watchdog == "hang" ? " (--hang-timeout); the job was killed"
                                         : " (--variant-timeout); the job was killed";
  } else if (sig && *sig == SIGKILL) {
    out.reason += " (out of memory — the kernel's OOM killer — or killed from outside)";
  } else if (code && *code == 0) {
    out.reason += " without writing a result";
  }
  if (const std::string e = worker_error(log); !e.empty()) out.reason += ": " + e;
  return out;
}

}  // namespace tb
