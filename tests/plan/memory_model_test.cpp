// The memory model (harness/plan/memory_model.h) against the tracker, single process: every
// precision mode, activation checkpointing (interval 1, 2, selective), the three optimizers,
// gradient accumulation, pruning masks and mixture of experts (top-1 and top-2) — each
// category's predicted peak within 5% of what a few real training steps allocated
// (memory_model_util.h has the tolerance). The parallel splits run under mpirun in
// memory_model_mpi_test.cpp.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "plan/memory_model_util.h"

namespace tb::test {
namespace {

std::vector<Case> cases() {
  return {
      {"fp32", [](RunConfig&) {}},
      {"tf32", [](RunConfig& c) { c.precision = "tf32"; }},
      {"bf16", [](RunConfig& c) { c.precision = "bf16"; }},
      {"fp16 (dynamic loss scaling)", [](RunConfig& c) { c.precision = "fp16"; }},
      {"fp8", [](RunConfig& c) { c.precision = "fp8"; }},
      {"checkpoint interval 1", [](RunConfig& c) { c.checkpoint_interval = 1; }},
      {"checkpoint interval 2", [](RunConfig& c) { c.checkpoint_interval = 2; }},
      {"checkpoint interval 3 (uneven segments)", [](RunConfig& c) { c.checkpoint_interval = 3; }},
      {"checkpoint selective", [](RunConfig& c) { c.checkpoint_selective = true; }},
      {"bf16 + checkpoint interval 2",
       [](RunConfig& c) {
         c.precision = "bf16";
         c.checkpoint_interval = 2;
       }},
      {"fp16 + checkpoint selective",
       [](RunConfig& c) {
         c.precision = "fp16";
         c.checkpoint_selective = true;
       }},
      {"sgd", [](RunConfig& c) { c.optimizer = "sgd"; }},
      {"sgd without momentum",
       [](RunConfig& c) {
         c.optimizer = "sgd";
         c.momentum = 0;
       }},
      {"lamb", [](RunConfig& c) { c.optimizer = "lamb"; }},
      {"accumulation m=3", [](RunConfig& c) { c.global_batch = 3 * c.micro_batch; }},
      {"tf32 + accumulation m=2 + lamb",
       [](RunConfig& c) {
         c.precision = "tf32";
         c.global_batch = 2 * c.micro_batch;
         c.optimizer = "lamb";
       }},
      {"pruning 2:4", [](RunConfig& c) { c.prune_pattern = "2:4"; }},
      {"moe top-1 (every 2nd block)",
       [](RunConfig& c) {
         c.experts = 4;
         c.top_k = 1;
         c.moe_every = 2;
       }},
      {"moe top-2 (every block)",
       [](RunConfig& c) {
         c.experts = 4;
         c.top_k = 2;
       }},
      {"moe top-2 bf16 + checkpoint interval 2",
       [](RunConfig& c) {
         c.experts = 4;
         c.top_k = 2;
         c.moe_every = 2;
         c.precision = "bf16";
         c.checkpoint_interval = 2;
       }},
      {"moe top-2 of 8, capacity 1.0 (drops) fp16, wide MLP rows",
       [](RunConfig& c) {
         c.experts = 8;
         c.top_k = 2;
         c.capacity_factor = 1.0;
         c.precision = "fp16";
         c.micro_batch = 4;
       }},
      {"bf16, context 128 (attention-bound staging)",
       [](RunConfig& c) {
         c.precision = "bf16";
         c.proxy.seq_len = 128;
       }},
      {"fp8, vocabulary 1024 (LM-head-bound staging) + selective",
       [](RunConfig& c) {
         c.precision = "fp8";
         c.proxy.vocab = 1024;
         c.checkpoint_selective = true;
       }},
      {"tf32, 3 layers, 8 heads of 16, micro-batch 3",
       [](RunConfig& c) {
         c.precision = "tf32";
         c.proxy.n_layer = 3;
         c.proxy.n_head = 8;
         c.proxy.d_model = 128;
         c.micro_batch = 3;
       }},
      {"moe top-1 fp16 + lamb",
       [](RunConfig& c) {
         c.experts = 4;
         c.top_k = 1;
         c.precision = "fp16";
         c.optimizer = "lamb";
       }},
  };
}

TEST(PlanMemoryModel, EveryCategoryWithinFivePercentOfTheTrackerSingleProcess) {
  for (const Case& k : cases()) {
    RunConfig c = base_config();
    k.set(c);
    const Measured m = train_and_measure(c);
    const MemoryPrediction p = predict_stage_memory(model_of(c), c, DeviceKind::cpu, 0);
    const std::string bad = compare_and_print(k.name, p, m);
    EXPECT_TRUE(bad.empty()) << k.name << ": " << bad << " outside 5% (table above)";
  }
  print_worst_errors("single process");
}

TEST(PlanMemoryModel, PeakOfTheJobIsTheLargestStage) {
  RunConfig c = base_config();
  c.pp = 2;
  c.global_batch = 4 * c.micro_batch;
  const ModelConfig m = model_of(c);
  const MemoryPrediction p = predict_peak_memory(m, c, DeviceKind::cpu);
  for (int s = 0; s < 2; ++s) {
    EXPECT_GE(p.total(), predict_stage_memory(m, c, DeviceKind::cpu, s).total());
  }
  // 1F1B: the first stage holds two micro-batches, the last one (and the LM head's logits).
  EXPECT_EQ(p.stage, 0);
}

// The CUDA prediction has no emulation; its workspace carries the backend's own (at least the
// 32 MiB cuBLASLt workspace); the model's categories are those of the CPU.
TEST(PlanMemoryModel, CudaHasNoEmulationAndItsOwnWorkspace) {
  RunConfig c = base_config();
  c.precision = "bf16";
  const ModelConfig m = model_of(c);
  const MemoryPrediction cpu = predict_stage_memory(m, c, DeviceKind::cpu, 0);
  const MemoryPrediction gpu = predict_stage_memory(m, c, DeviceKind::cuda, 0);
  EXPECT_GT(cpu.at(MemoryCategory::emulation), 0);
  EXPECT_EQ(gpu.at(MemoryCategory::emulation), 0);
  EXPECT_GE(gpu.at(MemoryCategory::workspace), cpu.at(MemoryCategory::workspace) + (32 << 20));
  for (auto cat :
       {MemoryCategory::parameters, MemoryCategory::gradients, MemoryCategory::optimizer_state,
        MemoryCategory::activations, MemoryCategory::communication}) {
    EXPECT_EQ(gpu.at(cat), cpu.at(cat)) << memory_category_name(cat);
  }
}

// A 175B model (96 layers) on 10^4 configurations: pure arithmetic, well under a second each
// for the whole sweep on one core.
TEST(PlanMemoryModel, FastOnGpt3175bSweeps) {
  const ModelConfig full = preset("gpt3-175b");
  RunConfig c;
  c.micro_batch = 1;
  double sink = 0;
  const auto t0 = std::chrono::steady_clock::now();
  int n = 0;
  for (int tp : {1, 2, 4, 8}) {
    for (int pp : {1, 2, 4, 8, 12, 16, 24, 32, 48, 96}) {
      for (int mb : {1, 2, 4, 8, 16, 32, 64, 128}) {
        for (int ck : {0, 1, 2, 4}) {
          for (const char* sched : {"1f1b", "gpipe"}) {
            for (int dp : {1, 8}) {
              for (const char* prec : {"bf16", "fp8"}) {
                c.precision = prec;
                c.tp = tp;
                c.pp = pp;
                c.dp = dp;
                c.zero = dp > 1 ? 1 : 0;
                c.global_batch = mb * dp;
                c.checkpoint_interval = ck;
                c.pp_schedule = sched;
                sink += predict_peak_memory(full, c, DeviceKind::cuda).total();
                ++n;
              }
            }
          }
        }
      }
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%d gpt3-175b configurations (every stage of each) in %.3f s\n", n, s);
  EXPECT_GT(sink, 0);
  EXPECT_GE(n, 10000);
  EXPECT_LT(s, 30.0);
}

}  // namespace
}  // namespace tb::test
