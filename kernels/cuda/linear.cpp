// The linear layer's three GEMMs, row-major as the Backend states them, in cuBLAS's
// column-major terms (a row-major (r × c) matrix is a column-major (c × r) one):
//   forward   out(N,OC)  = inp(N,C)·W(OC,C)ᵀ   →  outᵀ (OC × N) = op_T(W) · inpᵀ      "TN"
//   dinp      dinp(N,C)  = dout(N,OC)·W(OC,C)   →  dinpᵀ (C × N) = Wᵀ · doutᵀ          "NN"
//   dweight   dW(OC,C)  += dout(N,OC)ᵀ·inp(N,C) →  dWᵀ (C × OC) = inpᵀ · op_T(doutᵀ)  "NT"
// so every GEMM below is D(m × n) = op(A)·op(B) with D the row-major (n × m) output, A a
// row-major (k × m) tensor read N or an (m × k) one read T, and B an (n × k) tensor read N or
// a (k × n) one read T.
//
// How an operand enters (GemmOperand): the GEMM's input type is chosen so that it holds the
// operand's rounded values exactly — bf16 or fp16 tensor-core GEMMs when both operands fit one
// of them (a 16-bit tensor read as fp32 fits its own type; an f32 tensor is first cast, RNE,
// into a scratch copy), tf32 (CUBLAS_COMPUTE_32F_FAST_TF32) when both are tf32, else fp32 with
// the rounding done by a cast kernel. Accumulation is fp32 in every case (CUBLAS_COMPUTE_32F).
//
// FP8 (Micikevicius et al. 2022; Transformer Engine's recipe): each operand is cast as
// saturate(x·scale) to E4M3/E5M2 in scratch — the cast also records the amax and writes 1/scale
// where cuBLASLt's A/B scale pointers read it, so the product comes out unscaled. cuBLASLt's
// FP8 GEMMs need the "TN" layout (A read transposed, B not) and 16-byte aligned dimensions, so
// the cast transposes an operand the layout needs transposed, and m, n, k must be multiples of
// 16 (cuBLAS documentation, cublasLtMatmul, "FP8" requirements); E5M2 × E5M2 has no kernel.
// A GEMM that does not qualify multiplies the same FP8 values held in bf16/fp16/fp32 with
// alpha = 1/(scale_a·scale_b): the same products, accumulated in fp32.
//
// Output: written directly when cuBLASLt supports the output type for the input type (fp32 and
// tf32 GEMMs write fp32; bf16/fp16 GEMMs write their type or fp32; FP8 writes fp32, bf16 or
// fp16). Otherwise the GEMM writes an fp32 scratch D and one kernel adds it (with the bias and
// the old output when accumulating) into the output, rounding once. The bias rides cuBLASLt's
// BIAS epilogue, whose bias has the output's type: into a 16-bit output the fp32 bias enters
// rounded to that type (as mixed-precision frameworks keep biases), so the output is
// round(A·B [+ out] + round16(bias)) where the CPU backend computes round(A·B [+ out] + bias).
#include "linear.h"

#include <cmath>
#include <string>

#include "views.h"

namespace tb::cuda {

namespace {

enum class Input { f32, tf32, bf16, f16, e4m3, e5m2 };

bool is_fp8(NumberFormat f) { return f == NumberFormat::e4m3 || f == NumberFormat::e5m2; }

cudaDataType_t input_type(Input g) {
  switch (g) {
    case Input::bf16:
      return CUDA_R_16BF;
    case Input::f16:
      return CUDA_R_16F;
    case Input::e4m3:
      return CUDA_R_8F_E4M3;
    case Input::e5m2:
      return CUDA_R_8F_E5M2;
    default:
      return CUDA_R_32F;
  }
}

// One operand of a GEMM: the tensor as stored (row-major), how the GEMM reads it without any
// transposing cast, its format, its amax slot (null when not asked for, or once written) and
// which FP8 dequantisation factor it owns (0 for A, 1 for B).
struct Side {
  const Tensor& stored;
  cublasOperation_t op;
  const GemmOperand& format;
  float** amax_slot;
  int scale_index;
};

// Whether cuBLASLt reading the operand as `g` multiplies exactly the values its format asks for
// (after the cast materialize() does).
bool holds(Input g, const Side& s) {
  const NumberFormat f = s.format.format;
  const DType t = s.stored.dtype;
  const bool exact_format = f == NumberFormat::fp32 || f == NumberFormat::tf32;
  switch (g) {
    case Input::f32:
      return true;  // every format's values are floats
    case Input::tf32:
      // The tensor cores round fp32 inputs to tf32 themselves; 16-bit values are tf32 values.
      return f == NumberFormat::tf32 || (f == NumberFormat::fp32 && t != DType::f32);
    case Input::bf16:
      return f == NumberFormat::bf16 || is_fp8(f) || (exact_format && t == DType::bf16);
    case Input::f16:
      return f == NumberFormat::fp16 || is_fp8(f) || (exact_format && t == DType::f16);
    default:
      return false;
  }
}

Input choose_input(const Side& a, const Side& b) {
  for (Input g : {Input::bf16, Input::f16, Input::tf32}) {
    if (holds(g, a) && holds(g, b)) return g;
  }
  return Input::f32;
}

bool writes(Input g, Elem out) {
  switch (g) {
    case Input::bf16:
      return out == Elem::bf16 || out == Elem::f32;
    case Input::f16:
      return out == Elem::f16 || out == Elem::f32;
    case Input::e4m3:
    case Input::e5m2:
      return true;
    default:
      return out == Elem::f32;
  }
}

class Gemm {
 public:
  Gemm(GemmEnv& env, const char* what) : env_(env), what_(what) {}

  // D(m × n) = op(A)·op(B) into `out` (row-major n × m) [+ bias(m)] [+ out when accumulate].
  void run(Side a, Side b, I64 m, I64 n, I64 k, const Tensor& out, const Tensor& bias,
           bool accumulate) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
      // An empty sum: nothing to add to an accumulating output; anything else is not a GEMM.
      expect(accumulate && bias.empty(), what_, "inner dimension 0");
      return;
    }
    const Out d = cuda::out(out, what_, "output");
    const In bias_in = in_or_null(bias, what_, "bias");
    const NumberFormat fa = a.format.format, fb = b.format.format;
    const bool both_fp8 = is_fp8(fa) && is_fp8(fb);
    const bool fp8_shape = m % 16 == 0 && n % 16 == 0 && k % 16 == 0;
    if (both_fp8 && fp8_shape && !(fa == NumberFormat::e5m2 && fb == NumberFormat::e5m2)) {
      if (run_fp8(a, b, m, n, k, d, bias_in, accumulate)) return;
    }
    const Input g = choose_input(a, b);
    if (run_with(g, a, b, m, n, k, d, bias_in, accumulate)) return;
    // Last resort: plain fp32 inputs (an SGEMM always has an algorithm).
    if (g != Input::f32 && run_with(Input::f32, a, b, m, n, k, d, bias_in, accumulate)) return;
    throw std::runtime_error(std::string(what_) +
                             ": cuBLASLt has no algorithm for m=" + std::to_string(m) +
                             " n=" + std::to_string(n) + " k=" + std::to_string(k));
  }

 private:
  // The operand's stored (rows × cols) matrix as cuBLASLt input g, transposed by the cast when
  // asked (FP8 only). Records the amax on the first pass over the tensor.
  const void* materialize(Side& s, Input g, I64 rows, I64 cols, bool transpose) {
    const Tensor& t = s.stored;
    const I64 n = rows * cols;
    float* amax = *s.amax_slot;
    *s.amax_slot = nullptr;
    const In src = in(t, what_, "GEMM operand");
    const NumberFormat f = s.format.format;
    if (g == Input::e4m3 || g == Input::e5m2) {
      auto* buf = env_.scratch.take_n<std::uint8_t>(static_cast<std::size_t>(n));
      cast_fp8(buf, src, rows, cols, transpose, f, s.format.scale, amax,
               env_.fp8_inv_scales + s.scale_index, env_.stream);
      return buf;
    }
    const Elem target = g == Input::bf16 ? Elem::bf16 : g == Input::f16 ? Elem::f16 : Elem::f32;
    // The rounding the format asks for, where the stored values are not already in the format
    // (tf32 inputs are rounded by the tensor cores).
    NumberFormat rounding = NumberFormat::fp32;
    if (is_fp8(f)) {
      rounding = f;
    } else if (f == NumberFormat::bf16 && t.dtype != DType::bf16) {
      rounding = f;
    } else if (f == NumberFormat::fp16 && t.dtype != DType::f16) {
      rounding = f;
    } else if (f == NumberFormat::tf32 && t.dtype == DType::f32 && g != Input::tf32) {
      rounding = f;
    }
    if (rounding == NumberFormat::fp32 && src.type == target) {
      if (amax) cuda::amax(src, n, amax, env_.stream);
      return t.ptr;
    }
    void* buf = env_.scratch.take(static_cast<std::size_t>(n) * elem_size(target));
    round_to_format(Out{buf, target}, src, n, rounding, s.format.scale, amax, env_.stream);
    return buf;
  }

  bool run_fp8(Side& a, Side& b, I64 m, I64 n, I64 k, Out d, In bias, bool accumulate) {
    // TN: A as a row-major (m × k) matrix read T, B as (n × k) read N; both with ld = k.
    const bool ta = a.op == CUBLAS_OP_N, tb = b.op == CUBLAS_OP_T;
    const Input ga = a.format.format == NumberFormat::e4m3 ? Input::e4m3 : Input::e5m2;
    const Input gb = b.format.format == NumberFormat::e4m3 ? Input::e4m3 : Input::e5m2;
    const void* pa = materialize(a, ga, ta ? k : m, ta ? m : k, ta);
    const void* pb = materialize(b, gb, tb ? k : n, tb ? n : k, tb);
    LtMatmul g;
    g.trans_a = CUBLAS_OP_T;
    g.trans_b = CUBLAS_OP_N;
    g.m = m;
    g.n = n;
    g.k = k;
    g.a = {pa, input_type(ga), k, 0};
    g.b = {pb, input_type(gb), k, 0};
    g.compute = CUBLAS_COMPUTE_32F;
    g.a_scale = env_.fp8_inv_scales;
    g.b_scale = env_.fp8_inv_scales + 1;
    return finish(g, d, bias, accumulate, Input::e4m3, m, n);
  }

  bool run_with(Input g, Side& a, Side& b, I64 m, I64 n, I64 k, Out d, In bias, bool accumulate) {
    const bool na = a.op == CUBLAS_OP_N, nb = b.op == CUBLAS_OP_N;
    const void* pa = materialize(a, g, na ? k : m, na ? m : k, false);
    const void* pb = materialize(b, g, nb ? n : k, nb ? k : n, false);
    LtMatmul lt;
    lt.trans_a = a.op;
    lt.trans_b = b.op;
    lt.m = m;
    lt.n = n;
    lt.k = k;
    lt.a = {pa, input_type(g), na ? m : k, 0};
    lt.b = {pb, input_type(g), nb ? k : n, 0};
    lt.compute = g == Input::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    // FP8 values held in a wider type are still scaled: divide the product back.
    float alpha = 1;
    if (is_fp8(a.format.format)) alpha /= a.format.scale;
    if (is_fp8(b.format.format)) alpha /= b.format.scale;
    lt.alpha = alpha;
    return finish(lt, d, bias, accumulate, g, m, n);
  }

  // Runs the prepared GEMM into the output directly when its type allows, else through an fp32
  // scratch D. The bias rides the BIAS epilogue in D's type (cuBLASLt reads it so; a 16-bit
  // copy of an fp32 bias is made first), except for FP8 into fp32, whose epilogue wants a bf16
  // bias: there a kernel adds the fp32 bias afterwards.
  bool finish(LtMatmul g, Out d, In bias, bool accumulate, Input input, I64 m, I64 n) {
    const bool fp8 = input == Input::e4m3 || input == Input::e5m2;
    if (writes(input, d.type)) {
      g.d = {d.ptr, lt_type(d.type), m, 0};
      g.beta = accumulate ? 1.0f : 0.0f;
      g.bias = nullptr;
      if (bias.ptr && !(fp8 && d.type == Elem::f32)) {
        if (bias.type == d.type) {
          g.bias = bias.ptr;
        } else {
          void* b = env_.scratch.take(static_cast<std::size_t>(m) * elem_size(d.type));
          convert(Out{b, d.type}, bias, m, env_.stream);
          g.bias = b;
        }
      }
      if (env_.lt.try_run(g)) {
        if (bias.ptr && !g.bias) add_bias(d, bias, n, m, env_.stream);
        return true;
      }
      if (g.bias) {  // no algorithm with this epilogue: without it, and the bias by a kernel
        g.bias = nullptr;
        if (env_.lt.try_run(g)) {
          add_bias(d, bias, n, m, env_.stream);
          return true;
        }
      }
    }
    auto* scratch_d = env_.scratch.take_n<float>(static_cast<std::size_t>(m * n));
    g.d = {scratch_d, CUDA_R_32F, m, 0};
    g.beta = 0;
    g.bias = nullptr;
    if (!env_.lt.try_run(g)) return false;
    add_gemm_result(d, scratch_d, bias, n, m, accumulate, env_.stream);
    return true;
  }

  GemmEnv& env_;
  const char* what_;
};

void check_fp8(GemmEnv& env, const char* op, const GemmOperand& o) {
  if (!is_fp8(o.format)) return;
  if (env.cc_major * 10 + env.cc_minor < 89) {
    throw std::runtime_error(std::string(op) + ": FP8 GEMM operands (" +
                             std::string(number_format_name(o.format)) +
                             ") need compute capability 8.9 or newer; CUDA device " +
                             std::to_string(env.device) + " (" + env.device_name + ") is " +
                             std::to_string(env.cc_major) + "." + std::to_string(env.cc_minor));
  }
  if (!(o.scale > 0) || !std::isfinite(o.scale)) {
    fail(op,
         "FP8 GEMM operand scale = " + std::to_string(o.scale) + " (expected a finite value > 0)");
  }
}

// The operand's amax slot, when the caller asked for its amax.
float* amax_slot(GemmEnv& env, const GemmOperand& o) {
  return o.amax ? env.amax.request(o.amax) : nullptr;
}

// An operand whose amax was asked for but that no GEMM read (matmul_backward without dinp
// still reports the weight's amax, as the CPU backend does).
void record_unread_amax(GemmEnv& env, const char* op, float* slot, const Tensor& t) {
  if (slot) amax(in(t, op, "GEMM operand"), t.numel(), slot, env.stream);
}

}  // namespace

void linear_forward(GemmEnv& env, const Tensor& out, const Tensor& inp, const Tensor& weight,
                    const Tensor& bias, bool accumulate_out, const GemmPrecision& prec) {
  const char* op = "matmul_forward";
  expect(weight.shape.size() == 2, op, "weight " + shape_string(weight.shape) + " is not 2-D");
  const I64 OC = weight.dim(0), C = weight.dim(1);
  expect(C > 0 && inp.numel() % C == 0 && out.numel() == inp.numel() / C * OC, op,
         "shapes " + shape_string(out.shape) + " = " + shape_string(inp.shape) + " · " +
             shape_string(weight.shape) + "ᵀ do not agree");
  expect(bias.empty() || bias.numel() == OC, op,
         "bias " + shape_string(bias.shape) + " (expected " + std::to_string(OC) + " elements)");
  check_fp8(env, op, prec.inp);
  check_fp8(env, op, prec.weight);
  const I64 N = inp.numel() / C;
  float* w_amax = amax_slot(env, prec.weight);
  float* x_amax = amax_slot(env, prec.inp);
  Gemm(env, op).run(Side{weight, CUBLAS_OP_T, prec.weight, &w_amax, 0},
                    Side{inp, CUBLAS_OP_N, prec.inp, &x_amax, 1}, OC, N, C, out, bias,
                    accumulate_out);
  record_unread_amax(env, op, w_amax, weight);
  record_unread_amax(env, op, x_amax, inp);
}

void linear_backward(GemmEnv& env, const Tensor& dinp, const Tensor& dweight, const Tensor& dbias,
                     const Tensor& dout, const Tensor& inp, const Tensor& weight,
                     const GemmPrecision& prec) {
  const char* op = "matmul_backward";
  expect(weight.shape.size() == 2, op, "weight " + shape_string(weight.shape) + " is not 2-D");
  const I64 OC = weight.dim(0), C = weight.dim(1);
  expect(C > 0 && inp.numel() % C == 0, op,
         "inp " + shape_string(inp.shape) + " is not rows of " + std::to_string(C));
  const I64 N = inp.numel() / C;
  expect(dout.numel() == N * OC, op,
         "dout " + shape_string(dout.shape) + " (expected " + std::to_string(N) + " × " +
             std::to_string(OC) + ")");
  expect(dinp.empty() || dinp.numel() == N * C, op,
         "dinp " + shape_string(dinp.shape) + " (expected like inp)");
  expect(dweight.numel() == OC * C, op,
         "dweight " + shape_string(dweight.shape) + " (expected like weight)");
  expect(dbias.empty() || dbias.numel() == OC, op,
         "dbias " + shape_string(dbias.shape) + " (expected " + std::to_string(OC) + " elements)");
  check_fp8(env, op, prec.inp);
  check_fp8(env, op, prec.weight);
  check_fp8(env, op, prec.dout);
  float* w_amax = amax_slot(env, prec.weight);
  float* x_amax = amax_slot(env, prec.inp);
  float* d_amax = amax_slot(env, prec.dout);
  if (!dinp.empty()) {
    Gemm(env, "matmul_backward (dinp)")
        .run(Side{weight, CUBLAS_OP_N, prec.weight, &w_amax, 0},
             Side{dout, CUBLAS_OP_N, prec.dout, &d_amax, 1}, C, N, OC, dinp, Tensor{}, false);
  }
  Gemm(env, "matmul_backward (dweight)")
      .run(Side{inp, CUBLAS_OP_N, prec.inp, &x_amax, 0},
           Side{dout, CUBLAS_OP_T, prec.dout, &d_amax, 1}, C, OC, N, dweight, Tensor{}, true);
  // The bias gradient sums dout as stored, not as the GEMM's rounded operand.
  if (!dbias.empty() && N > 0) {
    void* scratch = env.scratch.take(column_sum_scratch_bytes(N, OC));
    bias_backward(out(dbias, op, "dbias"), in(dout, op, "dout"), N, OC, scratch, env.stream);
  }
  record_unread_amax(env, op, w_amax, weight);
  record_unread_amax(env, op, x_amax, inp);
  record_unread_amax(env, op, d_amax, dout);
}

}  // namespace tb::cuda
