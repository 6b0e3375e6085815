// Launchers of the CUDA kernels (kernels/cuda/*.cu), called by the backend on its stream.
// Tensors arrive as typed device views, In (read) and Out (written): a pointer and the element
// type. Every kernel computes in fp32: it reads through ld() (16-bit values decode exactly) and
// stores through st() (rounded to nearest even; fp16 overflows to ±inf), so any mix of f32,
// bf16 and f16 tensors is one kernel (the type switch is uniform across a warp). Sizes are
// elements; an empty range launches nothing. Launch errors throw std::runtime_error.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "tb/number_format.h"

namespace tb::cuda {

enum class Elem : int { f32 = 0, bf16 = 1, f16 = 2 };

struct In {
  const void* ptr = nullptr;
  Elem type = Elem::f32;
};
struct Out {
  void* ptr = nullptr;
  Elem type = Elem::f32;
};

inline In as_in(Out o) { return In{o.ptr, o.type}; }

using I64 = std::int64_t;

// ---- casts.cu: conversions, GEMM operand casts, GEMM epilogues ---------------------------

// dst[i] = src[i] (RNE when dst is narrower).
void convert(Out dst, In src, I64 n, cudaStream_t stream);
// dst[i] = src[i] rounded to format f (tb/number_format.h's rules, RNE); for e4m3/e5m2 the FP8
// value of saturate(src[i]·scale) — not divided by the scale again. amax_slot (may be null):
// atomically raised to max |src[i]| (NaN when any element is NaN).
void round_to_format(Out dst, In src, I64 n, NumberFormat f, float scale, float* amax_slot,
                     cudaStream_t stream);
// FP8 bytes (e4m3 or e5m2) of saturate(src·scale), RNE (Micikevicius et al. 2022, §3; Transformer
// Engine's cast with __NV_SATFINITE). src is a row-major (rows × cols) matrix; with `transpose`
// dst is its transpose, (cols × rows) row-major. amax_slot as above; inv_scale_slot (may be
// null): set to 1/scale, the dequantisation factor cuBLASLt reads through its scale pointers.
void cast_fp8(std::uint8_t* dst, In src, I64 rows, I64 cols, bool transpose, NumberFormat f,
              float scale, float* amax_slot, float* inv_scale_slot, cudaStream_t stream);
// Raises *amax_slot to max |src[i]|.
void amax(In src, I64 n, float* amax_slot, cudaStream_t stream);
// out(rows, cols) += bias(cols), rounded once more when out is 16-bit.
void add_bias(Out out, In bias, I64 rows, I64 cols, cudaStream_t stream);
// out(rows, cols) = [out +] [bias(cols) +] d(rows, cols), d fp32; one rounding into out.
// bias.ptr may be null.
void add_gemm_result(Out out, const float* d, In bias, I64 rows, I64 cols, bool accumulate,
                     cudaStream_t stream);

// ---- elementwise.cu --------------------------------------------------------------------------

// GELU, tanh form (Hendrycks & Gimpel 2016, §2). dinp may alias dout.
void gelu_forward(Out out, In inp, I64 n, cudaStream_t stream);
void gelu_backward(Out dinp, In inp, In dout, I64 n, cudaStream_t stream);
void add(Out out, In a, In b, I64 n, cudaStream_t stream);
void mul(Out out, In a, In b, I64 n, cudaStream_t stream);        // out = a·b
void scale(Out t, float s, I64 n, cudaStream_t stream);           // t *= s
void axpy(Out y, float alpha, In x, I64 n, cudaStream_t stream);  // y += alpha·x

// ---- moe.cu: mixture-of-experts row moves (Backend::gather_rows and friends) ----------------

// out(M,C)[i] = w[i]·inp[index[i]] (w.ptr null: 1).
void gather_rows(Out out, In inp, const std::int32_t* index, In w, I64 M, I64 C,
                 cudaStream_t stream);
// out(N,C)[n] += Σ_{j<K, slots[n,j] ≥ 0} w[s]·inp[s], summed in fp32 in j order, one rounding.
void combine_rows(Out out, In inp, const std::int32_t* slots, In w, I64 N, int K, I64 C,
                  cudaStream_t stream);
// out(M)[i] = Σ_c a[index[i], c]·b[i, c], a deterministic block sum in fp32.
void gathered_row_dot(Out out, In a, const std::int32_t* index, In b, I64 M, I64 C,
                      cudaStream_t stream);

// ---- reductions (reduce.cu): deterministic, a fixed order that depends only on the sizes -----

// Scratch (bytes) that column sums over (rows × cols) need; 0 when they need none.
std::size_t column_sum_scratch_bytes(I64 rows, I64 cols);
// dbias(cols) += Σ_rows dout(rows, cols).
void bias_backward(Out dbias, In dout, I64 rows, I64 cols, void* scratch, cudaStream_t stream);
// Scratch (bytes) of the double reductions below.
std::size_t sum_scratch_bytes(I64 n);
// *result = Σ x[i]² (double accumulation; inf or NaN when an element is).
void sum_squares(double* result, In x, I64 n, void* scratch, cudaStream_t stream);
// *result = Σ x[i] (double accumulation).
void sum(double* result, In x, I64 n, void* scratch, cudaStream_t stream);

// ---- layernorm.cu (Ba et al. 2016), eps 1e-5 -------------------------------------------------

void layernorm_forward(Out out, Out mean, Out rstd, In inp, In weight, In bias, I64 N, I64 C,
                       cudaStream_t stream);
// dinp += …; dweight, dbias += … (column sums: column_sum_scratch_bytes(N, C) of scratch).
void layernorm_backward(Out dinp, Out dweight, Out dbias, In dout, In inp, In weight, In mean,
                        In rstd, I64 N, I64 C, void* scratch, cudaStream_t stream);

// ---- embedding.cu ------------------------------------------------------------------------------

// out(B,T,C) = wte[tokens] + wpe[t]; a token outside [0, V) gives a NaN row.
void embedding_forward(Out out, const std::int32_t* tokens, In wte, In wpe, I64 B, I64 T, I64 C,
                       I64 V, cudaStream_t stream);
std::size_t embedding_backward_scratch_bytes(I64 B, I64 T, I64 C, I64 V);
// dwte += scatter(dout) (tokens sorted stably, each row summed in token order: deterministic);
// dwpe += Σ_b dout. Tokens outside [0, V) are skipped.
void embedding_backward(Out dwte, Out dwpe, In dout, const std::int32_t* tokens, I64 B, I64 T,
                        I64 C, I64 V, void* scratch, std::size_t scratch_bytes,
                        cudaStream_t stream);

// ---- attention_softmax.cu ---------------------------------------------------------------------
// Rows r = 0 … n_rows−1 of T entries, row r belonging to query i = r mod T (a run of heads'
// (T × T) score matrices, stored back to back).

// probs[r, j] = softmax over j ≤ i of scores[r, ·], 0 for j > i. scores may alias probs (f32).
void causal_softmax_forward(Out probs, const float* scores, I64 n_rows, I64 T, cudaStream_t stream);
// dscores[r, j] = P (dP − Σ_k≤i P dP)·scale for j ≤ i, 0 above; dprobs may alias dscores (f32).
void causal_softmax_backward(Out dscores, const float* dprobs, In probs, I64 n_rows, I64 T,
                             float scale, cudaStream_t stream);

// ---- cross_entropy.cu ---------------------------------------------------------------------------

// In place: logits (N,V) become probabilities; losses(N) = −log p[target] (NaN for a target
// outside [0, V)).
void softmax_cross_entropy_forward(Out logits_to_probs, Out losses, const std::int32_t* targets,
                                   I64 N, I64 V, cudaStream_t stream);
// probs become (probs − onehot(target))·dloss_scale.
void softmax_cross_entropy_backward(Out probs_to_dlogits, const std::int32_t* targets, I64 N, I64 V,
                                    float dloss_scale, cudaStream_t stream);

// ---- optimizer.cu (fp32 master weights and state) -----------------------------------------------

struct AdamWScalars {
  float lr, beta1, beta2, eps, weight_decay, grad_scale;
  float bias_correction1, bias_correction2;  // 1/(1−β1ᵗ), 1/(1−β2ᵗ)
};
void adamw_update(float* params, const float* grads, float* m, float* v, I64 n,
                  const AdamWScalars& s, cudaStream_t stream);
struct SgdScalars {
  float lr, momentum, weight_decay, grad_scale;
};
// momentum_buf null: plain SGD (momentum 0).
void sgd_update(float* params, const float* grads, float* momentum_buf, I64 n, const SgdScalars& s,
                cudaStream_t stream);
struct LambScalars {
  float beta1, beta2, one_minus_beta1, one_minus_beta2, eps, weight_decay, grad_scale;
  float bias_correction1, bias_correction2;
};
std::size_t lamb_scratch_bytes(I64 n);
// Updates m, v; writes update = r; result[0] = ‖params‖², result[1] = ‖r‖² (double).
void lamb_direction(float* update, const float* params, const float* grads, float* m, float* v,
                    I64 n, const LambScalars& s, double* result, void* scratch,
                    cudaStream_t stream);

}  // namespace tb::cuda
