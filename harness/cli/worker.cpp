// `trainbench worker` (hidden): runs ONE variant of a sweep, as `trainbench run` starts it —
// directly for one rank, under mpirun/srun for several (docs/parallel.md, "Launching"). Every
// rank writes heartbeats to --work-dir; rank 0 writes the result line to --result (tmp +
// rename). MPI, when the variant needs it, is started by run_variant.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

#include "../parallel/mpi_comm.h"
#include "../runner/heartbeat.h"
#include "../runner/runner.h"
#include "../runner/variant_process.h"
#include "commands.h"

namespace tb::cli {

namespace {

struct WorkerOptions {
  std::string scenario, variant_id, environment, result, work_dir, out, device, command_line,
      launcher;
  std::size_t variant = 0;
  bool trace = false;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read '" + path + "': " + std::strerror(errno));
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// The whole line appears at once or not at all: the sweep reads it after the job ends.
void write_result(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0;
  for (std::size_t done = 0; ok && done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  if (fd >= 0) ok = ::close(fd) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw std::runtime_error("cannot write result file '" + path + "': " + std::strerror(errno));
  }
}

int worker(const WorkerOptions& w) {
  const int rank = MpiRuntime::launched_rank();
  heartbeat_init(w.work_dir, rank, w.variant_id);
  const Scenario s = parse_worker_scenario(read_text(w.scenario), w.scenario);
  if (w.variant >= s.variants.size() || s.variants[w.variant].id != w.variant_id) {
    const std::string got = w.variant < s.variants.size() ? s.variants[w.variant].id : "none";
    throw std::invalid_argument("--variant " + std::to_string(w.variant) + " of '" + w.scenario +
                                "' is '" + got + "' (expected '" + w.variant_id + "')");
  }
  const auto environment = nlohmann::json::parse(read_text(w.environment), nullptr, false);
  if (environment.is_discarded() || !environment.is_object()) {
    throw std::invalid_argument("--environment '" + w.environment +
                                "' is not a JSON object (expected the sweep's environment)");
  }
  RunOptions ro;
  ro.out_dir = w.out;
  if (!w.device.empty()) ro.device = w.device;
  ro.trace = w.trace;
  ro.command_line = w.command_line;
  ro.launcher = w.launcher;
  const nlohmann::json line = run_variant(s, s.variants[w.variant], ro, environment);
  heartbeat_done();
  // A rank whose variant failed (out of memory on one stage, an error) records it itself and
  // ends the job: the other ranks would otherwise wait for it in a collective until the
  // watchdog. The sweep takes the result file when there is one.
  const bool failed = line.value("status", "") != "ok";
  const bool parallel = MpiRuntime::initialized() && MpiRuntime::world_size() > 1;
  if (rank == 0 || (failed && parallel)) {
    write_result(w.result,
                 line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
  if (failed && parallel) MpiRuntime::abort(1);
  return 0;
}

}  // namespace

Run add_worker_command(CLI::App& app) {
  app.group("");  // internal: `trainbench run` starts it
  auto o = std::make_shared<WorkerOptions>();
  app.add_option("--scenario", o->scenario, "the effective scenario, as the sweep wrote it")
      ->required();
  app.add_option("--variant", o->variant, "the variant's index")->required();
  app.add_option("--variant-id", o->variant_id, "the variant's id (checked)")->required();
  app.add_option("--environment", o->environment, "the sweep's environment (JSON file)")
      ->required();
  app.add_option("--result", o->result, "where rank 0 writes the result line")->required();
  app.add_option("--work-dir", o->work_dir, "where every rank writes its heartbeat")->required();
  app.add_option("--out", o->out, "the sweep's output directory")->required();
  app.add_option("--device", o->device, "auto, cpu or cuda: overrides the variant's device");
  app.add_option("--command-line", o->command_line, "the sweep's command line");
  app.add_option("--launcher", o->launcher, "the launch command this job runs under");
  app.add_flag("--trace", o->trace, "write a Chrome trace to DIR/traces/");
  return [o]() { return worker(*o); };
}

}  // namespace tb::cli
