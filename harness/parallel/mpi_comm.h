// The MPI communicator for CPU tensors (Debian's OpenMPI). MPI is initialised once per
// process by MpiRuntime::init (MPI_THREAD_FUNNELED: only the thread driving the step calls
// MPI; OpenMP threads do not) and finalised at exit. Ranks are started by mpirun or srun —
// never by trainbench itself (docs/parallel.md).
#pragma once
#include <memory>

#include "comm.h"

namespace tb {

class MpiRuntime {
 public:
  // Idempotent. Throws std::runtime_error when MPI cannot start.
  static void init();
  static bool initialized();
  static int world_rank();  // after init()
  static int world_size();
  // Whether this process was started by an MPI launcher (mpirun/srun environment variables),
  // read without initialising MPI; and the rank the launcher gave it (0 when none).
  static bool launched();
  static int launched_rank();
  static int launched_size();
  // MPI_Abort on the world communicator: ends every rank of the job with `code`.
  [[noreturn]] static void abort(int code);
};

class MpiComm final : public Comm {
 public:
  // A duplicate of MPI_COMM_WORLD (calls MpiRuntime::init).
  static std::unique_ptr<MpiComm> world(ParallelDim dim = ParallelDim::world);
  ~MpiComm() override;
  std::string_view backend_name() const override { return "mpi"; }
  // MPI_Comm_split: ranks with the same color form a communicator ordered by key; a rank with
  // a negative color joins none and gets nullptr. Collective over this communicator.
  std::unique_ptr<MpiComm> split(int color, int key, ParallelDim dim);

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
  struct Handle;  // the MPI_Comm (mpi.h stays out of this header)
  MpiComm(std::unique_ptr<Handle> h, int rank, int size, ParallelDim dim);
  std::unique_ptr<Handle> h_;
};

}  // namespace tb
