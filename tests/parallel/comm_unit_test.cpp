// The parallel runtime's pure logic, without MPI: nccl-tests' bus-bandwidth factors, the
// collective benchmark's message sizes and exact expected outputs (against a direct simulation
// of each collective), its memory bound, the grid's rank order, and the local rank read from a
// launcher's environment.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "parallel/collective_bench.h"
#include "parallel/grid.h"
#include "parallel/local_ranks.h"

namespace tb {
namespace {

// nccl-tests doc/PERFORMANCE.md: busbw = algbw · 2(n−1)/n for all-reduce.
TEST(BusBandwidth, AllReduceIsAlgbwTimesTwoNMinusOneOverN) {
  const double algbw = 10.0;  // GB/s
  EXPECT_DOUBLE_EQ(algbw * busbw_factor(Collective::all_reduce, 1), 0.0);
  EXPECT_DOUBLE_EQ(algbw * busbw_factor(Collective::all_reduce, 2), 10.0);
  EXPECT_DOUBLE_EQ(algbw * busbw_factor(Collective::all_reduce, 4), 15.0);
  EXPECT_DOUBLE_EQ(algbw * busbw_factor(Collective::all_reduce, 8), 17.5);
  for (int n = 1; n <= 64; ++n) {
    EXPECT_DOUBLE_EQ(busbw_factor(Collective::all_reduce, n), 2.0 * (n - 1) / n) << n;
  }
}

TEST(BusBandwidth, OtherCollectives) {
  for (Collective c :
       {Collective::reduce_scatter, Collective::all_gather, Collective::all_to_all}) {
    EXPECT_DOUBLE_EQ(busbw_factor(c, 4), 0.75) << collective_name(c);
    EXPECT_DOUBLE_EQ(busbw_factor(c, 2), 0.5) << collective_name(c);
  }
  EXPECT_DOUBLE_EQ(busbw_factor(Collective::send_recv, 2), 1.0);
  EXPECT_DOUBLE_EQ(busbw_factor(Collective::send_recv, 16), 1.0);
  EXPECT_THROW(busbw_factor(Collective::all_reduce, 0), std::invalid_argument);
}

TEST(CollectiveNames, RoundTripAndError) {
  for (Collective c : kAllCollectives) EXPECT_EQ(parse_collective(collective_name(c)), c);
  try {
    parse_collective("allreduce");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'allreduce' (expected one of all_reduce"),
              std::string::npos)
        << e.what();
  }
}

TEST(MessageSize, RoundedToChunksAsNcclTests) {
  EXPECT_EQ(message_elements(Collective::all_reduce, 8, DType::f32, 4), 2);
  EXPECT_EQ(message_elements(Collective::reduce_scatter, 8, DType::f32, 2), 2);
  EXPECT_EQ(message_elements(Collective::reduce_scatter, 8, DType::f32, 4), 0);
  EXPECT_EQ(message_elements(Collective::all_gather, 1 << 30, DType::f32, 3),
            (std::int64_t{1} << 28) / 3 * 3);
  EXPECT_EQ(message_elements(Collective::send_recv, 64, DType::f64, 3), 8);
  EXPECT_EQ(input_elements(Collective::all_gather, 12, 4), 3);
  EXPECT_EQ(output_elements(Collective::all_gather, 12, 4), 12);
  EXPECT_EQ(input_elements(Collective::reduce_scatter, 12, 4), 12);
  EXPECT_EQ(output_elements(Collective::reduce_scatter, 12, 4), 3);
  EXPECT_EQ(input_elements(Collective::all_to_all, 12, 4), 12);
}

// Every rank's output computed from the definitions of the collectives over the input pattern.
std::vector<std::vector<double>> simulate(Collective c, int n, std::int64_t e) {
  auto in = [&](int r, std::int64_t i) { return input_value(r, i); };
  const std::int64_t m = e / n;
  std::vector<std::vector<double>> out(static_cast<std::size_t>(n));
  for (int r = 0; r < n; ++r) {
    auto& o = out[static_cast<std::size_t>(r)];
    o.assign(static_cast<std::size_t>(output_elements(c, e, n)), 0.0);
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(o.size()); ++i) {
      double& x = o[static_cast<std::size_t>(i)];
      switch (c) {
        case Collective::all_reduce:
          for (int k = 0; k < n; ++k) x += in(k, i);
          break;
        case Collective::reduce_scatter:
          for (int k = 0; k < n; ++k) x += in(k, r * m + i);
          break;
        case Collective::all_gather:
          x = in(static_cast<int>(i / m), i % m);
          break;
        case Collective::all_to_all:
          x = in(static_cast<int>(i / m), r * m + i % m);
          break;
        case Collective::send_recv:
          x = in((r + n - 1) % n, i);
          break;
      }
    }
  }
  return out;
}

TEST(ExpectedOutput, MatchesTheCollectivesDefinitions) {
  for (Collective c : kAllCollectives) {
    for (int n : {1, 2, 3, 5, 8}) {
      // 700 elements per chunk: the pattern's period (256) wraps inside a chunk.
      const std::int64_t e = message_elements(c, std::size_t(n) * 700 * 4, DType::f32, n);
      const auto want = simulate(c, n, e);
      for (int r = 0; r < n; ++r) {
        const ExpectedOutput got(c, n, r, e);
        std::int64_t wrong = 0;
        const auto& w = want[static_cast<std::size_t>(r)];
        for (std::size_t i = 0; i < w.size(); ++i) wrong += got(std::int64_t(i)) != w[i];
        EXPECT_EQ(wrong, 0) << collective_name(c) << " n=" << n << " rank " << r;
      }
    }
  }
}

TEST(ExpectedOutput, RanksDifferAndSumsAreExactInF32) {
  // At one index, 256 ranks hold 256 different values: a chunk from the wrong rank shows.
  std::map<double, int> seen;
  for (int r = 0; r < 256; ++r) ++seen[input_value(r, 5)];
  EXPECT_EQ(seen.size(), 256u);
  // Sums over 65535 ranks stay below 2^24: every one is an f32 integer.
  const ExpectedOutput big(Collective::all_reduce, 65535, 0, 1024);
  for (std::int64_t i = 0; i < 256; ++i) {
    const double v = big(i);
    EXPECT_EQ(static_cast<double>(static_cast<float>(v)), v) << i;
    EXPECT_LT(v, 16777216.0);
  }
}

TEST(MemoryBound, HalfTheAvailableMemoryPowersOfTwo) {
  const std::size_t GiB = std::size_t{1} << 30, MiB = std::size_t{1} << 20;
  // CPU: 2 buffers × S × local ranks ≤ available / 2.
  EXPECT_EQ(default_max_bytes(21 * GiB, 2, 0), GiB);  // capped at 1 GiB
  EXPECT_EQ(default_max_bytes(8 * GiB, 2, 0), GiB);
  EXPECT_EQ(default_max_bytes(8 * GiB - 1, 2, 0), 512 * MiB);
  EXPECT_EQ(default_max_bytes(4 * GiB, 8, 0), 128 * MiB);
  // GPU: 2S ≤ device / 2, and one host staging buffer per local rank: S·L ≤ host / 2.
  EXPECT_EQ(default_max_bytes(64 * GiB, 4, 2 * GiB), 512 * MiB);
  EXPECT_EQ(default_max_bytes(1 * GiB, 8, 80 * GiB), 64 * MiB);
  EXPECT_EQ(default_max_bytes(16, 1, 0), 0u);
  EXPECT_EQ(default_max_bytes(32, 1, 0), 8u);
}

// Megatron-LM's order: rank = tp_rank + tp·(dp_rank + dp·pp_rank).
TEST(GridOrder, MegatronRankOrderAndRoundTrip) {
  const GridShape g{2, 2, 2};  // dp, tp, pp
  EXPECT_EQ(grid_coord(g, 0), (GridCoord{0, 0, 0}));
  EXPECT_EQ(grid_coord(g, 1), (GridCoord{0, 1, 0}));  // tensor parallelism innermost
  EXPECT_EQ(grid_coord(g, 2), (GridCoord{1, 0, 0}));
  EXPECT_EQ(grid_coord(g, 4), (GridCoord{0, 0, 1}));
  EXPECT_EQ(grid_coord(g, 7), (GridCoord{1, 1, 1}));
  for (const GridShape s : {GridShape{1, 1, 1}, GridShape{4, 1, 1}, GridShape{1, 4, 1},
                            GridShape{1, 1, 4}, GridShape{2, 3, 4}, GridShape{3, 2, 2}}) {
    for (int r = 0; r < s.world(); ++r) {
      const GridCoord c = grid_coord(s, r);
      EXPECT_EQ(grid_rank(s, c), r);
      EXPECT_EQ(c.tp_rank + s.tp * (c.dp_rank + s.dp * c.pp_rank), r);
    }
  }
  EXPECT_THROW(grid_coord(g, 8), std::invalid_argument);
  EXPECT_THROW(grid_coord(g, -1), std::invalid_argument);
  EXPECT_THROW(grid_coord(GridShape{0, 1, 1}, 0), std::invalid_argument);
}

TEST(LocalRanks, FromLaunchersEnvironment) {
  auto env = [](std::map<std::string, std::string> m) {
    return [m](const char* k) -> const char* {
      auto it = m.find(k);
      return it == m.end() ? nullptr : it->second.c_str();
    };
  };
  EXPECT_EQ(local_ranks_from_env(env({})), std::nullopt);
  EXPECT_EQ(local_ranks_from_env(
                env({{"OMPI_COMM_WORLD_LOCAL_RANK", "3"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}})),
            (LocalRanks{3, 4}));
  EXPECT_EQ(local_ranks_from_env(env({{"MPI_LOCALRANKID", "1"}, {"MPI_LOCALNRANKS", "2"}})),
            (LocalRanks{1, 2}));
  EXPECT_EQ(local_ranks_from_env(env({{"SLURM_LOCALID", "2"},
                                      {"SLURM_NODEID", "2"},
                                      {"SLURM_STEP_TASKS_PER_NODE", "4(x2),3"}})),
            (LocalRanks{2, 3}));
  EXPECT_EQ(local_ranks_from_env(env({{"SLURM_LOCALID", "0"}})), std::nullopt);
  EXPECT_THROW(local_ranks_from_env(
                   env({{"OMPI_COMM_WORLD_LOCAL_RANK", "x"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}})),
               std::invalid_argument);
  EXPECT_THROW(local_ranks_from_env(
                   env({{"OMPI_COMM_WORLD_LOCAL_RANK", "4"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}})),
               std::invalid_argument);
  EXPECT_THROW(local_ranks_from_env(env({{"SLURM_LOCALID", "0"},
                                         {"SLURM_NODEID", "3"},
                                         {"SLURM_STEP_TASKS_PER_NODE", "4(x2),3"}})),
               std::invalid_argument);
}

}  // namespace
}  // namespace tb
