// The CPU backend: OpenBLAS GEMMs and OpenMP loops, in f32 (training) or f64 (reference), and
// 16-bit GEMMs through oneDNN where the build has it and the CPU runs them natively.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "tb/backend.h"

namespace tb {

// threads == 0 keeps the OpenMP default. memory_limit_bytes == 0: no limit.
std::unique_ptr<Backend> make_cpu_backend(int threads = 0, std::size_t memory_limit_bytes = 0);

}  // namespace tb

namespace tb {
// Threads the CPU kernels run on (OpenMP, OpenBLAS and oneDNN).
int cpu_thread_count();

// How the CPU backend multiplies GEMM operands whose values are 16-bit (bf16 or fp16 tensors,
// or fp32 ones rounded to a 16-bit GemmPrecision format): `native` runs them through oneDNN
// where this build links it and the CPU has an implementation other than oneDNN's reference
// loops (AVX512-BF16, AMX, AVX512-FP16); `emulated` always decodes them to fp32 stand-ins and
// multiplies with OpenBLAS SGEMM (kernels/cpu/staging.h). Process-wide, read at every matmul
// call; the default is native. For comparisons and tests.
enum class CpuGemmPath : std::uint8_t { native, emulated };
void set_cpu_gemm_path(CpuGemmPath path);
CpuGemmPath cpu_gemm_path();

// Whether bf16 (fp16) GEMMs run natively here: the path is native, the build links oneDNN,
// and oneDNN's implementation of a bf16 (fp16) GEMM on this CPU is not its reference code.
bool cpu_native_bf16_gemm();
bool cpu_native_fp16_gemm();
// What multiplies 16-bit operands of `storage` (bf16 or f16), for results: "oneDNN 2.6.3
// matmul (native, ISA avx512_core_amx: brg:avx512_core_amx)", or the emulation, saying why.
std::string cpu_gemm_description(DType storage);
// The instruction set oneDNN dispatches to on this CPU ("avx512_core_amx"); empty without it.
std::string cpu_gemm_isa();

// One matmul call as the CPU backend's choice of GEMM path sees it (Backend::matmul_forward:
// out(rows, out_features) = inp(rows, in_features)·weightᵀ; Backend::matmul_backward: dinp and
// dweight from dout), for the memory model to predict what the call takes.
struct CpuMatmulOperand {
  DType stored = DType::f32;
  NumberFormat format = NumberFormat::fp32;
  bool amax = false;  // an amax is recorded (FP8 delayed scaling)
};
struct CpuMatmulCall {
  std::int64_t rows = 0, in_features = 0, out_features = 0;
  CpuMatmulOperand inp, weight, dout;  // dout: backward only
  // Forward: out's dtype. Backward: dinp's, or has_result = false when there is no dinp.
  DType result = DType::f32;
  bool has_result = true;
  bool bias = false;        // forward: a bias is added; backward: a bias gradient is summed
  bool accumulate = false;  // forward: out += (accumulate_out)
  bool counting = false;    // roundings are counted (Backend::count_rounding)
};
// What the call takes when it runs natively: `native` false means it is emulated (staging.h).
struct CpuMatmulScratch {
  bool native = false;
  // Bytes the call reserves in the backend's GEMM workspace arena (tracked as `workspace`; it
  // grows, replacing its block, to the largest call's reservation and stays): 16-bit copies
  // of fp32 operands and oneDNN's scratchpad (the largest of the call's GEMMs'), each rounded
  // up to 64 bytes.
  std::size_t workspace_bytes = 0;
  // Bytes taken from the emulation arena: the fp32 stand-in of a 16-bit result whose roundings
  // are counted (0 otherwise).
  std::size_t emulation_bytes = 0;
};
CpuMatmulScratch cpu_matmul_forward_scratch(const CpuMatmulCall& call);
CpuMatmulScratch cpu_matmul_backward_scratch(const CpuMatmulCall& call);
}  // namespace tb
