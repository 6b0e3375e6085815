// The time model of one training iteration (docs/planner.md, "Time model"): each rank's
// operations priced from a calibration or datasheet peaks, communication by the α–β model
// per network tier, the pipeline schedule's bubble, and the data-parallel gradient reduction
// with the part the backward pass hides.
#pragma once
#include <string>
#include <vector>

#include "calibration.h"
#include "candidate.h"
#include "hardware.h"
#include "model/config.h"

namespace tb {

// Fractions of a datasheet peak reached, used when no calibration covers an operation.
// GEMMs: bf16 8192³ cuBLAS on H100/H200 reaches 0.78–0.81 of peak (FIELD-NOTES), the layer
// shapes somewhat less; attention: FlashAttention-2 forward+backward reaches about half of
// peak (Dao 2023, §4.1); memory-bound kernels and collectives: a device-to-device copy runs at
// 0.9 of HBM bandwidth (FIELD-NOTES), NCCL's bus bandwidth at about 0.8 of the link's.
struct Efficiencies {
  double gemm = 0.75;
  double attention = 0.5;
  double memory = 0.9;
  double network = 0.8;
};

struct TimeBreakdown {
  double forward = 0, backward = 0, recompute = 0;
  double tensor_parallel_comm = 0, pipeline_comm = 0, pipeline_bubble = 0;
  double data_parallel_comm = 0, optimizer = 0;
  double expert_parallel_comm = 0;  // the MoE dispatch and combine all-to-alls
  double iteration() const {
    return forward + backward + recompute + tensor_parallel_comm + pipeline_comm + pipeline_bubble +
           data_parallel_comm + optimizer + expert_parallel_comm;
  }
};

struct IterationPrediction {
  TimeBreakdown time;
  int micro_batches = 0;
  double stage_micro_batch_s = 0;  // the slowest stage's time per micro-batch
  double model_flops = 0;          // per iteration, all GPUs (PaLM's 6N + 12·L·d·T per token)
  double hardware_flops = 0;       // model FLOPs plus recomputation
  int slowest_stage = 0;
  std::string priced_by;  // "calibration", "datasheet" or "calibration+datasheet"
};

struct TimeModelInputs {
  const Accelerator* device = nullptr;  // peaks, bandwidths and the two network tiers
  const Calibration* calibration = nullptr;
  Efficiencies efficiency;
  int gpus_per_node = 8;
  double bucket_bytes = 25.0 * (1 << 20);  // data-parallel gradient bucket
  // A calibrated CPU: each rank's threads and the job's ranks, the calibration's keys (its
  // operations were timed with that many ranks running them at once).
  int threads = 0;
  int ranks = 1;
  // Ranks sharing one machine's `shared_cores` hardware threads (a CPU job; 0: every rank has
  // its own device). A calibration timed each operation with all the job's ranks busy; a
  // pipeline keeps on average only ranks·m/(m + (p−1)/v) of them busy (its bubble idles the
  // rest), so on oversubscribed cores its operations run that much less contended.
  int shared_cores = 0;
};

// Throws std::invalid_argument when the candidate cannot run the model (global batch not a
// multiple of micro_batch·dp, more stages than layers).
IterationPrediction predict_iteration(const ModelConfig& m, const PlanCandidate& c,
                                      int global_batch, const TimeModelInputs& in);

// Parameters one rank of each pipeline stage holds (time_model.cpp's count: Megatron's
// tensor-parallel split, embeddings on the first stage, the tied LM head on the last).
std::vector<double> stage_parameter_counts(const ModelConfig& m, const PlanCandidate& c);

// What one rank of pipeline stage `stage` runs (all its virtual chunks): op_costs' work sized
// by the parameters it holds and, with ZeRO-1, the optimizer's shard of them — the operations
// the time model prices and `trainbench calibrate` measures.
StageWork rank_work(const ModelConfig& m, const PlanCandidate& c, int stage);

// A collective whose time need not follow the all-reduce's α–β fit, so `trainbench calibrate`
// times it at the variant's own bytes and the time model prices it from that measurement when
// there is one (Open MPI's reduce-scatter on two ranks of a shared CPU took 2–4× the
// all-reduce of the same bytes: docs/planner.md, "Calibration"). `group`: the ranks taking
// part; `bytes`: the whole buffer (what a reduce-scatter reduces, an all-gather gathers).
struct CollectiveCall {
  std::string collective;  // reduce_scatter | all_gather
  int group = 1;
  double bytes = 0;
};

// The collectives of one rank of pipeline stage `stage` priced by measurement: ZeRO-1's
// reduce-scatter of the fp32 gradients and all-gather of the updated parameters over the
// data-parallel group (Rajbhandari et al. 2020, §5; harness/train/parallel_step.cpp).
std::vector<CollectiveCall> rank_collectives(const ModelConfig& m, const PlanCandidate& c,
                                             int stage);

// Ring all-reduce of `bytes` over n ranks on one tier: 2(n−1) steps of latency, and each rank
// sends 2(n−1)/n of the data (Patarasuk & Yuan 2009; nccl-tests' bus bandwidth).
double ring_all_reduce_s(double bytes, int n, const LinkTier& tier, double efficiency);

// All-to-all of `bytes` per rank over n ranks on one tier: each rank sends (n−1)/n of its
// buffer, one message to each peer (nccl-tests' bus bandwidth × (n−1)/n).
double all_to_all_s(double bytes, int n, const LinkTier& tier, double efficiency);

// The bubble of a pipeline of p stages, v model chunks per stage and m micro-batches, as a
// fraction of the ideal m·t (Narayanan et al. 2021, §2.2.1-2): (p − 1)/(v·m).
double pipeline_bubble_fraction(int p, int v, int m);

}  // namespace tb
