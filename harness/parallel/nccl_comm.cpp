// NcclComm: built only when TB_HAVE_NCCL (harness/CMakeLists.txt); nccl_unavailable.cpp
// stands in for it otherwise.
#include "nccl_comm.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <stdexcept>
#include <string>
#include <utility>

#include "local_ranks.h"
#include "mpi_comm.h"

namespace tb {

namespace {

std::string one_line(std::string s) {
  for (char& ch : s) {
    if (ch == '\n' || ch == '\r') ch = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

void nccl_check(ncclResult_t r, const char* what, ncclComm_t comm = nullptr) {
  if (r == ncclSuccess) return;
  std::string msg = std::string(what) + " failed: " + ncclGetErrorString(r);
  const std::string last = one_line(ncclGetLastError(comm));
  if (!last.empty()) msg += " (" + last + ")";
  throw std::runtime_error(msg);
}

void cuda_check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();  // reset the runtime's last error, so later calls report their own
  throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorString(e));
}

ncclDataType_t sum_type(const Tensor& t) {
  return t.dtype == DType::f64 ? ncclFloat64 : ncclFloat32;
}

void* byte_offset(void* p, std::size_t bytes) { return static_cast<unsigned char*>(p) + bytes; }

// Completion of an operation issued on the side stream, marked by an event recorded after it.
class NcclRequest final : public CommRequest {
 public:
  NcclRequest(cudaEvent_t done, cudaStream_t compute, int device)
      : done_(done), compute_(compute), device_(device) {}
  ~NcclRequest() override {
    try {
      wait();
    } catch (...) {
    }
    cudaEventDestroy(done_);
  }
  bool test() override {
    if (waited_) return true;
    const cudaError_t e = cudaEventQuery(done_);
    if (e == cudaErrorNotReady) {
      cudaGetLastError();
      return false;
    }
    cuda_check(e, "cudaEventQuery");
    return true;
  }
  void wait() override {
    if (waited_) return;
    cuda_check(cudaSetDevice(device_), "cudaSetDevice");
    cuda_check(cudaStreamWaitEvent(compute_, done_, 0), "cudaStreamWaitEvent");
    cuda_check(cudaEventSynchronize(done_), "cudaEventSynchronize");
    waited_ = true;
  }

 private:
  cudaEvent_t done_;
  cudaStream_t compute_;
  int device_;
  bool waited_ = false;
};

}  // namespace

bool nccl_available() { return true; }

int select_local_gpu() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    cudaGetLastError();
    throw std::runtime_error(std::string("no usable CUDA device: ") +
                             (e != cudaSuccess ? cudaGetErrorString(e) : "none visible"));
  }
  const LocalRanks local = local_ranks();
  int device = local.rank;
  if (count == 1) {
    device = 0;  // the launcher's binding, or a duplicate that NCCL refuses at init
  } else if (local.rank >= count) {
    throw std::runtime_error("local rank " + std::to_string(local.rank) + " of " +
                             std::to_string(local.size) + " on this node but " +
                             std::to_string(count) +
                             " CUDA devices (expected one device per rank: at most " +
                             std::to_string(count) + " ranks per node)");
  }
  cuda_check(cudaSetDevice(device), "cudaSetDevice");
  return device;
}

struct NcclComm::State {
  ncclComm_t comm = nullptr;
  cudaStream_t compute = nullptr;  // the backend's, not owned
  cudaStream_t side = nullptr;     // for the non-blocking operations
  int device = 0;
  int* barrier_word = nullptr;  // one device int, all-reduced by barrier()

  void bind() const { cuda_check(cudaSetDevice(device), "cudaSetDevice"); }
  // An event recorded on the compute stream that the side stream waits for: the side stream's
  // next operation sees everything enqueued on the compute stream so far.
  void side_after_compute() const {
    cudaEvent_t e = nullptr;
    cuda_check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
    const cudaError_t r1 = cudaEventRecord(e, compute);
    const cudaError_t r2 = r1 == cudaSuccess ? cudaStreamWaitEvent(side, e, 0) : r1;
    cudaEventDestroy(e);  // released once the wait is satisfied
    cuda_check(r2, "cudaEventRecord/cudaStreamWaitEvent");
  }
  std::unique_ptr<CommRequest> side_done() const {
    cudaEvent_t e = nullptr;
    cuda_check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
    const cudaError_t r = cudaEventRecord(e, side);
    if (r != cudaSuccess) {
      cudaEventDestroy(e);
      cuda_check(r, "cudaEventRecord");
    }
    return std::make_unique<NcclRequest>(e, compute, device);
  }
};

static_assert(sizeof(ncclUniqueId) % sizeof(std::int32_t) == 0);

NcclComm::NcclComm(MpiComm& group, void* stream)
    : Comm(group.rank(), group.size(), group.dim()), s_(std::make_unique<State>()) {
  if (!stream) {
    throw std::invalid_argument(
        "NcclComm on a null stream (expected the CUDA backend's, tb::cuda_stream_of)");
  }
  s_->compute = static_cast<cudaStream_t>(stream);
  cuda_check(cudaGetDevice(&s_->device), "cudaGetDevice");
  ncclUniqueId id{};
  if (group.rank() == 0) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  // The id's bytes travel as i32 words: broadcast moves bytes whatever the dtype.
  group.broadcast(Tensor(&id, DType::i32, {std::int64_t{sizeof(id) / sizeof(std::int32_t)}}), 0);
  nccl_check(ncclCommInitRank(&s_->comm, size(), id, rank()), "ncclCommInitRank");
  try {
    cuda_check(cudaStreamCreateWithFlags(&s_->side, cudaStreamNonBlocking), "cudaStreamCreate");
    void* word = nullptr;
    cuda_check(cudaMalloc(&word, sizeof(int)), "cudaMalloc");
    s_->barrier_word = static_cast<int*>(word);
    cuda_check(cudaMemsetAsync(word, 0, sizeof(int), s_->compute), "cudaMemsetAsync");
  } catch (...) {
    if (s_->barrier_word) cudaFree(s_->barrier_word);
    if (s_->side) cudaStreamDestroy(s_->side);
    ncclCommDestroy(s_->comm);
    throw;
  }
}

NcclComm::~NcclComm() {
  cudaSetDevice(s_->device);
  cudaStreamSynchronize(s_->side);
  cudaStreamSynchronize(s_->compute);
  ncclCommDestroy(s_->comm);
  cudaFree(s_->barrier_word);
  cudaStreamDestroy(s_->side);
}

void NcclComm::do_all_reduce(const Tensor& t) {
  s_->bind();
  nccl_check(ncclAllReduce(t.ptr, t.ptr, static_cast<std::size_t>(t.numel()), sum_type(t), ncclSum,
                           s_->comm, s_->compute),
             "ncclAllReduce", s_->comm);
}

void NcclComm::do_reduce_scatter(const Tensor& out, const Tensor& in) {
  s_->bind();
  nccl_check(ncclReduceScatter(in.ptr, out.ptr, static_cast<std::size_t>(out.numel()), sum_type(in),
                               ncclSum, s_->comm, s_->compute),
             "ncclReduceScatter", s_->comm);
}

void NcclComm::do_all_gather(const Tensor& out, const Tensor& in) {
  s_->bind();
  nccl_check(ncclAllGather(in.ptr, out.ptr, in.bytes(), ncclUint8, s_->comm, s_->compute),
             "ncclAllGather", s_->comm);
}

void NcclComm::do_all_to_all(const Tensor& out, const Tensor& in) {
  s_->bind();
  // NCCL user guide, "Point-to-point communication: All-to-all": a send and a receive per
  // peer (this rank included) in one group.
  const std::size_t chunk = in.bytes() / static_cast<std::size_t>(size());
  nccl_check(ncclGroupStart(), "ncclGroupStart");
  ncclResult_t r = ncclSuccess;
  for (int j = 0; j < size() && r == ncclSuccess; ++j) {
    const std::size_t off = chunk * static_cast<std::size_t>(j);
    r = ncclSend(byte_offset(in.ptr, off), chunk, ncclUint8, j, s_->comm, s_->compute);
    if (r == ncclSuccess) {
      r = ncclRecv(byte_offset(out.ptr, off), chunk, ncclUint8, j, s_->comm, s_->compute);
    }
  }
  const ncclResult_t end = ncclGroupEnd();
  nccl_check(r, "ncclSend/ncclRecv (all-to-all)", s_->comm);
  nccl_check(end, "ncclGroupEnd (all-to-all)", s_->comm);
}

void NcclComm::do_broadcast(const Tensor& t, int root) {
  s_->bind();
  nccl_check(ncclBroadcast(t.ptr, t.ptr, t.bytes(), ncclUint8, root, s_->comm, s_->compute),
             "ncclBroadcast", s_->comm);
}

void NcclComm::do_send(const Tensor& t, int peer) {
  s_->bind();
  nccl_check(ncclSend(t.ptr, t.bytes(), ncclUint8, peer, s_->comm, s_->compute), "ncclSend",
             s_->comm);
}

void NcclComm::do_recv(const Tensor& t, int peer) {
  s_->bind();
  nccl_check(ncclRecv(t.ptr, t.bytes(), ncclUint8, peer, s_->comm, s_->compute), "ncclRecv",
             s_->comm);
}

void NcclComm::send_recv(const Tensor& send_t, int to, const Tensor& recv_t, int from) {
  s_->bind();
  // Inside the group, ncclSend and ncclRecv only record; ncclGroupEnd launches both together.
  nccl_check(ncclGroupStart(), "ncclGroupStart");
  try {
    send(send_t, to);
    recv(recv_t, from);
  } catch (...) {
    ncclGroupEnd();
    throw;
  }
  nccl_check(ncclGroupEnd(), "ncclGroupEnd (send_recv)", s_->comm);
}

std::unique_ptr<CommRequest> NcclComm::do_send_async(const Tensor& t, int peer) {
  s_->bind();
  s_->side_after_compute();
  nccl_check(ncclSend(t.ptr, t.bytes(), ncclUint8, peer, s_->comm, s_->side), "ncclSend", s_->comm);
  return s_->side_done();
}

std::unique_ptr<CommRequest> NcclComm::do_all_reduce_async(const Tensor& t) {
  s_->bind();
  s_->side_after_compute();
  nccl_check(ncclAllReduce(t.ptr, t.ptr, static_cast<std::size_t>(t.numel()), sum_type(t), ncclSum,
                           s_->comm, s_->side),
             "ncclAllReduce", s_->comm);
  return s_->side_done();
}

void NcclComm::do_barrier() {
  s_->bind();
  nccl_check(ncclAllReduce(s_->barrier_word, s_->barrier_word, 1, ncclInt32, ncclSum, s_->comm,
                           s_->compute),
             "ncclAllReduce (barrier)", s_->comm);
  cuda_check(cudaStreamSynchronize(s_->compute), "cudaStreamSynchronize");
}

ProcessGrid make_nccl_grid(const GridShape& shape, void* stream) {
  ProcessGrid g = make_mpi_grid(shape);
  for (std::unique_ptr<Comm>* c : {&g.world, &g.data, &g.tensor, &g.pipeline, &g.embedding}) {
    if (!*c) continue;
    auto& group = dynamic_cast<MpiComm&>(**c);
    auto nccl = std::make_unique<NcclComm>(group, stream);
    *c = std::move(nccl);  // the MPI communicator is freed: NCCL needs it only to start
  }
  // g.host stays MPI: host scalars.
  return g;
}

}  // namespace tb
