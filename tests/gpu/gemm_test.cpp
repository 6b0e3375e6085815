// The CUDA backend's linear-layer GEMMs (cuBLASLt) against the CPU backend, per GEMM precision
// (fp32, tf32, bf16, fp16, FP8 with per-tensor scales), with tensors stored as a training step
// stores them (16-bit activations and weight copy) and as f32 tensors whose operands the GEMM
// must round itself; at a shape cuBLASLt's FP8 kernels take (multiples of 16) and one they do
// not (the dequantised fallback). Forward with bias, with and without accumulation; backward
// with dinp, accumulated dweight and dbias; and the operands' amax, which must equal the CPU's
// exactly.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gpu_test_util.h"

namespace tb::gpu_test {
namespace {

using I64 = std::int64_t;

struct GemmCase {
  const char* name;
  DType act;     // inp, out, dout, dinp
  DType weight;  // the weight the GEMM reads (a 16-bit copy in mixed precision)
  NumberFormat forward, gradient;
  float scale;  // FP8 scale of every operand
  double tol;   // on outputs (norm-relative)
};

void PrintTo(const GemmCase& c, std::ostream* os) { *os << c.name; }

bool is_fp8(NumberFormat f) { return f == NumberFormat::e4m3 || f == NumberFormat::e5m2; }

// Tolerances: fp32 sums in another order (1e-5); tf32 where cuBLAS's conversion of fp32 inputs
// may differ from round-to-nearest-even by an ulp of tf32 (3e-3); 16-bit and FP8 operands are
// rounded identically on both sides, so f32 outputs differ by summation order only, 16-bit
// outputs by one rounding of the output (the GPU's epilogue adds the bias rounded to 16 bits).
const GemmCase kCases[] = {
    {"fp32", DType::f32, DType::f32, NumberFormat::fp32, NumberFormat::fp32, 1, 1e-5},
    {"tf32", DType::f32, DType::f32, NumberFormat::tf32, NumberFormat::tf32, 1, 3e-3},
    {"bf16_stored", DType::bf16, DType::bf16, NumberFormat::bf16, NumberFormat::bf16, 1, 1e-2},
    {"bf16_cast", DType::f32, DType::f32, NumberFormat::bf16, NumberFormat::bf16, 1, 1e-4},
    {"fp16_stored", DType::f16, DType::f16, NumberFormat::fp16, NumberFormat::fp16, 1, 3e-3},
    {"fp16_cast", DType::f32, DType::f32, NumberFormat::fp16, NumberFormat::fp16, 1, 1e-4},
    {"fp8_bf16", DType::bf16, DType::bf16, NumberFormat::e4m3, NumberFormat::e5m2, 2.0f, 1e-2},
    {"fp8_f32", DType::f32, DType::f32, NumberFormat::e4m3, NumberFormat::e5m2, 3.7f, 1e-3},
};

struct Shape {
  I64 N, C, OC;
};
// The first qualifies for cuBLASLt's FP8 kernels (every dimension a multiple of 16); the
// second does not.
const Shape kShapes[] = {{64, 96, 128}, {37, 40, 52}};

class GpuGemm : public GpuTest, public ::testing::WithParamInterface<GemmCase> {
 protected:
  GemmPrecision precision(float* amax_cpu, float* amax_gpu, bool gpu) const {
    const GemmCase& c = GetParam();
    GemmPrecision p;
    p.inp = {c.forward, c.scale, gpu ? &amax_gpu[0] : &amax_cpu[0]};
    p.weight = {c.forward, c.scale, gpu ? &amax_gpu[1] : &amax_cpu[1]};
    p.dout = {c.gradient, c.scale, gpu ? &amax_gpu[2] : &amax_cpu[2]};
    return p;
  }
  bool fp8() const { return is_fp8(GetParam().forward); }
};

TEST_P(GpuGemm, ForwardAndBackwardMatchCpu) {
  const GemmCase& c = GetParam();
  for (const Shape& s : kShapes) {
    SCOPED_TRACE("N=" + std::to_string(s.N) + " C=" + std::to_string(s.C) +
                 " OC=" + std::to_string(s.OC));
    const Pair inp = t().make(c.act, {s.N, s.C}, randn(s.N * s.C, 201, 1.0));
    const Pair w = t().make(c.weight, {s.OC, s.C}, randn(s.OC * s.C, 202, 0.05));
    const Pair bias = t().make(DType::f32, {s.OC}, randn(s.OC, 203, 0.1));
    float amax_cpu[3] = {-1, -1, -1}, amax_gpu[3] = {-2, -2, -2};
    const GemmPrecision pc = precision(amax_cpu, amax_gpu, false);
    const GemmPrecision pg = precision(amax_cpu, amax_gpu, true);

    const Pair out = t().output(c.act, {s.N, s.OC});
    if (fp8() && !gpu_has_fp8()) {
      EXPECT_THROW(gpu_->matmul_forward(out.gpu, inp.gpu, w.gpu, bias.gpu, false, pg),
                   std::runtime_error);
      return;
    }
    cpu_->matmul_forward(out.cpu, inp.cpu, w.cpu, bias.cpu, false, pc);
    gpu_->matmul_forward(out.gpu, inp.gpu, w.gpu, bias.gpu, false, pg);
    EXPECT_TRUE(close(t().cpu(out), t().gpu(out), c.tol)) << "forward";
    gpu_->synchronize();
    EXPECT_EQ(amax_gpu[0], amax_cpu[0]) << "inp amax";
    EXPECT_EQ(amax_gpu[1], amax_cpu[1]) << "weight amax";

    // Accumulating into the residual stream, without bias.
    const Pair acc = t().make(c.act, {s.N, s.OC}, randn(s.N * s.OC, 204));
    cpu_->matmul_forward(acc.cpu, inp.cpu, w.cpu, Tensor{}, true, pc);
    gpu_->matmul_forward(acc.gpu, inp.gpu, w.gpu, Tensor{}, true, pg);
    EXPECT_TRUE(close(t().cpu(acc), t().gpu(acc), c.tol)) << "forward, accumulating";

    const Pair dout = t().make(c.act, {s.N, s.OC}, randn(s.N * s.OC, 205, 0.3));
    const Pair dinp = t().output(c.act, {s.N, s.C});
    const Pair dw = t().make(DType::f32, {s.OC, s.C}, randn(s.OC * s.C, 206, 0.1));
    const Pair db = t().make(DType::f32, {s.OC}, randn(s.OC, 207, 0.1));
    cpu_->matmul_backward(dinp.cpu, dw.cpu, db.cpu, dout.cpu, inp.cpu, w.cpu, pc);
    gpu_->matmul_backward(dinp.gpu, dw.gpu, db.gpu, dout.gpu, inp.gpu, w.gpu, pg);
    EXPECT_TRUE(close(t().cpu(dinp), t().gpu(dinp), c.tol)) << "dinp";
    // dweight and dbias are f32 in every case: only the summation order differs (tf32: the
    // operands' rounding).
    const double wtol = c.forward == NumberFormat::tf32 ? 3e-3 : 1e-4;
    EXPECT_TRUE(close(t().cpu(dw), t().gpu(dw), wtol)) << "dweight";
    EXPECT_TRUE(close(t().cpu(db), t().gpu(db), 1e-5)) << "dbias";
    gpu_->synchronize();
    for (int i = 0; i < 3; ++i) EXPECT_EQ(amax_gpu[i], amax_cpu[i]) << "amax of operand " << i;

    // Without dinp (the first layer's input needs no gradient).
    cpu_->matmul_backward(Tensor{}, dw.cpu, Tensor{}, dout.cpu, inp.cpu, w.cpu, pc);
    gpu_->matmul_backward(Tensor{}, dw.gpu, Tensor{}, dout.gpu, inp.gpu, w.gpu, pg);
    EXPECT_TRUE(close(t().cpu(dw), t().gpu(dw), wtol)) << "dweight without dinp";
  }
}

std::string case_name(const ::testing::TestParamInfo<GemmCase>& info) { return info.param.name; }

INSTANTIATE_TEST_SUITE_P(Precisions, GpuGemm, ::testing::ValuesIn(kCases), case_name);

// The LM head of a mixed-precision step: 16-bit activations and weight copy, fp32 logits out;
// backward from fp32 dlogits (rounded to bf16 by the GEMM's operand cast) into a 16-bit dinp.
TEST_F(GpuTest, GemmMixedOutputTypes) {
  for (const DType h : {DType::bf16, DType::f16}) {
    SCOPED_TRACE(std::string(dtype_name(h)));
    const NumberFormat f = h == DType::bf16 ? NumberFormat::bf16 : NumberFormat::fp16;
    const I64 N = 48, C = 64, V = 100;
    const Pair x = t().make(h, {N, C}, randn(N * C, 211));
    const Pair w = t().make(h, {V, C}, randn(V * C, 212, 0.05));
    GemmPrecision p;
    p.inp.format = p.weight.format = p.dout.format = f;
    const Pair logits = t().output(DType::f32, {N, V});
    cpu_->matmul_forward(logits.cpu, x.cpu, w.cpu, Tensor{}, false, p);
    gpu_->matmul_forward(logits.gpu, x.gpu, w.gpu, Tensor{}, false, p);
    EXPECT_TRUE(close(t().cpu(logits), t().gpu(logits), 1e-5));

    const Pair dlogits = t().make(DType::f32, {N, V}, randn(N * V, 213, 0.01));
    const Pair dx = t().output(h, {N, C});
    const Pair dw = t().make(DType::f32, {V, C}, std::vector<float>(V * C, 0.0f));
    cpu_->matmul_backward(dx.cpu, dw.cpu, Tensor{}, dlogits.cpu, x.cpu, w.cpu, p);
    gpu_->matmul_backward(dx.gpu, dw.gpu, Tensor{}, dlogits.gpu, x.gpu, w.gpu, p);
    EXPECT_TRUE(close(t().cpu(dx), t().gpu(dx), output_tolerance(h)));
    EXPECT_TRUE(close(t().cpu(dw), t().gpu(dw), 1e-5));
  }
}

// Operand formats that share no 16-bit type (a tf32 operand with an fp32 one; bf16 with fp16):
// the GEMM runs in fp32 on operands rounded by the cast kernels, exactly as the CPU does.
TEST_F(GpuTest, GemmMixedOperandFormats) {
  const I64 N = 33, C = 72, OC = 24;
  const Pair x = t().make(DType::f32, {N, C}, randn(N * C, 221));
  const Pair w = t().make(DType::f32, {OC, C}, randn(OC * C, 222, 0.1));
  const std::pair<NumberFormat, NumberFormat> mixes[] = {{NumberFormat::tf32, NumberFormat::fp32},
                                                         {NumberFormat::bf16, NumberFormat::fp16}};
  for (const auto& [fi, fw] : mixes) {
    SCOPED_TRACE(std::string(number_format_name(fi)) + " x " + std::string(number_format_name(fw)));
    GemmPrecision p;
    p.inp.format = fi;
    p.weight.format = fw;
    const Pair out = t().output(DType::f32, {N, OC});
    cpu_->matmul_forward(out.cpu, x.cpu, w.cpu, Tensor{}, false, p);
    gpu_->matmul_forward(out.gpu, x.gpu, w.gpu, Tensor{}, false, p);
    EXPECT_TRUE(close(t().cpu(out), t().gpu(out), 1e-5));
  }
}

TEST_F(GpuTest, GemmRejectsBadShapesAndF64) {
  const Pair x = t().make(DType::f32, {4, 8}, randn(32, 231));
  const Pair w = t().make(DType::f32, {5, 7}, randn(35, 232));
  const Pair out = t().output(DType::f32, {4, 5});
  EXPECT_THROW(gpu_->matmul_forward(out.gpu, x.gpu, w.gpu, Tensor{}, false), std::invalid_argument);
  const Pair x64 = t().make(DType::f64, {4, 7}, std::vector<float>(28, 0.0f));
  try {
    gpu_->matmul_forward(out.gpu, x64.gpu, w.gpu, Tensor{}, false);
    ADD_FAILURE() << "f64 operand accepted";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("f64"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace tb::gpu_test
