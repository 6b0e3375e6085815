#include "native_matmul.h"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

#include "cpu_kernels.h"
#include "dnnl_gemm.h"
#include "staging.h"
#include "tb/cpu_backend.h"
#include "tb/number_format.h"

namespace tb::cpu {

namespace {

GemmType gemm_type(DType t) {
  return t == DType::bf16 ? GemmType::bf16 : t == DType::f16 ? GemmType::f16 : GemmType::f32;
}
NumberFormat format_of(GemmType h) {
  return h == GemmType::bf16 ? NumberFormat::bf16 : NumberFormat::fp16;
}

// The 16-bit type an operand's values enter the multiply in; f32 when the native path cannot
// take them (fp32, tf32 or FP8 values, an amax to record, f64 storage).
GemmType values_type(const CpuMatmulOperand& o) {
  if (o.amax) return GemmType::f32;
  if (is_reduced_float(o.stored)) {
    const GemmType h = gemm_type(o.stored);
    const bool exact = o.format == NumberFormat::fp32 || o.format == format_of(h);
    return exact ? h : GemmType::f32;
  }
  if (o.stored != DType::f32) return GemmType::f32;
  if (o.format == NumberFormat::bf16) return GemmType::bf16;
  if (o.format == NumberFormat::fp16) return GemmType::f16;
  return GemmType::f32;
}

// A result stored as t can be written by a GEMM with 16-bit inputs of type h.
bool result_ok(DType t, GemmType h) { return t == DType::f32 || gemm_type(t) == h; }

std::size_t bytes16(std::int64_t n) { return static_cast<std::size_t>(n) * 2; }
// What a take of `bytes` uses of the GEMM workspace arena (ScratchArena::rounded).
std::size_t aligned(std::size_t bytes) {
  const std::size_t a = kGemmWorkspaceAlignment;
  return (std::max<std::size_t>(bytes, 1) + a - 1) / a * a;
}

// One call's plan: the GEMMs in execution order and the scratch.
struct Plan {
  bool native = false;
  GemmType h = GemmType::f32;
  bool stage_result = false;  // a counted 16-bit result: computed into an fp32 stand-in
  std::vector<DnnlGemm> gemms;
  std::size_t scratchpad = 0;  // the largest of the GEMMs'
  CpuMatmulScratch scratch;
};

// Appends g when oneDNN runs it natively; false otherwise.
bool add(Plan& p, const DnnlGemm& g) {
  const DnnlImpl impl = dnnl_gemm_impl(g);
  if (!impl.native) return false;
  p.gemms.push_back(g);
  p.scratchpad = std::max(p.scratchpad, impl.scratchpad_bytes);
  return true;
}

// The workspace the run takes: a 16-bit copy of each fp32 operand, then the scratchpad.
void finish(Plan& p, std::initializer_list<std::pair<const CpuMatmulOperand*, std::int64_t>> ops,
            std::int64_t result_numel) {
  for (const auto& [op, numel] : ops) {
    if (op->stored == DType::f32) p.scratch.workspace_bytes += aligned(bytes16(numel));
  }
  if (p.scratchpad > 0) p.scratch.workspace_bytes += aligned(p.scratchpad);
  if (p.stage_result) p.scratch.emulation_bytes = static_cast<std::size_t>(result_numel) * 4;
  p.native = p.scratch.native = true;
}

// out(rows, OC) = inp(rows, C)·Wᵀ + bias (+ out).
Plan plan_forward(const CpuMatmulCall& c) {
  Plan p;
  if (cpu_gemm_path() != CpuGemmPath::native) return p;
  const GemmType h = values_type(c.inp);
  if (h == GemmType::f32 || values_type(c.weight) != h || !result_ok(c.result, h)) return p;
  p.h = h;
  p.stage_result = c.result != DType::f32 && c.counting;
  const GemmType out = p.stage_result || c.result == DType::f32 ? GemmType::f32 : h;
  const std::int64_t N = c.rows, C = c.in_features, OC = c.out_features;
  if (!add(p, {false, true, N, OC, C, C, C, OC, h, out, c.bias, 1.0f, c.accumulate ? 1.0f : 0.0f}))
    return p;
  finish(p, {{&c.inp, N * C}, {&c.weight, OC * C}}, N * OC);
  return p;
}

// dinp(rows, C) = dout(rows, OC)·W; dweight(OC, C) += doutᵀ·inp.
Plan plan_backward(const CpuMatmulCall& c) {
  Plan p;
  if (cpu_gemm_path() != CpuGemmPath::native) return p;
  const GemmType h = values_type(c.dout);
  if (h == GemmType::f32 || values_type(c.inp) != h || values_type(c.weight) != h) return p;
  if (c.has_result && !result_ok(c.result, h)) return p;
  p.h = h;
  p.stage_result = c.has_result && c.result != DType::f32 && c.counting;
  const GemmType dx = p.stage_result || c.result == DType::f32 ? GemmType::f32 : h;
  const std::int64_t N = c.rows, C = c.in_features, OC = c.out_features;
  if (c.has_result && !add(p, {false, false, N, C, OC, OC, C, C, h, dx, false, 1.0f, 0.0f}))
    return p;
  if (!add(p, {true, false, OC, C, N, OC, C, C, h, GemmType::f32, false, 1.0f, 1.0f})) return p;
  finish(p, {{&c.dout, N * OC}, {&c.inp, N * C}, {&c.weight, OC * C}}, N * C);
  return p;
}

CpuMatmulOperand operand(const Tensor& t, const GemmOperand& op) {
  return {t.dtype, op.format, op.amax != nullptr};
}

// The operand's 16-bit bits: the tensor itself, or an fp32 tensor rounded (RNE) into a copy in
// the workspace, its roundings counted when `counted` (as Staging::gemm_operand counts them).
const void* bits16(const Tensor& t, GemmType h, const NativeScratch& s, bool counted) {
  if (t.dtype != DType::f32) return t.ptr;
  const NumberFormat f = format_of(h);
  const std::int64_t n = t.numel();
  auto* dst = s.workspace.take_n<std::uint16_t>(static_cast<std::size_t>(n));
  if (counted && s.stats) count_rounding(f, t.data<float>(), n, 1.0f, *s.stats);
  encode_array(f, t.data<float>(), dst, n);
  return dst;
}

void* scratchpad(const Plan& p, const NativeScratch& s) {
  return p.scratchpad > 0 ? s.workspace.take(p.scratchpad) : nullptr;
}

}  // namespace

bool native_matmul_forward(const Tensor& out, const Tensor& inp, const Tensor& weight,
                           const Tensor& bias, bool accumulate_out, const GemmPrecision& prec,
                           const NativeScratch& scratch) {
  if (!bias.empty() && bias.dtype != DType::f32) return false;
  const std::int64_t C = weight.dim(1), OC = weight.dim(0);
  CpuMatmulCall call;
  call.rows = inp.numel() / C;
  call.in_features = C;
  call.out_features = OC;
  call.inp = operand(inp, prec.inp);
  call.weight = operand(weight, prec.weight);
  call.result = out.dtype;
  call.bias = !bias.empty();
  call.accumulate = accumulate_out;
  call.counting = scratch.stats != nullptr;
  const Plan p = plan_forward(call);
  if (!p.native) return false;
  ScratchArena::Scope scope(scratch.workspace);
  scratch.workspace.reserve(p.scratch.workspace_bytes);
  Staging staging(scratch.emulation, scratch.stats);
  const void* x = bits16(inp, p.h, scratch, false);
  const void* w = bits16(weight, p.h, scratch, false);
  const Tensor o = p.stage_result ? staging.out(out, accumulate_out) : out;
  dnnl_gemm(p.gemms[0], x, w, bias.empty() ? nullptr : bias.data<float>(), o.ptr,
            scratchpad(p, scratch));
  staging.commit();
  return true;
}

bool native_matmul_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias,
                            const Tensor& dout, const Tensor& inp, const Tensor& weight,
                            const GemmPrecision& prec, const NativeScratch& scratch) {
  if (dweight.dtype != DType::f32 || (!dbias.empty() && dbias.dtype != DType::f32)) return false;
  const std::int64_t C = weight.dim(1), OC = weight.dim(0);
  CpuMatmulCall call;
  call.rows = inp.numel() / C;
  call.in_features = C;
  call.out_features = OC;
  call.inp = operand(inp, prec.inp);
  call.weight = operand(weight, prec.weight);
  call.dout = operand(dout, prec.dout);
  call.result = dinp.empty() ? DType::f32 : dinp.dtype;
  call.has_result = !dinp.empty();
  call.bias = !dbias.empty();
  call.counting = scratch.stats != nullptr;
  const Plan p = plan_backward(call);
  if (!p.native) return false;
  ScratchArena::Scope scope(scratch.workspace);
  scratch.workspace.reserve(p.scratch.workspace_bytes);
  Staging staging(scratch.emulation, scratch.stats);
  const void* dy = bits16(dout, p.h, scratch, /*counted=*/true);
  const void* x = bits16(inp, p.h, scratch, false);
  const void* w = bits16(weight, p.h, scratch, false);
  void* pad = scratchpad(p, scratch);
  std::size_t k = 0;
  if (call.has_result) {
    const Tensor dx = p.stage_result ? staging.out(dinp) : dinp;
    dnnl_gemm(p.gemms[k++], dy, w, nullptr, dx.ptr, pad);
  }
  dnnl_gemm(p.gemms[k], dy, x, nullptr, dweight.ptr, pad);
  // The bias gradient sums dout as stored, not as the GEMM's rounded operand.
  if (call.bias) {
    if (dout.dtype == DType::f32) {
      bias_backward(dbias.data<float>(), dout.data<float>(), call.rows, static_cast<int>(OC));
    } else {
      bias_backward_16(dbias.data<float>(), static_cast<const std::uint16_t*>(dout.ptr),
                       format_of(gemm_type(dout.dtype)), call.rows, static_cast<int>(OC));
    }
  }
  staging.commit();
  return true;
}

}  // namespace tb::cpu

namespace tb {

CpuMatmulScratch cpu_matmul_forward_scratch(const CpuMatmulCall& call) {
  return cpu::plan_forward(call).scratch;
}
CpuMatmulScratch cpu_matmul_backward_scratch(const CpuMatmulCall& call) {
  return cpu::plan_backward(call).scratch;
}

}  // namespace tb
