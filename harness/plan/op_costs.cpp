#include "op_costs.h"

#include <algorithm>
#include <cmath>

namespace tb {

namespace {

using Dims = std::array<std::int64_t, 4>;

struct Builder {
  std::vector<OpCost>& out;
  double e;  // activation element bytes
  OpPhase phase;
  double count;

  void gemm(const std::string& role, std::int64_t rows, std::int64_t in, std::int64_t outw,
            bool backward) {
    const double mnk = double(rows) * double(in) * double(outw);
    const double io = e * (double(rows) * in + double(in) * outw + double(rows) * outw);
    // Forward 2·m·n·k; backward the input gradient and the weight gradient, 2·m·n·k each.
    out.push_back({backward ? "matmul_backward" : "matmul_forward", role, OpKind::gemm, phase,
                   Dims{rows, in, outw, 0}, (backward ? 4 : 2) * mnk, (backward ? 2 : 1) * io,
                   count});
  }
  void attention(std::int64_t b, std::int64_t heads, std::int64_t s, std::int64_t hd,
                 bool backward) {
    // q·kᵀ and p·v over the full T×T square, 2·b·heads·s²·hd FLOPs each forward; backward
    // twice that (dq, dk, dp, dv). Bytes: the probabilities written (and read back).
    const double f = 4.0 * b * heads * double(s) * s * hd;
    const double probs = e * double(b) * heads * double(s) * s;
    const double qkv = e * 4.0 * b * s * heads * hd;
    out.push_back({backward ? "attention_backward" : "attention_forward", "attn.core",
                   OpKind::attention, phase, Dims{b, heads, s, hd}, (backward ? 2 : 1) * f,
                   (backward ? 3 : 1) * probs + (backward ? 2 : 1) * qkv, count});
  }
  void memory(const std::string& op, const std::string& role, Dims dims, double bytes) {
    out.push_back({op, role, OpKind::memory, phase, dims, 0, bytes, count});
  }
  void layernorm(const std::string& role, std::int64_t rows, std::int64_t c, bool backward) {
    memory(backward ? "layernorm_backward" : "layernorm_forward", role, Dims{rows, c, 0, 0},
           e * double(rows) * c * (backward ? 3 : 2));
  }
  void elementwise(const std::string& op, const std::string& role, std::int64_t n, double touches) {
    memory(op, role, Dims{n, 0, 0, 0}, e * double(n) * touches);
  }
};

// One block's forward on a rank (model/gpt.cpp layer_forward).
void block_forward(Builder& b, const ModelConfig& m, const PlanCandidate& c, bool moe) {
  const std::int64_t N = std::int64_t(c.micro_batch) * m.seq_len, C = m.d_model, t = c.tp;
  const std::int64_t rows_local = c.sequence_parallel ? N / t : N;
  b.layernorm("ln1", rows_local, C, false);
  b.gemm("attn.qkv", N, C, 3 * C / t, false);
  b.attention(c.micro_batch, m.n_head / t, m.seq_len, m.head_dim(), false);
  b.gemm("attn.proj", N, C / t, C, false);
  b.elementwise(t > 1 ? "add" : "copy", "attn.residual", rows_local * C, t > 1 ? 3 : 2);
  b.layernorm("ln2", rows_local, C, false);
  // A mixture-of-experts block runs its router and each token's top_k experts (active rows).
  const std::int64_t rows = moe ? N * m.moe.top_k : N;
  if (moe) b.gemm("mlp.router", N, C, m.moe.experts, false);
  b.gemm("mlp.fc", rows, C, 4 * C / t, false);
  b.elementwise("gelu_forward", "mlp.gelu", rows * 4 * C / t, 2);
  b.gemm("mlp.proj", rows, 4 * C / t, C, false);
  b.elementwise(t > 1 ? "add" : "copy", "mlp.residual", rows_local * C, t > 1 ? 3 : 2);
}

void block_backward(Builder& b, const ModelConfig& m, const PlanCandidate& c, bool moe) {
  const std::int64_t N = std::int64_t(c.micro_batch) * m.seq_len, C = m.d_model, t = c.tp;
  const std::int64_t rows_local = c.sequence_parallel ? N / t : N;
  const std::int64_t rows = moe ? N * m.moe.top_k : N;
  b.gemm("mlp.proj", rows, 4 * C / t, C, true);
  b.elementwise("gelu_backward", "mlp.gelu", rows * 4 * C / t, 3);
  b.gemm("mlp.fc", rows, C, 4 * C / t, true);
  if (moe) b.gemm("mlp.router", N, C, m.moe.experts, true);
  b.layernorm("ln2", rows_local, C, true);
  b.gemm("attn.proj", N, C / t, C, true);
  b.attention(c.micro_batch, m.n_head / t, m.seq_len, m.head_dim(), true);
  b.gemm("attn.qkv", N, C, 3 * C / t, true);
  b.layernorm("ln1", rows_local, C, true);
}

}  // namespace

const char* op_phase_name(OpPhase p) {
  switch (p) {
    case OpPhase::backward:
      return "backward";
    case OpPhase::recompute:
      return "recompute";
    case OpPhase::optimizer:
      return "optimizer";
    default:
      return "forward";
  }
}

double activation_bytes(const std::string& precision) {
  return (precision == "bf16" || precision == "fp16" || precision == "fp8") ? 2.0 : 4.0;
}

StageWork stage_work(const ModelConfig& m, const PlanCandidate& c, int layers, bool first,
                     bool last, double params_on_rank, double optimizer_params) {
  StageWork w;
  w.layers = layers;
  w.first = first;
  w.last = last;
  const double e = activation_bytes(c.precision);
  const std::int64_t N = std::int64_t(c.micro_batch) * m.seq_len, C = m.d_model, V = m.vocab;
  const int moe_layers = m.moe.enabled() ? std::max(0, layers / std::max(1, m.moe.every)) : 0;
  const int dense_layers = layers - moe_layers;
  auto blocks = [&](OpPhase phase, bool backward, bool only_attention) {
    for (int kind = 0; kind < 2; ++kind) {
      const int n = kind == 0 ? dense_layers : moe_layers;
      if (n == 0) continue;
      Builder b{w.per_micro_batch, e, phase, double(n)};
      if (only_attention) {
        b.attention(c.micro_batch, m.n_head / c.tp, m.seq_len, m.head_dim(), false);
      } else if (backward) {
        block_backward(b, m, c, kind == 1);
      } else {
        block_forward(b, m, c, kind == 1);
      }
    }
  };
  Builder fwd{w.per_micro_batch, e, OpPhase::forward, 1};
  Builder bwd{w.per_micro_batch, e, OpPhase::backward, 1};
  // Reduced precisions refresh the 16-bit weight copy the GEMMs read every forward.
  if (e < 4)
    fwd.memory("convert", "weights.16bit", {std::int64_t(params_on_rank), 0, 0, 0},
               6.0 * params_on_rank);
  if (first) fwd.memory("embedding_forward", "embedding", {N, C, 0, 0}, e * 2.0 * N * C);
  blocks(OpPhase::forward, false, false);
  if (last) {
    // The LM head and the loss split over the vocabulary across the tensor-parallel group,
    // as Megatron-LM's vocab-parallel embedding and cross-entropy do (Shoeybi et al. 2019,
    // §3). trainbench's own model replicates them (model/gpt.h); at its proxy vocabularies
    // the difference is below measurement noise, at 50k+ vocabularies and tp = 8 it is most
    // of a block's work (docs/planner.md).
    const std::int64_t Vt = V / c.tp;
    fwd.layernorm("lnf", N, C, false);
    fwd.gemm("lm_head", N, C, Vt, false);
    // Logits and losses stay fp32 (model/gpt.h).
    fwd.memory("softmax_ce_forward", "loss", {N, Vt, 0, 0}, 4.0 * 2 * N * Vt);
    bwd.memory("softmax_ce_backward", "loss", {N, Vt, 0, 0}, 4.0 * 2 * N * Vt);
    bwd.gemm("lm_head", N, C, Vt, true);
    bwd.layernorm("lnf", N, C, true);
  }
  if (c.recompute == Recompute::full) blocks(OpPhase::recompute, false, false);
  if (c.recompute == Recompute::selective) blocks(OpPhase::recompute, false, true);
  blocks(OpPhase::backward, true, false);
  if (first) bwd.memory("embedding_backward", "embedding", {N, C, 0, 0}, e * 2.0 * N * C);

  // Once per iteration (train/trainer.cpp, train/optimizer.cpp): gradients zeroed, their norm
  // for clipping, the AdamW update (reads p, g, m, v; writes p, m, v: 28 bytes per fp32
  // parameter).
  Builder it{w.per_iteration, 4.0, OpPhase::optimizer, 1};
  const auto P = std::int64_t(params_on_rank), Popt = std::int64_t(optimizer_params);
  it.memory("fill_zero", "gradients", {P, 0, 0, 0}, 4.0 * params_on_rank);
  it.memory("sum_squares", "gradients", {P, 0, 0, 0}, 4.0 * params_on_rank);
  it.memory("adamw_update", "optimizer", {Popt, 0, 0, 0}, 28.0 * optimizer_params);
  return w;
}

}  // namespace tb
