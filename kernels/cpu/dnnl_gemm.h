// 16-bit GEMMs through oneDNN's matmul primitive (v2 API): row-major
// C(M,N) = alpha·op(A)·op(B) + bias + beta·C like tb::cpu::gemm, with A and B stored as bf16 or
// fp16 bit patterns, products accumulated in fp32, and C in fp32 or in A's 16-bit type (one
// rounding of the fp32 result). Leading dimensions and transposes are memory-descriptor
// strides: nothing is copied. Primitives are cached per description and OpenMP thread count
// (the scratchpad is sized for the threads a primitive runs on); the scratchpad is the
// caller's (scratchpad mode user), so a backend can track it. One engine and one stream,
// waited on after each execution.
//
// A build without oneDNN (TB_ONEDNN=OFF, or the package missing) links no_dnnl.cpp instead:
// nothing is native there and dnnl_gemm throws.
#pragma once
#include <compare>
#include <cstddef>
#include <cstdint>
#include <string>

namespace tb::cpu {

enum class GemmType : std::uint8_t { f32, bf16, f16 };

struct DnnlGemm {
  bool trans_a = false, trans_b = false;
  std::int64_t M = 0, N = 0, K = 0;
  // Stored A is M×K (K×M when transposed), B K×N (N×K when transposed), C M×N: row-major with
  // these leading dimensions.
  std::int64_t lda = 0, ldb = 0, ldc = 0;
  GemmType ab = GemmType::bf16;  // A and B: bf16 or f16
  GemmType c = GemmType::f32;    // f32 or ab
  bool bias = false;             // an fp32 row of N added to every row of C (needs alpha = 1)
  float alpha = 1, beta = 0;     // beta = 0: C is not read (a NaN there does not propagate)
  auto operator<=>(const DnnlGemm&) const = default;
};

// What oneDNN runs for a GEMM on this CPU.
struct DnnlImpl {
  // A jitted implementation; false for oneDNN's reference C++ loops ("ref:…"), for a
  // description no implementation takes, and in a build without oneDNN.
  bool native = false;
  std::string impl;  // primitive_desc::impl_info_str(), e.g. "brg:avx512_core_amx"
  std::size_t scratchpad_bytes = 0;
};

// Whether this build links oneDNN.
bool dnnl_built();
// oneDNN's version ("2.6.3") and the instruction set it dispatches to on this CPU
// (dnnl::get_effective_cpu_isa: "avx512_core_amx", …); empty without oneDNN.
std::string dnnl_version();
std::string dnnl_isa();

// What would run g (creating and caching its primitive descriptor). std::invalid_argument for
// a description the API does not define (types, bias with alpha ≠ 1, negative sizes, leading
// dimensions too small). Sizes with a zero are trivially native with no scratchpad.
DnnlImpl dnnl_gemm_impl(const DnnlGemm& g);

// Runs g: A and B as g says, bias (N floats) when g.bias, C with M rows of ldc. scratchpad:
// at least dnnl_gemm_impl(g).scratchpad_bytes, 64-byte aligned (null when that is 0). Runs
// whatever dnnl_gemm_impl names, reference code included: callers that want only native
// GEMMs ask first. K = 0 gives C = beta·C + bias.
void dnnl_gemm(const DnnlGemm& g, const void* A, const void* B, const float* bias, void* C,
               void* scratchpad);

}  // namespace tb::cpu
