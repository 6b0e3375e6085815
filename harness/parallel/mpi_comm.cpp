#include "mpi_comm.h"

#include <mpi.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace tb {

namespace {

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw std::runtime_error(std::string(what) + " failed: " + std::string(msg, std::size_t(len)));
}

MPI_Datatype sum_type(const Tensor& t) { return t.dtype == DType::f64 ? MPI_DOUBLE : MPI_FLOAT; }

// Messages are counted in bytes; MPI counts are int, so large ones go as many elements of a
// contiguous type of 1 MiB (and the remainder).
constexpr std::size_t kChunk = std::size_t{1} << 20;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

class MpiRequest final : public CommRequest {
 public:
  explicit MpiRequest(MPI_Request r) : req_(r) {}
  ~MpiRequest() override {
    if (req_ != MPI_REQUEST_NULL) MPI_Wait(&req_, MPI_STATUS_IGNORE);
  }
  bool test() override {
    if (req_ == MPI_REQUEST_NULL) return true;
    int flag = 0;
    check(MPI_Test(&req_, &flag, MPI_STATUS_IGNORE), "MPI_Test");
    return flag != 0;
  }
  void wait() override { check(MPI_Wait(&req_, MPI_STATUS_IGNORE), "MPI_Wait"); }

 private:
  MPI_Request req_;
};

int count_of(const Tensor& t) {
  const auto n = t.numel();
  if (n > 0x7fffffff) {
    throw std::invalid_argument("collective over " + std::to_string(n) +
                                " elements (expected < 2^31 per call)");
  }
  return static_cast<int>(n);
}

// A per-rank byte count as MPI's int count (all-gather's input, all-to-all's chunk).
int bytes_of(std::size_t bytes, const char* what) {
  if (bytes > 0x7fffffff) {
    throw std::invalid_argument(std::string(what) + " of " + std::to_string(bytes) +
                                " bytes per rank (expected < 2 GiB)");
  }
  return static_cast<int>(bytes);
}

}  // namespace

struct MpiComm::Handle {
  MPI_Comm comm = MPI_COMM_NULL;
};

void MpiRuntime::init() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;
  int provided = 0;
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  // Errors come back as codes and become exceptions (one-line errors), not aborts.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  std::atexit(finalize_at_exit);
}

bool MpiRuntime::initialized() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  return initialized != 0;
}

int MpiRuntime::world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int MpiRuntime::world_size() {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

// OpenMPI's mpirun sets OMPI_COMM_WORLD_*; Slurm's srun SLURM_PROCID/SLURM_NTASKS; PMI-based
// launchers (MPICH's hydra) PMI_RANK/PMI_SIZE.
bool MpiRuntime::launched() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") ||
         std::getenv("SLURM_NTASKS") || std::getenv("PMIX_RANK");
}

int MpiRuntime::launched_rank() {
  return env_int("OMPI_COMM_WORLD_RANK",
                 env_int("PMI_RANK", env_int("SLURM_PROCID", env_int("PMIX_RANK", 0))));
}

int MpiRuntime::launched_size() {
  return env_int("OMPI_COMM_WORLD_SIZE", env_int("PMI_SIZE", env_int("SLURM_NTASKS", 1)));
}

void MpiRuntime::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

MpiComm::MpiComm(std::unique_ptr<Handle> h, int rank, int size, ParallelDim dim)
    : Comm(rank, size, dim), h_(std::move(h)) {}

MpiComm::~MpiComm() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && h_ && h_->comm != MPI_COMM_NULL) MPI_Comm_free(&h_->comm);
}

std::unique_ptr<MpiComm> MpiComm::world(ParallelDim dim) {
  MpiRuntime::init();
  auto h = std::make_unique<Handle>();
  check(MPI_Comm_dup(MPI_COMM_WORLD, &h->comm), "MPI_Comm_dup");
  MPI_Comm_set_errhandler(h->comm, MPI_ERRORS_RETURN);
  int r = 0, n = 1;
  MPI_Comm_rank(h->comm, &r);
  MPI_Comm_size(h->comm, &n);
  return std::unique_ptr<MpiComm>(new MpiComm(std::move(h), r, n, dim));
}

std::unique_ptr<MpiComm> MpiComm::split(int color, int key, ParallelDim dim) {
  auto h = std::make_unique<Handle>();
  check(MPI_Comm_split(h_->comm, color < 0 ? MPI_UNDEFINED : color, key, &h->comm),
        "MPI_Comm_split");
  if (h->comm == MPI_COMM_NULL) return nullptr;
  MPI_Comm_set_errhandler(h->comm, MPI_ERRORS_RETURN);
  int r = 0, n = 1;
  MPI_Comm_rank(h->comm, &r);
  MPI_Comm_size(h->comm, &n);
  return std::unique_ptr<MpiComm>(new MpiComm(std::move(h), r, n, dim));
}

void MpiComm::do_all_reduce(const Tensor& t) {
  check(MPI_Allreduce(MPI_IN_PLACE, t.ptr, count_of(t), sum_type(t), MPI_SUM, h_->comm),
        "MPI_Allreduce");
}

void MpiComm::do_reduce_scatter(const Tensor& out, const Tensor& in) {
  check(MPI_Reduce_scatter_block(in.ptr, out.ptr, count_of(out), sum_type(in), MPI_SUM, h_->comm),
        "MPI_Reduce_scatter_block");
}

void MpiComm::do_all_gather(const Tensor& out, const Tensor& in) {
  const int bytes = bytes_of(in.bytes(), "all_gather");
  check(MPI_Allgather(in.ptr, bytes, MPI_BYTE, out.ptr, bytes, MPI_BYTE, h_->comm),
        "MPI_Allgather");
}

void MpiComm::do_all_to_all(const Tensor& out, const Tensor& in) {
  const int chunk = bytes_of(in.bytes() / static_cast<std::size_t>(size()), "all_to_all");
  check(MPI_Alltoall(in.ptr, chunk, MPI_BYTE, out.ptr, chunk, MPI_BYTE, h_->comm), "MPI_Alltoall");
}

namespace {
// Calls f(pointer, int count, datatype) over a byte range in pieces MPI's int counts can hold.
template <class F>
void in_pieces(void* p, std::size_t bytes, F&& f) {
  auto* b = static_cast<unsigned char*>(p);
  while (bytes > 0) {
    const std::size_t n = std::min(bytes, kChunk * 1024);
    f(b, static_cast<int>(n));
    b += n;
    bytes -= n;
  }
}
}  // namespace

void MpiComm::do_broadcast(const Tensor& t, int root) {
  in_pieces(t.ptr, t.bytes(),
            [&](void* p, int n) { check(MPI_Bcast(p, n, MPI_BYTE, root, h_->comm), "MPI_Bcast"); });
}

void MpiComm::do_send(const Tensor& t, int peer) {
  in_pieces(t.ptr, t.bytes(), [&](void* p, int n) {
    check(MPI_Send(p, n, MPI_BYTE, peer, 0, h_->comm), "MPI_Send");
  });
}

void MpiComm::do_recv(const Tensor& t, int peer) {
  in_pieces(t.ptr, t.bytes(), [&](void* p, int n) {
    check(MPI_Recv(p, n, MPI_BYTE, peer, 0, h_->comm, MPI_STATUS_IGNORE), "MPI_Recv");
  });
}

std::unique_ptr<CommRequest> MpiComm::do_send_async(const Tensor& t, int peer) {
  if (t.bytes() > 0x7fffffff) {
    throw std::invalid_argument("non-blocking send of " + std::to_string(t.bytes()) +
                                " bytes (expected < 2 GiB)");
  }
  MPI_Request r = MPI_REQUEST_NULL;
  check(MPI_Isend(t.ptr, static_cast<int>(t.bytes()), MPI_BYTE, peer, 0, h_->comm, &r),
        "MPI_Isend");
  return std::make_unique<MpiRequest>(r);
}

std::unique_ptr<CommRequest> MpiComm::do_all_reduce_async(const Tensor& t) {
  MPI_Request r = MPI_REQUEST_NULL;
  check(MPI_Iallreduce(MPI_IN_PLACE, t.ptr, count_of(t), sum_type(t), MPI_SUM, h_->comm, &r),
        "MPI_Iallreduce");
  return std::make_unique<MpiRequest>(r);
}

void MpiComm::do_barrier() { check(MPI_Barrier(h_->comm), "MPI_Barrier"); }

}  // namespace tb
