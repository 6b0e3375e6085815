// The CPU backend's emulation of 16-bit tensors (tb/backend.h, "Precision"): every operation
// given bf16 or f16 tensors must equal, bit for bit, the fp32 operation on the tensors' decoded
// values with its outputs rounded to the output's width (RNE), and the GEMMs must multiply
// operands rounded to their GemmPrecision format — tf32, bf16, fp16, or FP8 cast with a scale
// — and report the operand's amax. The references here are the f32 backend itself plus
// tb/number_format.h's conversions (each tested exhaustively in number_format_test.cpp). The
// GEMM tests force the emulated path (tb/cpu_backend.h, CpuGemmPath): the native one, through
// oneDNN, sums in its own order and is tested against f64 in native_matmul_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "numerics/numerics_util.h"
#include "precision/gemm_path_scope.h"
#include "tb/backend.h"
#include "tb/cpu_backend.h"
#include "tb/number_format.h"

namespace tb::test {
namespace {

NumberFormat format_of(DType t) {
  return t == DType::bf16 ? NumberFormat::bf16 : NumberFormat::fp16;
}

// A backend tensor of dtype t holding `values` (rounded to t when 16-bit).
class Tensors {
 public:
  explicit Tensors(Backend& be) : be_(be), pool_(be) {}
  Tensor make(DType t, std::vector<std::int64_t> shape, const std::vector<float>& values) {
    Tensor x = pool_.make(t, std::move(shape));
    set(x, values);
    return x;
  }
  void set(const Tensor& x, const std::vector<float>& values) {
    if (is_reduced_float(x.dtype)) {
      std::vector<std::uint16_t> bits(values.size());
      encode_array(format_of(x.dtype), values.data(), bits.data(), std::int64_t(values.size()));
      be_.copy_from_host(x, bits.data());
    } else {
      be_.copy_from_host(x, values.data());
    }
  }
  // The tensor's values as floats (decoded exactly when 16-bit).
  std::vector<float> get(const Tensor& x) {
    std::vector<float> f(static_cast<std::size_t>(x.numel()));
    if (is_reduced_float(x.dtype)) {
      std::vector<std::uint16_t> bits(f.size());
      be_.copy_to_host(bits.data(), x);
      decode_array(format_of(x.dtype), bits.data(), f.data(), x.numel());
    } else {
      be_.copy_to_host(f.data(), x);
    }
    return f;
  }

 private:
  Backend& be_;
  TensorPool pool_;
};

std::vector<float> randn(std::size_t n, std::uint64_t seed, double sd = 1.0) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(sd * rng.normal());
  return v;
}

std::vector<float> rounded(NumberFormat f, std::vector<float> v) {
  round_array(f, v.data(), std::int64_t(v.size()));
  return v;
}

// Bitwise equality of float vectors (NaN payloads included).
void expect_bits_equal(const std::vector<float>& want, const std::vector<float>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    std::uint32_t a, b;
    std::memcpy(&a, &want[i], 4);
    std::memcpy(&b, &got[i], 4);
    ASSERT_EQ(a, b) << "element " << i << ": want " << want[i] << ", got " << got[i];
  }
}

class MixedPrecisionOps : public ::testing::TestWithParam<DType> {};

// Elementwise and row operations: the 16-bit call equals the fp32 call on decoded inputs,
// rounded. Inputs are drawn at the 16-bit width first, so both calls see the same values.
TEST_P(MixedPrecisionOps, ElementwiseAndLayerNormMatchRoundedFp32) {
  const DType h = GetParam();
  const NumberFormat f = format_of(h);
  auto be = make_cpu_backend();
  Tensors ts(*be);
  const int N = 37, C = 24;
  const auto x = rounded(f, randn(N * C, 1)), y = rounded(f, randn(N * C, 2));
  const auto w = randn(C, 3, 0.3), b = randn(C, 4, 0.3);
  const Tensor x16 = ts.make(h, {N, C}, x), y16 = ts.make(h, {N, C}, y);
  const Tensor x32 = ts.make(DType::f32, {N, C}, x), y32 = ts.make(DType::f32, {N, C}, y);
  const Tensor o16 = ts.make(h, {N, C}, std::vector<float>(N * C)),
               o32 = ts.make(DType::f32, {N, C}, std::vector<float>(N * C));
  const Tensor tw = ts.make(DType::f32, {C}, w), tb_ = ts.make(DType::f32, {C}, b);

  be->gelu_forward(o16, x16);
  be->gelu_forward(o32, x32);
  expect_bits_equal(rounded(f, ts.get(o32)), ts.get(o16));

  be->gelu_backward(o16, x16, y16);
  be->gelu_backward(o32, x32, y32);
  expect_bits_equal(rounded(f, ts.get(o32)), ts.get(o16));

  be->add(o16, x16, y16);
  be->add(o32, x32, y32);
  expect_bits_equal(rounded(f, ts.get(o32)), ts.get(o16));

  ts.set(o16, x);
  ts.set(o32, x);
  be->scale(o16, 0.37);
  be->scale(o32, 0.37);
  expect_bits_equal(rounded(f, ts.get(o32)), ts.get(o16));

  // LayerNorm: statistics stay f32; the output is stored 16-bit.
  const Tensor mean = ts.make(DType::f32, {N}, std::vector<float>(N)),
               rstd = ts.make(DType::f32, {N}, std::vector<float>(N));
  be->layernorm_forward(o16, mean, rstd, x16, tw, tb_);
  const auto mean16 = ts.get(mean), rstd16 = ts.get(rstd);
  be->layernorm_forward(o32, mean, rstd, x32, tw, tb_);
  expect_bits_equal(rounded(f, ts.get(o32)), ts.get(o16));
  expect_bits_equal(ts.get(mean), mean16);
  expect_bits_equal(ts.get(rstd), rstd16);

  // Its backward ACCUMULATES into a 16-bit dinp: read, add in fp32, round once.
  const Tensor dw = ts.make(DType::f32, {C}, std::vector<float>(C)),
               db = ts.make(DType::f32, {C}, std::vector<float>(C));
  ts.set(o16, y);
  ts.set(o32, y);
  be->layernorm_backward(o16, dw, db, x16, y16, tw, mean, rstd);
  const auto dw16 = ts.get(dw), db16 = ts.get(db);
  ts.set(dw, std::vector<float>(C));
  ts.set(db, std::vector<float>(C));
  be->layernorm_backward(o32, dw, db, x32, y32, tw, mean, rstd);
  expect_bits_equal(rounded(f, ts.get(o32)), ts.get(o16));
  expect_bits_equal(ts.get(dw), dw16);  // parameter gradients stay f32, identical
  expect_bits_equal(ts.get(db), db16);

  EXPECT_EQ(be->sum_squares(x16), be->sum_squares(x32));
}

TEST_P(MixedPrecisionOps, AttentionAndEmbeddingMatchRoundedFp32) {
  const DType h = GetParam();
  const NumberFormat f = format_of(h);
  auto be = make_cpu_backend();
  Tensors ts(*be);
  const int B = 2, T = 70, C = 16, NH = 2, V = 11;  // T > 64 crosses the kernel's row blocks
  const auto qkv = rounded(f, randn(B * T * 3 * C, 5, 0.7));
  const Tensor qkv16 = ts.make(h, {B, T, 3 * C}, qkv),
               qkv32 = ts.make(DType::f32, {B, T, 3 * C}, qkv);
  const std::vector<float> zeros_out(B * T * C), zeros_att(B * NH * T * T);
  const Tensor out16 = ts.make(h, {B, T, C}, zeros_out),
               out32 = ts.make(DType::f32, {B, T, C}, zeros_out);
  const Tensor att16 = ts.make(h, {B, NH, T, T}, zeros_att),
               att32 = ts.make(DType::f32, {B, NH, T, T}, zeros_att);
  be->attention_forward(out16, att16, qkv16, NH);
  be->attention_forward(out32, att32, qkv32, NH);
  expect_bits_equal(rounded(f, ts.get(out32)), ts.get(out16));
  expect_bits_equal(rounded(f, ts.get(att32)), ts.get(att16));

  // Backward from the SAME stored probabilities (the 16-bit ones) in both calls.
  const auto dout = rounded(f, randn(B * T * C, 6));
  const Tensor dout16 = ts.make(h, {B, T, C}, dout), dout32 = ts.make(DType::f32, {B, T, C}, dout);
  const Tensor att_as32 = ts.make(DType::f32, {B, NH, T, T}, ts.get(att16));
  const Tensor d16 = ts.make(h, {B, T, 3 * C}, std::vector<float>(B * T * 3 * C)),
               d32 = ts.make(DType::f32, {B, T, 3 * C}, std::vector<float>(B * T * 3 * C));
  const Tensor s16 = ts.make(h, {B, NH, T, T}, zeros_att),
               s32 = ts.make(DType::f32, {B, NH, T, T}, zeros_att);
  be->attention_backward(d16, s16, dout16, qkv16, att16, NH);
  be->attention_backward(d32, s32, dout32, qkv32, att_as32, NH);
  expect_bits_equal(rounded(f, ts.get(d32)), ts.get(d16));

  // Embedding: f32 tables, 16-bit output; backward from a 16-bit gradient into f32 tables.
  Rng rng(7);
  const auto ids = ids_vec(rng, B * T, V);
  const Tensor tok = TensorPool(*be).make(DType::i32, {B, T});
  TensorPool ids_pool(*be);
  const Tensor tokens = ids_pool.make(DType::i32, {B, T});
  be->copy_from_host(tokens, ids.data());
  const Tensor wte = ts.make(DType::f32, {V, C}, randn(V * C, 8)),
               wpe = ts.make(DType::f32, {T, C}, randn(T * C, 9));
  be->embedding_forward(out16, tokens, wte, wpe);
  be->embedding_forward(out32, tokens, wte, wpe);
  expect_bits_equal(rounded(f, ts.get(out32)), ts.get(out16));
  const Tensor g16 = ts.make(DType::f32, {V, C}, std::vector<float>(V * C)),
               p16 = ts.make(DType::f32, {T, C}, std::vector<float>(T * C)),
               g32 = ts.make(DType::f32, {V, C}, std::vector<float>(V * C)),
               p32 = ts.make(DType::f32, {T, C}, std::vector<float>(T * C));
  be->embedding_backward(g16, p16, dout16, tokens);
  be->embedding_backward(g32, p32, dout32, tokens);
  expect_bits_equal(ts.get(g32), ts.get(g16));
  expect_bits_equal(ts.get(p32), ts.get(p16));
  (void)tok;
}

// matmul with 16-bit activations and weights, f32 bias and weight gradients: equal to the f32
// matmul on the decoded values (16-bit operands are exact in fp32), output rounded.
TEST_P(MixedPrecisionOps, MatmulMatchesRoundedFp32) {
  const GemmPathScope emulated(CpuGemmPath::emulated);
  const DType h = GetParam();
  const NumberFormat f = format_of(h);
  auto be = make_cpu_backend();
  Tensors ts(*be);
  const int N = 33, C = 20, OC = 28;
  const auto x = rounded(f, randn(N * C, 10)), w = rounded(f, randn(OC * C, 11, 0.2));
  const auto bias = randn(OC, 12, 0.1), res = rounded(f, randn(N * OC, 13));
  const Tensor x16 = ts.make(h, {N, C}, x), w16 = ts.make(h, {OC, C}, w);
  const Tensor x32 = ts.make(DType::f32, {N, C}, x), w32 = ts.make(DType::f32, {OC, C}, w);
  const Tensor b = ts.make(DType::f32, {OC}, bias);
  const Tensor o16 = ts.make(h, {N, OC}, res), o32 = ts.make(DType::f32, {N, OC}, res);
  const GemmPrecision p16{{f}, {f}, {f}};
  be->matmul_forward(o16, x16, w16, b, /*accumulate_out=*/true, p16);
  be->matmul_forward(o32, x32, w32, b, true);
  expect_bits_equal(rounded(f, ts.get(o32)), ts.get(o16));

  // f32 output from 16-bit inputs (the LM head's logits).
  const Tensor l32 = ts.make(DType::f32, {N, OC}, std::vector<float>(N * OC));
  be->matmul_forward(l32, x16, w16, Tensor{}, false, p16);
  be->matmul_forward(o32, x32, w32, Tensor{}, false);
  expect_bits_equal(ts.get(o32), ts.get(l32));

  const auto dy = rounded(f, randn(N * OC, 14, 0.5));
  const Tensor dy16 = ts.make(h, {N, OC}, dy), dy32 = ts.make(DType::f32, {N, OC}, dy);
  const Tensor dx16 = ts.make(h, {N, C}, std::vector<float>(N * C)),
               dx32 = ts.make(DType::f32, {N, C}, std::vector<float>(N * C));
  const Tensor dw_a = ts.make(DType::f32, {OC, C}, std::vector<float>(OC * C)),
               dw_b = ts.make(DType::f32, {OC, C}, std::vector<float>(OC * C));
  const Tensor db_a = ts.make(DType::f32, {OC}, std::vector<float>(OC)),
               db_b = ts.make(DType::f32, {OC}, std::vector<float>(OC));
  be->matmul_backward(dx16, dw_a, db_a, dy16, x16, w16, p16);
  be->matmul_backward(dx32, dw_b, db_b, dy32, x32, w32);
  expect_bits_equal(rounded(f, ts.get(dx32)), ts.get(dx16));
  expect_bits_equal(ts.get(dw_b), ts.get(dw_a));
  expect_bits_equal(ts.get(db_b), ts.get(db_a));
}

TEST_P(MixedPrecisionOps, ConvertRoundsToNearestEvenAndBack) {
  const DType h = GetParam();
  const NumberFormat f = format_of(h);
  auto be = make_cpu_backend();
  Tensors ts(*be);
  auto v = randn(1000, 15, 100.0);
  v[0] = 1e6f;   // fp16 overflow → inf
  v[1] = 1e-9f;  // fp16 underflow → 0
  v[2] = std::numeric_limits<float>::quiet_NaN();
  const Tensor src = ts.make(DType::f32, {1000}, v),
               dst = ts.make(h, {1000}, std::vector<float>(1000));
  be->convert(dst, src);
  expect_bits_equal(rounded(f, v), ts.get(dst));
  const Tensor back = ts.make(DType::f32, {1000}, std::vector<float>(1000));
  be->convert(back, dst);
  expect_bits_equal(rounded(f, v), ts.get(back));
  const DType other = h == DType::bf16 ? DType::f16 : DType::bf16;
  const Tensor cross = ts.make(other, {1000}, std::vector<float>(1000));
  be->convert(cross, dst);
  expect_bits_equal(rounded(format_of(other), rounded(f, v)), ts.get(cross));
}

INSTANTIATE_TEST_SUITE_P(Widths, MixedPrecisionOps, ::testing::Values(DType::bf16, DType::f16),
                         [](const ::testing::TestParamInfo<DType>& p) {
                           return std::string(dtype_name(p.param));
                         });

// GEMM operand formats on f32 tensors: tf32/bf16/fp16 round the operands (RNE); FP8 casts
// x·scale with saturation and divides the product back; the amaxes are max|x| as stored.
TEST(GemmOperandFormats, EqualFp32GemmOfRoundedOperands) {
  const GemmPathScope emulated(CpuGemmPath::emulated);
  auto be = make_cpu_backend();
  Tensors ts(*be);
  const int N = 29, C = 18, OC = 22;
  const auto x = randn(N * C, 20), w = randn(OC * C, 21, 0.2), dy = randn(N * OC, 22, 1e-3);
  const Tensor tx = ts.make(DType::f32, {N, C}, x), tw = ts.make(DType::f32, {OC, C}, w);
  const Tensor tdy = ts.make(DType::f32, {N, OC}, dy);
  for (NumberFormat f : {NumberFormat::tf32, NumberFormat::bf16, NumberFormat::fp16}) {
    SCOPED_TRACE(std::string(number_format_name(f)));
    const Tensor o = ts.make(DType::f32, {N, OC}, std::vector<float>(N * OC));
    const Tensor ref = ts.make(DType::f32, {N, OC}, std::vector<float>(N * OC));
    be->matmul_forward(o, tx, tw, Tensor{}, false, {{f}, {f}, {f}});
    const Tensor rx = ts.make(DType::f32, {N, C}, rounded(f, x)),
                 rw = ts.make(DType::f32, {OC, C}, rounded(f, w));
    be->matmul_forward(ref, rx, rw, Tensor{}, false);
    expect_bits_equal(ts.get(ref), ts.get(o));
    // The inputs themselves are untouched (the rounding is on a copy).
    expect_bits_equal(x, ts.get(tx));
  }
  // FP8: E4M3 inputs and weights, E5M2 output gradients, each with its own scale.
  float amax_x = -1, amax_w = -1, amax_dy = -1;
  const float sx = 64.0f, sw = 1024.0f, sdy = 3.0e6f;  // sdy not a power of two
  const GemmPrecision p{{NumberFormat::e4m3, sx, &amax_x},
                        {NumberFormat::e4m3, sw, &amax_w},
                        {NumberFormat::e5m2, sdy, &amax_dy}};
  auto q = [](NumberFormat f, std::vector<float> v, float s) {
    quantize_scaled(f, v.data(), s, v.data(), std::int64_t(v.size()));
    return v;
  };
  const Tensor dx = ts.make(DType::f32, {N, C}, std::vector<float>(N * C)),
               dw = ts.make(DType::f32, {OC, C}, std::vector<float>(OC * C)),
               db = ts.make(DType::f32, {OC}, std::vector<float>(OC));
  be->matmul_backward(dx, dw, db, tdy, tx, tw, p);
  const Tensor qx = ts.make(DType::f32, {N, C}, q(NumberFormat::e4m3, x, sx)),
               qw = ts.make(DType::f32, {OC, C}, q(NumberFormat::e4m3, w, sw)),
               qdy = ts.make(DType::f32, {N, OC}, q(NumberFormat::e5m2, dy, sdy));
  const Tensor rdx = ts.make(DType::f32, {N, C}, std::vector<float>(N * C)),
               rdw = ts.make(DType::f32, {OC, C}, std::vector<float>(OC * C)),
               rdb = ts.make(DType::f32, {OC}, std::vector<float>(OC)),
               rdb_exact = ts.make(DType::f32, {OC}, std::vector<float>(OC));
  be->matmul_backward(rdx, rdw, Tensor{}, qdy, qx, qw);
  expect_bits_equal(ts.get(rdx), ts.get(dx));
  expect_bits_equal(ts.get(rdw), ts.get(dw));
  // The bias gradient sums dout as stored, not its FP8 cast.
  be->matmul_backward(Tensor{}, rdw, rdb_exact, tdy, tx, tw);
  expect_bits_equal(ts.get(rdb_exact), ts.get(db));
  (void)rdb;
  EXPECT_EQ(amax_x, amax(x.data(), std::int64_t(x.size())));
  EXPECT_EQ(amax_w, amax(w.data(), std::int64_t(w.size())));
  EXPECT_EQ(amax_dy, amax(dy.data(), std::int64_t(dy.size())));
  // Saturation: a scale that pushes values past 448 clips them to ±448/scale, never inf/NaN.
  const Tensor o = ts.make(DType::f32, {N, OC}, std::vector<float>(N * OC));
  be->matmul_forward(o, tx, tw, Tensor{}, false,
                     {{NumberFormat::e4m3, 1e4f}, {NumberFormat::e4m3, 1e4f}, {}});
  for (float v : ts.get(o)) ASSERT_TRUE(std::isfinite(v));
  // A bad scale is an error naming it.
  try {
    be->matmul_forward(o, tx, tw, Tensor{}, false, {{NumberFormat::e4m3, 0.0f}, {}, {}});
    FAIL() << "scale 0 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("scale"), std::string::npos) << e.what();
  }
}

// The emulation's fp32 stand-ins are tracked as MemoryCategory::emulation and reach a steady
// size after the first call of a shape: later calls allocate nothing more.
TEST(EmulationScratch, TrackedSteadyAndReleased) {
  auto be = make_cpu_backend();
  Tensors ts(*be);
  const int n = 4096;
  const Tensor x = ts.make(DType::bf16, {n}, randn(n, 30)),
               o = ts.make(DType::bf16, {n}, randn(n, 31));
  EXPECT_EQ(be->memory().peak_bytes(MemoryCategory::emulation), 0u);
  be->gelu_forward(o, x);
  const std::size_t after_first = be->memory().current_bytes(MemoryCategory::emulation);
  const std::size_t peak_first = be->memory().peak_bytes(MemoryCategory::emulation);
  EXPECT_EQ(after_first, 2u * n * sizeof(float));  // input and output stand-ins, one block
  for (int i = 0; i < 5; ++i) be->gelu_forward(o, x);
  EXPECT_EQ(be->memory().current_bytes(MemoryCategory::emulation), after_first);
  EXPECT_EQ(be->memory().peak_bytes(MemoryCategory::emulation), peak_first);
  // f32 calls need none.
  auto be32 = make_cpu_backend();
  Tensors t32(*be32);
  const Tensor a = t32.make(DType::f32, {n}, randn(n, 32)),
               b = t32.make(DType::f32, {n}, randn(n, 33));
  be32->gelu_forward(b, a);
  EXPECT_EQ(be32->memory().peak_bytes(MemoryCategory::emulation), 0u);
}

TEST(MixedPrecisionErrors, F64MixedWith16BitIsRejected) {
  auto be = make_cpu_backend();
  TensorPool pool(*be);
  const Tensor a = pool.make(DType::f64, {8}), b = pool.make(DType::bf16, {8});
  EXPECT_ANY_THROW(be->add(a, a, b));
  const Tensor i = pool.make(DType::i32, {8});
  EXPECT_THROW(be->convert(b, i), std::invalid_argument);
}

}  // namespace
}  // namespace tb::test
