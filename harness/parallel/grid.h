// The DP × TP × PP process grid in Megatron-LM's rank order, tensor parallelism innermost
// (ranks of one tensor-parallel group are neighbours, so on a multi-GPU node they share the
// fastest links): rank = tp_rank + tp·(dp_rank + dp·pp_rank). docs/parallel.md.
#pragma once
#include <memory>
#include <string>

#include "comm.h"

namespace tb {

struct GridShape {
  int dp = 1, tp = 1, pp = 1;
  int world() const { return dp * tp * pp; }
};

struct GridCoord {
  int dp_rank = 0, tp_rank = 0, pp_rank = 0;
  bool operator==(const GridCoord&) const = default;
};

// Throws std::invalid_argument for a rank outside [0, world) or a non-positive dimension.
GridCoord grid_coord(const GridShape& g, int rank);
int grid_rank(const GridShape& g, const GridCoord& c);

// This rank's place in the grid and its communicators: `world`, and one per dimension —
// `tensor` (the ranks that differ only in tp_rank, ordered by it), `data` (only dp_rank),
// `pipeline` (only pp_rank) — and `embedding`, the first and last stage of this rank's
// pipeline (for the tied word embedding's gradient; null unless pp > 1 and this rank is the
// first or last stage). A communicator of size 1 is still present. `host` spans the world
// too and is always MPI over host memory: the trainer's scalars (the job's loss, the global
// gradient norm, agreed decisions) go over it, whatever carries the tensors.
struct ProcessGrid {
  GridShape shape;
  GridCoord coord;
  int rank = 0;
  std::unique_ptr<Comm> world, data, tensor, pipeline, embedding, host;
  bool first_stage() const { return coord.pp_rank == 0; }
  bool last_stage() const { return coord.pp_rank == shape.pp - 1; }
  // Sets the profiler on every communicator.
  void set_profiler(Profiler* p);
};

// Over MPI_COMM_WORLD (initialising MPI). Throws std::invalid_argument when the world size is
// not dp·tp·pp.
ProcessGrid make_mpi_grid(const GridShape& shape);

}  // namespace tb
