// Magnitude pruning of the blocks' matmul weights (issue 13): a target sparsity per tensor,
// unstructured or N:M (e.g. 2:4), one-shot or gradual, with masks applied to the weights and
// their gradients so pruned weights stay exactly zero through training.
//
// Which tensors: every "blocks.…weight" tensor the layout marks for weight decay (the GEMM
// weights: attn.qkv, attn.proj, mlp.fc, mlp.proj, and the mixture-of-experts' expert
// weights), except a router ("…router…"). Embeddings, biases and LayerNorms are never pruned.
// A tensor-parallel or pipeline shard is pruned on its own: thresholds and N:M groups are per
// local tensor.
//
// Selection (host side, deterministic):
//  - unstructured: zero the k = ⌊s·n⌋ elements of smallest |w| (ties: lower index first) —
//    magnitude pruning (Han et al. 2015, "Learning both Weights and Connections", §3; Zhu &
//    Gupta 2017, §3).
//  - N:M: groups of M consecutive elements along the last (input) dimension; each keeps its N
//    largest |w| (ties: the lower index is pruned first) — the 2:4 pattern of NVIDIA's sparse
//    tensor cores (Mishra et al. 2021, "Accelerating Sparse Deep Neural Networks", §2). The
//    sparsity is 1 − N/M.
// Elements pruned earlier come before all others, so masks only shrink (pruned stays pruned).
//
// Schedule, over 0-based optimizer steps t (the learning-rate schedule's step):
//  - oneshot: at t = begin_step, to the target.
//  - gradual: Zhu & Gupta 2017 ("To prune, or not to prune", Eq. 1),
//      s_t = s_f + (s_i − s_f)·(1 − (t − t0)/(n·Δt))³,  s_i = 0, t0 = begin_step,
//      n·Δt = end_step − begin_step, Δt = frequency,
//    with masks recomputed at t = t0, t0 + Δt, t0 + 2Δt, … < end_step and at end_step (the
//    target), each from the current (masked) weights; between those steps s_t is held. N:M
//    gradual prunes to N:M the fraction s_t/(1 − N/M) of the groups — those whose pruning
//    removes the least Σ|w| (groups pruned before first; ties: lower index) — so every group
//    satisfies N:M from end_step on.
//
// Applying (Trainer): masks are computed at the START of a step whose scheduled sparsity
// exceeds the current one, before its forward, and the weights are masked at once; then,
// with the gradients final (after accumulation and any data-parallel reduction), the
// gradients are masked before the optimizer (so the gradient norm and the optimizer state
// see no gradient of a pruned weight), and the weights are masked again after the update
// (AdamW's moments or weight decay cannot revive them). w·0 is ±0.0: exactly zero.
//
// Execution is emulated: the forward and backward GEMMs run dense on the masked weights (the
// accuracy effect is real, a speed-up is not measured) — no sparse kernel is built.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "../model/gpt.h"
#include "pruning_config.h"

namespace tb {

// Whether the tensor is pruned (the rule above).
bool prunable(const ParameterSpec& spec);

// Masks (1 keep, 0 prune) for one tensor's n values w. prev: the previous mask (nullable);
// its zeros are pruned before anything else.
std::vector<std::uint8_t> unstructured_mask(const double* w, std::int64_t n, std::int64_t k,
                                            const std::uint8_t* prev = nullptr);
// groups_to_prune of the n/m groups (n a multiple of m) pruned to N:M.
std::vector<std::uint8_t> nm_mask(const double* w, std::int64_t n, int keep_n, int group_m,
                                  std::int64_t groups_to_prune, const std::uint8_t* prev = nullptr);
// Groups of m consecutive values with fewer than m − keep_n exact zeros.
std::int64_t nm_violations(const double* w, std::int64_t n, int keep_n, int group_m);

// One pruned tensor's state at a measurement.
struct TensorSparsity {
  std::string name;
  std::int64_t elements = 0;
  std::int64_t zeros = 0;           // exact zeros (±0.0) in the weights
  std::int64_t nm_violations = -1;  // N:M: groups with fewer than M − N zeros; −1 unstructured
  double sparsity() const { return elements > 0 ? double(zeros) / double(elements) : 0.0; }
};

class Pruner {
 public:
  // Validates `config`, selects the model's prunable tensors (std::invalid_argument naming a
  // tensor whose last dimension N:M's M does not divide) and allocates one mask per tensor,
  // of the model's dtype (f32 or f64), as optimizer_state memory labelled "pruning masks".
  Pruner(GptModel& model, PruningConfig config);

  // At the start of optimizer step `step`: when the schedule's sparsity exceeds the current
  // one, recomputes the masks from the current weights and masks the weights. Returns
  // whether it did. due() says so without doing it.
  bool due(long step) const { return scheduled_sparsity(config_, step) > current_; }
  bool begin_step(long step);
  // grads *= mask / params *= mask, for every pruned tensor; nothing before the first masks.
  void mask_gradients();
  void mask_weights();

  bool active() const { return active_; }
  // The sparsity the masks were last computed for (0 before).
  double current_sparsity() const { return current_; }
  const PruningConfig& config() const { return config_; }
  const std::vector<const ParameterSpec*>& tensors() const { return specs_; }
  // The mask of tensors()[i] (its shape), valid once active().
  Tensor mask(std::size_t i) const { return masks_.at(i); }
  // Counts the exact zeros in each pruned tensor's weights now (a host copy).
  std::vector<TensorSparsity> measure() const;
  // Host copy of tensors()[i]'s mask (1 keep, 0 pruned; empty before the first masks), and
  // a checkpoint restore (train/training_state.h): the masks and the sparsity they were
  // computed for; std::invalid_argument when a mask's size is not its tensor's.
  const std::vector<std::uint8_t>& host_mask(std::size_t i) const { return keep_.at(i); }
  void restore(double current_sparsity, std::vector<std::vector<std::uint8_t>> keep);

 private:
  void recompute(double sparsity);
  void upload_mask(std::size_t i);  // masks_[i] ← keep_[i]
  // flat (the model's parameters or gradients) *= mask over every pruned tensor.
  void apply_masks(const Tensor& flat);
  std::vector<double> host_values(const Tensor& t) const;

  GptModel& model_;
  PruningConfig config_;
  std::vector<const ParameterSpec*> specs_;
  Buffer storage_;
  std::vector<Tensor> masks_;
  std::vector<std::vector<std::uint8_t>> keep_;  // host copies of the masks
  double current_ = 0;
  bool active_ = false;
};

}  // namespace tb
