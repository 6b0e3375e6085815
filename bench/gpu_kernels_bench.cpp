// Google Benchmark microbenchmarks of the CUDA backend (tb/cuda_backend.h) on device 0:
//   gemm_fwd/<precision>/<shape>   Backend::matmul_forward, tensors stored as a training step
//                                  stores them (fp32, tf32: f32; bf16, fp16: 16-bit tensors and
//                                  weight; fp8: bf16 tensors cast to E4M3 with a scale — the cast
//                                  of both operands is part of the time, as in a step)
//   gemm_bwd/<precision>/<shape>   Backend::matmul_backward: dinp and dweight (+= ), no bias
//   gemm_lt/<precision>/cube8192   cuBLASLt alone on operands already in the input type, "TN",
//                                  the library's ceiling (fp8: E4M3 × E4M3 → bf16)
//   layernorm_fwd|bwd/<model>      over (tokens × d_model), bf16 activations, fp32 parameters
//   attention_fwd|bwd/<model>      causal attention, bf16, micro-batch 4 × 2048
//   adamw/n268M                    AdamW over 2^28 fp32 parameters
// Shapes: cube8192 is 8192³; <model>_<layer> are one block's linear layers of gpt3-1.3b, -13b
// and -175b (harness/model/config.cpp; d_model 2048/5120/12288, 16/40/96 heads of 128) at
// 8192 tokens (micro-batch 4 × context 2048): (tokens × C)·(C × OC)ᵀ with OC = 3C (qkv), C
// (attn_proj), 4C (fc), and C from 4C (mlp_proj).
//
// Timing: CUDA events on the backend's stream around each call (UseManualTime), one sample
// per iteration after one untimed warm-up call (which also builds cuBLASLt's plans); inputs
// are random normals, never zeros. Counters: TFLOP/s from an analytic count (a multiply-add
// is 2 FLOPs; causal attention counts the unmasked half only, although the kernels compute the
// full T × T product) and GB/s from the compulsory traffic (each tensor read or written counted
// once). Without a usable GPU the program says so and exits 0.
//
//   build-cuda/bin/bench_gpu_kernels --benchmark_filter='gemm_fwd/bf16'
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gemm_lt.h"
#include "tb/backend.h"
#include "tb/cuda_backend.h"
#include "tb/devices.h"
#include "tb/number_format.h"

namespace {

using I64 = std::int64_t;
using tb::DType;
using tb::NumberFormat;
using tb::Tensor;

constexpr I64 kTokens = 4 * 2048;

struct Model {
  const char* name;
  I64 d_model, n_head;
};
constexpr Model kModels[] = {
    {"gpt3-1.3b", 2048, 16}, {"gpt3-13b", 5120, 40}, {"gpt3-175b", 12288, 96}};

struct Precision {
  const char* name;
  DType act, weight;
  NumberFormat forward, gradient;
};
constexpr Precision kPrecisions[] = {
    {"fp32", DType::f32, DType::f32, NumberFormat::fp32, NumberFormat::fp32},
    {"tf32", DType::f32, DType::f32, NumberFormat::tf32, NumberFormat::tf32},
    {"bf16", DType::bf16, DType::bf16, NumberFormat::bf16, NumberFormat::bf16},
    {"fp16", DType::f16, DType::f16, NumberFormat::fp16, NumberFormat::fp16},
    {"fp8", DType::bf16, DType::bf16, NumberFormat::e4m3, NumberFormat::e5m2},
};

void check(cudaError_t s, const char* what) {
  if (s != cudaSuccess) {
    throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorString(s));
  }
}

// The process's backend and events (made once a GPU is known to exist).
struct Gpu {
  std::unique_ptr<tb::Backend> be;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  tb::GpuInfo info;
};
Gpu& gpu() {
  static Gpu g;
  return g;
}

// SplitMix64 + Box–Muller: fast enough for the largest weights (604M elements).
class Normal {
 public:
  explicit Normal(std::uint64_t seed) : x_(seed) {}
  float operator()() {
    const double u1 = (double(next() >> 11) + 1.0) * 0x1.0p-53;
    const double u2 = double(next() >> 11) * 0x1.0p-53;
    return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }

 private:
  std::uint64_t next() {
    std::uint64_t z = (x_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::uint64_t x_;
};

// Device tensors of one benchmark, freed with it.
class Tensors {
 public:
  Tensor random(DType t, std::vector<I64> shape, float sd, std::uint64_t seed) {
    Tensor x = alloc(t, std::move(shape));
    const auto n = static_cast<std::size_t>(x.numel());
    std::vector<float> v(n);
    Normal g(seed);
    for (auto& e : v) e = sd * g();
    upload(x, v);
    return x;
  }
  Tensor zeros(DType t, std::vector<I64> shape) {
    Tensor x = alloc(t, std::move(shape));
    gpu().be->fill_zero(x);
    return x;
  }
  Tensor uninit(DType t, std::vector<I64> shape) { return alloc(t, std::move(shape)); }

 private:
  Tensor alloc(DType t, std::vector<I64> shape) {
    Tensor x(nullptr, t, std::move(shape));
    bufs_.push_back(gpu().be->allocate(x.bytes(), tb::MemoryCategory::workspace, "benchmark"));
    x.ptr = bufs_.back().data();
    return x;
  }
  static void upload(const Tensor& x, const std::vector<float>& v) {
    if (tb::is_reduced_float(x.dtype)) {
      std::vector<std::uint16_t> bits(v.size());
      tb::encode_array(x.dtype == DType::bf16 ? NumberFormat::bf16 : NumberFormat::fp16, v.data(),
                       bits.data(), static_cast<I64>(v.size()));
      gpu().be->copy_from_host(x, bits.data());
    } else {
      gpu().be->copy_from_host(x, v.data());
    }
  }
  std::vector<tb::Buffer> bufs_;
};

// One sample per iteration: CUDA events around `op` on the backend's stream.
void time_on_gpu(benchmark::State& st, const std::function<void()>& op) {
  Gpu& g = gpu();
  op();  // warm-up: cuBLASLt plans, scratch growth
  g.be->synchronize();
  for (auto _ : st) {
    check(cudaEventRecord(g.start, g.stream), "cudaEventRecord");
    op();
    check(cudaEventRecord(g.stop, g.stream), "cudaEventRecord");
    check(cudaEventSynchronize(g.stop), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, g.start, g.stop), "cudaEventElapsedTime");
    st.SetIterationTime(static_cast<double>(ms) * 1e-3);
  }
}

void set_rates(benchmark::State& st, double flops, double bytes) {
  if (flops > 0)
    st.counters["TFLOP/s"] =
        benchmark::Counter(flops * 1e-12, benchmark::Counter::kIsIterationInvariantRate);
  if (bytes > 0)
    st.counters["GB/s"] =
        benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Runs body, turning an exception (out of memory, FP8 on an older GPU) into a skipped entry.
void guarded(benchmark::State& st, const std::function<void()>& body) {
  try {
    body();
  } catch (const std::exception& e) {
    st.SkipWithError(e.what());
  }
}

bool is_fp8(NumberFormat f) { return f == NumberFormat::e4m3 || f == NumberFormat::e5m2; }

tb::GemmPrecision precision_of(const Precision& p) {
  tb::GemmPrecision g;
  g.inp.format = g.weight.format = p.forward;
  g.dout.format = p.gradient;
  return g;
}

struct GemmShape {
  std::string name;
  I64 N, C, OC;
  bool bias, accumulate;
};

std::vector<GemmShape> gemm_shapes() {
  std::vector<GemmShape> s = {{"cube8192", 8192, 8192, 8192, false, false}};
  for (const Model& m : kModels) {
    const I64 C = m.d_model;
    const std::string p = std::string(m.name) + "_";
    s.push_back({p + "qkv", kTokens, C, 3 * C, true, false});
    s.push_back({p + "attn_proj", kTokens, C, C, true, true});
    s.push_back({p + "fc", kTokens, C, 4 * C, true, false});
    s.push_back({p + "mlp_proj", kTokens, 4 * C, C, true, true});
  }
  return s;
}

void bm_gemm_fwd(benchmark::State& st, Precision p, GemmShape s) {
  guarded(st, [&] {
    Tensors ts;
    const Tensor x = ts.random(p.act, {s.N, s.C}, 1.0f, 1);
    const Tensor w = ts.random(p.weight, {s.OC, s.C}, 0.02f, 2);
    const Tensor b = s.bias ? ts.random(DType::f32, {s.OC}, 0.02f, 3) : Tensor{};
    const Tensor out = ts.random(p.act, {s.N, s.OC}, 1.0f, 4);
    const tb::GemmPrecision g = precision_of(p);
    time_on_gpu(st, [&] { gpu().be->matmul_forward(out, x, w, b, s.accumulate, g); });
    const double n = double(s.N), c = double(s.C), oc = double(s.OC);
    const double bytes = tb::dtype_size(p.act) * (n * c + n * oc * (s.accumulate ? 2 : 1)) +
                         tb::dtype_size(p.weight) * oc * c;
    set_rates(st, 2 * n * c * oc, bytes);
  });
}

void bm_gemm_bwd(benchmark::State& st, Precision p, GemmShape s) {
  guarded(st, [&] {
    Tensors ts;
    const Tensor x = ts.random(p.act, {s.N, s.C}, 1.0f, 1);
    const Tensor w = ts.random(p.weight, {s.OC, s.C}, 0.02f, 2);
    const Tensor dout = ts.random(p.act, {s.N, s.OC}, 1.0f, 3);
    const Tensor dinp = ts.uninit(p.act, {s.N, s.C});
    const Tensor dw = ts.zeros(DType::f32, {s.OC, s.C});
    const tb::GemmPrecision g = precision_of(p);
    time_on_gpu(st, [&] { gpu().be->matmul_backward(dinp, dw, Tensor{}, dout, x, w, g); });
    const double n = double(s.N), c = double(s.C), oc = double(s.OC);
    const double bytes = tb::dtype_size(p.act) * (2 * n * c + n * oc) +
                         tb::dtype_size(p.weight) * oc * c + 2.0 * 4 * oc * c;
    set_rates(st, 4 * n * c * oc, bytes);
  });
}

// cuBLASLt alone: D(m × n) = op_T(A)·B with A, B already in the input type (TN, ld = k).
void bm_gemm_lt(benchmark::State& st, Precision p) {
  guarded(st, [&] {
    const I64 n = 8192;
    cudaDataType_t in_type = CUDA_R_32F, out_type = CUDA_R_32F;
    cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
    DType stored = DType::f32;
    if (p.forward == NumberFormat::tf32) compute = CUBLAS_COMPUTE_32F_FAST_TF32;
    if (p.forward == NumberFormat::bf16) {
      in_type = out_type = CUDA_R_16BF;
      stored = DType::bf16;
    }
    if (p.forward == NumberFormat::fp16) {
      in_type = out_type = CUDA_R_16F;
      stored = DType::f16;
    }
    if (is_fp8(p.forward)) {
      const tb::GpuInfo& info = gpu().info;
      if (info.compute_capability_major * 10 + info.compute_capability_minor < 89) {
        throw std::runtime_error("FP8 needs compute capability 8.9 or newer");
      }
      in_type = CUDA_R_8F_E4M3;
      out_type = CUDA_R_16BF;
    }
    Tensors ts;
    Tensor a, b;
    if (is_fp8(p.forward)) {
      // E4M3 bytes of normals, uploaded as raw bytes (no DType is 8 bits wide: i32 storage of
      // a quarter as many elements holds them).
      std::vector<float> v(static_cast<std::size_t>(n * n));
      Normal g(5);
      for (auto& e : v) e = g();
      std::vector<std::uint8_t> bytes(v.size());
      tb::encode_array(NumberFormat::e4m3, v.data(), bytes.data(), static_cast<I64>(v.size()));
      a = ts.uninit(DType::i32, {n * n / 4});
      b = ts.uninit(DType::i32, {n * n / 4});
      gpu().be->copy_from_host(a, bytes.data());
      gpu().be->copy_from_host(b, bytes.data());
    } else {
      a = ts.random(stored, {n, n}, 1.0f, 5);
      b = ts.random(stored, {n, n}, 1.0f, 6);
    }
    const Tensor d = ts.uninit(out_type == CUDA_R_32F ? DType::f32 : DType::bf16, {n, n});
    const Tensor scales = ts.uninit(DType::f32, {2});  // the FP8 dequantisation factors: 1
    const float ones[2] = {1.0f, 1.0f};
    gpu().be->copy_from_host(scales, ones);
    const Tensor ws =
        ts.uninit(DType::f32, {static_cast<I64>(tb::cuda::LtContext::kWorkspaceBytes / 4)});
    tb::cuda::LtContext lt(gpu().stream, ws.ptr, tb::cuda::LtContext::kWorkspaceBytes);
    tb::cuda::LtMatmul g;
    g.trans_a = CUBLAS_OP_T;
    g.trans_b = CUBLAS_OP_N;
    g.m = g.n = g.k = n;
    g.a = {a.ptr, in_type, n, 0};
    g.b = {b.ptr, in_type, n, 0};
    g.d = {d.ptr, out_type, n, 0};
    g.compute = compute;
    if (is_fp8(p.forward)) {
      g.a_scale = static_cast<const float*>(scales.ptr);
      g.b_scale = static_cast<const float*>(scales.ptr) + 1;
    }
    time_on_gpu(st, [&] { lt.run(g, "gemm_lt"); });
    const double nn = double(n);
    set_rates(st, 2 * nn * nn * nn, 0);
  });
}

void bm_layernorm(benchmark::State& st, Model m, bool backward) {
  guarded(st, [&] {
    const I64 N = kTokens, C = m.d_model;
    Tensors ts;
    const Tensor x = ts.random(DType::bf16, {N, C}, 1.0f, 1);
    const Tensor w = ts.random(DType::f32, {C}, 0.1f, 2);
    const Tensor b = ts.random(DType::f32, {C}, 0.1f, 3);
    const Tensor y = ts.uninit(DType::bf16, {N, C});
    const Tensor mean = ts.uninit(DType::f32, {N}), rstd = ts.uninit(DType::f32, {N});
    gpu().be->layernorm_forward(y, mean, rstd, x, w, b);
    const double nc = double(N) * double(C);
    if (!backward) {
      time_on_gpu(st, [&] { gpu().be->layernorm_forward(y, mean, rstd, x, w, b); });
      set_rates(st, 0, 2 * nc * 2 + 8.0 * N);  // read x, write y, the row statistics
      return;
    }
    const Tensor dy = ts.random(DType::bf16, {N, C}, 1.0f, 4);
    const Tensor dx = ts.zeros(DType::bf16, {N, C});
    const Tensor dw = ts.zeros(DType::f32, {C}), db = ts.zeros(DType::f32, {C});
    time_on_gpu(st, [&] { gpu().be->layernorm_backward(dx, dw, db, dy, x, w, mean, rstd); });
    set_rates(st, 0, 2 * nc * 4 + 8.0 * N);  // read dy, x, dx; write dx
  });
}

void bm_attention(benchmark::State& st, Model m, bool backward) {
  guarded(st, [&] {
    const I64 B = 4, T = 2048, C = m.d_model, NH = m.n_head, hs = C / NH;
    Tensors ts;
    const Tensor qkv = ts.random(DType::bf16, {B, T, 3 * C}, 1.0f, 1);
    const Tensor probs = ts.uninit(DType::bf16, {B, NH, T, T});
    const Tensor out = ts.uninit(DType::bf16, {B, T, C});
    const int nh = static_cast<int>(NH);
    gpu().be->attention_forward(out, probs, qkv, nh);
    // Unmasked multiply-adds: T(T+1)/2 of the T² entries, hs each, per GEMM.
    const double causal = double(B) * double(NH) * double(T) * double(T + 1) / 2 * double(hs);
    const double probs_bytes = 2.0 * double(B) * NH * T * T;
    if (!backward) {
      time_on_gpu(st, [&] { gpu().be->attention_forward(out, probs, qkv, nh); });
      set_rates(st, 2 * 2 * causal, 2.0 * B * T * 4 * C + probs_bytes);
      return;
    }
    const Tensor dout = ts.random(DType::bf16, {B, T, C}, 1.0f, 2);
    const Tensor dqkv = ts.uninit(DType::bf16, {B, T, 3 * C});
    const Tensor scratch = ts.uninit(DType::bf16, {B, NH, T, T});
    time_on_gpu(st, [&] { gpu().be->attention_backward(dqkv, scratch, dout, qkv, probs, nh); });
    set_rates(st, 4 * 2 * causal, 2.0 * B * T * 7 * C + 3 * probs_bytes);
  });
}

void bm_adamw(benchmark::State& st) {
  guarded(st, [&] {
    const I64 n = I64{1} << 28;
    Tensors ts;
    const Tensor p = ts.random(DType::f32, {n}, 0.02f, 1);
    const Tensor g = ts.random(DType::f32, {n}, 1e-3f, 2);
    const Tensor m = ts.zeros(DType::f32, {n}), v = ts.zeros(DType::f32, {n});
    tb::AdamWParams hp;
    hp.lr = 1e-4;
    hp.weight_decay = 0.1;
    time_on_gpu(st, [&] { gpu().be->adamw_update(p, g, m, v, hp); });
    set_rates(st, 0, 7.0 * 4 * double(n));  // read p, g, m, v; write p, m, v
  });
}

void register_all() {
  const auto reg = [](const std::string& name, auto fn, int iterations) {
    benchmark::RegisterBenchmark(name.c_str(), fn)
        ->UseManualTime()
        ->Iterations(iterations)
        ->Unit(benchmark::kMicrosecond);
  };
  for (const Precision& p : kPrecisions) {
    for (const GemmShape& s : gemm_shapes()) {
      reg(
          std::string("gemm_fwd/") + p.name + "/" + s.name,
          [p, s](benchmark::State& st) { bm_gemm_fwd(st, p, s); }, 20);
    }
    for (const GemmShape& s : gemm_shapes()) {
      if (s.name == "cube8192") continue;
      reg(
          std::string("gemm_bwd/") + p.name + "/" + s.name,
          [p, s](benchmark::State& st) { bm_gemm_bwd(st, p, s); }, 20);
    }
    reg(
        std::string("gemm_lt/") + p.name + "/cube8192",
        [p](benchmark::State& st) { bm_gemm_lt(st, p); }, 50);
  }
  for (const Model& m : kModels) {
    reg(
        std::string("layernorm_fwd/") + m.name,
        [m](benchmark::State& st) { bm_layernorm(st, m, false); }, 200);
    reg(
        std::string("layernorm_bwd/") + m.name,
        [m](benchmark::State& st) { bm_layernorm(st, m, true); }, 200);
    reg(
        std::string("attention_fwd/") + m.name,
        [m](benchmark::State& st) { bm_attention(st, m, false); }, 20);
    reg(
        std::string("attention_bwd/") + m.name,
        [m](benchmark::State& st) { bm_attention(st, m, true); }, 20);
  }
  reg(
      "adamw/n268M", [](benchmark::State& st) { bm_adamw(st); }, 50);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const tb::GpuInventory inv = tb::query_gpus();
  if (inv.devices.empty()) {
    std::printf("bench_gpu_kernels: %s; nothing to run\n",
                inv.note.empty() ? "no CUDA device" : inv.note.c_str());
    return 0;
  }
  Gpu& g = gpu();
  try {
    g.be = tb::make_cuda_backend(0);
    g.stream = static_cast<cudaStream_t>(tb::cuda_stream_of(*g.be));
    g.info = inv.devices.front();
    check(cudaEventCreate(&g.start), "cudaEventCreate");
    check(cudaEventCreate(&g.stop), "cudaEventCreate");
  } catch (const std::exception& e) {
    std::printf("bench_gpu_kernels: %s\n", e.what());
    return 1;
  }
  benchmark::AddCustomContext("gpu", g.be->name());
  benchmark::AddCustomContext("gpu_sms", std::to_string(g.info.sm_count));
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  cudaEventDestroy(g.start);
  cudaEventDestroy(g.stop);
  g.be.reset();
  return 0;
}
