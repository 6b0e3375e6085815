// make_mpi_grid under mpirun: for every dp·tp·pp factorisation of the world size (np 2: dp=2,
// tp=2, pp=2; np 4: also dp=2·tp=2, pp=2 with dp or tp, pp=4), each sub-communicator holds
// exactly the ranks that share the other coordinates, ordered by its own coordinate, and the
// embedding group is the first and last stage of the rank's pipeline.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "parallel/grid.h"
#include "parallel/mpi_comm.h"

namespace tb {
namespace {

// World ranks of a communicator's members, in its rank order.
std::vector<std::int32_t> members(Comm& c) {
  std::int32_t me = MpiRuntime::world_rank();
  std::vector<std::int32_t> all(static_cast<std::size_t>(c.size()), -1);
  c.all_gather(Tensor(all.data(), DType::i32, {c.size()}), Tensor(&me, DType::i32, {1}));
  return all;
}

std::vector<GridShape> shapes_of(int world) {
  std::vector<GridShape> v;
  for (int dp = 1; dp <= world; ++dp) {
    for (int tp = 1; tp <= world; ++tp) {
      for (int pp = 1; pp <= world; ++pp) {
        if (dp * tp * pp == world) v.push_back({dp, tp, pp});
      }
    }
  }
  return v;
}

std::string name(const GridShape& s) {
  return "dp=" + std::to_string(s.dp) + " tp=" + std::to_string(s.tp) +
         " pp=" + std::to_string(s.pp);
}

TEST(ProcessGridMpi, SubCommunicatorsHoldTheRightRanks) {
  MpiRuntime::init();
  const int world = MpiRuntime::world_size();
  const int me = MpiRuntime::world_rank();
  const auto shapes = shapes_of(world);
  ASSERT_GE(shapes.size(), 3u);
  for (const GridShape& s : shapes) {
    SCOPED_TRACE(name(s));
    ProcessGrid g = make_mpi_grid(s);
    const GridCoord c = grid_coord(s, me);
    EXPECT_EQ(g.rank, me);
    EXPECT_EQ(g.coord, c);
    ASSERT_TRUE(g.world && g.tensor && g.data && g.pipeline);
    std::vector<std::int32_t> everyone;
    for (int r = 0; r < world; ++r) everyone.push_back(r);
    EXPECT_EQ(members(*g.world), everyone);
    ASSERT_TRUE(g.host);
    EXPECT_EQ(members(*g.host), everyone);

    std::vector<std::int32_t> tensor, data, pipeline;
    for (int t = 0; t < s.tp; ++t) tensor.push_back(grid_rank(s, {c.dp_rank, t, c.pp_rank}));
    for (int d = 0; d < s.dp; ++d) data.push_back(grid_rank(s, {d, c.tp_rank, c.pp_rank}));
    for (int p = 0; p < s.pp; ++p) pipeline.push_back(grid_rank(s, {c.dp_rank, c.tp_rank, p}));
    EXPECT_EQ(members(*g.tensor), tensor);
    EXPECT_EQ(members(*g.data), data);
    EXPECT_EQ(members(*g.pipeline), pipeline);
    EXPECT_EQ(g.tensor->rank(), c.tp_rank);
    EXPECT_EQ(g.data->rank(), c.dp_rank);
    EXPECT_EQ(g.pipeline->rank(), c.pp_rank);
    EXPECT_EQ(g.tensor->dim(), ParallelDim::tensor);
    EXPECT_EQ(g.data->dim(), ParallelDim::data);
    EXPECT_EQ(g.pipeline->dim(), ParallelDim::pipeline);

    const bool end_stage = c.pp_rank == 0 || c.pp_rank == s.pp - 1;
    if (s.pp > 1 && end_stage) {
      ASSERT_TRUE(g.embedding);
      EXPECT_EQ(members(*g.embedding),
                (std::vector<std::int32_t>{pipeline.front(), pipeline.back()}));
      EXPECT_EQ(g.embedding->dim(), ParallelDim::pipeline);
    } else {
      EXPECT_FALSE(g.embedding) << "rank " << me << " is not a first or last stage";
    }
    EXPECT_EQ(g.first_stage(), c.pp_rank == 0);
    EXPECT_EQ(g.last_stage(), c.pp_rank == s.pp - 1);
  }
}

TEST(ProcessGridMpi, WrongWorldSizeIsRefusedOnEveryRank) {
  const int world = MpiRuntime::world_size();
  try {
    make_mpi_grid({world + 1, 1, 1});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("expected them equal"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tb
