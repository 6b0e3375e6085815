// A communicator: the collectives and point-to-point transfers a parallel training step needs,
// behind one interface with an MPI implementation for CPU tensors (mpi_comm.h, Debian's
// OpenMPI) and an NCCL implementation for device tensors (nccl_comm.h, bootstrapped over MPI).
//
// The public calls are non-virtual: each opens a Phase::communication range on the attached
// Profiler (host clock and NVTX), counts the call's payload bytes and host seconds under the
// communicator's parallel dimension, then calls the implementation. Payload bytes are the
// message size S of the call as nccl-tests counts it (all-reduce: the buffer; reduce-scatter:
// the input; all-gather: the output; send/recv: the tensor), so that per-step volumes can be
// checked against the analytic counts (docs/parallel.md).
//
// Reductions are sums over f32 or f64 tensors. send/recv move bytes of any dtype.
#pragma once
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "tb/tensor.h"

namespace tb {

class Profiler;

// Which parallel dimension a communicator's traffic belongs to.
enum class ParallelDim : std::uint8_t { data, tensor, pipeline, world };
inline constexpr std::size_t kParallelDimCount = 4;
std::string_view parallel_dim_name(ParallelDim d);  // "data", "tensor", "pipeline", "world"

// Traffic counted by one communicator since the last take_stats().
struct CommStats {
  std::int64_t calls = 0;
  double bytes = 0;    // payload bytes (see above)
  double seconds = 0;  // host seconds inside blocking calls and waits (exposed time)
  // Non-blocking all-reduces: seconds from issue until completion was observed (at a test()
  // or wait()), and the part of that spent blocked in wait() (also in `seconds`).
  double async_seconds = 0;
  double async_wait_seconds = 0;
  CommStats& operator+=(const CommStats& o) {
    calls += o.calls;
    bytes += o.bytes;
    seconds += o.seconds;
    async_seconds += o.async_seconds;
    async_wait_seconds += o.async_wait_seconds;
    return *this;
  }
};

// A pending non-blocking operation. wait() blocks until it completes; test() returns true
// once it has (and lets the transport progress). Destroying a pending request waits.
class CommRequest {
 public:
  virtual ~CommRequest() = default;
  virtual bool test() = 0;
  virtual void wait() = 0;
};

class Comm {
 public:
  virtual ~Comm() = default;
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  ParallelDim dim() const { return dim_; }
  virtual std::string_view backend_name() const = 0;  // "mpi" | "nccl"

  // Attach a profiler (not owned; nullptr detaches): every call becomes a
  // Phase::communication range on it.
  void set_profiler(Profiler* p) { profiler_ = p; }

  // t = Σ over ranks of t, in place (f32 or f64).
  void all_reduce(const Tensor& t);
  // out (n elements) = this rank's n-element chunk of Σ over ranks of in (size()·n elements):
  // rank r gets elements [r·n, (r+1)·n).
  void reduce_scatter(const Tensor& out, const Tensor& in);
  // out (size()·n elements) = the concatenation over ranks of in (n elements), rank order.
  void all_gather(const Tensor& out, const Tensor& in);
  // in and out hold size() chunks of n elements; chunk j of in goes to rank j, and chunk i of
  // out comes from rank i.
  void all_to_all(const Tensor& out, const Tensor& in);
  void broadcast(const Tensor& t, int root);
  // Blocking point-to-point transfers of t's bytes to/from `peer` (a rank of this
  // communicator). Pair every send with the peer's recv of the same size.
  void send(const Tensor& t, int peer);
  void recv(const Tensor& t, int peer);
  // Non-blocking send; the tensor must stay unchanged until the request completes.
  std::unique_ptr<CommRequest> send_async(const Tensor& t, int peer);
  // Non-blocking in-place sum (data-parallel gradient buckets overlapping backward). The
  // returned request's wait()/test() account their time in this communicator's stats.
  std::unique_ptr<CommRequest> all_reduce_async(const Tensor& t);
  void barrier();

  // Returns the traffic counted since the last call and resets it.
  CommStats take_stats();
  const CommStats& stats() const { return stats_; }

 protected:
  Comm(int rank, int size, ParallelDim dim) : rank_(rank), size_(size), dim_(dim) {}
  virtual void do_all_reduce(const Tensor& t) = 0;
  virtual void do_reduce_scatter(const Tensor& out, const Tensor& in) = 0;
  virtual void do_all_gather(const Tensor& out, const Tensor& in) = 0;
  virtual void do_all_to_all(const Tensor& out, const Tensor& in) = 0;
  virtual void do_broadcast(const Tensor& t, int root) = 0;
  virtual void do_send(const Tensor& t, int peer) = 0;
  virtual void do_recv(const Tensor& t, int peer) = 0;
  virtual std::unique_ptr<CommRequest> do_send_async(const Tensor& t, int peer) = 0;
  virtual std::unique_ptr<CommRequest> do_all_reduce_async(const Tensor& t) = 0;
  virtual void do_barrier() = 0;

 private:
  friend class TimedCommRequest;
  template <class F>
  void timed(double bytes, F&& f);
  int rank_, size_;
  ParallelDim dim_;
  Profiler* profiler_ = nullptr;
  CommStats stats_;
};

// Throws std::invalid_argument naming the dtype unless it is f32 or f64 (what the
// reductions sum).
void require_reducible(const Tensor& t, std::string_view what);

}  // namespace tb
