// trainbench comm: the collective benchmark (harness/parallel/collective_bench.h,
// docs/collectives.md), run under mpirun or srun; rank 0 prints and writes the JSON.
#include <fmt/core.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../parallel/collective_bench.h"
#include "../parallel/mpi_comm.h"
#include "../results/environment.h"
#include "commands.h"
#include "tb/cpu_backend.h"

namespace tb::cli {

namespace {

struct CommOptions {
  std::string device = "cpu", dtype = "f32", min_bytes = "8", max_bytes, json_path;
  std::vector<std::string> collectives;
  int iters = 20, warmup = 5;
};

// "65536", "64K", "256M", "1G" (binary multiples, as nccl-tests' -b/-e).
std::size_t parse_bytes(const char* flag, const std::string& v) {
  std::size_t pos = 0;
  unsigned long long x = 0;
  try {
    x = std::stoull(v, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  std::size_t unit = 1;
  const std::string suffix = pos > 0 ? v.substr(pos) : "";
  if (suffix == "K" || suffix == "k") unit = std::size_t{1} << 10;
  if (suffix == "M" || suffix == "m") unit = std::size_t{1} << 20;
  if (suffix == "G" || suffix == "g") unit = std::size_t{1} << 30;
  if (pos == 0 || (!suffix.empty() && unit == 1) || v[0] == '-') {
    throw std::invalid_argument(std::string(flag) + " '" + v +
                                "' (expected a byte count such as 8, 64K, 256M or 1G)");
  }
  return static_cast<std::size_t>(x) * unit;
}

DType parse_dtype(const std::string& v) {
  if (v == "f32") return DType::f32;
  if (v == "f64") return DType::f64;
  throw std::invalid_argument("--dtype '" + v + "' (expected f32 or f64)");
}

void print_block_header(Collective c, int n) {
  fmt::print("#\n# {}  (busbw = algbw x {:.4g})\n", collective_name(c), busbw_factor(c, n));
  fmt::print("# {:>11}  {:>12}  {:>5}  {:>10}  {:>8}  {:>8}  {:>7}\n", "size", "count", "type",
             "time", "algbw", "busbw", "#wrong");
  fmt::print("# {:>11}  {:>12}  {:>5}  {:>10}  {:>8}  {:>8}  {:>7}\n", "(B)", "(elements)", "",
             "(us)", "(GB/s)", "(GB/s)", "");
}

CollectiveBenchOptions parse(const CommOptions& c) {
  CollectiveBenchOptions o;
  o.device = c.device;
  o.dtype = parse_dtype(c.dtype);
  o.min_bytes = parse_bytes("--min-bytes", c.min_bytes);
  o.max_bytes = c.max_bytes.empty() ? 0 : parse_bytes("--max-bytes", c.max_bytes);
  o.iters = c.iters;
  o.warmup = c.warmup;
  if (!c.collectives.empty()) {
    o.collectives.clear();
    for (const auto& name : c.collectives) o.collectives.push_back(parse_collective(name));
  }
  return o;
}

int run_comm(const CommOptions& c, const std::string& command_line) {
  CollectiveBenchOptions o;
  try {
    o = parse(c);
  } catch (const std::invalid_argument&) {
    // Every rank parses the same flags: rank 0 alone reports the error.
    if (MpiRuntime::launched_rank() != 0) return 1;
    throw;
  }
  bool root = false;
  int world = 1;
  bool first_row = true;
  Collective current = Collective::all_reduce;
  auto on_start = [&](const CollectiveBenchReport& r) {
    world = r.world_size;
    root = r.rank == 0;
    if (!root) return;
    fmt::print(
        "# trainbench comm: {} ranks, {} on {}, {}, sizes {} to {} B, {} warm-up and {} "
        "timed calls per size\n",
        r.world_size, r.backend, r.device, dtype_name(r.options.dtype), r.options.min_bytes,
        r.options.max_bytes, r.options.warmup, r.options.iters);
    fmt::print(
        "# time: host clock around the timed calls and the synchronisation after them, / "
        "{}, the slowest rank's;\n# busbw factors: nccl-tests doc/PERFORMANCE.md; #wrong: "
        "output elements that differ from the exact expected value, all ranks\n",
        r.options.iters);
    std::fflush(stdout);
  };
  auto on_result = [&](const CollectiveResult& r) {
    if (!root) return;
    if (first_row || r.collective != current) print_block_header(r.collective, world);
    first_row = false;
    current = r.collective;
    fmt::print("  {:>11}  {:>12}  {:>5}  {:>10.2f}  {:>8.3f}  {:>8.3f}  {:>7}\n", r.bytes,
               r.elements, dtype_name(r.dtype), r.time_s * 1e6, r.algbw_GBps, r.busbw_GBps,
               r.wrong);
    std::fflush(stdout);
  };
  CollectiveBenchReport report;
  try {
    report = run_collective_bench(o, on_start, on_result);
  } catch (const CommFailedElsewhere&) {
    return 1;  // the failing rank reports it
  }
  if (report.rank != 0) return report.wrong() ? 1 : 0;
  if (!c.json_path.empty()) {
    const auto j =
        collective_bench_json(report, capture_environment(command_line, cpu_thread_count()));
    std::ofstream out(c.json_path);
    if (!out) throw std::runtime_error("cannot write JSON file '" + c.json_path + "'");
    out << j.dump(2) << "\n";
  }
  if (report.wrong()) {
    fmt::print(stderr,
               "trainbench: error: comm: {} output elements differ from the expected "
               "values (expected 0)\n",
               report.wrong());
    return 1;
  }
  return 0;
}

}  // namespace

Run add_comm_command(CLI::App& app, const std::string& command_line) {
  auto o = std::make_shared<CommOptions>();
  app.add_option("--device", o->device, "cpu (MPI) or cuda (NCCL, one GPU per rank)")
      ->capture_default_str();
  app.add_option("--min-bytes", o->min_bytes, "smallest message size (bytes; K, M, G suffixes)")
      ->capture_default_str();
  app.add_option("--max-bytes", o->max_bytes,
                 "largest message size (default: the largest power of two <= 1G whose buffers "
                 "fit in half the available memory)");
  app.add_option("--iters", o->iters, "timed calls per size")->capture_default_str();
  app.add_option("--warmup", o->warmup, "untimed calls before them")->capture_default_str();
  app.add_option("--dtype", o->dtype, "f32 or f64")->capture_default_str();
  app.add_option("--collectives", o->collectives,
                 "all_reduce, reduce_scatter, all_gather, all_to_all, send_recv (default: all)")
      ->delimiter(',');
  app.add_option("--json", o->json_path, "write the results as JSON to this file (rank 0)");
  return [o, command_line]() { return run_comm(*o, command_line); };
}

}  // namespace tb::cli
