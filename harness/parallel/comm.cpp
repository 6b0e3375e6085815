#include "comm.h"

#include <optional>
#include <stdexcept>
#include <utility>

#include "../profile/profiler.h"

namespace tb {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
}  // namespace

std::string_view parallel_dim_name(ParallelDim d) {
  switch (d) {
    case ParallelDim::data:
      return "data";
    case ParallelDim::tensor:
      return "tensor";
    case ParallelDim::pipeline:
      return "pipeline";
    case ParallelDim::world:
      return "world";
  }
  return "?";
}

void require_reducible(const Tensor& t, std::string_view what) {
  if (t.dtype != DType::f32 && t.dtype != DType::f64) {
    throw std::invalid_argument(std::string(what) + " of a " + std::string(dtype_name(t.dtype)) +
                                " tensor (expected f32 or f64)");
  }
}

template <class F>
void Comm::timed(double bytes, F&& f) {
  std::optional<Profiler::Range> r;
  if (profiler_) r.emplace(*profiler_, Phase::communication);
  const auto t0 = Clock::now();
  f();
  stats_.seconds += since(t0);
  stats_.bytes += bytes;
  ++stats_.calls;
}

void Comm::all_reduce(const Tensor& t) {
  require_reducible(t, "all_reduce");
  timed(double(t.bytes()), [&] { do_all_reduce(t); });
}

void Comm::reduce_scatter(const Tensor& out, const Tensor& in) {
  require_reducible(in, "reduce_scatter");
  if (in.dtype != out.dtype || in.numel() != out.numel() * size_) {
    throw std::invalid_argument(
        "reduce_scatter of " + std::to_string(in.numel()) + " into " + std::to_string(out.numel()) +
        " elements (expected in = " + std::to_string(size_) + " × out, same dtype)");
  }
  timed(double(in.bytes()), [&] { do_reduce_scatter(out, in); });
}

void Comm::all_gather(const Tensor& out, const Tensor& in) {
  if (in.dtype != out.dtype || out.numel() != in.numel() * size_) {
    throw std::invalid_argument(
        "all_gather of " + std::to_string(in.numel()) + " into " + std::to_string(out.numel()) +
        " elements (expected out = " + std::to_string(size_) + " × in, same dtype)");
  }
  timed(double(out.bytes()), [&] { do_all_gather(out, in); });
}

void Comm::all_to_all(const Tensor& out, const Tensor& in) {
  if (in.dtype != out.dtype || in.numel() != out.numel() || in.numel() % size_ != 0) {
    throw std::invalid_argument(
        "all_to_all of " + std::to_string(in.numel()) + " into " + std::to_string(out.numel()) +
        " elements (expected equal sizes, a multiple of " + std::to_string(size_) + ")");
  }
  timed(double(in.bytes()), [&] { do_all_to_all(out, in); });
}

void Comm::broadcast(const Tensor& t, int root) {
  if (root < 0 || root >= size_) {
    throw std::invalid_argument("broadcast root " + std::to_string(root) +
                                " (expected 0 <= root < " + std::to_string(size_) + ")");
  }
  timed(double(t.bytes()), [&] { do_broadcast(t, root); });
}

namespace {
void check_peer(int peer, int rank, int size, const char* what) {
  if (peer < 0 || peer >= size || peer == rank) {
    throw std::invalid_argument(std::string(what) + " peer " + std::to_string(peer) +
                                " (expected another rank in [0, " + std::to_string(size) + "))");
  }
}
}  // namespace

void Comm::send(const Tensor& t, int peer) {
  check_peer(peer, rank_, size_, "send");
  timed(double(t.bytes()), [&] { do_send(t, peer); });
}

void Comm::recv(const Tensor& t, int peer) {
  check_peer(peer, rank_, size_, "recv");
  timed(double(t.bytes()), [&] { do_recv(t, peer); });
}

void Comm::barrier() {
  timed(0, [&] { do_barrier(); });
}

// Wraps an implementation's request: its completion time is observed at test()/wait(), and
// the seconds blocked in wait() are exposed communication.
class TimedCommRequest final : public CommRequest {
 public:
  TimedCommRequest(Comm& c, std::unique_ptr<CommRequest> inner, bool count_async)
      : comm_(c), inner_(std::move(inner)), issued_(Clock::now()), count_async_(count_async) {}
  ~TimedCommRequest() override {
    try {
      wait();
    } catch (...) {
    }
  }
  bool test() override {
    if (done_) return true;
    if (inner_->test()) finish();
    return done_;
  }
  void wait() override {
    if (done_) return;
    {
      std::optional<Profiler::Range> r;
      if (comm_.profiler_) r.emplace(*comm_.profiler_, Phase::communication);
      const auto t0 = Clock::now();
      inner_->wait();
      const double w = since(t0);
      comm_.stats_.seconds += w;
      if (count_async_) comm_.stats_.async_wait_seconds += w;
    }
    finish();
  }

 private:
  void finish() {
    done_ = true;
    if (count_async_) comm_.stats_.async_seconds += since(issued_);
  }
  Comm& comm_;
  std::unique_ptr<CommRequest> inner_;
  Clock::time_point issued_;
  bool count_async_;
  bool done_ = false;
};

std::unique_ptr<CommRequest> Comm::send_async(const Tensor& t, int peer) {
  check_peer(peer, rank_, size_, "send");
  std::unique_ptr<CommRequest> inner;
  timed(double(t.bytes()), [&] { inner = do_send_async(t, peer); });
  return std::make_unique<TimedCommRequest>(*this, std::move(inner), false);
}

std::unique_ptr<CommRequest> Comm::all_reduce_async(const Tensor& t) {
  require_reducible(t, "all_reduce");
  std::unique_ptr<CommRequest> inner;
  timed(double(t.bytes()), [&] { inner = do_all_reduce_async(t); });
  return std::make_unique<TimedCommRequest>(*this, std::move(inner), true);
}

CommStats Comm::take_stats() {
  CommStats s = stats_;
  stats_ = {};
  return s;
}

}  // namespace tb
