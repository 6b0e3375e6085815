// A calibration file (`trainbench calibrate`; docs/planner.md, "Calibration"): what the time
// model needs, measured on the machine at hand — each operation of the target model at its
// real shape and precision, the collectives' times per size, and the state-checkpoint write
// bandwidth. The planner prices an operation by its measured time at the same shape, or, for
// a shape not measured, at the measured rate of the nearest same-kind operation.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hardware.h"
#include "op_costs.h"

namespace tb {

struct CalibratedOp {
  std::string op, precision;
  std::array<std::int64_t, 4> dims{};
  OpKind kind = OpKind::memory;
  double flops = 0, bytes = 0;  // per call, as op_costs counts them
  double seconds = 0;           // median per call
  int threads = 0;              // CPU threads it ran on (0: the backend's default)
  int ranks = 1;                // processes running operations at once (an MPI job's ranks)
};

// A rank's mean wait at a collective that follows `segment_s` of computation on every rank
// of the job: the ranks' run-to-run jitter, which a bulk-synchronous step pays at each
// synchronisation (the slowest rank arrives last).
struct SyncWaitPoint {
  double segment_s = 0, wait_s = 0;
};

// One collective timed at one variant's bytes (plan/time_model.h rank_collectives): in a job
// of `ranks` ranks, every group of `group` ranks running it at once, `bytes` the whole buffer;
// `seconds` the slowest rank's mean call.
struct CalibratedCollective {
  std::string collective;  // reduce_scatter | all_gather
  int ranks = 0, group = 0;
  double bytes = 0, seconds = 0;
};

struct Calibration {
  std::string path;         // where it was read from ("" when made in this process)
  std::string device;       // e.g. "cpu: AMD EPYC 9454P (2 threads)", "NVIDIA H200"
  std::string device_kind;  // cpu | cuda
  int threads = 0;          // CPU threads asked for (0: the OpenMP default)
  int cores = 0;            // the machine's hardware threads
  std::string created;      // UTC timestamp
  double memory_bytes = 0;  // what the device offers (available RAM on a CPU)
  std::vector<CalibratedOp> ops;
  // Per job size (ranks), the α–β tier fitted to the ranks' measured all-reduce times.
  std::map<int, LinkTier> collectives;
  // Collectives timed at the bytes the scenario's variants move (ZeRO-1's).
  std::vector<CalibratedCollective> collective_times;
  // Per job size (ranks), the synchronisation wait measured at several segment lengths.
  std::map<int, std::vector<SyncWaitPoint>> sync_wait;
  // Per job size N (ranks sharing one machine's cores), the speed of a busy rank while k of
  // the N are busy and the rest wait in MPI, relative to all N busy: element k − 1 (the last
  // is 1). What a pipeline's bubble leaves its working stages on shared cores.
  std::map<int, std::vector<double>> busy_speed;
  double checkpoint_write_bytes_per_s = 0;  // one process writing a state file (fsync'd)

  nlohmann::json to_json() const;
  // Throws std::invalid_argument("PATH: what (expected …)") on a malformed file.
  static Calibration from_json(const nlohmann::json& j, const std::string& path);

  // The measured seconds of exactly this operation (op, shape, precision, threads), if
  // measured.
  std::optional<double> exact_seconds(const OpCost& o, const std::string& precision,
                                      int op_threads = 0, int op_ranks = 1) const;
  // The measured rate — FLOP/s for GEMMs and attention, bytes/s otherwise — of the measured
  // operation of the same op and precision nearest in size (log of FLOPs or bytes); nullopt
  // when none of that op and precision was measured.
  std::optional<double> nearest_rate(const OpCost& o, const std::string& precision,
                                     int op_threads = 0, int op_ranks = 1) const;
  // The measured seconds of `collective` over groups of `group` in a job of `ranks` ranks at
  // `bytes` (equal within 1e-9 relative), if measured.
  std::optional<double> collective_seconds(const std::string& collective, int ranks, int group,
                                           double bytes) const;
  // The mean wait at a collective after `segment_s` of computation in a job of `ranks` ranks:
  // linear between the measured segment lengths, the nearest measurement's wait per second of
  // segment outside them; nullopt when that job size's wait was not measured.
  std::optional<double> sync_wait_s(int ranks, double segment_s) const;
  // The measured speed of a busy rank with `busy` of the job's `ranks` busy; nullopt when
  // that job size's was not measured.
  std::optional<double> busy_speed_of(int ranks, int busy) const;
  // Adds another calibration's measurements (a file per job size); throws on a different
  // device.
  void merge(const Calibration& other);
};

// The α–β tier fitted to measured all-reduce times over n ranks, (bytes, seconds) pairs:
// t = 2(n−1)·α + 2(n−1)/n · S / bw, least squares in relative error. Throws
// std::invalid_argument when n < 2, fewer than two sizes, or times that do not grow.
LinkTier fit_all_reduce_tier(int n, const std::vector<std::pair<double, double>>& points);

// Throws std::invalid_argument naming the file and what is wrong with it.
Calibration load_calibration(const std::string& path);
void save_calibration(const Calibration& c, const std::string& path);

}  // namespace tb
