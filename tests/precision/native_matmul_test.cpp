// The CPU backend's linear layers on bf16 tensors (kernels/cpu/native_matmul.h): through oneDNN
// where the CPU runs bf16 natively, emulated otherwise (and when forced). Both paths against a
// double-precision reference of the decoded values within the bound of fp32 accumulation
// (dnnl_gemm_test.cpp states it) plus a 16-bit result's rounding; the native path takes no
// fp32 stand-ins (`emulation` memory), so a bf16 training step's emulation peak falls, and the
// memory model predicts both paths' scratch to the byte.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "data/markov_source.h"
#include "model/gpt.h"
#include "numerics/numerics_util.h"
#include "plan/memory_model.h"
#include "precision/gemm_path_scope.h"
#include "profile/profiler.h"
#include "tb/cpu_backend.h"
#include "tb/number_format.h"
#include "train/trainer.h"

namespace tb::test {
namespace {

const char* path_name(CpuGemmPath p) { return p == CpuGemmPath::native ? "native" : "emulated"; }

// Whether matmul calls on bf16 tensors run natively on `path` here.
bool runs_native(CpuGemmPath path) { return path == CpuGemmPath::native && cpu_native_bf16_gemm(); }

// Backend tensors holding given values (rounded to bf16 when the tensor is bf16).
class Tensors {
 public:
  explicit Tensors(Backend& be) : be_(be), pool_(be) {}
  Tensor make(DType t, std::vector<std::int64_t> shape, const std::vector<float>& values) {
    Tensor x = pool_.make(t, std::move(shape));
    set(x, values);
    return x;
  }
  void set(const Tensor& x, const std::vector<float>& values) {
    if (x.dtype == DType::bf16) {
      std::vector<std::uint16_t> bits(values.size());
      encode_array(NumberFormat::bf16, values.data(), bits.data(), std::int64_t(values.size()));
      be_.copy_from_host(x, bits.data());
    } else {
      be_.copy_from_host(x, values.data());
    }
  }
  std::vector<double> get(const Tensor& x) {
    std::vector<float> f(static_cast<std::size_t>(x.numel()));
    if (x.dtype == DType::bf16) {
      std::vector<std::uint16_t> bits(f.size());
      be_.copy_to_host(bits.data(), x);
      decode_array(NumberFormat::bf16, bits.data(), f.data(), x.numel());
    } else {
      be_.copy_to_host(f.data(), x);
    }
    return {f.begin(), f.end()};
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
std::vector<double> as_bf16(const std::vector<float>& v) {
  std::vector<double> d(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) d[i] = round_to(NumberFormat::bf16, v[i]);
  return d;
}

// C(M,N) = Σ_k a(i,k)·b(k,j) + c0(i,j) in f64, with the magnitude Σ|a·b| + |c0| per element;
// a(i,k) = A[i·sa + k·ta], b(k,j) = B[k·sb + j·tb].
struct Ref {
  std::vector<double> value, mag;
};
Ref ref_gemm(int M, int N, int K, const std::vector<double>& A, std::int64_t sa, std::int64_t ta,
             const std::vector<double>& B, std::int64_t sb, std::int64_t tb,
             const std::vector<double>& c0) {
  Ref r{std::vector<double>(std::size_t(M) * N), std::vector<double>(std::size_t(M) * N)};
  for (int i = 0; i < M; ++i) {
    for (int j = 0; j < N; ++j) {
      double s = 0, m = 0;
      for (int k = 0; k < K; ++k) {
        const double p = A[std::size_t(i * sa + k * ta)] * B[std::size_t(k * sb + j * tb)];
        s += p;
        m += std::fabs(p);
      }
      const std::size_t ij = std::size_t(i) * N + std::size_t(j);
      const double c = c0.empty() ? 0.0 : c0[ij];
      r.value[ij] = s + c;
      r.mag[ij] = m + std::fabs(c);
    }
  }
  return r;
}

// Elements of `got` outside the bound of fp32 accumulation over K terms (+ a bf16 rounding
// when the result is stored bf16).
int out_of_bound(const std::vector<double>& got, const Ref& want, int K, bool bf16_result) {
  int bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double fp32 = (K + 3) * 0x1p-23 * want.mag[i];
    const double tol = fp32 + (bf16_result ? 0x1p-8 * (std::fabs(want.value[i]) + fp32) : 0.0);
    if (!(std::fabs(got[i] - want.value[i]) <= tol) && bad++ < 5) {
      ADD_FAILURE() << "element " << i << ": " << got[i] << ", f64 " << want.value[i] << ", bound "
                    << tol;
    }
  }
  return bad;
}

class NativeMatmul : public ::testing::TestWithParam<CpuGemmPath> {};

// matmul_forward into a bf16 output accumulating onto a residual with a bias (a block's
// projection), into an f32 output (the LM head's logits); matmul_backward with a bf16 input
// gradient, accumulating f32 weight and bias gradients.
TEST_P(NativeMatmul, Bf16LinearLayerAgainstF64) {
  const GemmPathScope scope(GetParam());
  auto be = make_cpu_backend();
  Tensors ts(*be);
  const int N = 37, C = 45, OC = 29;
  const auto x = randn(N * C, 1), w = randn(OC * C, 2, 0.2), bias = randn(OC, 3, 0.1);
  const auto res = randn(N * OC, 4), dy = randn(N * OC, 5, 0.5);
  const auto dw0 = randn(OC * C, 6, 0.01), db0 = randn(OC, 7, 0.01);
  const std::vector<double> xd = as_bf16(x), wd = as_bf16(w), dyd = as_bf16(dy);
  const Tensor tx = ts.make(DType::bf16, {N, C}, x), tw = ts.make(DType::bf16, {OC, C}, w);
  const Tensor tb = ts.make(DType::f32, {OC}, bias);
  const GemmPrecision p{{NumberFormat::bf16}, {NumberFormat::bf16}, {NumberFormat::bf16}};

  // out = res + x·Wᵀ + bias, stored bf16.
  const Tensor out = ts.make(DType::bf16, {N, OC}, res);
  be->matmul_forward(out, tx, tw, tb, /*accumulate_out=*/true, p);
  std::vector<double> c0 = as_bf16(res);
  for (int i = 0; i < N; ++i) {
    for (int j = 0; j < OC; ++j) c0[std::size_t(i * OC + j)] += bias[std::size_t(j)];
  }
  EXPECT_EQ(out_of_bound(ts.get(out), ref_gemm(N, OC, C, xd, C, 1, wd, 1, C, c0), C, true), 0);

  // logits = x·Wᵀ, f32.
  const Tensor logits = ts.make(DType::f32, {N, OC}, std::vector<float>(N * OC));
  be->matmul_forward(logits, tx, tw, Tensor{}, false, p);
  EXPECT_EQ(out_of_bound(ts.get(logits), ref_gemm(N, OC, C, xd, C, 1, wd, 1, C, {}), C, false), 0);

  // dx = dy·W (bf16); dW += dyᵀ·x; db += Σ dy.
  const Tensor tdy = ts.make(DType::bf16, {N, OC}, dy);
  const Tensor dx = ts.make(DType::bf16, {N, C}, std::vector<float>(N * C));
  const Tensor dw = ts.make(DType::f32, {OC, C}, dw0), db = ts.make(DType::f32, {OC}, db0);
  be->matmul_backward(dx, dw, db, tdy, tx, tw, p);
  EXPECT_EQ(out_of_bound(ts.get(dx), ref_gemm(N, C, OC, dyd, OC, 1, wd, C, 1, {}), OC, true), 0);
  const std::vector<double> dw0d(dw0.begin(), dw0.end());
  EXPECT_EQ(out_of_bound(ts.get(dw), ref_gemm(OC, C, N, dyd, 1, OC, xd, C, 1, dw0d), N, false), 0);
  std::vector<double> db_want(db0.begin(), db0.end());
  for (int i = 0; i < N; ++i) {
    for (int j = 0; j < OC; ++j) db_want[std::size_t(j)] += dyd[std::size_t(i * OC + j)];
  }
  const auto db_got = ts.get(db);
  for (int j = 0; j < OC; ++j) EXPECT_NEAR(db_got[std::size_t(j)], db_want[std::size_t(j)], 1e-5);

  // Native: no fp32 stand-ins at all; emulated: stand-ins for every bf16 tensor.
  const std::size_t emulation = be->memory().peak_bytes(MemoryCategory::emulation);
  if (runs_native(GetParam())) {
    EXPECT_EQ(emulation, 0u);
  } else {
    EXPECT_GT(emulation, 0u);
  }
}

// The LM head's backward: dout (the logits' gradient) is fp32 and enters as bf16 — rounded
// into a 16-bit copy in the GEMM workspace on the native path, an fp32 copy when emulated.
TEST_P(NativeMatmul, Fp32OperandRoundedToBf16) {
  const GemmPathScope scope(GetParam());
  auto be = make_cpu_backend();
  Tensors ts(*be);
  const int N = 33, C = 20, V = 51;
  const auto x = randn(N * C, 11), w = randn(V * C, 12, 0.2), dy = randn(N * V, 13, 1e-2);
  const std::vector<double> xd = as_bf16(x), wd = as_bf16(w), dyd = as_bf16(dy);
  const Tensor tx = ts.make(DType::bf16, {N, C}, x), tw = ts.make(DType::bf16, {V, C}, w);
  const Tensor tdy = ts.make(DType::f32, {N, V}, dy);
  const Tensor dx = ts.make(DType::bf16, {N, C}, std::vector<float>(N * C));
  const Tensor dw = ts.make(DType::f32, {V, C}, std::vector<float>(V * C));
  const std::size_t workspace_before = be->memory().current_bytes(MemoryCategory::workspace);
  be->matmul_backward(dx, dw, Tensor{}, tdy, tx, tw,
                      {{NumberFormat::bf16}, {NumberFormat::bf16}, {NumberFormat::bf16}});
  EXPECT_EQ(out_of_bound(ts.get(dx), ref_gemm(N, C, V, dyd, V, 1, wd, C, 1, {}), V, true), 0);
  EXPECT_EQ(out_of_bound(ts.get(dw), ref_gemm(V, C, N, dyd, 1, V, xd, C, 1, {}), N, false), 0);
  // The input is untouched (rounded in a copy).
  const auto dy_after = ts.get(tdy);
  for (std::size_t i = 0; i < dy.size(); ++i) ASSERT_EQ(dy_after[i], double(dy[i]));
  const std::size_t workspace = be->memory().current_bytes(MemoryCategory::workspace);
  if (runs_native(GetParam())) {
    EXPECT_EQ(be->memory().peak_bytes(MemoryCategory::emulation), 0u);
    EXPECT_GE(workspace - workspace_before, std::size_t(N) * V * 2);  // the bf16 copy of dout
  } else {
    EXPECT_EQ(workspace, workspace_before);
    EXPECT_GT(be->memory().peak_bytes(MemoryCategory::emulation), 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, NativeMatmul,
                         ::testing::Values(CpuGemmPath::native, CpuGemmPath::emulated),
                         [](const ::testing::TestParamInfo<CpuGemmPath>& p) {
                           return std::string(path_name(p.param));
                         });

// Both paths sum the bias gradient from dout as stored, in bias_backward's fixed order: the
// same bits.
TEST(NativeMatmulPaths, BiasGradientIdentical) {
  const int N = 70, C = 24, OC = 130;  // OC over two 64-column blocks
  std::vector<std::vector<double>> db;
  for (CpuGemmPath path : {CpuGemmPath::native, CpuGemmPath::emulated}) {
    const GemmPathScope scope(path);
    auto be = make_cpu_backend();
    Tensors ts(*be);
    const Tensor tx = ts.make(DType::bf16, {N, C}, randn(N * C, 21));
    const Tensor tw = ts.make(DType::bf16, {OC, C}, randn(OC * C, 22, 0.2));
    const Tensor tdy = ts.make(DType::bf16, {N, OC}, randn(N * OC, 23));
    const Tensor dx = ts.make(DType::bf16, {N, C}, std::vector<float>(N * C));
    const Tensor dw = ts.make(DType::f32, {OC, C}, std::vector<float>(OC * C));
    const Tensor tdb = ts.make(DType::f32, {OC}, randn(OC, 24));
    be->matmul_backward(dx, dw, tdb, tdy, tx, tw,
                        {{NumberFormat::bf16}, {NumberFormat::bf16}, {NumberFormat::bf16}});
    db.push_back(ts.get(tdb));
  }
  EXPECT_EQ(db[0], db[1]);
}

// Counting roundings (the accuracy run's backward): the native path counts the same values —
// the rounding of an fp32 dout into bf16 and of the input gradient into its bf16 tensor, which
// it computes in an fp32 stand-in for that.
TEST(NativeMatmulPaths, CountsTheSameRoundings) {
  const int N = 40, C = 24, V = 37;
  std::vector<RoundingStats> stats;
  for (CpuGemmPath path : {CpuGemmPath::native, CpuGemmPath::emulated}) {
    const GemmPathScope scope(path);
    auto be = make_cpu_backend();
    Tensors ts(*be);
    auto dy = randn(N * V, 31, 1e-3);
    dy[0] = 1e-42f;  // under half bf16's smallest subnormal: rounds to zero
    const Tensor tx = ts.make(DType::bf16, {N, C}, randn(N * C, 32));
    const Tensor tw = ts.make(DType::bf16, {V, C}, randn(V * C, 33, 0.2));
    const Tensor tdy = ts.make(DType::f32, {N, V}, dy);
    const Tensor dx = ts.make(DType::bf16, {N, C}, std::vector<float>(N * C));
    const Tensor dw = ts.make(DType::f32, {V, C}, std::vector<float>(V * C));
    ASSERT_TRUE(be->count_rounding(true));
    be->matmul_backward(dx, dw, Tensor{}, tdy, tx, tw,
                        {{NumberFormat::bf16}, {NumberFormat::bf16}, {NumberFormat::bf16}});
    stats.push_back(be->take_rounding_stats());
    if (runs_native(path)) {  // the input gradient's stand-in
      EXPECT_EQ(be->memory().peak_bytes(MemoryCategory::emulation), std::size_t(N) * C * 4);
    }
  }
  EXPECT_EQ(stats[0].values, std::int64_t(N) * V + std::int64_t(N) * C);
  EXPECT_EQ(stats[0].values, stats[1].values);
  EXPECT_GE(stats[0].underflow, 1);
}

// A bf16 training step on a small GPT: gradients within bf16's bound of the f64 model on both
// paths (precision_gradients_test.cpp's bound), and a smaller emulation peak when native.
constexpr int kLayers = 2, kWidth = 64, kHeads = 4, kSeq = 32, kVocab = 96, kBatch = 2;

ModelConfig small_gpt() { return model_config(kLayers, kWidth, kHeads, kSeq, kVocab); }

std::vector<double> step_gradients(DType dtype, PrecisionMode mode) {
  auto be = make_cpu_backend();
  GptModel model(*be, small_gpt(), dtype);
  model.set_precision({mode});
  model.init_weights(11);
  if (dtype == DType::f32) {  // the f64 model's weights, rounded once to f32
    auto be64 = make_cpu_backend();
    GptModel ref(*be64, model.config(), DType::f64);
    ref.init_weights(11);
    upload(*be, model.params(), download(*be64, ref.params()));
  }
  Rng rng(4);
  const auto n = static_cast<std::size_t>(kBatch * kSeq);
  const auto in = ids_vec(rng, n, kVocab), tg = ids_vec(rng, n, kVocab);
  model.zero_grad();
  model.forward(in.data(), tg.data(), kBatch);
  model.backward();
  return download(*be, model.grads());
}

TEST(NativeMatmulPaths, Bf16GradientsWithinBoundOnBothPaths) {
  const std::vector<double> ref = step_gradients(DType::f64, PrecisionMode::fp32);
  std::vector<double> errs;
  for (CpuGemmPath path : {CpuGemmPath::native, CpuGemmPath::emulated}) {
    const GemmPathScope scope(path);
    const double err = rel_err(step_gradients(DType::f32, PrecisionMode::bf16), ref);
    noted(std::string(path_name(path)) + " bf16 grad rel err", err);
    EXPECT_LT(err, 5 * 0x1p-8);
    EXPECT_GT(err, 1e-4) << "no rounding happened?";
    errs.push_back(err);
  }
  // The same roundings of the same values: the paths differ only in summation order.
  EXPECT_LT(std::abs(errs[0] - errs[1]), 0.25 * errs[1]);
}

// Training steps as `trainbench step` runs them; the tracker's peaks.
MemoryTracker train_steps(const RunConfig& c, int steps) {
  const ModelConfig m = small_gpt();
  auto be = make_cpu_backend();
  MarkovSource data(m.vocab, 4, 7);
  GptModel model(*be, m, DType::f32);
  model.set_precision({parse_precision_mode(c.precision)});
  model.init_weights(7);
  OptimizerConfig o;
  o.name = c.optimizer;
  TrainingConfig t;
  t.micro_batch = c.micro_batch;
  Profiler profiler(false);
  Trainer trainer(model, data, o, t, profiler);
  for (int i = 0; i < steps; ++i) trainer.step();
  return be->memory();
}

TEST(NativeMatmulPaths, TrainingStepEmulationFallsAndIsPredictedToTheByte) {
  RunConfig c;
  c.micro_batch = kBatch;
  c.precision = "bf16";
  const std::size_t emul = static_cast<std::size_t>(MemoryCategory::emulation);
  const std::size_t work = static_cast<std::size_t>(MemoryCategory::workspace);
  std::vector<double> emulation;
  for (CpuGemmPath path : {CpuGemmPath::native, CpuGemmPath::emulated}) {
    const GemmPathScope scope(path);
    SCOPED_TRACE(path_name(path));
    const MemoryTracker measured = train_steps(c, 2);
    const MemoryPrediction predicted = predict_stage_memory(small_gpt(), c, DeviceKind::cpu, 0);
    std::printf("[ %s ] emulation %zu bytes (predicted %.0f), workspace %zu (predicted %.0f)\n",
                path_name(path), measured.peak_bytes(MemoryCategory::emulation),
                predicted.bytes[emul], measured.peak_bytes(MemoryCategory::workspace),
                predicted.bytes[work]);
    EXPECT_EQ(predicted.bytes[emul], double(measured.peak_bytes(MemoryCategory::emulation)));
    EXPECT_EQ(predicted.bytes[work], double(measured.peak_bytes(MemoryCategory::workspace)));
    emulation.push_back(double(measured.peak_bytes(MemoryCategory::emulation)));
  }
  if (cpu_native_bf16_gemm()) {
    EXPECT_LT(emulation[0], emulation[1]);
  } else {
    EXPECT_EQ(emulation[0], emulation[1]);
  }
}

}  // namespace
}  // namespace tb::test
