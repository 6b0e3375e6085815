#include "rank_setup.h"

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "../parallel/local_ranks.h"
#include "../parallel/mpi_comm.h"
#include "../parallel/nccl_comm.h"
#include "device.h"
#include "tb/cpu_backend.h"
#include "tb/cuda_backend.h"

namespace tb {

int prepare_rank_device(const RunConfig& c, DeviceKind device) {
#if TB_HAVE_NCCL
  if (c.ranks() > 1 && device == DeviceKind::cuda) return select_local_gpu();
#else
  (void)c;
  (void)device;
#endif
  return 0;
}

int rank_threads(const RunConfig& c) {
  if (c.threads > 0 || c.ranks() == 1) return c.threads;
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int local = std::max(1, MpiRuntime::launched() ? local_ranks().size : c.ranks());
  return std::max(1, cores / local);
}

RankSetup make_rank_setup(const RunConfig& c, const ModelConfig& m, Backend& backend) {
  RankSetup r;
  if (c.ranks() == 1) return r;
  const GridShape shape{c.dp, c.tp, c.pp};
  if (backend.kind() == DeviceKind::cuda) {
#if TB_HAVE_NCCL
    r.grid = std::make_unique<ProcessGrid>(make_nccl_grid(shape, cuda_stream_of(backend)));
#else
    throw DeviceUnsupported("dp·tp·pp = " + std::to_string(c.ranks()) +
                            " ranks on cuda (expected a build with NCCL: this one has none)");
#endif
  } else {
    r.grid = std::make_unique<ProcessGrid>(make_mpi_grid(shape));
  }
  r.shard = shard_for(shape, r.grid->coord, m.n_layer);
  if (c.expert_parallel) {  // experts split over the data-parallel group (docs/sparse.md)
    r.shard.expert_parallel_size = c.dp;
    r.shard.expert_parallel_rank = r.grid->coord.dp_rank;
  }
  r.ctx.grid = r.grid.get();
  r.ctx.schedule = parse_pipeline_schedule(c.pp_schedule);
  r.ctx.zero = c.zero;
  r.ctx.bucket_bytes = c.bucket_mb * 1024.0 * 1024.0;
  r.ctx.sequence_parallel = c.sequence_parallel;
  r.flat_multiple = c.zero == 1 ? c.dp : 1;
  return r;
}

bool agree(const RankSetup& r, bool rank0_decision) {
  if (!r.grid) return rank0_decision;
  double v = r.rank() == 0 && rank0_decision ? 1.0 : 0.0;
  r.grid->host->all_reduce(Tensor(&v, DType::f64, {1}));
  return v > 0;
}

std::vector<nlohmann::json> gather_json(const RankSetup& r, const nlohmann::json& mine) {
  if (!r.grid) return {mine};
  Comm& host = *r.grid->host;
  const std::string text = mine.dump();
  const int n = host.size();
  std::vector<double> lengths(static_cast<std::size_t>(n));
  double len = double(text.size());
  host.all_gather(Tensor(lengths.data(), DType::f64, {n}), Tensor(&len, DType::f64, {1}));
  const auto longest = static_cast<std::int64_t>(*std::max_element(lengths.begin(), lengths.end()));
  const std::int64_t words = (longest + 3) / 4;  // as i32 elements
  std::vector<std::int32_t> send(static_cast<std::size_t>(words), 0),
      recv(static_cast<std::size_t>(words * n));
  std::copy(text.begin(), text.end(), reinterpret_cast<char*>(send.data()));
  host.all_gather(Tensor(recv.data(), DType::i32, {words * n}),
                  Tensor(send.data(), DType::i32, {words}));
  std::vector<nlohmann::json> out;
  const char* base = reinterpret_cast<const char*>(recv.data());
  for (int i = 0; i < n; ++i) {
    out.push_back(nlohmann::json::parse(
        std::string(base + static_cast<std::size_t>(i * words * 4),
                    static_cast<std::size_t>(lengths[static_cast<std::size_t>(i)]))));
  }
  return out;
}

std::vector<double> max_over_ranks(const RankSetup& r, const std::vector<double>& mine) {
  if (!r.grid) return mine;
  Comm& host = *r.grid->host;
  const auto k = static_cast<std::int64_t>(mine.size());
  std::vector<double> all(static_cast<std::size_t>(k * host.size()));
  std::vector<double> copy = mine;
  host.all_gather(Tensor(all.data(), DType::f64, {k * host.size()}),
                  Tensor(copy.data(), DType::f64, {k}));
  std::vector<double> out = mine;
  for (int rank = 0; rank < host.size(); ++rank) {
    for (std::int64_t i = 0; i < k; ++i) {
      out[static_cast<std::size_t>(i)] =
          std::max(out[static_cast<std::size_t>(i)], all[static_cast<std::size_t>(rank * k + i)]);
    }
  }
  return out;
}

}  // namespace tb
