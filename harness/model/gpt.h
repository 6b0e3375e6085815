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
// Precision (PrecisionPolicy, precision.h; set before the first forward): every saved
// activation and every activation gradient is stored in activation_dtype(mode) (16 bits in
// bf16, fp16 and fp8 modes) — except the LayerNorm statistics (the 4·B·T and 2·B·T terms),
// the logits (B·T·V) and the losses (B·T), which stay fp32. So with s the activation width in
// bytes, the activations memory above is s·(elements of stored activations) + 4·(those fp32
// terms). The GEMMs read a 16-bit copy of the weights in those modes (MemoryCategory::
// parameters, label "16-bit weight copy").
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "config.h"
#include "fp8_scaling.h"
#include "parameters.h"
#include "precision.h"
#include "shard.h"
#include "tb/backend.h"

namespace tb {

class Profiler;

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
};

struct Activations {
  Tensor tokens, targets;  // i32 (B,T)
  Tensor encoded;          // (B,T,C) embeddings: the first block's input
  // One entry per layer; with interval k ≥ 1, min(k, L) entries: one segment's buffers,
  // block l using layers[l % k]. With selective, every layer's att views one shared buffer.
  std::vector<LayerActivations> layers;
  // interval k ≥ 1: (B,T,C) input of block j·k for each segment j; inputs[0] is encoded.
  std::vector<Tensor> segment_inputs;
  Tensor lnf, lnf_mean, lnf_rstd;  // (B,T,C), (B,T), (B,T)
  Tensor logits;                   // (B,T,V): probabilities after forward, dlogits in backward
  Tensor losses;                   // (B,T)
};

class GptModel {
 public:
  // dtype f32 trains; f64 is the reference for gradient checks. Only the whole model
  // (ShardSpec::whole) can run forward/backward until the parallel work lands.
  GptModel(Backend& backend, ModelConfig config, DType dtype, ShardSpec shard = {});

  const ModelConfig& config() const { return config_; }

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
  const ParameterLayout& layout() const { return layout_; }
  DType dtype() const { return dtype_; }
  Backend& backend() const { return backend_; }

  Tensor params() const { return params_all_; }
  Tensor grads() const { return grads_all_; }
  Tensor param(const std::string& name) const { return view(params_all_, layout_.find(name)); }
  Tensor grad(const std::string& name) const { return view(grads_all_, layout_.find(name)); }

  // GPT-2 initialisation: N(0, 0.02); residual projections N(0, 0.02/√(2L)) (Radford et al.
  // 2019, §2.3); biases 0; LayerNorm weights 1.
  void init_weights(std::uint64_t seed);

  // inputs, targets: host arrays of B·T token ids in [0, vocab). Returns the mean loss.
  double forward(const std::int32_t* inputs, const std::int32_t* targets, int B);
  // Accumulates loss_scale · d(mean loss)/dθ into grads(); call after forward with the same
  // batch. loss_scale ≠ 1 is loss scaling (train/loss_scaler.h): the output gradient is
  // multiplied by it before it flows back through 16-bit activation gradients. Recomputation
  // is timed as Phase::recompute on profiler, when given (it nests inside the caller's
  // backward range). In fp8 mode the amaxes this forward/backward recorded update the
  // delayed scaling at the end (so a recomputation casts with the forward's scales).
  void backward(Profiler* profiler = nullptr, double loss_scale = 1.0);
  void zero_grad();

  // Saved activations of the current batch shape (valid after forward).
  const Activations& activations() const { return acts_; }
  int batch() const { return B_; }

 private:
  Tensor view(const Tensor& flat, const ParameterSpec& p) const {
    return flat.slice(p.offset, p.shape);
  }
  void ensure_buffers(int B);
  // The buffers block l runs in, and its input (valid after the block before it ran).
  LayerActivations& layer_acts(int l);
  const Tensor& layer_input(int l);
  void layer_forward(int l);
  void layer_backward(int l, Profiler* profiler);
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
  CheckpointPolicy policy_;
  PrecisionPolicy precision_;
  ParameterLayout layout_;
  Buffer params_buf_, grads_buf_, weights_lp_buf_;
  Tensor params_all_, grads_all_, weights_lp_;
  std::vector<DelayedScaling> fp8_;

  int B_ = 0;
  Buffer acts_buf_, acts_tokens_buf_, work_buf_;
  Activations acts_;
  // Backward scratch (workspace): gradients of activations, reused across layers.
  Tensor d_residual_, d_tmp_, d_qkv_, d_fch_, d_att_;
};

}  // namespace tb
