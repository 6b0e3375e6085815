// A GPT-style decoder (Radford et al. 2019; Brown et al. 2020): token + learned position
// embeddings, pre-LayerNorm blocks of causal multi-head self-attention and a GELU MLP of
// width 4·d with residuals, a final LayerNorm, the LM head tied to the token embedding, and
// mean cross-entropy. Forward and backward are written out layer by layer against the
// Backend operation set (llm.c's style); every tensor saved for backward is a named field of
// Activations, allocated under MemoryCategory::activations.
//
// Activation checkpointing (CheckpointPolicy, set before the first forward):
// - interval k ≥ 1, full recompute (Chen et al. 2016, "Training Deep Nets with Sublinear
//   Memory Cost"): the L blocks form S = ⌈L/k⌉ segments [j·k, min((j+1)·k, L)). Forward keeps
//   only each segment's input (the residual stream entering block j·k; segment 0's is the
//   embeddings) and runs every block into one segment's worth of LayerActivations
//   (min(k, L) layers), reused. Backward, segment by segment from the last, first recomputes
//   the segment's forward from its saved input into that buffer (inside a Phase::recompute
//   range when a Profiler is given), then backprops through it. Every segment is
//   recomputed, the last one too.
// - selective (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
//   Transformer Models", §4.2): everything is kept except the attention probabilities
//   (B,NH,T,T); all layers share one such buffer, and backward recomputes each layer's
//   probabilities from its saved qkv just before that layer's backward. Interval 0 only.
// The recomputation runs the same kernels on the same inputs (at the same addresses), so
// gradients are bit-identical to no checkpointing. Every saved or recompute buffer is
// activations memory (one allocation, plus the token ids); backward's gradient scratch stays
// workspace. In elements of the model dtype, with P = 16·B·T·C + 4·B·T + NH·B·T² per layer
// and ends E = B·T·C (final LN) + 2·B·T (its statistics) + B·T·V (logits) + B·T (losses):
//   off:        B·T·C (embeddings) + L·P + E
//   interval k: ⌈L/k⌉·B·T·C (segment inputs, embeddings included) + min(k, L)·P + E
//   selective:  B·T·C + L·(P − NH·B·T²) + NH·B·T² + E
// plus 2·B·T int32 token ids; each tensor is padded to 64 bytes.
//
// Parallel shards (shard.h; docs/parallel.md). Tensor parallelism over t ranks (Megatron-LM,
// Shoeybi et al. 2019, §3): a rank holds NH/t heads and 4C/t MLP columns, so per layer
//   P_t = 4·B·T·C + 12·B·T·C/t + 4·B·T + (NH/t)·B·T²
// (ln1, res_att, ln2, res_mlp replicated; qkv 3C/t, atty C/t, fch and fch_gelu 4C/t each).
// The row-parallel projections' partial outputs and the column-parallel layers' partial
// input gradients are summed over the tensor-parallel group (2 all-reduces of B·T·C forward
// and 2 backward per layer, Megatron's f and g operators) through one B·T·C buffer in
// `communication` memory (fp32; f64 in an f64 model). A pipeline stage runs its layer range
// [layer_begin, layer_end): L above becomes its layer count, the first stage embeds, every
// other stage's `encoded` holds the activation received from the stage before, and only the
// last stage has E. Sequence parallelism (Korthikanti et al. 2022, §4.2.2) splits the
// residual stream — block inputs and outputs, residuals, LayerNorm statistics — by rows
// (tokens) over the tensor-parallel group: rank r keeps rows [r·N/t, (r+1)·N/t) of the
// B·T = N. Each LayerNorm runs on its rows and its output is all-gathered for the column-
// parallel GEMM (that full output is what is saved; Megatron-LM gathers it again in
// backward instead); each row-parallel GEMM's partial sum is reduce-scattered instead of
// all-reduced; backward runs the conjugates. The embedding output is split after the
// (replicated) lookup, and the last block's output gathered before the final LayerNorm, so
// stages hand on N/t rows. With several micro-batches in flight (pipeline_slots n: GPipe keeps m,
// 1F1B min(m, p − stage)), every saved tensor exists once per slot — the activations peak is
// n times one micro-batch's (selective recompute's probabilities buffer is shared by all).
//
// Precision (PrecisionPolicy, precision.h; set before the first forward): every saved
// activation and every activation gradient is stored in activation_dtype(mode) (16 bits in
// bf16, fp16 and fp8 modes) — except the LayerNorm statistics (the 4·B·T and 2·B·T terms),
// the logits (B·T·V) and the losses (B·T), which stay fp32. So with s the activation width in
// bytes, the activations memory above is s·(elements of stored activations) + 4·(those fp32
// terms). The GEMMs read a 16-bit copy of the weights in those modes (MemoryCategory::
// parameters, label "16-bit weight copy").
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "config.h"
#include "fp8_scaling.h"
#include "moe_routing.h"
#include "parameters.h"
#include "precision.h"
#include "shard.h"
#include "tb/backend.h"

namespace tb {

class Profiler;
class Comm;

// interval 0: no recomputation; k ≥ 1: keep every k-th block's input and recompute each
// segment of k blocks in backward. selective: recompute only the attention probabilities
// (requires interval 0).
struct CheckpointPolicy {
  int interval = 0;
  bool selective = false;
};

// What forward saves for backward, per layer and for the model's ends.
struct LayerActivations {
  Tensor ln1, ln1_mean, ln1_rstd;  // (B,T,C), (B,T), (B,T)
  Tensor qkv;                      // (B,T,3C)
  Tensor att;                      // (B,NH,T,T) softmax probabilities
  Tensor atty;                     // (B,T,C) attention output, input of the projection
  Tensor res_att;                  // (B,T,C) residual after attention
  Tensor ln2, ln2_mean, ln2_rstd;  // (B,T,C), (B,T), (B,T)
  Tensor fch;                      // (B,T,4C) before GELU
  Tensor fch_gelu;                 // (B,T,4C) after GELU
  Tensor res_mlp;                  // (B,T,C) residual after the MLP: the block's output
  // Mixture-of-experts blocks (moe_routing.h), with M the most rows the experts can take
  // (min(E·capacity, k·B·T)); fch and fch_gelu are empty in a buffer only such blocks use.
  Tensor router_logits;          // (B·T, E) in the model's dtype
  Tensor moe_in, moe_out;        // (M, C) dispatched inputs and the experts' outputs
  Tensor moe_fch, moe_fch_gelu;  // (M, 4C) the experts' hidden activations
  Tensor moe_gates;              // (M) combine weights, in the model's dtype
  Tensor moe_index, moe_slots;   // i32 (M) token of each row; (B·T, k) row of each choice
  MoeRouting routing;            // the host's routing of the last forward
  // Expert parallelism: rows this rank's experts received from each source rank, (P, E/P);
  // moe_in, moe_fch and moe_fch_gelu then hold the received rows in (source, expert) blocks
  // of `capacity` rows, and moe_out the rows returned to this rank.
  std::vector<std::int32_t> moe_recv_counts;
};

struct Activations {
  Tensor tokens, targets;  // i32 (B,T)
  Tensor encoded;          // (B,T,C) embeddings: the first block's input
  // One entry per layer; with interval k ≥ 1, min(k, L) entries: one segment's buffers,
  // block l using layers[l % k]. With selective, every layer's att views one shared buffer.
  std::vector<LayerActivations> layers;
  // interval k ≥ 1: (B,T,C) input of block j·k for each segment j; inputs[0] is encoded.
  std::vector<Tensor> segment_inputs;
  // Sequence parallelism: the last block's output gathered over the tensor-parallel group,
  // the final LayerNorm's input (B,T,C); empty otherwise.
  Tensor final_input;
  Tensor lnf, lnf_mean, lnf_rstd;  // (B,T,C), (B,T), (B,T)
  Tensor logits;                   // (B,T,V): probabilities after forward, dlogits in backward
  Tensor losses;                   // (B,T)
};

// What the mixture-of-experts blocks' routing did over the forwards counted (training
// forwards; not recomputations, not while counting is off).
struct MoeStats {
  std::vector<int> layers;                              // global block index of each MoE block
  std::vector<std::vector<std::int64_t>> dispatched;    // per MoE block, rows per expert
  std::vector<std::vector<std::int64_t>> first_choice;  // per MoE block, first choices per expert
  std::int64_t choices = 0, dropped = 0;                // token choices, and those dropped
  double load_balance_loss = 0, z_loss = 0;             // sums over blocks and forwards (no α, β)
  std::int64_t forwards = 0;                            // block forwards counted
};

class GptModel {
 public:
  // dtype f32 trains; f64 is the reference for gradient checks. A tensor-parallel shard
  // needs set_tensor_parallel before its first forward. The flat parameter and gradient
  // buffers are padded with zeros to a multiple of flat_multiple elements (ZeRO's
  // reduce-scatter splits them evenly over the data-parallel ranks).
  GptModel(Backend& backend, ModelConfig config, DType dtype, ShardSpec shard = {},
           std::int64_t flat_multiple = 1);

  const ShardSpec& shard() const { return shard_; }
  int layer_begin() const { return shard_.layer_begin; }
  int layer_end() const { return layer_end_; }
  bool first_stage() const { return shard_.layer_begin == 0; }
  bool last_stage() const { return layer_end_ == config_.n_layer; }
  // The tensor-parallel group (not owned); its size and rank must be the shard's.
  void set_tensor_parallel(Comm* comm);
  // Expert parallelism (GShard, Lepikhin et al. 2021) over `comm`, the data-parallel group
  // (not owned): its size and rank must be the shard's expert_parallel ones. Call before the
  // first forward. Tokens go to their experts' ranks and back by two all-to-alls per MoE
  // block forward (and two backward).
  void set_expert_parallel(Comm* comm);
  // Sequence parallelism (Korthikanti et al. 2022, §4.2.2) over the tensor-parallel group:
  // see the comment above the class. Call before the first forward; needs tp > 1.
  void set_sequence_parallel(bool on);
  bool sequence_parallel() const { return seq_parallel_; }
  // The flat ranges of the parameters whose gradients each tensor-parallel rank only has in
  // part under sequence parallelism (the blocks' LayerNorms: each rank normalises its own
  // rows); the trainer sums them over the group once per optimizer step.
  std::vector<std::pair<std::int64_t, std::int64_t>> sequence_parallel_grad_ranges() const;
  // Micro-batches whose activations are kept at once (pipeline schedules); 1 by default.
  // Like set_checkpointing, call it between steps.
  void set_pipeline_slots(int slots);
  int pipeline_slots() const { return slots_; }
  // Called during backward with each flat range [begin, end) of parameters whose gradients
  // this backward will not touch again (a block's, after its backward; the final LayerNorm's),
  // so a data-parallel reducer can start on them; the embeddings are reported at the end.
  void set_grad_ready_hook(std::function<void(std::int64_t, std::int64_t)> hook) {
    grad_ready_ = std::move(hook);
  }

  const ModelConfig& config() const { return config_; }

  // Mixture of experts: the auxiliary losses (α·load balance + β·z-loss, summed over the
  // blocks) of the last forward(), which backward() differentiates along with the mean
  // cross-entropy that forward() returns; routing statistics, counted while
  // count_moe_stats is on (the default; evaluation turns it off).
  double moe_aux_loss() const { return moe_aux_loss_; }
  const MoeStats& moe_stats() const { return moe_stats_; }
  void reset_moe_stats();
  void count_moe_stats(bool on) { moe_stats_on_ = on; }
  bool counting_moe_stats() const { return moe_stats_on_; }

  // Throws std::invalid_argument for interval < 0, or selective with interval ≠ 0. Saved
  // buffers are re-carved at the next forward (call it between steps, not between a forward
  // and its backward).
  void set_checkpointing(CheckpointPolicy policy);
  CheckpointPolicy checkpointing() const { return policy_; }
  // Throws std::invalid_argument for a reduced precision on an f64 model, or bad fp8
  // settings. Like set_checkpointing, call it between steps.
  void set_precision(PrecisionPolicy precision);
  const PrecisionPolicy& precision() const { return precision_; }
  // The fp8 delayed-scaling state of the blocks' GEMMs, 3 per linear layer (input, weight,
  // output gradient) in layer order qkv, attn.proj, mlp.fc, mlp.proj; empty in other modes.
  const std::vector<DelayedScaling>& fp8_scaling() const { return fp8_; }
  std::vector<DelayedScaling>& fp8_scaling() { return fp8_; }  // checkpoint restore
  const ParameterLayout& layout() const { return layout_; }
  DType dtype() const { return dtype_; }
  Backend& backend() const { return backend_; }

  Tensor params() const { return params_all_; }
  Tensor grads() const { return grads_all_; }
  // The same, including the zero padding to flat_multiple.
  Tensor params_padded() const { return params_padded_; }
  Tensor grads_padded() const { return grads_padded_; }
  Tensor param(const std::string& name) const { return view(params_all_, layout_.find(name)); }
  Tensor grad(const std::string& name) const { return view(grads_all_, layout_.find(name)); }

  // GPT-2 initialisation: N(0, 0.02); residual projections N(0, 0.02/√(2L)) (Radford et al.
  // 2019, §2.3); biases 0; LayerNorm weights 1.
  void init_weights(std::uint64_t seed);

  // inputs, targets: host arrays of B·T token ids in [0, vocab). Returns the mean loss.
  double forward(const std::int32_t* inputs, const std::int32_t* targets, int B) {
    return forward(0, inputs, targets, B);
  }
  // A pipeline stage's forward of one micro-batch into slot `slot`: the first stage reads
  // `inputs`, the others the activation the caller put in stage_input(slot); the last stage
  // reads `targets` and returns the mean loss, the others return 0.
  double forward(int slot, const std::int32_t* inputs, const std::int32_t* targets, int B);
  // Accumulates loss_scale · d(mean loss)/dθ into grads(); call after forward with the same
  // batch. loss_scale ≠ 1 is loss scaling (train/loss_scaler.h): the output gradient is
  // multiplied by it before it flows back through 16-bit activation gradients. Recomputation
  // is timed as Phase::recompute on profiler, when given (it nests inside the caller's
  // backward range). In fp8 mode the amaxes this forward/backward recorded update the
  // delayed scaling at the end (so a recomputation casts with the forward's scales).
  void backward(Profiler* profiler = nullptr, double loss_scale = 1.0) {
    backward(0, profiler, loss_scale);
  }
  // A stage's backward of the micro-batch in `slot`: the last stage starts from its loss, the
  // others from the gradient the caller put in stage_grad(); afterwards, on every stage but
  // the first, stage_grad() holds the gradient of the stage's input.
  void backward(int slot, Profiler* profiler, double loss_scale);
  void zero_grad();

  // Carves the buffers for micro-batches of B sequences (forward does it too): a stage that
  // receives its input needs stage_input() before its first forward.
  void prepare(int B) { ensure_buffers(B); }
  // Where a stage receives its input activation, the activation it hands on, and the
  // gradient that flows between stages (valid after the first forward at this batch size).
  Tensor stage_input(int slot) const { return acts_.at(static_cast<std::size_t>(slot)).encoded; }
  Tensor stage_output(int slot) const;
  Tensor stage_grad() const { return d_residual_; }

  // Saved activations of the current batch shape (valid after forward).
  const Activations& activations(int slot = 0) const {
    return acts_.at(static_cast<std::size_t>(slot));
  }
  int batch() const { return B_; }

 private:
  Tensor view(const Tensor& flat, const ParameterSpec& p) const {
    return flat.slice(p.offset, p.shape);
  }
  void ensure_buffers(int B);
  // Layers are indexed locally (0 = layer_begin). The buffers local layer l of a slot runs
  // in, and its input (valid after the block before it ran).
  LayerActivations& layer_acts(Activations& a, int l);
  const Tensor& layer_input(Activations& a, int l);
  void layer_forward(Activations& a, int l);
  void layer_backward(Activations& a, int l, Profiler* profiler);
  // A row-parallel projection: out = residual + inp·Wᵀ + bias, its partial products summed
  // over the tensor-parallel group.
  void row_parallel_forward(const Tensor& out, const Tensor& residual, const Tensor& inp,
                            const std::string& weight, const std::string& bias,
                            const GemmPrecision& precision);
  // A column-parallel layer's backward: the weight and bias gradients, and its input gradient
  // (a partial sum on each tensor-parallel rank, all-reduced) into `dinp` or tp_partial_.
  // Returns the tensor holding the summed input gradient.
  Tensor column_parallel_backward(const Tensor& dinp, const std::string& weight,
                                  const std::string& bias, const Tensor& dout, const Tensor& inp,
                                  const GemmPrecision& precision);
  void grads_ready(int local_layer);
  // Mixture-of-experts blocks (gpt_moe.cpp): the MLP half of the block after ln2, forward
  // into la.res_mlp, and backward returning the gradient of ln2's output (in d_tmp_).
  bool moe_layer(int local_layer) const {
    return config_.moe.is_moe_layer(shard_.layer_begin + local_layer);
  }
  std::int64_t moe_rows_max(int B) const;
  int ep() const { return shard_.expert_parallel_size; }
  // The experts' GEMMs over row blocks of la's buffers: (local expert, first row, rows).
  struct ExpertBlock {
    int expert;
    std::int64_t begin, rows;
  };
  std::vector<ExpertBlock> expert_blocks(const LayerActivations& la) const;
  void experts_forward(const LayerActivations& la, int l, const Tensor& y);
  void experts_backward(const LayerActivations& la, int l, const Tensor& d_rows);
  void moe_forward(LayerActivations& la, int l);
  Tensor moe_backward(LayerActivations& la, int l);
  // Expert e's slice of a stacked (E, …) tensor in the flat buffer `flat`.
  Tensor expert_view(const Tensor& flat, const std::string& name, int e) const;
  int local_layers() const { return layer_end_ - shard_.layer_begin; }
  int tp() const { return shard_.tensor_parallel_size; }
  // The weight a GEMM multiplies: the 16-bit copy in reduced modes, else the master.
  Tensor gemm_weight(const std::string& name) const {
    return weights_lp_.empty() ? param(name) : view(weights_lp_, layout_.find(name));
  }
  // Operand formats of linear layer `j` (0 qkv, 1 attn.proj, 2 mlp.fc, 3 mlp.proj) of block
  // l; l = n_layer is the LM head.
  GemmPrecision gemm_precision(int l, int j);

  Backend& backend_;
  ModelConfig config_;
  DType dtype_;
  ShardSpec shard_;
  int layer_end_;
  CheckpointPolicy policy_;
  PrecisionPolicy precision_;
  ParameterLayout layout_;
  Buffer params_buf_, grads_buf_, weights_lp_buf_;
  Tensor params_all_, grads_all_, params_padded_, grads_padded_, weights_lp_;
  std::vector<DelayedScaling> fp8_;
  Comm* tp_comm_ = nullptr;
  Comm* ep_comm_ = nullptr;
  bool seq_parallel_ = false;
  int slots_ = 1;
  std::function<void(std::int64_t, std::int64_t)> grad_ready_;
  double moe_aux_loss_ = 0;
  double loss_scale_ = 1;     // of the running backward
  bool recomputing_ = false;  // backward's recomputation of a segment is running
  bool moe_stats_on_ = true;
  MoeStats moe_stats_;

  int B_ = 0;
  Buffer acts_buf_, acts_tokens_buf_, work_buf_, tp_buf_;
  std::vector<Activations> acts_;  // one per pipeline slot
  // Backward scratch (workspace): gradients of activations, reused across layers.
  Tensor d_residual_, d_tmp_, d_qkv_, d_fch_, d_att_;
  // Mixture of experts: gradients of the dispatched rows (M, C), of their hidden activations
  // (M, 4C), of the gates (M) and of the router logits (B·T, E).
  Tensor d_moe_rows_, d_moe_fch_, d_moe_gates_, d_router_;
  Tensor d_moe_recv_;  // expert parallelism: rows received for this rank's experts (M, C)
  // Tensor parallelism: partial sums (B,T,C) all-reduced over the group (communication).
  Tensor tp_partial_;
  // Sequence parallelism (communication): this rank's rows of a summed partial (fp32), of a
  // LayerNorm output before its all-gather, and a gathered (B,T,C) gradient.
  Buffer sp_buf_;
  Tensor sp_rows_, sp_local_, sp_full_;
  // This rank's rows of a (B,T,C) tensor under sequence parallelism.
  Tensor my_rows(const Tensor& full) const;
  void layernorm_to_gemm(const Tensor& out, const Tensor& mean, const Tensor& rstd,
                         const Tensor& inp, const std::string& weight, const std::string& bias);
  // The residual-stream gradient as the row-parallel GEMMs' backward reads it: d_residual_,
  // or under sequence parallelism its rows gathered from the group.
  const Tensor& gathered_grad();
};

}  // namespace tb
