// One rank's part of a variant with a parallel split (docs/parallel.md): its process grid —
// MPI communicators on a CPU, NCCL ones on GPUs (one per rank, by local rank) — its shard of
// the model and the trainer's ParallelContext; and how this rank's measurements become the
// job's: agreed stop decisions, and every rank's summary gathered on rank 0.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../model/config.h"
#include "../parallel/grid.h"
#include "../scenario/scenario.h"
#include "../train/parallel_context.h"
#include "tb/backend.h"

namespace tb {

struct RankSetup {
  std::unique_ptr<ProcessGrid> grid;  // null for a single process
  ParallelContext ctx;
  ShardSpec shard;
  std::int64_t flat_multiple = 1;
  bool parallel() const { return grid != nullptr; }
  int rank() const { return grid ? grid->rank : 0; }
  int world() const { return grid ? grid->shape.world() : 1; }
  const ParallelContext* context() const { return grid ? &ctx : nullptr; }
};

// Before the backend is made: on a GPU, picks this rank's device (one per rank, by local
// rank) and returns its index; 0 otherwise.
int prepare_rank_device(const RunConfig& c, DeviceKind device);
// OpenMP threads for this rank: the configured count, or for a parallel variant with
// threads = 0 the cores divided among the node's ranks (at least 1).
int rank_threads(const RunConfig& c);
// The grid and shard for c on `backend` (its stream carries NCCL on a GPU). A single-process
// variant gets an empty setup. Throws std::invalid_argument when the job's size is not
// dp·tp·pp; DeviceUnsupported when a GPU variant's build has no NCCL.
RankSetup make_rank_setup(const RunConfig& c, const ModelConfig& m, Backend& backend);

// Rank 0's decision, on every rank (host communicator); a single process returns it as is.
bool agree(const RankSetup& r, bool rank0_decision);
// Every rank's `mine`, in rank order, on every rank.
std::vector<nlohmann::json> gather_json(const RankSetup& r, const nlohmann::json& mine);
// Per index, the largest of every rank's samples (all ranks have as many).
std::vector<double> max_over_ranks(const RankSetup& r, const std::vector<double>& mine);

}  // namespace tb
