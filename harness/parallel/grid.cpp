#include "grid.h"

#include <stdexcept>

#include "mpi_comm.h"

namespace tb {

namespace {
void check_shape(const GridShape& g) {
  if (g.dp < 1 || g.tp < 1 || g.pp < 1) {
    throw std::invalid_argument("grid dp = " + std::to_string(g.dp) +
                                ", tp = " + std::to_string(g.tp) +
                                ", pp = " + std::to_string(g.pp) + " (expected each >= 1)");
  }
}
}  // namespace

GridCoord grid_coord(const GridShape& g, int rank) {
  check_shape(g);
  if (rank < 0 || rank >= g.world()) {
    throw std::invalid_argument("rank " + std::to_string(rank) + " (expected 0 <= rank < " +
                                std::to_string(g.world()) + ")");
  }
  GridCoord c;
  c.tp_rank = rank % g.tp;
  c.dp_rank = (rank / g.tp) % g.dp;
  c.pp_rank = rank / (g.tp * g.dp);
  return c;
}

int grid_rank(const GridShape& g, const GridCoord& c) {
  check_shape(g);
  return c.tp_rank + g.tp * (c.dp_rank + g.dp * c.pp_rank);
}

void ProcessGrid::set_profiler(Profiler* p) {
  for (auto* c :
       {world.get(), data.get(), tensor.get(), pipeline.get(), embedding.get(), host.get()}) {
    if (c) c->set_profiler(p);
  }
}

ProcessGrid make_mpi_grid(const GridShape& shape) {
  check_shape(shape);
  auto world = MpiComm::world(ParallelDim::world);
  if (world->size() != shape.world()) {
    throw std::invalid_argument(
        "MPI world of " + std::to_string(world->size()) +
        " ranks for dp·tp·pp = " + std::to_string(shape.dp) + "·" + std::to_string(shape.tp) + "·" +
        std::to_string(shape.pp) + " = " + std::to_string(shape.world()) +
        " (expected them equal: launch with -np " + std::to_string(shape.world()) + ")");
  }
  ProcessGrid g;
  g.shape = shape;
  g.rank = world->rank();
  g.coord = grid_coord(shape, g.rank);
  const GridCoord& c = g.coord;
  // Colors: the coordinates the group shares; keys: the coordinate along the group.
  g.tensor = world->split(c.dp_rank + shape.dp * c.pp_rank, c.tp_rank, ParallelDim::tensor);
  g.data = world->split(c.tp_rank + shape.tp * c.pp_rank, c.dp_rank, ParallelDim::data);
  auto pipeline = world->split(c.tp_rank + shape.tp * c.dp_rank, c.pp_rank, ParallelDim::pipeline);
  if (shape.pp > 1) {
    // The tied word embedding lives on the first and the last stage; their gradients are
    // summed over this group (Megatron-LM's embedding group). Traffic counts as pipeline.
    const bool member = g.first_stage() || g.last_stage();
    g.embedding = pipeline->split(member ? 0 : -1, c.pp_rank, ParallelDim::pipeline);
  }
  g.pipeline = std::move(pipeline);
  g.host = world->split(0, g.rank, ParallelDim::world);
  g.world = std::move(world);
  return g;
}

}  // namespace tb
