// Is a CPU sparse GEMM worth having for pruned weights? docs/sparse.md builds one "only if it
// beats dense here". This measures, at MLP and attention shapes of two proxies, the forward
// product out(N, OC) = inp(N, C) · Wᵀ with W 50% zeros:
//   dense/…          the harness's dense kernel (cpu::matmul_forward: OpenBLAS SGEMM), which
//                    is what a pruned model runs (zeros multiplied like any weight);
//   csr/…            W in compressed sparse rows (unstructured 50%: each output's kept
//                    columns and values), a row-parallel OpenMP loop over the tokens;
//   nm24/…           W in 2:4 form (per group of 4 inputs, 2 values and their 2 positions),
//                    the same loop with a fixed 2-of-4 gather.
// Rates: items/s = the DENSE product's FLOPs (2·N·C·OC) per second, so the three compare as
// time for the same result (the sparse ones do half the multiply-adds). Wall-clock time
// (OpenMP-threaded). Results are checked against the dense product once at setup.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <vector>

#include "cpu_kernels.h"

namespace {

using I64 = std::int64_t;

struct Shape {
  const char* name;
  I64 N, C, OC;
};
constexpr Shape kShapes[] = {
    {"fc_d256_N2048", 2048, 256, 1024},
    {"proj_d256_N2048", 2048, 1024, 256},
    {"fc_d768_N2048", 2048, 768, 3072},
};

std::vector<float> random_vec(I64 n, std::uint64_t seed) {
  std::vector<float> v(static_cast<std::size_t>(n));
  std::uint64_t s = seed;
  for (auto& x : v) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    x = float(double(s >> 11) / double(1ULL << 53) - 0.5);
  }
  return v;
}

// W with the 2 smallest |w| of every group of 4 set to zero: both a 2:4 and a 50% tensor.
std::vector<float> pruned_24(I64 OC, I64 C, std::uint64_t seed) {
  std::vector<float> w = random_vec(OC * C, seed);
  for (I64 g = 0; g < OC * C; g += 4) {
    float* p = &w[static_cast<std::size_t>(g)];
    for (int drop = 0; drop < 2; ++drop) {
      int k = -1;
      for (int i = 0; i < 4; ++i)
        if (p[i] != 0 && (k < 0 || std::fabs(p[i]) < std::fabs(p[k]))) k = i;
      p[k] = 0;
    }
  }
  return w;
}

struct Csr {
  std::vector<I64> row_begin;
  std::vector<std::int32_t> col;
  std::vector<float> val;
};

Csr to_csr(const std::vector<float>& w, I64 OC, I64 C) {
  Csr m;
  m.row_begin.push_back(0);
  for (I64 o = 0; o < OC; ++o) {
    for (I64 c = 0; c < C; ++c) {
      const float x = w[static_cast<std::size_t>(o * C + c)];
      if (x != 0) {
        m.col.push_back(static_cast<std::int32_t>(c));
        m.val.push_back(x);
      }
    }
    m.row_begin.push_back(static_cast<I64>(m.val.size()));
  }
  return m;
}

void csr_forward(float* out, const float* inp, const Csr& w, I64 N, I64 C, I64 OC) {
#pragma omp parallel for schedule(static)
  for (I64 n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    for (I64 o = 0; o < OC; ++o) {
      float acc = 0;
      for (I64 k = w.row_begin[static_cast<std::size_t>(o)];
           k < w.row_begin[static_cast<std::size_t>(o) + 1]; ++k) {
        acc += w.val[static_cast<std::size_t>(k)] * x[w.col[static_cast<std::size_t>(k)]];
      }
      out[n * OC + o] = acc;
    }
  }
}

// 2:4: for output o and group g, values v[o][2g], v[o][2g+1] at inputs 4g + pos[…].
struct Nm24 {
  std::vector<float> val;
  std::vector<std::uint8_t> pos;
};

Nm24 to_24(const std::vector<float>& w, I64 OC, I64 C) {
  Nm24 m;
  for (I64 o = 0; o < OC; ++o) {
    for (I64 g = 0; g < C; g += 4) {
      int kept = 0;
      for (int i = 0; i < 4; ++i) {
        const float x = w[static_cast<std::size_t>(o * C + g + i)];
        if (x != 0 && kept < 2) {
          m.val.push_back(x);
          m.pos.push_back(static_cast<std::uint8_t>(i));
          ++kept;
        }
      }
      for (; kept < 2; ++kept) {  // a group with fewer nonzeros: explicit zeros
        m.val.push_back(0);
        m.pos.push_back(0);
      }
    }
  }
  return m;
}

void nm24_forward(float* out, const float* inp, const Nm24& w, I64 N, I64 C, I64 OC) {
  const I64 per_row = C / 2;
#pragma omp parallel for schedule(static)
  for (I64 n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    for (I64 o = 0; o < OC; ++o) {
      const float* v = &w.val[static_cast<std::size_t>(o * per_row)];
      const std::uint8_t* p = &w.pos[static_cast<std::size_t>(o * per_row)];
      float acc = 0;
      for (I64 j = 0, g = 0; j < per_row; j += 2, g += 4) {
        acc += v[j] * x[g + p[j]] + v[j + 1] * x[g + p[j + 1]];
      }
      out[n * OC + o] = acc;
    }
  }
}

void check_close(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  double d = 0, s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, double(std::fabs(a[i] - b[i])));
    s = std::max(s, double(std::fabs(b[i])));
  }
  if (d > 1e-4 * s) throw std::runtime_error(std::string(what) + " differs from dense");
}

enum class Kind { dense, csr, nm24 };

void run(benchmark::State& state, const Shape& sh, Kind kind) {
  const std::vector<float> inp = random_vec(sh.N * sh.C, 1);
  const std::vector<float> w = pruned_24(sh.OC, sh.C, 2);
  std::vector<float> out(static_cast<std::size_t>(sh.N * sh.OC)), ref(out.size());
  tb::cpu::matmul_forward(ref.data(), inp.data(), w.data(), static_cast<const float*>(nullptr),
                          sh.N, static_cast<int>(sh.C), static_cast<int>(sh.OC), false);
  const Csr csr = to_csr(w, sh.OC, sh.C);
  const Nm24 nm = to_24(w, sh.OC, sh.C);
  auto once = [&] {
    switch (kind) {
      case Kind::dense:
        tb::cpu::matmul_forward(out.data(), inp.data(), w.data(),
                                static_cast<const float*>(nullptr), sh.N, static_cast<int>(sh.C),
                                static_cast<int>(sh.OC), false);
        break;
      case Kind::csr:
        csr_forward(out.data(), inp.data(), csr, sh.N, sh.C, sh.OC);
        break;
      case Kind::nm24:
        nm24_forward(out.data(), inp.data(), nm, sh.N, sh.C, sh.OC);
        break;
    }
  };
  once();
  check_close(out, ref, kind == Kind::csr ? "csr" : kind == Kind::nm24 ? "nm24" : "dense");
  for (auto _ : state) {
    once();
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * 2 * sh.N * sh.C * sh.OC);
}

const int kRegistered = [] {
  for (const Shape& sh : kShapes) {
    for (auto [name, kind] : {std::pair{"dense", Kind::dense}, std::pair{"csr", Kind::csr},
                              std::pair{"nm24", Kind::nm24}}) {
      benchmark::RegisterBenchmark((std::string(name) + "/" + sh.name).c_str(),
                                   [sh, kind](benchmark::State& s) { run(s, sh, kind); })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  return 0;
}();

}  // namespace
