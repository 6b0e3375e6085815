// Google Benchmark: GEMM throughput on the CPU in fp32 (OpenBLAS cblas_sgemm) against bf16
// (oneDNN's matmul: bf16 operands, fp32 accumulation and output; kernels/cpu/dnnl_gemm.h), at
// the forward shapes of one transformer block's linear layers — out(N, OC) = inp(N, C)·Wᵀ —
// of four configurations:
//   default_d256_N1024    scenarios/default.json's proxy: d 256, context 128, micro-batch 8
//   peers_d256_N2048      bench/peers' first config: d 256, context 256, micro-batch 8
//   peers_d768_N2048      bench/peers' second config: d 768, context 512, micro-batch 4
//   gpt3-1.3b_d2048_N2048 GPT-3 1.3B's block (d 2048) at one 2048-token sequence
// Each reports FLOP/s over wall-clock time (2·N·C·OC per call) and names what ran: the bf16
// entries carry oneDNN's implementation (e.g. "brg:avx512_core_amx") as their label, and are
// skipped with the reason where this build has no oneDNN or oneDNN has only its reference
// code for the shape. bf16/fp32 at a shape is the ratio of the two entries' FLOP/s; run
// them side by side (one invocation) so the machine's drift hits both alike:
//   OMP_NUM_THREADS=2 build/bin/bench_gemm_precision --benchmark_repetitions=3
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cpu_kernels.h"
#include "dnnl_gemm.h"
#include "tb/number_format.h"

namespace {

namespace cpu = tb::cpu;

struct Config {
  const char* name;
  int d;       // d_model
  int tokens;  // N = micro-batch · context
};

constexpr Config kConfigs[] = {
    {"default_d256_N1024", 256, 1024},
    {"peers_d256_N2048", 256, 2048},
    {"peers_d768_N2048", 768, 2048},
    {"gpt3-1.3b_d2048_N2048", 2048, 2048},
};

struct Linear {
  const char* name;
  int in_mult, out_mult;  // C = in_mult·d, OC = out_mult·d
};

constexpr Linear kLinears[] = {{"qkv", 1, 3}, {"attn_proj", 1, 1}, {"fc", 1, 4}, {"fc2", 4, 1}};

std::vector<float> randn(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

std::vector<std::uint16_t> to_bf16(const std::vector<float>& f) {
  std::vector<std::uint16_t> b(f.size());
  for (std::size_t i = 0; i < f.size(); ++i) b[i] = tb::encode_bf16(f[i]);
  return b;
}

void set_flops(benchmark::State& state, double flops_per_call) {
  state.counters["FLOP/s"] = benchmark::Counter(
      flops_per_call * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_gemm_fp32(benchmark::State& state, Config c, Linear l) {
  const int N = c.tokens, C = l.in_mult * c.d, OC = l.out_mult * c.d;
  const std::vector<float> x = randn(std::size_t(N) * C, 1), w = randn(std::size_t(OC) * C, 2);
  std::vector<float> y(std::size_t(N) * OC);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, x.data(), C, w.data(), C,
                0.0f, y.data(), OC);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel("OpenBLAS cblas_sgemm");
  set_flops(state, 2.0 * N * C * OC);
}

void BM_gemm_bf16(benchmark::State& state, Config c, Linear l) {
  const int N = c.tokens, C = l.in_mult * c.d, OC = l.out_mult * c.d;
  if (!cpu::dnnl_built()) {
    state.SkipWithError("this build has no oneDNN (TB_ONEDNN): bf16 GEMMs are emulated");
    return;
  }
  cpu::DnnlGemm g;
  g.trans_b = true;
  g.M = N;
  g.N = OC;
  g.K = C;
  g.lda = C;
  g.ldb = C;
  g.ldc = OC;
  const cpu::DnnlImpl impl = cpu::dnnl_gemm_impl(g);
  if (!impl.native) {
    state.SkipWithError(("oneDNN has only " + impl.impl + " for this shape here").c_str());
    return;
  }
  const std::vector<std::uint16_t> x = to_bf16(randn(std::size_t(N) * C, 1));
  const std::vector<std::uint16_t> w = to_bf16(randn(std::size_t(OC) * C, 2));
  std::vector<float> y(std::size_t(N) * OC);
  const std::size_t pad = (impl.scratchpad_bytes + 63) / 64 * 64;
  std::unique_ptr<void, decltype(&std::free)> scratch(pad ? std::aligned_alloc(64, pad) : nullptr,
                                                      &std::free);
  for (auto _ : state) {
    cpu::dnnl_gemm(g, x.data(), w.data(), nullptr, y.data(), scratch.get());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel("oneDNN " + impl.impl);
  set_flops(state, 2.0 * N * C * OC);
}

bool register_all() {
  benchmark::AddCustomContext("omp_threads", std::to_string(cpu::num_threads()));
  benchmark::AddCustomContext("onednn_isa",
                              cpu::dnnl_built() ? cpu::dnnl_isa() : std::string("none"));
  for (const Config& c : kConfigs) {
    for (const Linear& l : kLinears) {
      const std::string tag = std::string("/") + l.name + "/" + c.name;
      for (const auto& [precision, fn] :
           {std::pair{"fp32", &BM_gemm_fp32}, std::pair{"bf16", &BM_gemm_bf16}}) {
        benchmark::RegisterBenchmark((std::string("gemm/") + precision + tag).c_str(), fn, c, l)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  return true;
}

[[maybe_unused]] const bool kRegistered = register_all();

}  // namespace
