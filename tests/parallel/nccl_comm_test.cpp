// NcclComm under mpirun, one rank per GPU (np 1 and np 2): every Comm call on device tensors of
// the CUDA backend against exact expected values, the non-blocking calls' test()/wait(), and
// make_nccl_grid's communicators. Without a usable GPU for every rank of a node, every rank
// skips (the decision is agreed over MPI, so no rank waits in a collective alone) and ctest
// reports the test as skipped.
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "parallel/local_ranks.h"
#include "parallel/mpi_comm.h"
#include "parallel/nccl_comm.h"
#include "tb/cuda_backend.h"
#include "tb/devices.h"

namespace tb {
namespace {

std::size_t sz(std::int64_t x) { return static_cast<std::size_t>(x); }

// Why this rank cannot run the tests, or "".
std::string unusable_reason() {
  if (!cuda_backend_built()) return "this build has no CUDA backend";
  const GpuInventory inv = query_gpus();
  if (inv.devices.empty()) return inv.note.empty() ? "CUDA reports no devices" : inv.note;
  const LocalRanks local = local_ranks();
  if (local.size > static_cast<int>(inv.devices.size())) {
    return std::to_string(local.size) + " ranks on this node but " +
           std::to_string(inv.devices.size()) + " GPU(s) (one GPU per rank)";
  }
  return "";
}

class NcclCommTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    mpi_ = MpiComm::world().release();
    std::string why = unusable_reason();
    int ok = why.empty() ? 1 : 0;
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!ok) {
      skip_ = why.empty() ? "another rank has no usable GPU" : why;
      return;
    }
    backend_ = make_cuda_backend(select_local_gpu()).release();
    comm_ = new NcclComm(*mpi_, cuda_stream_of(*backend_));
  }
  static void TearDownTestSuite() {
    delete comm_;
    delete backend_;
    delete mpi_;
    comm_ = nullptr;
    backend_ = nullptr;
    mpi_ = nullptr;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    n_ = comm_->size();
    me_ = comm_->rank();
  }

  // A device tensor holding `values`, freed with the test.
  template <class T>
  Tensor device(const std::vector<T>& values) {
    buffers_.push_back(
        backend_->allocate(values.size() * sizeof(T), MemoryCategory::communication, "nccl test"));
    Tensor t(buffers_.back().data(), dtype_of<T>(), {static_cast<std::int64_t>(values.size())});
    backend_->copy_from_host(t, values.data());
    return t;
  }
  template <class T>
  std::vector<T> host(const Tensor& t) {
    std::vector<T> v(static_cast<std::size_t>(t.numel()));
    backend_->copy_to_host(v.data(), t);  // waits for the stream: the collectives before it
    return v;
  }
  template <class T, class F>
  static std::int64_t wrong(const std::vector<T>& got, F&& want) {
    std::int64_t w = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      w += got[i] != static_cast<T>(want(static_cast<std::int64_t>(i)));
    }
    return w;
  }

  static MpiComm* mpi_;
  static Backend* backend_;
  static NcclComm* comm_;
  static std::string skip_;
  std::vector<Buffer> buffers_;
  int n_ = 1, me_ = 0;
};
MpiComm* NcclCommTest::mpi_ = nullptr;
Backend* NcclCommTest::backend_ = nullptr;
NcclComm* NcclCommTest::comm_ = nullptr;
std::string NcclCommTest::skip_;

TEST_F(NcclCommTest, AllReduceF32AndF64) {
  const int n = n_, me = me_;
  std::vector<float> f(100003);
  std::vector<double> d(4099);
  for (std::size_t i = 0; i < f.size(); ++i) f[i] = float(me * 100 + int(i % 97));
  for (std::size_t i = 0; i < d.size(); ++i) d[i] = double(me + 2 * int(i % 31));
  const Tensor tf = device(f), td = device(d);
  comm_->all_reduce(tf);
  comm_->all_reduce(td);
  EXPECT_EQ(
      wrong(host<float>(tf), [&](std::int64_t i) { return 50.0 * n * (n - 1) + n * (i % 97); }), 0);
  EXPECT_EQ(wrong(host<double>(td),
                  [&](std::int64_t i) { return 0.5 * n * (n - 1) + 2.0 * n * (i % 31); }),
            0);
}

TEST_F(NcclCommTest, ReduceScatterAllGatherAllToAll) {
  const int n = n_, me = me_;
  const std::int64_t m = 1000;
  std::vector<float> in(sz(n * m)), none(sz(n * m), -1.0f);
  for (std::int64_t j = 0; j < n * m; ++j) in[sz(j)] = float(me + 3 * (j % 500));
  const Tensor tin = device(in);
  const Tensor rs = device(std::vector<float>(sz(m), -1.0f));
  comm_->reduce_scatter(rs, tin);
  EXPECT_EQ(
      wrong(host<float>(rs),
            [&](std::int64_t i) { return 0.5 * n * (n - 1) + 3.0 * n * ((me * m + i) % 500); }),
      0);

  std::vector<float> mine(sz(m));
  for (std::int64_t i = 0; i < m; ++i) mine[sz(i)] = float(100 * me + i);
  const Tensor ag = device(none);
  comm_->all_gather(ag, device(mine));
  EXPECT_EQ(wrong(host<float>(ag), [&](std::int64_t i) { return 100.0 * (i / m) + i % m; }), 0);

  std::vector<float> chunks(sz(n * m));
  for (std::int64_t k = 0; k < n * m; ++k)
    chunks[sz(k)] = float(1000 * me + 10 * (k / m) + (k % m) % 7);
  const Tensor a2a = device(none);
  comm_->all_to_all(a2a, device(chunks));
  EXPECT_EQ(wrong(host<float>(a2a),
                  [&](std::int64_t k) { return 1000.0 * (k / m) + 10.0 * me + (k % m) % 7; }),
            0);
}

TEST_F(NcclCommTest, BroadcastAndBarrier) {
  const int n = n_, me = me_;
  for (int root = 0; root < n; ++root) {
    std::vector<std::int32_t> v(5000, -1);
    if (me == root) {
      for (std::size_t i = 0; i < v.size(); ++i) v[i] = root * 7 + int(i);
    }
    const Tensor t = device(v);
    comm_->broadcast(t, root);
    EXPECT_EQ(wrong(host<std::int32_t>(t), [&](std::int64_t i) { return root * 7 + i; }), 0);
  }
  comm_->barrier();
}

TEST_F(NcclCommTest, SendRecvSendAsyncAndExchange) {
  const int n = n_, me = me_;
  // One rank has no peer (Comm refuses a send to itself). Not a skip: ctest would then report
  // the whole np-1 run as skipped though its other tests ran.
  if (n < 2) return;
  const int next = (me + 1) % n, prev = (me + n - 1) % n;
  std::vector<float> out(1 << 22);  // 16 MiB: beyond NCCL's buffers
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = float(me * 10 + int(i % 9));
  const Tensor tout = device(out);
  const Tensor tin = device(std::vector<float>(out.size(), -1.0f));
  comm_->send_recv(tout, next, tin, prev);
  EXPECT_EQ(wrong(host<float>(tin), [&](std::int64_t i) { return prev * 10.0 + i % 9; }), 0);

  // Blocking pair: rank 0 sends to 1 (one direction, so no ordering hazard).
  const Tensor got = device(std::vector<float>(out.size(), -1.0f));
  if (me == 0) comm_->send(tout, 1);
  if (me == 1) comm_->recv(got, 0);
  if (me == 1) {
    EXPECT_EQ(wrong(host<float>(got), [&](std::int64_t i) { return 0.0 + i % 9; }), 0);
  }
  // Non-blocking send, 1 → 0.
  const Tensor got2 = device(std::vector<float>(out.size(), -1.0f));
  if (me == 1) {
    auto req = comm_->send_async(tout, 0);
    req->wait();
    EXPECT_TRUE(req->test());
  }
  if (me == 0) {
    comm_->recv(got2, 1);
    EXPECT_EQ(wrong(host<float>(got2), [&](std::int64_t i) { return 10.0 + i % 9; }), 0);
  }
  comm_->barrier();
}

TEST_F(NcclCommTest, AllReduceAsyncTestThenWait) {
  const int n = n_, me = me_;
  std::vector<float> v(1 << 20);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = float(me + 1 + int(i % 3));
  const Tensor t = device(v);
  (void)comm_->take_stats();  // the suite shares the communicator: count from here
  auto req = comm_->all_reduce_async(t);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool done = false;
  while (!(done = req->test()) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_TRUE(done);
  req->wait();
  EXPECT_EQ(wrong(host<float>(t), [&](std::int64_t i) { return n * (n + 1) / 2.0 + n * (i % 3); }),
            0);
  // wait() alone: the compute stream's later work (the copy) sees the sum.
  auto again = comm_->all_reduce_async(t);
  again->wait();
  EXPECT_EQ(
      wrong(host<float>(t), [&](std::int64_t i) { return n * (n * (n + 1) / 2.0 + n * (i % 3)); }),
      0);
  const CommStats s = comm_->take_stats();
  EXPECT_EQ(s.calls, 2);
  EXPECT_EQ(s.bytes, 2.0 * 4 * v.size());
}

TEST_F(NcclCommTest, GridCommunicatorsMirrorTheMpiGrid) {
  const int n = n_, me = me_;
  ProcessGrid g = make_nccl_grid({n, 1, 1}, cuda_stream_of(*backend_));
  ASSERT_TRUE(g.world && g.data && g.tensor && g.pipeline);
  EXPECT_EQ(g.data->backend_name(), "nccl");
  EXPECT_EQ(g.data->size(), n);
  EXPECT_EQ(g.tensor->size(), 1);
  EXPECT_FALSE(g.embedding);
  // Members of the data group, gathered over NCCL: every world rank in order.
  const Tensor id = device(std::vector<std::int32_t>{me});
  const Tensor all = device(std::vector<std::int32_t>(sz(n), -1));
  g.data->all_gather(all, id);
  EXPECT_EQ(wrong(host<std::int32_t>(all), [](std::int64_t r) { return r; }), 0);
}

}  // namespace
}  // namespace tb
