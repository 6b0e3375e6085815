// MpiComm under mpirun (np 2 and np 4): every Comm call against exact expected values (inputs
// are small integers, so every sum is exact in f32 and f64, in any order), and the payload
// bytes that take_stats() counts against the sizes comm.h documents.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "parallel/mpi_comm.h"

namespace tb {
namespace {

std::size_t sz(std::int64_t x) { return static_cast<std::size_t>(x); }

template <class T>
Tensor view(std::vector<T>& v) {
  return Tensor(v.data(), dtype_of<T>(), {static_cast<std::int64_t>(v.size())});
}

// How many elements of `got` differ from want(i); the first difference goes to the message.
template <class T, class F>
::testing::AssertionResult all_equal(const std::vector<T>& got, F&& want) {
  std::int64_t wrong = 0;
  std::string first;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const T w = static_cast<T>(want(static_cast<std::int64_t>(i)));
    if (got[i] != w) {
      if (wrong++ == 0) {
        first = "element " + std::to_string(i) + " = " + std::to_string(got[i]) + ", expected " +
                std::to_string(w);
      }
    }
  }
  if (wrong == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << wrong << " of " << got.size() << " wrong; " << first;
}

class MpiCommTest : public ::testing::Test {
 protected:
  void SetUp() override {
    comm = MpiComm::world();
    n_ = comm->size();
    me_ = comm->rank();
  }
  std::unique_ptr<MpiComm> comm;
  int n_ = 1, me_ = 0;
};

template <class T>
class MpiReduceTest : public MpiCommTest {};
using Floats = ::testing::Types<float, double>;
TYPED_TEST_SUITE(MpiReduceTest, Floats);

TYPED_TEST(MpiReduceTest, AllReduceSums) {
  const int n = this->n_, me = this->me_;
  for (std::int64_t len : {1, 7, 4096, 300001}) {
    std::vector<TypeParam> x(static_cast<std::size_t>(len));
    for (std::int64_t i = 0; i < len; ++i) x[sz(i)] = TypeParam(me * 1000 + i % 977);
    this->comm->all_reduce(view(x));
    // Σ_r (1000 r + i mod 977) = 1000·n(n−1)/2 + n·(i mod 977)
    EXPECT_TRUE(all_equal(x, [&](std::int64_t i) { return 500.0 * n * (n - 1) + n * (i % 977); }))
        << "length " << len;
  }
}

TYPED_TEST(MpiReduceTest, ReduceScatterGivesEachRankItsChunkOfTheSum) {
  const int n = this->n_, me = this->me_;
  const std::int64_t m = 1031;
  std::vector<TypeParam> in(sz(n * m)), out(sz(m), TypeParam(-1));
  for (std::int64_t j = 0; j < n * m; ++j) in[sz(j)] = TypeParam(me + 3 * (j % 1000));
  this->comm->reduce_scatter(view(out), view(in));
  EXPECT_TRUE(all_equal(out, [&](std::int64_t i) {
    const std::int64_t j = me * m + i;
    return 0.5 * n * (n - 1) + 3.0 * n * (j % 1000);
  }));
}

TYPED_TEST(MpiReduceTest, AllReduceAsyncWithTestThenWait) {
  const int n = this->n_, me = this->me_;
  std::vector<TypeParam> a(50000), b(333);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = TypeParam(me + 1 + int(i % 5));
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = TypeParam(2 * me);
  auto ra = this->comm->all_reduce_async(view(a));
  auto rb = this->comm->all_reduce_async(view(b));
  // test() until done (bounded), then wait() is a no-op; b is finished by wait() alone.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool done = false;
  while (!(done = ra->test()) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_TRUE(done);
  ra->wait();
  EXPECT_TRUE(ra->test());
  rb->wait();
  EXPECT_TRUE(rb->test());
  EXPECT_TRUE(all_equal(a, [&](std::int64_t i) { return n * (n + 1) / 2.0 + n * (i % 5); }));
  EXPECT_TRUE(all_equal(b, [&](std::int64_t) { return double(n) * (n - 1); }));
  const CommStats s = this->comm->take_stats();
  EXPECT_EQ(s.calls, 2);
  EXPECT_GT(s.async_seconds, 0.0);
}

TEST_F(MpiCommTest, AllGatherConcatenatesInRankOrder) {
  const int n = n_, me = me_;
  const std::int64_t m = 513;
  std::vector<float> in(sz(m)), out(sz(n * m), -1.0f);
  for (std::int64_t i = 0; i < m; ++i) in[sz(i)] = float(100 * me + i);
  comm->all_gather(view(out), view(in));
  EXPECT_TRUE(all_equal(out, [&](std::int64_t i) { return 100.0 * (i / m) + i % m; }));
  // Bytes of any dtype.
  std::vector<std::int32_t> id{me * 7 + 1}, ids(sz(n), -1);
  comm->all_gather(view(ids), view(id));
  EXPECT_TRUE(all_equal(ids, [&](std::int64_t r) { return r * 7 + 1; }));
}

TEST_F(MpiCommTest, AllToAllSendsChunkJToRankJ) {
  const int n = n_, me = me_;
  const std::int64_t m = 257;
  std::vector<double> in(sz(n * m)), out(sz(n * m), -1.0);
  // Chunk j of rank r: 1000 r + 10 j + e.
  for (std::int64_t k = 0; k < n * m; ++k) in[sz(k)] = 1000.0 * me + 10.0 * (k / m) + k % m;
  comm->all_to_all(view(out), view(in));
  // Chunk i of the output came from rank i: its chunk `me`.
  EXPECT_TRUE(all_equal(out, [&](std::int64_t k) { return 1000.0 * (k / m) + 10.0 * me + k % m; }));
}

TEST_F(MpiCommTest, BroadcastFromEveryRoot) {
  const int n = n_, me = me_;
  for (int root = 0; root < n; ++root) {
    std::vector<float> t(1000, -1.0f);
    if (me == root) {
      for (std::size_t i = 0; i < t.size(); ++i) t[i] = float(root * 10000 + int(i));
    }
    comm->broadcast(view(t), root);
    EXPECT_TRUE(all_equal(t, [&](std::int64_t i) { return root * 10000.0 + i; }))
        << "root " << root;
  }
}

TEST_F(MpiCommTest, SendRecvBetweenPairs) {
  const int n = n_, me = me_;
  // Pairs (0,1), (2,3): the even rank sends first, then receives the odd rank's answer.
  const int peer = me ^ 1;
  if (peer >= n) GTEST_SKIP() << "odd world size";
  std::vector<double> out(2000), in(2000, -1.0);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = 10.0 * me + double(i);
  if (me % 2 == 0) {
    comm->send(view(out), peer);
    comm->recv(view(in), peer);
  } else {
    comm->recv(view(in), peer);
    comm->send(view(out), peer);
  }
  EXPECT_TRUE(all_equal(in, [&](std::int64_t i) { return 10.0 * peer + i; }));
}

TEST_F(MpiCommTest, SendAsyncAroundARing) {
  const int n = n_, me = me_;
  const int next = (me + 1) % n, prev = (me + n - 1) % n;
  std::vector<std::int32_t> out(1 << 20), in(1 << 20, -1);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = me * 3 + int(i % 11);
  auto req = comm->send_async(view(out), next);
  comm->recv(view(in), prev);
  req->wait();
  EXPECT_TRUE(req->test());
  EXPECT_TRUE(all_equal(in, [&](std::int64_t i) { return prev * 3 + i % 11; }));
}

TEST_F(MpiCommTest, BadArgumentsAreOneLineErrors) {
  const int n = n_, me = me_;
  std::vector<std::int32_t> ints(4);
  EXPECT_THROW(comm->all_reduce(view(ints)), std::invalid_argument);
  std::vector<float> a(5), b(3);
  EXPECT_THROW(comm->reduce_scatter(view(b), view(a)), std::invalid_argument);
  EXPECT_THROW(comm->send(view(a), me), std::invalid_argument);
  EXPECT_THROW(comm->broadcast(view(a), n), std::invalid_argument);
  try {
    comm->all_reduce(view(ints));
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "all_reduce of a i32 tensor (expected f32 or f64)");
  }
  EXPECT_EQ(comm->take_stats().calls, 0);  // refused calls are not counted
}

// comm.h: all-reduce counts the buffer, reduce-scatter its input, all-gather its output,
// all-to-all, broadcast, send and recv the tensor, barrier nothing.
TEST_F(MpiCommTest, StatsCountTheDocumentedPayloads) {
  const int n = n_, me = me_;
  (void)comm->take_stats();
  std::vector<float> f(1000);
  std::vector<double> rs_in(sz(n) * 64), rs_out(64), ag_in(10), ag_out(sz(n) * 10);
  std::vector<std::int32_t> a2a_in(sz(n) * 5), a2a_out(sz(n) * 5);
  std::vector<float> msg(300), got(300);
  comm->all_reduce(view(f));                        // 4000
  comm->reduce_scatter(view(rs_out), view(rs_in));  // 8·64n
  comm->all_gather(view(ag_out), view(ag_in));      // 8·10n
  comm->all_to_all(view(a2a_out), view(a2a_in));    // 4·5n
  comm->broadcast(view(f), 0);                      // 4000
  const int next = (me + 1) % n, prev = (me + n - 1) % n;
  auto req = comm->send_async(view(msg), next);  // 1200
  comm->recv(view(got), prev);                   // 1200
  req->wait();
  auto ar = comm->all_reduce_async(view(f));  // 4000
  ar->wait();
  comm->barrier();  // 0
  const CommStats s = comm->take_stats();
  EXPECT_EQ(s.calls, 9);
  EXPECT_EQ(s.bytes, 4000.0 + 512.0 * n + 80.0 * n + 20.0 * n + 4000 + 1200 + 1200 + 4000);
  EXPECT_GT(s.seconds, 0.0);
  const CommStats again = comm->take_stats();
  EXPECT_EQ(again.calls, 0);
  EXPECT_EQ(again.bytes, 0.0);
  EXPECT_EQ(comm->dim(), ParallelDim::world);
  EXPECT_EQ(comm->backend_name(), "mpi");
}

}  // namespace
}  // namespace tb
