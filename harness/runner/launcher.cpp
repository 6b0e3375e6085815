#include "launcher.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace tb {

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// argv[0] as execv needs it: a path as given when it has a '/', else the first executable
// of that name on PATH.
std::string resolve_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) != 0) {
      throw std::runtime_error("cannot start '" + name + "': " + std::strerror(errno));
    }
    return name;
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0 && !std::filesystem::is_directory(candidate)) {
      return candidate;
    }
  }
  throw std::runtime_error("cannot start '" + name + "': not found on PATH (expected " +
                           (name == "mpirun" ? std::string("OpenMPI's mpirun, or --launcher")
                                             : std::string("an executable")) +
                           ")");
}

// fork + exec. Between them the child only makes async-signal-safe calls: this process may
// have threads (OpenMP, OpenBLAS).
pid_t spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  const std::string exe = resolve_executable(argv.at(0));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log < 0) {
    throw std::runtime_error("cannot create worker log '" + log_path +
                             "': " + std::strerror(errno));
  }
  const int null_in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Its own session (and process group): a kill reaches the whole job, and the terminal's
    // Ctrl-C reaches only the sweep — whose death then takes the child along (PDEATHSIG).
    ::setsid();
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the sweep died before prctl
    if (null_in >= 0) ::dup2(null_in, STDIN_FILENO);
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    ::execv(exe.c_str(), args.data());
    static const char msg[] = "trainbench: error: execv of the worker command failed\n";
    [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(log);
  if (null_in >= 0) ::close(null_in);
  if (pid < 0) throw std::runtime_error(std::string("cannot fork: ") + std::strerror(fork_errno));
  return pid;
}

// Sends sig to every process of session sid: the leader's process group, and processes that
// moved to groups of their own inside the session (OpenMPI starts each rank in its own group).
void signal_session(pid_t sid, int sig) {
  ::kill(-sid, sig);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    const auto digit = [](char ch) { return ch >= '0' && ch <= '9'; };
    if (name.empty() || !std::all_of(name.begin(), name.end(), digit)) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    // pid (comm) state ppid pgrp session …; comm may hold spaces and parentheses.
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 1));
    char state = 0;
    long ppid = 0, pgrp = 0, session = 0;
    if (!(fields >> state >> ppid >> pgrp >> session)) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (session == sid && pid != ::getpid()) ::kill(pid, sig);
  }
}

}  // namespace

std::string default_launch_template() {
  std::string t = "mpirun -np {ranks} --oversubscribe --bind-to none";
  // Debian's OpenMPI 4.1 refuses to start as root (containers, CI) without this flag.
  if (::geteuid() == 0) t += " --allow-run-as-root";
  return t;
}

std::vector<std::string> expand_launch_template(const std::string& launch_template, int ranks) {
  std::vector<std::string> out;
  std::istringstream words(launch_template);
  for (std::string w; words >> w;) {
    for (std::size_t at; (at = w.find("{ranks}")) != std::string::npos;) {
      w.replace(at, 7, std::to_string(ranks));
    }
    out.push_back(w);
  }
  if (out.empty()) {
    throw std::invalid_argument("--launcher '" + launch_template +
                                "' holds no command (expected e.g. 'srun -n {ranks}')");
  }
  return out;
}

ProcessEnd run_watched(const std::vector<std::string>& argv, const std::string& log_path,
                       const std::string& heartbeat_dir, const WatchOptions& options) {
  ProcessEnd end;
  const auto start = Clock::now();
  pid_t pid = -1;
  try {
    pid = spawn(argv, log_path);
  } catch (const std::exception& e) {
    end.start_error = e.what();
    return end;
  }
  end.started = true;

  std::map<int, RankProgress> ranks;
  auto last_progress = start;
  auto poll_heartbeats = [&](Clock::time_point now) {
    for (auto& h : read_heartbeats(heartbeat_dir)) {
      auto [it, fresh] = ranks.try_emplace(h.rank);
      if (fresh || it->second.last.text != h.text) {
        it->second.changed_s = seconds(now - start);
        it->second.last = std::move(h);
        last_progress = now;
      }
    }
  };

  const auto poll =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.poll_s));
  Clock::time_point kill_at{};
  bool term_sent = false, kill_sent = false;
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) {
      status = 0;
      break;
    }
    const auto now = Clock::now();
    poll_heartbeats(now);
    if (!term_sent) {
      if (options.hang_timeout_s > 0 && seconds(now - last_progress) > options.hang_timeout_s) {
        end.watchdog = "hang";
        end.watchdog_limit_s = options.hang_timeout_s;
      } else if (options.variant_timeout_s > 0 &&
                 seconds(now - start) > options.variant_timeout_s) {
        end.watchdog = "timeout";
        end.watchdog_limit_s = options.variant_timeout_s;
      }
      if (!end.watchdog.empty()) {
        signal_session(pid, SIGTERM);
        term_sent = true;
        kill_at = now + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(options.kill_grace_s));
      }
    } else if (!kill_sent && now >= kill_at) {
      signal_session(pid, SIGKILL);
      kill_sent = true;
    }
    std::this_thread::sleep_for(poll);
  }
  // Ranks that outlived the launcher (or its leader) go too: nothing of a variant runs on.
  signal_session(pid, SIGKILL);
  poll_heartbeats(Clock::now());
  end.elapsed_s = seconds(Clock::now() - start);
  if (WIFEXITED(status)) {
    end.exited = true;
    end.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    end.signal = WTERMSIG(status);
  }
  for (auto& [rank, progress] : ranks) end.ranks.push_back(std::move(progress));
  return end;
}

}  // namespace tb
