// `trainbench report DIR [--out REPORT_DIR]`: plots and tables of a run (docs/reports.md).
// The report is made by the Python package reports/ (matplotlib); this command finds a Python
// and the package, then replaces itself with `python3 -m reports DIR --prog trainbench`, so
// its errors are the usual one line "trainbench: error: FILE:LINE: what" and its exit status
// is the report's (0 written, 1 bad input, 2 bad arguments).
//
// Python: $TB_PYTHON when set (taken as is); otherwise the first of /usr/bin/python3 and each
// python3 on PATH that imports matplotlib and numpy (a pyenv or virtualenv python3 first on
// PATH often has neither; Debian's, which scripts/install-deps.sh provisions, does).
// Package: $TB_REPORTS_PATH when set (the directory holding reports/); otherwise the source
// tree this binary was built from (located through __FILE__), then BIN/../.. and
// BIN/../share/trainbench relative to the executable.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.h"

extern char** environ;

namespace tb::cli {

namespace {

namespace fs = std::filesystem;

struct ReportArgs {
  std::string dir, out;
};

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : nullptr;
}

bool is_package_root(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p / "reports" / "__main__.py", ec);
}

bool is_executable_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && access(p.c_str(), X_OK) == 0;
}

// The directory holding the reports/ package.
fs::path find_package() {
  if (const char* given = env("TB_REPORTS_PATH")) {
    if (!is_package_root(given)) {
      throw std::invalid_argument(std::string("TB_REPORTS_PATH '") + given +
                                  "': no reports/__main__.py there (expected the directory "
                                  "holding trainbench's reports/ package, e.g. the source tree)");
    }
    return given;
  }
  std::vector<fs::path> tried;
  // This file is SOURCE/harness/cli/report.cpp; CMake compiles it by absolute path.
  const fs::path source = fs::path(__FILE__).parent_path().parent_path().parent_path();
  tried.push_back(source);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    tried.push_back(exe.parent_path().parent_path().parent_path());  // SOURCE/build/bin/trainbench
    tried.push_back(exe.parent_path().parent_path() / "share" / "trainbench");
  }
  std::string names;
  for (const fs::path& p : tried) {
    if (is_package_root(p)) return p;
    names += (names.empty() ? "" : ", ") + p.string();
  }
  throw std::runtime_error("cannot find the reports/ package (looked in " + names +
                           "; set TB_REPORTS_PATH to the directory holding it)");
}

// Runs PYTHON -c "import matplotlib, numpy" quietly; true when it exits 0.
bool has_plotting(const std::string& python) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
    posix_spawn_file_actions_addopen(&actions, fd, "/dev/null",
                                     fd == STDIN_FILENO ? O_RDONLY : O_WRONLY, 0);
  }
  std::string a0 = python, a1 = "-c", a2 = "import matplotlib, numpy";
  char* argv[] = {a0.data(), a1.data(), a2.data(), nullptr};
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, python.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return false;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string find_python() {
  if (const char* given = env("TB_PYTHON")) {
    if (!is_executable_file(given)) {
      throw std::invalid_argument(std::string("TB_PYTHON '") + given +
                                  "': not an executable file (expected a Python 3 interpreter "
                                  "with matplotlib and numpy, e.g. /usr/bin/python3)");
    }
    return given;
  }
  std::vector<std::string> candidates = {"/usr/bin/python3"};
  if (const char* path = env("PATH")) {
    std::string dirs = path;
    std::size_t start = 0;
    while (start <= dirs.size()) {
      const std::size_t end = std::min(dirs.find(':', start), dirs.size());
      const std::string dir = dirs.substr(start, end - start);
      if (!dir.empty()) candidates.push_back((fs::path(dir) / "python3").string());
      start = end + 1;
    }
  }
  std::string tried;
  std::vector<std::string> seen;
  for (const std::string& c : candidates) {
    if (!is_executable_file(c)) continue;
    std::error_code ec;
    const std::string real = fs::canonical(c, ec).string();
    bool dup = false;
    for (const auto& s : seen) dup = dup || (!ec && s == real);
    if (dup) continue;
    seen.push_back(ec ? c : real);
    if (has_plotting(c)) return c;
    tried += (tried.empty() ? "" : ", ") + c;
  }
  throw std::runtime_error(
      "no Python 3 with matplotlib and numpy found (" +
      (tried.empty() ? std::string("no python3 at /usr/bin or on PATH") : "tried " + tried) +
      "; scripts/install-deps.sh installs Debian's python3-matplotlib, or set TB_PYTHON)");
}

int report(const ReportArgs& args) {
  std::error_code ec;
  if (!fs::exists(args.dir, ec)) {
    throw std::invalid_argument(args.dir +
                                ": no such file or directory (expected a run's output "
                                "directory holding results.jsonl)");
  }
  const fs::path package = find_package();
  const std::string python = find_python();
  // `python3 -m reports` would put the working directory ahead of the package on sys.path;
  // this puts the package first, so a reports/ folder wherever the user stands cannot shadow it.
  std::vector<std::string> a = {
      python,
      "-c",
      "import sys; sys.path.insert(0, sys.argv.pop(1)); from reports.cli import main; "
      "sys.exit(main())",
      package.string(),
      args.dir,
      "--prog",
      "trainbench"};
  if (!args.out.empty()) {
    a.push_back("--out");
    a.push_back(args.out);
  }
  std::vector<char*> argv;
  for (auto& s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  setenv("PYTHONDONTWRITEBYTECODE", "1", 1);  // no __pycache__ in the source tree
  setenv("MPLBACKEND", "Agg", 1);             // no display needed
  std::fflush(stdout);
  std::fflush(stderr);
  execv(python.c_str(), argv.data());
  throw std::runtime_error("cannot run " + python + ": " + std::strerror(errno));
}

}  // namespace

Run add_report_command(CLI::App& app) {
  auto args = std::make_shared<ReportArgs>();
  app.add_option("DIR", args->dir, "a run's output directory (holding results.jsonl), or the file")
      ->required();
  app.add_option("--out", args->out, "where to write the report (default: DIR/report)");
  app.footer(
      "Writes index.html (self-contained), index.md and SVG + PNG plots (docs/reports.md). "
      "Needs Python 3 with matplotlib and numpy: $TB_PYTHON, else /usr/bin/python3 or python3 "
      "on PATH; the reports/ package: $TB_REPORTS_PATH, else the source tree.");
  return [args]() { return report(*args); };
}

}  // namespace tb::cli
