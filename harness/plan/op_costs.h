// The operations of one training iteration on one rank, as trainbench's model runs them
// (model/gpt.cpp, train/optimizer.cpp): each with its FLOPs and the bytes it moves, and the
// shape that names it in a calibration file (docs/planner.md, "Time model"). The time model
// prices each operation from a calibration (the same operation measured at the same shape)
// or from datasheet peaks.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "candidate.h"
#include "model/config.h"

namespace tb {

enum class OpKind : std::uint8_t { gemm, attention, memory };
enum class OpPhase : std::uint8_t { forward, backward, recompute, optimizer };
const char* op_phase_name(OpPhase p);

struct OpCost {
  std::string op;    // the Backend operation, e.g. "matmul_forward", "adamw_update"
  std::string role;  // what it computes in the model, e.g. "attn.qkv", "lm_head"
  OpKind kind = OpKind::memory;
  OpPhase phase = OpPhase::forward;
  // The operation's shape, its calibration key with `op` and the precision:
  //   matmul_*: {rows, in, out}; attention_*: {batch, heads, seq, head_dim};
  //   layernorm_*, embedding_*: {rows, width}; softmax_ce_*: {rows, vocab};
  //   elementwise (gelu_*, add, copy, convert, fill_zero, sum_squares, adamw_update): {elements}.
  std::array<std::int64_t, 4> dims{};
  double flops = 0;  // per call
  double bytes = 0;  // per call, read + written
  double count = 1;  // calls per micro-batch (forward/backward/recompute) or per iteration
};

// What one rank of a pipeline stage runs: per micro-batch, and once per iteration.
struct StageWork {
  int layers = 0;  // blocks on this rank (all its virtual chunks)
  bool first = false, last = false;
  std::vector<OpCost> per_micro_batch;
  std::vector<OpCost> per_iteration;
};

// The work of a rank holding `layers` blocks, the embeddings when `first` and the final
// LayerNorm, LM head and loss when `last`. params_on_rank: parameters this rank holds (its
// gradients and 16-bit copy); optimizer_params: those its optimizer updates (÷ dp with ZeRO-1).
StageWork stage_work(const ModelConfig& m, const PlanCandidate& c, int layers, bool first,
                     bool last, double params_on_rank, double optimizer_params);

// Element width in bytes of stored activations under `precision` (16 bits for bf16, fp16 and
// fp8, whose activations are bf16; model/precision.h).
double activation_bytes(const std::string& precision);

}  // namespace tb
