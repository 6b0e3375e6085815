// The collective benchmark behind `trainbench comm` (docs/collectives.md), after nccl-tests
// (github.com/NVIDIA/nccl-tests): for each collective and each message size S (powers of two),
// the time of one call, the algorithm bandwidth algbw = S/t and the bus bandwidth busbw =
// algbw · factor(collective, n) of nccl-tests doc/PERFORMANCE.md, and a check of every output
// element against its exact expected value. The pure parts (factors, message sizes, the input
// pattern and the expected outputs, the memory bound) are separate functions, tested without
// MPI.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tb/dtype.h"

namespace tb {

enum class Collective : std::uint8_t {
  all_reduce,
  reduce_scatter,
  all_gather,
  all_to_all,
  send_recv
};
inline constexpr std::array<Collective, 5> kAllCollectives = {
    Collective::all_reduce, Collective::reduce_scatter, Collective::all_gather,
    Collective::all_to_all, Collective::send_recv};
std::string_view collective_name(Collective c);  // "all_reduce", …
// Throws std::invalid_argument naming the value and the choices.
Collective parse_collective(std::string_view name);

// nccl-tests doc/PERFORMANCE.md ("Summary"): busbw = algbw · factor, the factor that makes the
// bandwidth comparable with the hardware's link bandwidth whatever the rank count n:
// all-reduce 2(n−1)/n; reduce-scatter, all-gather and all-to-all (n−1)/n; send/recv 1
// (src/sendrecv.cu: the factor is 1). Throws for n < 1.
double busbw_factor(Collective c, int n);

// The message S of a size in bytes, as nccl-tests counts it: elements of `t` in the whole
// buffer — all-reduce's buffer, reduce-scatter's input, all-gather's output, all-to-all's and
// send/recv's buffer — rounded down to a multiple of n when the collective splits it into n
// chunks (reduce-scatter, all-gather, all-to-all). 0 when the size holds fewer than that.
std::int64_t message_elements(Collective c, std::size_t bytes, DType t, int n);
// One rank's input and output element counts for a message of `elements`.
std::int64_t input_elements(Collective c, std::int64_t elements, int n);
std::int64_t output_elements(Collective c, std::int64_t elements, int n);

// Element i of rank r's input: (i + 17·r) mod 256. Integers below 256, so any sum over fewer
// than 2^16 ranks is exact in f32 (< 2^24) and f64; 17 is odd, so r ↦ 17·r mod 256 is
// one-to-one and up to 256 ranks hold different values at one index (a chunk from the wrong
// rank, or in the wrong place, is caught).
double input_value(int rank, std::int64_t i);

// The exact expected output of one rank (element i of its output tensor) after collective c
// over n ranks on a message of `elements` elements, every rank's input being input_value:
// all-reduce: Σ_k in_k[i]; reduce-scatter: Σ_k in_k[rank·m + i] (m = elements/n);
// all-gather: in_{i/m}[i mod m]; all-to-all: in_{i/m}[rank·m + i mod m]; send/recv (nccl-tests'
// ring: rank r sends to r+1, receives from r−1): in_{(rank−1) mod n}[i].
class ExpectedOutput {
 public:
  ExpectedOutput(Collective c, int n, int rank, std::int64_t elements);
  double operator()(std::int64_t i) const;

 private:
  Collective c_;
  int n_, rank_;
  std::int64_t chunk_;
  std::array<double, 256> sums_{};  // Σ_k input_value(k, j) for j mod 256 (reductions)
};

// The default largest size: the largest power of two S ≤ 1 GiB whose buffers fit in half of
// the memory available. Per rank the benchmark holds an input and an output buffer of S
// bytes at most (2S); on a CPU the node's `local_ranks` ranks share `host_available` bytes
// (2S·L ≤ host/2); on a GPU (device_memory > 0) the buffers are on the device (2S ≤ device/2)
// and each rank stages one buffer on the host (S·L ≤ host/2). 0 when not even 8 bytes fit.
std::size_t default_max_bytes(std::size_t host_available, int local_ranks,
                              std::size_t device_memory);
inline constexpr std::size_t kMaxCommBytes = std::size_t{1} << 30;

struct CollectiveBenchOptions {
  std::string device = "cpu";  // cpu (MPI) | cuda (NCCL)
  std::size_t min_bytes = 8;
  std::size_t max_bytes = 0;  // 0: default_max_bytes
  int iters = 20;             // nccl-tests' defaults: 20 timed calls after 5 warm-up calls
  int warmup = 5;
  DType dtype = DType::f32;
  std::vector<Collective> collectives{kAllCollectives.begin(), kAllCollectives.end()};
};

struct CollectiveResult {
  Collective collective = Collective::all_reduce;
  std::size_t bytes = 0;  // S: elements · dtype size
  std::int64_t elements = 0;
  DType dtype = DType::f32;
  double time_s = 0;       // one call: the slowest rank's mean over the timed calls
  double algbw_GBps = 0;   // S / t, 10^9 bytes per second
  double busbw_GBps = 0;   // algbw · busbw_factor
  std::int64_t wrong = 0;  // output elements ≠ expected, summed over ranks
};

struct CollectiveBenchReport {
  int world_size = 1;
  int rank = 0;                 // this process's rank in MPI_COMM_WORLD
  std::string backend, device;  // "mpi" | "nccl"; "cpu" | "cuda"
  CollectiveBenchOptions options;
  std::vector<CollectiveResult> results;
  std::int64_t wrong() const;
};

// Thrown on the ranks whose part of a step succeeded when another rank's failed: that rank
// reports its own error, these need not repeat it.
class CommFailedElsewhere : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Runs the benchmark on every rank of MPI_COMM_WORLD (initialising MPI): every rank must call
// it with the same options. On every rank, `on_start` (may be empty) gets the report before
// the first measurement (no results yet) and `on_result` each row as it is measured. Throws
// std::invalid_argument for bad options and std::runtime_error when the device cannot be used
// (--device cuda without a CUDA build with NCCL, or without a GPU) — on every rank, so none
// is left waiting in a collective.
CollectiveBenchReport run_collective_bench(
    const CollectiveBenchOptions& o,
    const std::function<void(const CollectiveBenchReport&)>& on_start,
    const std::function<void(const CollectiveResult&)>& on_result);

// {"schema": "trainbench-comm/1", "world_size", "backend", "device", "iters", "warmup",
//  "environment" (when not null), "results": [{"collective", "bytes", "elements", "dtype",
//  "time_s", "algbw_GBps", "busbw_GBps", "wrong"}]}
nlohmann::json collective_bench_json(const CollectiveBenchReport& r,
                                     const nlohmann::json& environment);

}  // namespace tb
