// CPU kernels: pointer-level operations, templated on the floating type (float for
// training, double for the reference that gradient checks use). Threaded with OpenMP;
// GEMMs through OpenBLAS. Each function's contract is the Backend method of the same name
// (tb/backend.h); these take raw sizes so they are usable from benchmarks directly.
#pragma once
#include <cstddef>
#include <cstdint>

#include "tb/backend.h"

namespace tb::cpu {

// Row-major C(M,N) = alpha·op(A)·op(B) + beta·C through cblas_?gemm.
template <class T>
void gemm(bool trans_a, bool trans_b, int M, int N, int K, T alpha, const T* A, int lda, const T* B,
          int ldb, T beta, T* C, int ldc);

template <class T>
void embedding_forward(T* out, const std::int32_t* tokens, const T* wte, const T* wpe, int B,
                       int T_, int C);
template <class T>
void embedding_backward(T* dwte, T* dwpe, const T* dout, const std::int32_t* tokens, int B, int T_,
                        int C);

template <class T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* weight, const T* bias,
                       std::int64_t N, int C);
template <class T>
void layernorm_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight,
                        const T* mean, const T* rstd, std::int64_t N, int C);

template <class T>
void matmul_forward(T* out, const T* inp, const T* weight, const T* bias, std::int64_t N, int C,
                    int OC, bool accumulate_out);
template <class T>
void matmul_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight,
                     std::int64_t N, int C, int OC);

// dbias(OC) += Σ over N rows of dout(N,OC), in a fixed order.
template <class T>
void bias_backward(T* dbias, const T* dout, std::int64_t N, int OC);
// The same from a 16-bit dout (bf16 or fp16 bit patterns, f its format), each element decoded
// exactly: the sums, in the same order, of bias_backward<float> on the decoded values.
void bias_backward_16(float* dbias, const std::uint16_t* dout, NumberFormat f, std::int64_t N,
                      int OC);

template <class T>
void attention_forward(T* out, T* probs, const T* qkv, int B, int T_, int C, int NH);
template <class T>
void attention_backward(T* dqkv, T* scratch, const T* dout, const T* qkv, const T* probs, int B,
                        int T_, int C, int NH);

template <class T>
void gelu_forward(T* out, const T* inp, std::int64_t n);
template <class T>
void gelu_backward(T* dinp, const T* inp, const T* dout, std::int64_t n);

template <class T>
void add(T* out, const T* a, const T* b, std::int64_t n);
template <class T>
void mul(T* out, const T* a, const T* b, std::int64_t n);
template <class T>
void scale(T* x, T s, std::int64_t n);

// Mixture-of-experts row moves (moe.cpp; Backend::gather_rows and friends). w may be null (1).
template <class T>
void gather_rows(T* out, const T* inp, const std::int32_t* index, const T* w, std::int64_t M,
                 std::int64_t C);
template <class T>
void combine_rows(T* out, const T* inp, const std::int32_t* slots, const T* w, std::int64_t N,
                  int K, std::int64_t C);
template <class T>
void gathered_row_dot(T* out, const T* a, const std::int32_t* index, const T* b, std::int64_t M,
                      std::int64_t C);

template <class T>
double softmax_cross_entropy_forward(T* logits_to_probs, T* losses, const std::int32_t* targets,
                                     std::int64_t N, int V);
template <class T>
void softmax_cross_entropy_backward(T* probs_to_dlogits, const std::int32_t* targets,
                                    std::int64_t N, int V, T dloss_scale);

template <class T>
double sum_squares(const T* x, std::int64_t n);
template <class T>
void adamw_update(T* params, const T* grads, T* m, T* v, std::int64_t n, const AdamWParams& hp);
// momentum_buf may be null when hp.momentum is 0.
template <class T>
void sgd_update(T* params, const T* grads, T* momentum_buf, std::int64_t n, const SgdParams& hp);
template <class T>
LambNorms lamb_direction(T* update, const T* params, const T* grads, T* m, T* v, std::int64_t n,
                         const LambParams& hp);
template <class T>
void axpy(T* y, T alpha, const T* x, std::int64_t n);

// Threads used by both OpenMP loops and OpenBLAS. 0 leaves the default.
void set_num_threads(int n);
int num_threads();

}  // namespace tb::cpu
