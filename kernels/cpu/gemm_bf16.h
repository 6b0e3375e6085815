// The emulated bf16 GEMM with fp32 accumulation: C(M,N) = alpha·op(A)·op(B) + beta·C, row-major
// like tb::cpu::gemm, with A and B stored as bf16 bit patterns (tb/number_format.h) and C in
// fp32. What the CPU backend's emulation computes for bf16 operands; the reference the native
// oneDNN GEMM (dnnl_gemm.h) is tested against.
#pragma once
#include <cstdint>

namespace tb::cpu {

// Decodes op(A) and op(B) to fp32 (exact) and calls cblas_sgemm. Every bf16·bf16 product is
// exact in fp32 (8-bit × 8-bit significands), so this is the bf16 GEMM with fp32 accumulation,
// differing from a native one only in summation order.
void gemm_bf16_emulated(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                        const std::uint16_t* A, int lda, const std::uint16_t* B, int ldb,
                        float beta, float* C, int ldc);

}  // namespace tb::cpu
