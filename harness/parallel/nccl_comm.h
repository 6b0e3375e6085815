// The NCCL communicator for device tensors, bootstrapped over MPI: it mirrors an MpiComm (same
// ranks, same order, same parallel dimension). Built only with the CUDA backend when the
// toolkit has NCCL (TB_HAVE_NCCL); CUDA and NCCL stay out of this header.
//
// Stream semantics. Tensors are device pointers of this rank's GPU. The blocking calls
// (all_reduce, reduce_scatter, all_gather, all_to_all, broadcast, send, recv, send_recv) are
// enqueued on the compute stream given at construction — the CUDA backend's stream,
// tb::cuda_stream_of(backend) — and return before the device has finished; work enqueued after
// them on that stream sees their results (Backend::synchronize waits for them). Their host
// seconds in take_stats() are therefore enqueue time. send_async and all_reduce_async run on a
// second stream that first waits (CUDA event) for everything enqueued on the compute stream so
// far; the request's test() asks whether the operation has finished (cudaEventQuery), wait()
// makes the compute stream wait for it and blocks the host until it has finished. barrier()
// all-reduces one int and synchronises the compute stream.
//
// NCCL does not promise that two of its operations progress concurrently (NVIDIA/nccl#195,
// maintainer's answer): a send_async to a peer followed by a recv from it, while the peer does
// the same, can hang once the message exceeds NCCL's buffers. Exchange with send_recv, which
// issues both in one NCCL group (NCCL user guide, "Point-to-point communication: Sendrecv").
// Every rank must issue the operations of a communicator in the same order.
#pragma once
#include <memory>
#include <string_view>

#include "comm.h"
#include "grid.h"

namespace tb {

class MpiComm;

// Whether this build has the NCCL communicator (the CUDA backend was built and NCCL found).
bool nccl_available();

#if TB_HAVE_NCCL
// Picks this rank's GPU — one per rank, the device whose index is the rank's local rank
// (tb::local_ranks: OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, … or MPI_COMM_TYPE_SHARED) —
// and makes it current (cudaSetDevice). Call it before any CUDA allocation (before
// make_cuda_backend). When only one device is visible, every local rank takes it: a launcher
// that binds one GPU per task (srun --gpus-per-task=1 --gpu-bind=single:1) shows each rank just
// its own, and NCCL refuses two ranks of one communicator on the same device. Returns the
// device index; throws std::runtime_error (one line) when no device is usable or the node has
// more ranks than devices.
int select_local_gpu();

class NcclComm final : public Comm {
 public:
  // Collective over `group`: its rank 0 creates the NCCL unique id and broadcasts it over MPI,
  // then every rank joins with ncclCommInitRank on the current CUDA device. `stream` is the
  // compute stream (a cudaStream_t); destroy the communicator before the backend that owns
  // it. Throws std::runtime_error naming the failing call.
  NcclComm(MpiComm& group, void* stream);
  ~NcclComm() override;
  std::string_view backend_name() const override { return "nccl"; }

  // Sends `send` to rank `to` and receives `recv` from rank `from` in one NCCL group on the
  // compute stream (a ring step, a pipeline exchange): counted as a send and a recv.
  void send_recv(const Tensor& send, int to, const Tensor& recv, int from);

 protected:
  void do_all_reduce(const Tensor& t) override;
  void do_reduce_scatter(const Tensor& out, const Tensor& in) override;
  void do_all_gather(const Tensor& out, const Tensor& in) override;
  void do_all_to_all(const Tensor& out, const Tensor& in) override;
  void do_broadcast(const Tensor& t, int root) override;
  void do_send(const Tensor& t, int peer) override;
  void do_recv(const Tensor& t, int peer) override;
  std::unique_ptr<CommRequest> do_send_async(const Tensor& t, int peer) override;
  std::unique_ptr<CommRequest> do_all_reduce_async(const Tensor& t) override;
  void do_barrier() override;

 private:
  struct State;  // ncclComm_t, the streams, the barrier's device int
  std::unique_ptr<State> s_;
};

// make_mpi_grid (grid.h), then an NCCL communicator mirroring each of its tensor-carrying
// communicators (world, data, tensor, pipeline, embedding), created in that order on every
// rank; `host` stays MPI (host scalars). `stream` is the compute stream, as for NcclComm; the
// GPU must already be selected (select_local_gpu).
ProcessGrid make_nccl_grid(const GridShape& shape, void* stream);
#endif

}  // namespace tb
