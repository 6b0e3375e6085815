// `trainbench comm`'s measurement loop (the formulas are in collective_bench_formulas.cpp).
#include "collective_bench.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include "local_ranks.h"
#include "mpi_comm.h"
#include "nccl_comm.h"
#include "tb/backend.h"
#include "tb/cpu_backend.h"
#include "tb/cuda_backend.h"
#include "tb/devices.h"

namespace tb {

namespace {

using Clock = std::chrono::steady_clock;

// MemAvailable of /proc/meminfo (what can be allocated without swapping); the free pages when
// it cannot be read.
std::size_t host_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::size_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return static_cast<std::size_t>(sysconf(_SC_AVPHYS_PAGES)) *
         static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// Runs f on every rank. When it throws anywhere, it throws on every rank: the lowest failing
// rank rethrows its own exception, the others CommFailedElsewhere — so no rank is left waiting
// in a collective that another never reaches, and the error is reported once.
void on_every_rank(Comm& coord, const std::function<void()>& f) {
  std::exception_ptr error;
  try {
    f();
  } catch (...) {
    error = std::current_exception();
  }
  const int n = coord.size();
  std::vector<std::int32_t> failed(static_cast<std::size_t>(n));
  std::int32_t mine = error ? 1 : 0;
  coord.all_gather(Tensor(failed.data(), DType::i32, {n}), Tensor(&mine, DType::i32, {1}));
  for (int r = 0; r < n; ++r) {
    if (!failed[static_cast<std::size_t>(r)]) continue;
    if (r == coord.rank()) std::rethrow_exception(error);
    throw CommFailedElsewhere("rank " + std::to_string(r) + " failed (its error is on its stderr)");
  }
}

void validate(const CollectiveBenchOptions& o) {
  if (o.device != "cpu" && o.device != "cuda") {
    throw std::invalid_argument("--device '" + o.device + "' (expected cpu or cuda)");
  }
  if (o.dtype != DType::f32 && o.dtype != DType::f64) {
    throw std::invalid_argument("--dtype " + std::string(dtype_name(o.dtype)) +
                                " (expected f32 or f64)");
  }
  if (o.iters < 1) {
    throw std::invalid_argument("--iters " + std::to_string(o.iters) + " (expected >= 1)");
  }
  if (o.warmup < 0) {
    throw std::invalid_argument("--warmup " + std::to_string(o.warmup) + " (expected >= 0)");
  }
  if (o.min_bytes < 1) {
    throw std::invalid_argument("--min-bytes " + std::to_string(o.min_bytes) + " (expected >= 1)");
  }
  if (o.max_bytes > kMaxCommBytes) {
    throw std::invalid_argument("--max-bytes " + std::to_string(o.max_bytes) +
                                " (expected <= 1 GiB = " + std::to_string(kMaxCommBytes) + ")");
  }
  if (o.max_bytes != 0 && o.max_bytes < o.min_bytes) {
    throw std::invalid_argument("--max-bytes " + std::to_string(o.max_bytes) +
                                " (expected >= --min-bytes " + std::to_string(o.min_bytes) + ")");
  }
  if (o.collectives.empty()) {
    throw std::invalid_argument("no collective to run (expected at least one)");
  }
}

// Host-side staging of one buffer for a device backend (on the CPU the tensor is read and
// written in place).
class Staging {
 public:
  Staging(Backend& be, std::size_t bytes)
      : be_(be), words_(be.kind() == DeviceKind::cpu ? 0 : bytes / sizeof(double) + 1) {}
  template <class T, class F>
  void write(const Tensor& t, F&& value) {
    T* p = static_cast<T*>(host(t));
    const std::int64_t n = t.numel();
    for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(value(i));
    if (!words_.empty()) be_.copy_from_host(t, p);
  }
  template <class T>
  std::int64_t count_wrong(const Tensor& t, const ExpectedOutput& want) {
    const T* p = static_cast<const T*>(host(t));
    if (!words_.empty()) be_.copy_to_host(words_.data(), t);
    std::int64_t wrong = 0;
    const std::int64_t n = t.numel();
    for (std::int64_t i = 0; i < n; ++i) wrong += p[i] != static_cast<T>(want(i));
    return wrong;
  }

 private:
  void* host(const Tensor& t) { return words_.empty() ? t.ptr : words_.data(); }
  Backend& be_;
  std::vector<double> words_;
};

// What one rank needs to run the benchmark: the device's backend, the communicator under test
// and its ring exchange (send to `to` while receiving from `from`).
struct Setup {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Comm> comm;
  std::function<void(const Tensor&, int, const Tensor&, int)> exchange;
  std::size_t memory_bound = 0;  // default_max_bytes on this rank
};

Setup make_device(const CollectiveBenchOptions& o) {
  Setup s;
  const std::size_t host = host_available_bytes();
  const LocalRanks local = local_ranks();
  if (o.device == "cpu") {
    s.backend = make_cpu_backend();
    s.memory_bound = default_max_bytes(host, local.size, 0);
    return s;
  }
#if TB_HAVE_NCCL
  const int device = select_local_gpu();
  s.backend = make_cuda_backend(device);
  std::size_t device_bytes = 0;
  for (const GpuInfo& g : query_gpus().devices) {
    if (g.index == device) device_bytes = g.memory_bytes;
  }
  s.memory_bound = default_max_bytes(host, local.size, device_bytes);
  return s;
#else
  throw std::runtime_error(
      "--device cuda: this build has no NCCL communicator (expected a build with the CUDA "
      "backend and the toolkit's NCCL: docs/collectives.md)");
#endif
}

void make_comm(Setup& s, MpiComm& coord, const CollectiveBenchOptions& o) {
  if (o.device == "cpu") {
    s.comm = MpiComm::world(ParallelDim::world);
    Comm* c = s.comm.get();
    // MPI: a non-blocking send overlapping the blocking receive (nccl-tests' ring step).
    s.exchange = [c](const Tensor& send, int to, const Tensor& recv, int from) {
      auto req = c->send_async(send, to);
      c->recv(recv, from);
      req->wait();
    };
    return;
  }
#if TB_HAVE_NCCL
  auto nccl = std::make_unique<NcclComm>(coord, cuda_stream_of(*s.backend));
  NcclComm* c = nccl.get();
  s.exchange = [c](const Tensor& send, int to, const Tensor& recv, int from) {
    c->send_recv(send, to, recv, from);
  };
  s.comm = std::move(nccl);
#else
  (void)coord;
#endif
}

std::vector<std::size_t> sizes_between(std::size_t lo, std::size_t hi) {
  std::vector<std::size_t> v;
  for (std::size_t s = lo; s <= hi; s *= 2) v.push_back(s);
  return v;
}

}  // namespace

CollectiveBenchReport run_collective_bench(
    const CollectiveBenchOptions& o,
    const std::function<void(const CollectiveBenchReport&)>& on_start,
    const std::function<void(const CollectiveResult&)>& on_result) {
  auto coord = MpiComm::world(ParallelDim::world);
  const int n = coord->size();
  const int me = coord->rank();
  Setup s;
  on_every_rank(*coord, [&] {
    validate(o);
    s = make_device(o);
    if (o.max_bytes > s.memory_bound) {
      throw std::invalid_argument("--max-bytes " + std::to_string(o.max_bytes) +
                                  " (expected <= " + std::to_string(s.memory_bound) +
                                  ": two buffers per rank must fit in half the memory)");
    }
  });
  // The default largest size: the smallest bound over the ranks.
  std::vector<double> bounds(static_cast<std::size_t>(n));
  double my_bound = static_cast<double>(s.memory_bound);
  coord->all_gather(Tensor(bounds.data(), DType::f64, {n}), Tensor(&my_bound, DType::f64, {1}));
  const auto max_bytes =
      o.max_bytes ? o.max_bytes
                  : static_cast<std::size_t>(*std::min_element(bounds.begin(), bounds.end()));
  const auto sizes = sizes_between(o.min_bytes, max_bytes);
  on_every_rank(*coord, [&] {
    if (sizes.empty()) {
      throw std::invalid_argument("--min-bytes " + std::to_string(o.min_bytes) +
                                  " (expected <= the largest size, " + std::to_string(max_bytes) +
                                  ")");
    }
  });
  Buffer in, out;
  on_every_rank(*coord, [&] {
    make_comm(s, *coord, o);
    in = s.backend->allocate(sizes.back(), MemoryCategory::communication, "comm bench input");
    out = s.backend->allocate(sizes.back(), MemoryCategory::communication, "comm bench output");
  });
  Backend& be = *s.backend;
  Comm& comm = *s.comm;
  Staging staging(be, sizes.back());
  const bool f64 = o.dtype == DType::f64;

  CollectiveBenchReport report;
  report.world_size = n;
  report.rank = me;
  report.backend = std::string(comm.backend_name());
  report.device = o.device;
  report.options = o;
  report.options.max_bytes = max_bytes;
  if (on_start) on_start(report);

  for (Collective c : o.collectives) {
    if (c == Collective::send_recv && n < 2) continue;  // a ring needs two ranks
    for (std::size_t bytes : sizes) {
      const std::int64_t e = message_elements(c, bytes, o.dtype, n);
      if (e == 0) continue;
      const Tensor tin(in.data(), o.dtype, {input_elements(c, e, n)});
      const Tensor tout(out.data(), o.dtype, {output_elements(c, e, n)});
      const Tensor& result = c == Collective::all_reduce ? tin : tout;  // all-reduce: in place
      auto call = [&] {
        switch (c) {
          case Collective::all_reduce:
            comm.all_reduce(tin);
            break;
          case Collective::reduce_scatter:
            comm.reduce_scatter(tout, tin);
            break;
          case Collective::all_gather:
            comm.all_gather(tout, tin);
            break;
          case Collective::all_to_all:
            comm.all_to_all(tout, tin);
            break;
          case Collective::send_recv:
            s.exchange(tin, (me + 1) % n, tout, (me - 1 + n) % n);
            break;
        }
      };
      auto fill_input = [&] {
        auto v = [&](std::int64_t i) { return input_value(me, i); };
        if (f64) {
          staging.write<double>(tin, v);
        } else {
          staging.write<float>(tin, v);
        }
      };
      // Timing (nccl-tests' method): ranks start together after the warm-up; host clock around
      // `iters` back-to-back calls and the synchronisation that ends them. (The in-place
      // all-reduce's values grow by n per call, up to inf; sums of non-negative values stay
      // well defined and take the same time.)
      fill_input();
      be.synchronize();
      coord->barrier();
      for (int i = 0; i < o.warmup; ++i) call();
      be.synchronize();
      coord->barrier();
      const auto t0 = Clock::now();
      for (int i = 0; i < o.iters; ++i) call();
      be.synchronize();
      const double t = std::chrono::duration<double>(Clock::now() - t0).count() / o.iters;
      // Check: fresh inputs, outputs poisoned with −1 (never an expected value), one call.
      fill_input();
      if (c != Collective::all_reduce) {
        auto poison = [](std::int64_t) { return -1.0; };
        if (f64) {
          staging.write<double>(tout, poison);
        } else {
          staging.write<float>(tout, poison);
        }
      }
      call();
      be.synchronize();
      const ExpectedOutput want(c, n, me, e);
      const std::int64_t wrong = f64 ? staging.count_wrong<double>(result, want)
                                     : staging.count_wrong<float>(result, want);
      // The slowest rank's time; the wrong elements of all ranks.
      std::vector<double> all(2 * static_cast<std::size_t>(n));
      double mine[2] = {t, static_cast<double>(wrong)};
      coord->all_gather(Tensor(all.data(), DType::f64, {2 * n}), Tensor(mine, DType::f64, {2}));
      CollectiveResult r;
      r.collective = c;
      r.elements = e;
      r.bytes = static_cast<std::size_t>(e) * dtype_size(o.dtype);
      r.dtype = o.dtype;
      for (int k = 0; k < n; ++k) {
        r.time_s = std::max(r.time_s, all[2 * static_cast<std::size_t>(k)]);
        r.wrong += static_cast<std::int64_t>(all[2 * static_cast<std::size_t>(k) + 1]);
      }
      r.algbw_GBps = static_cast<double>(r.bytes) / r.time_s / 1e9;  // PERFORMANCE.md: S/t
      r.busbw_GBps = r.algbw_GBps * busbw_factor(c, n);
      report.results.push_back(r);
      if (on_result) on_result(r);
    }
  }
  coord->barrier();
  return report;
}

}  // namespace tb
