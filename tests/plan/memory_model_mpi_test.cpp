// The memory model (harness/plan/memory_model.h) against the tracker under mpirun: each rank
// trains its shard of a parallel split for a few steps and compares every category's peak
// with the prediction for its own pipeline stage (memory_model_util.h: within 5%). The
// configurations whose world size is not this job's are skipped, so the binary runs under
// `mpirun -np 2` (dp2, dp2+zero1, tp2, tp2+sp, pp2 gpipe and 1f1b, dp2 expert parallel) and
// `-np 4` (dp2×pp2, dp2×tp2+zero1+sp, tp2×pp2+sp bf16, dp2×pp2 expert parallel); rank 0 prints
// every rank's table.
#include <gtest/gtest.h>
#include <mpi.h>

#include <functional>
#include <string>
#include <vector>

#include "parallel/mpi_comm.h"
#include "plan/memory_model_util.h"

namespace tb::test {
namespace {

std::vector<Case> cases() {
  return {
      // 2 ranks
      {"dp2 (buckets of 16 KiB)",
       [](RunConfig& c) {
         c.dp = 2;
         c.bucket_mb = 1.0 / 64;
         c.global_batch = 2 * c.micro_batch * c.dp;
       }},
      {"dp2 + zero1",
       [](RunConfig& c) {
         c.dp = 2;
         c.zero = 1;
       }},
      {"dp2 + zero1 bf16 + sgd",
       [](RunConfig& c) {
         c.dp = 2;
         c.zero = 1;
         c.precision = "bf16";
         c.optimizer = "sgd";
       }},
      {"tp2", [](RunConfig& c) { c.tp = 2; }},
      {"tp2 fp16 + checkpoint interval 2",
       [](RunConfig& c) {
         c.tp = 2;
         c.precision = "fp16";
         c.checkpoint_interval = 2;
       }},
      {"tp2 + sp",
       [](RunConfig& c) {
         c.tp = 2;
         c.sequence_parallel = true;
       }},
      {"tp2 + sp bf16 + selective",
       [](RunConfig& c) {
         c.tp = 2;
         c.sequence_parallel = true;
         c.precision = "bf16";
         c.checkpoint_selective = true;
       }},
      {"pp2 gpipe m=4",
       [](RunConfig& c) {
         c.pp = 2;
         c.pp_schedule = "gpipe";
         c.global_batch = 4 * c.micro_batch;
       }},
      {"pp2 1f1b m=4",
       [](RunConfig& c) {
         c.pp = 2;
         c.pp_schedule = "1f1b";
         c.global_batch = 4 * c.micro_batch;
       }},
      {"pp2 1f1b m=4 fp8 + checkpoint interval 1",
       [](RunConfig& c) {
         c.pp = 2;
         c.global_batch = 4 * c.micro_batch;
         c.precision = "fp8";
         c.checkpoint_interval = 1;
       }},
      {"dp2 expert parallel (4 experts, top-2)",
       [](RunConfig& c) {
         c.dp = 2;
         c.experts = 4;
         c.top_k = 2;
         c.expert_parallel = true;
       }},
      {"dp2 expert parallel (4 experts, top-1, every 2nd block) bf16",
       [](RunConfig& c) {
         c.dp = 2;
         c.experts = 4;
         c.moe_every = 2;
         c.expert_parallel = true;
         c.precision = "bf16";
       }},
      // 4 ranks
      {"dp2 x pp2 1f1b m=2",
       [](RunConfig& c) {
         c.dp = 2;
         c.pp = 2;
         c.global_batch = 2 * c.micro_batch * c.dp;
       }},
      {"dp2 x tp2 + zero1 + sp",
       [](RunConfig& c) {
         c.dp = 2;
         c.tp = 2;
         c.zero = 1;
         c.sequence_parallel = true;
       }},
      {"tp2 x pp2 + sp bf16 gpipe m=2",
       [](RunConfig& c) {
         c.tp = 2;
         c.pp = 2;
         c.sequence_parallel = true;
         c.precision = "bf16";
         c.pp_schedule = "gpipe";
         c.global_batch = 2 * c.micro_batch;
       }},
      {"pp4 1f1b m=4 lamb",
       [](RunConfig& c) {
         c.pp = 4;
         c.global_batch = 4 * c.micro_batch;
         c.optimizer = "lamb";
       }},
      {"dp2 x pp2 expert parallel (top-2)",
       [](RunConfig& c) {
         c.dp = 2;
         c.pp = 2;
         c.experts = 4;
         c.top_k = 2;
         c.expert_parallel = true;
       }},
  };
}

// Every rank's predicted and measured peaks, gathered on every rank (rank order).
std::vector<std::pair<MemoryPrediction, Measured>> gather(const MemoryPrediction& p,
                                                          const Measured& m) {
  constexpr int K = static_cast<int>(kMemoryCategoryCount);
  std::vector<double> mine(2 * K + 2);
  for (int k = 0; k < K; ++k) {
    mine[static_cast<std::size_t>(k)] = p.bytes[static_cast<std::size_t>(k)];
    mine[static_cast<std::size_t>(K + k)] = m.peak[static_cast<std::size_t>(k)];
  }
  mine[2 * K] = m.stage;
  mine[2 * K + 1] = m.rank;
  const int n = MpiRuntime::world_size();
  std::vector<double> all(mine.size() * static_cast<std::size_t>(n));
  MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_DOUBLE, all.data(),
                static_cast<int>(mine.size()), MPI_DOUBLE, MPI_COMM_WORLD);
  std::vector<std::pair<MemoryPrediction, Measured>> out(static_cast<std::size_t>(n));
  for (int r = 0; r < n; ++r) {
    const double* v = all.data() + static_cast<std::size_t>(r) * mine.size();
    auto& [pr, me] = out[static_cast<std::size_t>(r)];
    for (int k = 0; k < K; ++k) {
      pr.bytes[static_cast<std::size_t>(k)] = v[k];
      me.peak[static_cast<std::size_t>(k)] = v[K + k];
    }
    me.stage = pr.stage = static_cast<int>(v[2 * K]);
    me.rank = static_cast<int>(v[2 * K + 1]);
  }
  return out;
}

TEST(PlanMemoryModel, EveryCategoryWithinFivePercentOfTheTrackerOnEveryRank) {
  const int world = MpiRuntime::world_size();
  const bool root = MpiRuntime::world_rank() == 0;
  int ran = 0;
  for (const Case& k : cases()) {
    RunConfig c = base_config();
    k.set(c);
    if (c.ranks() != world) continue;
    ++ran;
    const Measured m = train_and_measure(c);
    const MemoryPrediction p = predict_stage_memory(model_of(c), c, DeviceKind::cpu, m.stage);
    const std::string bad = compare_and_print(k.name, p, m, /*print=*/false);
    EXPECT_TRUE(bad.empty()) << k.name << ", rank " << m.rank << " (stage " << m.stage
                             << "): " << bad << " outside 5%";
    for (const auto& [pr, me] : gather(p, m)) {
      if (root) compare_and_print(k.name, pr, me);
    }
  }
  if (root) print_worst_errors(("mpirun -np " + std::to_string(world)).c_str());
  EXPECT_GT(ran, 0) << "no configuration of " << world << " ranks";
}

// Interleaved 1F1B (virtual_stages > 1) is not built: the scenario refuses it and the trainer
// has no interleaved schedule, so its prediction (Megatron-LM's chunk layout and warm-up) has
// nothing to be measured against yet.
TEST(PlanMemoryModel, InterleavedPipelineIsNotBuilt) {
  GTEST_SKIP() << "pp2 interleaved v=2: virtual_stages != 1 is not built in trainbench "
                  "(scenario error); the model's formula is untested against a tracker";
}

}  // namespace
}  // namespace tb::test
