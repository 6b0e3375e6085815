// The CPU backend's linear layers on 16-bit operand values through oneDNN (dnnl_gemm.h): which
// matmul calls qualify, the GEMMs they run and the scratch they take (tb/cpu_backend.h,
// CpuMatmulScratch, is the same plan for the memory model).
//
// A call qualifies when every GEMM operand's values are of one 16-bit type h (bf16 or fp16)
// — stored h and entering as h or as stored (fp32), or stored fp32 and rounded to h, which
// is done into a 16-bit copy — no operand records an amax, results are fp32 or h, and
// oneDNN has a native implementation of each of the call's GEMMs here. The products are then
// those of the emulation (every h·h product is exact in fp32) accumulated in fp32 in
// oneDNN's order; a 16-bit result is rounded once, from fp32, as the emulation does. The bias
// gradient sums dout as stored, in the fixed order of bias_backward.
#pragma once
#include "../scratch_arena.h"
#include "tb/backend.h"

namespace tb::cpu {

// The alignment of the GEMM workspace arena's takes (oneDNN's scratchpad wants 64 bytes).
inline constexpr std::size_t kGemmWorkspaceAlignment = 64;

// Where a native call's scratch comes from.
struct NativeScratch {
  // 16-bit copies of fp32 operands and oneDNN's scratchpad: each call reserves its need
  // (ScratchArena::reserve), so the arena peaks at the largest call's exactly.
  ScratchArena& workspace;
  ScratchArena& emulation;  // the fp32 stand-in of a 16-bit result whose roundings are counted
  RoundingStats* stats;     // where roundings are counted; null when not counting
};

// Backend::matmul_forward and matmul_backward (same arguments) natively: true when the call
// qualified and ran, false — nothing done — when the caller must emulate it.
bool native_matmul_forward(const Tensor& out, const Tensor& inp, const Tensor& weight,
                           const Tensor& bias, bool accumulate_out, const GemmPrecision& prec,
                           const NativeScratch& scratch);
bool native_matmul_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias,
                            const Tensor& dout, const Tensor& inp, const Tensor& weight,
                            const GemmPrecision& prec, const NativeScratch& scratch);

}  // namespace tb::cpu
