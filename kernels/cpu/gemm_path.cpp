// Which path the CPU backend's 16-bit GEMMs take (tb/cpu_backend.h, CpuGemmPath) and how it is
// named in results: oneDNN natively, or the emulation (staging.h + OpenBLAS SGEMM).
#include <atomic>
#include <string>

#include "dnnl_gemm.h"
#include "tb/cpu_backend.h"

namespace tb {

namespace {

std::atomic<CpuGemmPath> g_path{CpuGemmPath::native};

// A square GEMM of the kind the backend runs (fp32 result), whose implementation stands for
// the CPU's: oneDNN picks the ISA once per process, and a type it runs only in reference code
// (fp16 without AVX512-FP16, say) shows here.
cpu::DnnlImpl probe(cpu::GemmType h) {
  cpu::DnnlGemm g;
  g.M = g.N = g.K = g.lda = g.ldb = g.ldc = 64;
  g.ab = h;
  return cpu::dnnl_gemm_impl(g);
}

const cpu::DnnlImpl& probed(DType storage) {
  static const cpu::DnnlImpl bf16 = probe(cpu::GemmType::bf16);
  static const cpu::DnnlImpl f16 = probe(cpu::GemmType::f16);
  return storage == DType::f16 ? f16 : bf16;
}

}  // namespace

void set_cpu_gemm_path(CpuGemmPath path) { g_path.store(path); }
CpuGemmPath cpu_gemm_path() { return g_path.load(); }

bool cpu_native_bf16_gemm() {
  return cpu_gemm_path() == CpuGemmPath::native && probed(DType::bf16).native;
}
bool cpu_native_fp16_gemm() {
  return cpu_gemm_path() == CpuGemmPath::native && probed(DType::f16).native;
}

std::string cpu_gemm_isa() { return cpu::dnnl_isa(); }

std::string cpu_gemm_description(DType storage) {
  const cpu::DnnlImpl& impl = probed(storage);
  const std::string type = storage == DType::f16 ? "fp16" : "bf16";
  if (cpu_gemm_path() == CpuGemmPath::native && impl.native) {
    return "oneDNN " + cpu::dnnl_version() + " matmul (native, ISA " + cpu::dnnl_isa() + ": " +
           impl.impl + ")";
  }
  std::string why;
  if (!cpu::dnnl_built()) {
    why = "built without oneDNN";
  } else if (cpu_gemm_path() == CpuGemmPath::emulated) {
    why = "emulated path forced";
  } else if (impl.impl == "unimplemented") {
    why = "oneDNN " + cpu::dnnl_version() + " has no " + type + " matmul on ISA " + cpu::dnnl_isa();
  } else {
    why = "oneDNN " + cpu::dnnl_version() + " has only " + impl.impl + " for " + type + " on ISA " +
          cpu::dnnl_isa();
  }
  return "fp32 SGEMM (OpenBLAS) on operands rounded to the format (" + why + ")";
}

}  // namespace tb
