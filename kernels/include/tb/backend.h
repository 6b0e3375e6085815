// The operation set of a training step. The trainer is written once against this
// interface; kernels/cpu implements it with OpenBLAS and OpenMP loops, kernels/cuda will
// implement it with cuBLASLt and CUDA kernels, and the CPU backend (in f64) is the
// reference the others are tested against.
//
// Conventions (llm.c's layout): activations are row-major (B, T, C) = (N rows, C);
// a linear layer's weight is (OC, C) and computes out = inp · Wᵀ + bias.
// Backward functions ACCUMULATE (+=) into parameter gradients, so gradient accumulation
// over micro-batches is free; activation gradients are overwritten (=) unless the
// function says "accumulates".
//
// Precision. A call's floating tensors are either all f64 (the reference), or each f32 or a
// 16-bit storage type (bf16, f16; tb/dtype.h) in any mix: reduced-width inputs are read as
// their exact fp32 values, arithmetic and accumulation are fp32, and reduced-width outputs
// are rounded to nearest even when stored (fp16 overflows to ±inf, as on a GPU). A mixed-
// precision step stores activations and their gradients in 16 bits and keeps parameters,
// their gradients and optimizer state in fp32. The GEMMs additionally round their operands
// to a number format (GemmPrecision): tf32, bf16, fp16, or scaled FP8.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "tb/number_format.h"
#include "tb/tensor.h"

namespace tb {

enum class DeviceKind : std::uint8_t { cpu, cuda };

struct AdamWParams {
  double lr = 0;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0;  // decoupled (Loshchilov & Hutter 2019): p -= lr·wd·p
  long step = 1;            // 1-based, for bias correction (Kingma & Ba 2015, Alg. 1)
  double grad_scale = 1;    // multiplies the gradient first (gradient-norm clipping)
};

// SGD with heavy-ball momentum, PyTorch's torch.optim.SGD semantics (dampening 0, no
// Nesterov; https://pytorch.org/docs/stable/generated/torch.optim.SGD.html): weight decay
// is COUPLED (L2, added to the gradient before the momentum), g = grad_scale·∇ + wd·p;
// v = μ·v + g (v starts at 0, so v₁ = g as in PyTorch); p −= lr·v. With μ = 0: p −= lr·g.
struct SgdParams {
  double lr = 0;
  double momentum = 0.9;
  double weight_decay = 0;
  double grad_scale = 1;
};

// LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning", Alg. 2), the
// per-element half: Adam's bias-corrected moments and the update direction
// r = m̂/(√v̂ + ε) + λ·p. The per-tensor trust ratio is the caller's.
struct LambParams {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-6;
  double weight_decay = 0;  // λ
  long step = 1;            // 1-based, for bias correction
  double grad_scale = 1;
};

// ‖p‖² and ‖r‖² of one lamb_direction call, each accumulated in double in a fixed order.
struct LambNorms {
  double param_sq = 0;
  double update_sq = 0;
};

// How one GEMM operand enters the multiply: rounded (RNE) to `format`, products of the
// rounded values accumulated in fp32 — what tensor cores compute (NVIDIA H100 whitepaper,
// "fourth-generation Tensor Cores"). fp32 leaves the operand as stored. For the FP8 formats
// (Micikevicius et al. 2022, §3.1; per-tensor scaling as in NVIDIA Transformer Engine) the
// operand is cast as saturate(x·scale) and the product is divided by the scales again, so
// the result estimates the unscaled product; the scale comes from the caller's amax history.
struct GemmOperand {
  NumberFormat format = NumberFormat::fp32;
  float scale = 1;  // FP8 only; > 0
  // When set, receives max|x| over the operand as stored (before scaling; NaN if any element
  // is NaN), the amax that delayed scaling records. A host address, valid after synchronize().
  float* amax = nullptr;
};

// The operands of a linear layer's GEMMs. Forward: out = inp·weightᵀ. Backward:
// dinp = dout·weight and dweight += doutᵀ·inp, with inp and weight entering as in forward.
struct GemmPrecision {
  GemmOperand inp, weight, dout;
};

// How reduced-precision roundings went (Backend::count_rounding): of `values` rounded into a
// narrower format, how many nonzero finite values became zero (underflow), landed in the
// format's subnormal range (precision lost), or overflowed to ±inf. The signature of fp16
// training without loss scaling is a large underflow fraction in the gradients.
struct RoundingStats {
  std::int64_t values = 0;
  std::int64_t underflow = 0;
  std::int64_t subnormal = 0;
  std::int64_t overflow = 0;
  RoundingStats& operator+=(const RoundingStats& o) {
    values += o.values;
    underflow += o.underflow;
    subnormal += o.subnormal;
    overflow += o.overflow;
    return *this;
  }
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual DeviceKind kind() const = 0;
  virtual std::string name() const = 0;
  virtual MemoryTracker& memory() = 0;

  // Tracked allocation; throws OutOfMemory. The memory is not initialised.
  virtual Buffer allocate(std::size_t bytes, MemoryCategory category, std::string_view label) = 0;
  virtual void copy_from_host(const Tensor& dst, const void* src) = 0;
  virtual void copy_to_host(void* dst, const Tensor& src) = 0;
  virtual void fill_zero(const Tensor& t) = 0;
  // dst = src, both on this device, same dtype and element count.
  virtual void copy(const Tensor& dst, const Tensor& src) = 0;
  // dst = src converted between f32, bf16 and f16 (RNE; same element count), e.g. the 16-bit
  // copy of fp32 master weights that a mixed-precision forward multiplies with.
  virtual void convert(const Tensor& dst, const Tensor& src) = 0;
  virtual void synchronize() = 0;

  // out(B,T,C) = wte[tokens] + wpe[t]. tokens: i32 (B,T); wte (V,C); wpe (maxT,C).
  virtual void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte,
                                 const Tensor& wpe) = 0;
  // dwte += scatter(dout); dwpe += Σ_b dout.
  virtual void embedding_backward(const Tensor& dwte, const Tensor& dwpe, const Tensor& dout,
                                  const Tensor& tokens) = 0;

  // LayerNorm over the last dim (Ba et al. 2016), eps = 1e-5. out, inp (N,C); mean, rstd (N).
  virtual void layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd,
                                 const Tensor& inp, const Tensor& weight, const Tensor& bias) = 0;
  // dinp ACCUMULATES (it is the residual stream's gradient); dweight, dbias accumulate.
  virtual void layernorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias,
                                  const Tensor& dout, const Tensor& inp, const Tensor& weight,
                                  const Tensor& mean, const Tensor& rstd) = 0;

  // out(N,OC) = inp(N,C)·weight(OC,C)ᵀ + bias(OC) [+ out when accumulate_out]. bias may be
  // empty. The GEMM's operands enter as `precision` says (its dout is unused here).
  virtual void matmul_forward(const Tensor& out, const Tensor& inp, const Tensor& weight,
                              const Tensor& bias, bool accumulate_out,
                              const GemmPrecision& precision = {}) = 0;
  // dinp = dout·weight (skipped when empty); dweight += doutᵀ·inp; dbias += Σ dout (if given,
  // from dout as stored).
  virtual void matmul_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias,
                               const Tensor& dout, const Tensor& inp, const Tensor& weight,
                               const GemmPrecision& precision = {}) = 0;

  // Causal multi-head self-attention over qkv(B,T,3C) = [q | k | v], head h at columns
  // h·C/NH … (h+1)·C/NH of each. probs (B,NH,T,T) saves softmax(q·kᵀ/√d_head) with the
  // causal mask (entries above the diagonal are zero); out (B,T,C).
  virtual void attention_forward(const Tensor& out, const Tensor& probs, const Tensor& qkv,
                                 int n_head) = 0;
  // dqkv (B,T,3C) is overwritten. scratch must hold B·NH·T·T elements of the dtype.
  virtual void attention_backward(const Tensor& dqkv, const Tensor& scratch, const Tensor& dout,
                                  const Tensor& qkv, const Tensor& probs, int n_head) = 0;

  // GELU, tanh approximation (Hendrycks & Gimpel 2016, Eq. in §2).
  virtual void gelu_forward(const Tensor& out, const Tensor& inp) = 0;
  virtual void gelu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout) = 0;

  // out = a + b, elementwise.
  virtual void add(const Tensor& out, const Tensor& a, const Tensor& b) = 0;
  // out = a · b, elementwise (same conventions as add; out may be a or b). Pruning's masks:
  // w ← w · mask keeps the kept weights bit for bit and makes the pruned ones ±0.
  virtual void mul(const Tensor& out, const Tensor& a, const Tensor& b) = 0;
  // t *= s.
  virtual void scale(const Tensor& t, double s) = 0;

  // In place: logits (N,V) become softmax probabilities; losses(N) = −log p[target].
  // targets: i32 (N). Returns the mean loss.
  virtual double softmax_cross_entropy_forward(const Tensor& logits_to_probs, const Tensor& losses,
                                               const Tensor& targets) = 0;
  // In place: probs become dlogits = (probs − onehot(target))·dloss_scale, where
  // dloss_scale is the loss gradient per row (1/N for a mean over N rows).
  virtual void softmax_cross_entropy_backward(const Tensor& probs_to_dlogits, const Tensor& targets,
                                              double dloss_scale) = 0;

  // Σ x², accumulated in double.
  virtual double sum_squares(const Tensor& x) = 0;
  // AdamW with bias correction; m and v are f32/f64 like params.
  virtual void adamw_update(const Tensor& params, const Tensor& grads, const Tensor& m,
                            const Tensor& v, const AdamWParams& hp) = 0;
  // SGD with momentum (SgdParams). momentum_buf is like params; it may be empty when
  // hp.momentum is 0.
  virtual void sgd_update(const Tensor& params, const Tensor& grads, const Tensor& momentum_buf,
                          const SgdParams& hp) = 0;
  // LAMB's moments and direction: updates m and v, writes r into `update` (like params) and
  // returns ‖p‖² and ‖r‖² (double, fixed chunk order: independent of the thread count).
  // params are not changed.
  virtual LambNorms lamb_direction(const Tensor& update, const Tensor& params, const Tensor& grads,
                                   const Tensor& m, const Tensor& v, const LambParams& hp) = 0;
  // y += alpha·x, elementwise (LAMB's p −= lr·trust·r).
  virtual void axpy(const Tensor& y, double alpha, const Tensor& x) = 0;

  // Mixture of experts (harness/model/moe_routing.h): token rows moved to and from the
  // experts' contiguous row blocks. index: i32 (M), rows of an (N, C) tensor; slots: i32
  // (N, K), the rows of a (M, C) tensor each token gathers from, −1 where none; weight: (M)
  // in the model's dtype, or empty for 1.
  // out(M,C): out[i] = weight[i]·inp[index[i]] — the dispatch of tokens to experts, and of
  // the combined output's gradient to the experts' rows.
  virtual void gather_rows(const Tensor& out, const Tensor& inp, const Tensor& index,
                           const Tensor& weight) = 0;
  // out(N,C) ACCUMULATES: out[n] += Σ_{j<K, s = slots[n,j] ≥ 0} weight[s]·inp[s], j in order
  // (a fixed order per row: deterministic without atomics) — the combine of the experts'
  // outputs, and the gradient of the dispatch's input.
  virtual void combine_rows(const Tensor& out, const Tensor& inp, const Tensor& slots,
                            const Tensor& weight) = 0;
  // out(M) = Σ_c a[index[i], c]·b[i, c], accumulated in fp32 (f64 in the reference): the
  // gradients of the combine weights (gates).
  virtual void gathered_row_dot(const Tensor& out, const Tensor& a, const Tensor& index,
                                const Tensor& b) = 0;

  // Diagnostics: while on, count every rounding into a 16-bit tensor and every rounding of a
  // GEMM's output-gradient operand to a reduced format. Returns false (and counts nothing)
  // on a backend that cannot. take_rounding_stats returns the counts so far and resets them.
  virtual bool count_rounding(bool on) {
    (void)on;
    return false;
  }
  virtual RoundingStats take_rounding_stats() { return {}; }
};

}  // namespace tb
