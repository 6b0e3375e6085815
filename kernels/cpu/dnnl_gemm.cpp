#include "dnnl_gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <dnnl.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "tb/number_format.h"

namespace tb::cpu {

namespace {

using dt = dnnl::memory::data_type;

dt dnnl_type(GemmType t) {
  switch (t) {
    case GemmType::f32:
      return dt::f32;
    case GemmType::bf16:
      return dt::bf16;
    case GemmType::f16:
      return dt::f16;
  }
  return dt::undef;
}

void check(const DnnlGemm& g) {
  const auto fail = [](const std::string& what) {
    throw std::invalid_argument("dnnl_gemm: " + what);
  };
  if (g.ab == GemmType::f32) fail("A and B must be bf16 or f16");
  if (g.c != GemmType::f32 && g.c != g.ab) fail("C must be f32 or of A's type");
  if (g.bias && g.alpha != 1.0f) fail("a bias needs alpha = 1 (oneDNN would scale the bias)");
  if (g.M < 0 || g.N < 0 || g.K < 0) fail("negative size");
  const std::int64_t a_cols = g.trans_a ? g.M : g.K, b_cols = g.trans_b ? g.K : g.N;
  if (g.lda < std::max<std::int64_t>(1, a_cols) || g.ldb < std::max<std::int64_t>(1, b_cols) ||
      g.ldc < std::max<std::int64_t>(1, g.N)) {
    fail("a leading dimension is smaller than its row");
  }
}

// The logical rows × cols matrix stored row-major with leading dimension ld — or, transposed,
// stored as its cols × rows transpose: element (r, c) at r·ld + c, or at c·ld + r.
dnnl::memory::desc matrix(std::int64_t rows, std::int64_t cols, std::int64_t ld, bool transposed,
                          GemmType t) {
  const dnnl::memory::dims strides =
      transposed ? dnnl::memory::dims{1, ld} : dnnl::memory::dims{ld, 1};
  return dnnl::memory::desc({rows, cols}, dnnl_type(t), strides);
}

struct Key {
  DnnlGemm g;
  int threads = 0;
  auto operator<=>(const Key&) const = default;
};

struct Entry {
  DnnlImpl impl;
  std::optional<dnnl::matmul::primitive_desc> pd;  // absent: no implementation (or empty)
  std::optional<dnnl::matmul> primitive;           // created at the first execution
};

struct Runtime {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::mutex mutex;
  std::map<Key, Entry> cache;
};

Runtime& runtime() {
  static Runtime r;
  return r;
}

// The cached entry of g at the current OpenMP thread count (rt.mutex held).
Entry& entry(Runtime& rt, const DnnlGemm& g) {
  const Key key{g, omp_get_max_threads()};
  if (auto it = rt.cache.find(key); it != rt.cache.end()) return it->second;
  Entry e;
  if (g.M == 0 || g.N == 0 || g.K == 0) {
    e.impl = {true, "none (an empty product)", 0};
  } else {
    const auto a = matrix(g.M, g.K, g.lda, g.trans_a, g.ab);
    const auto b = matrix(g.K, g.N, g.ldb, g.trans_b, g.ab);
    const auto c = matrix(g.M, g.N, g.ldc, false, g.c);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (g.alpha != 1.0f) attr.set_output_scales(0, {g.alpha});
    if (g.beta != 0.0f) {
      dnnl::post_ops ops;
      ops.append_sum(g.beta);
      attr.set_post_ops(ops);
    }
    const auto desc =
        g.bias ? dnnl::matmul::desc(a, b, dnnl::memory::desc({1, g.N}, dt::f32, {g.N, 1}), c)
               : dnnl::matmul::desc(a, b, c);
    dnnl::matmul::primitive_desc pd(desc, attr, rt.engine, /*allow_empty=*/true);
    if (!pd) {
      e.impl = {false, "unimplemented", 0};
    } else {
      const std::string name = pd.impl_info_str();
      e.impl = {name.rfind("ref", 0) != 0, name, pd.scratchpad_desc().get_size()};
      e.pd = std::move(pd);
    }
  }
  return rt.cache.emplace(key, std::move(e)).first->second;
}

float load(const void* C, std::int64_t i, GemmType t) {
  switch (t) {
    case GemmType::bf16:
      return decode_bf16(static_cast<const std::uint16_t*>(C)[i]);
    case GemmType::f16:
      return decode_fp16(static_cast<const std::uint16_t*>(C)[i]);
    case GemmType::f32:
      break;
  }
  return static_cast<const float*>(C)[i];
}
void store(void* C, std::int64_t i, GemmType t, float v) {
  switch (t) {
    case GemmType::bf16:
      static_cast<std::uint16_t*>(C)[i] = encode_bf16(v);
      return;
    case GemmType::f16:
      static_cast<std::uint16_t*>(C)[i] = encode_fp16(v);
      return;
    case GemmType::f32:
      break;
  }
  static_cast<float*>(C)[i] = v;
}

// K = 0: C = beta·C + bias (one rounding for a 16-bit C); C is not read when beta = 0.
void empty_product(const DnnlGemm& g, const float* bias, void* C) {
  for (std::int64_t i = 0; i < g.M; ++i) {
    for (std::int64_t j = 0; j < g.N; ++j) {
      const std::int64_t ij = i * g.ldc + j;
      const float old = g.beta == 0.0f ? 0.0f : g.beta * load(C, ij, g.c);
      store(C, ij, g.c, g.bias ? old + bias[j] : old);
    }
  }
}

std::string isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::all:
      return "all";
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_mic:
      return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops:
      return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
  }
  char hex[32];
  std::snprintf(hex, sizeof hex, "isa 0x%x", static_cast<unsigned>(isa));
  return hex;
}

}  // namespace

bool dnnl_built() { return true; }

std::string dnnl_version() {
  const dnnl_version_t* v = dnnl::version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

std::string dnnl_isa() { return isa_name(dnnl::get_effective_cpu_isa()); }

DnnlImpl dnnl_gemm_impl(const DnnlGemm& g) {
  check(g);
  Runtime& rt = runtime();
  const std::lock_guard lock(rt.mutex);
  try {
    return entry(rt, g).impl;
  } catch (const dnnl::error& e) {
    throw std::runtime_error(std::string("oneDNN matmul: ") + e.what());
  }
}

void dnnl_gemm(const DnnlGemm& g, const void* A, const void* B, const float* bias, void* C,
               void* scratchpad) {
  check(g);
  if (g.M == 0 || g.N == 0) return;
  if (g.K == 0) {
    empty_product(g, bias, C);
    return;
  }
  Runtime& rt = runtime();
  const std::lock_guard lock(rt.mutex);
  try {
    Entry& e = entry(rt, g);
    if (!e.pd) {
      throw std::runtime_error("oneDNN has no matmul for this GEMM (" + e.impl.impl + ")");
    }
    if (e.impl.scratchpad_bytes > 0 && !scratchpad) {
      throw std::invalid_argument("dnnl_gemm: no scratchpad given (" +
                                  std::to_string(e.impl.scratchpad_bytes) + " bytes needed)");
    }
    if (!e.primitive) e.primitive.emplace(*e.pd);
    const dnnl::matmul::primitive_desc& pd = *e.pd;
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC, dnnl::memory(pd.src_desc(), rt.engine, const_cast<void*>(A))},
        {DNNL_ARG_WEIGHTS, dnnl::memory(pd.weights_desc(), rt.engine, const_cast<void*>(B))},
        {DNNL_ARG_DST, dnnl::memory(pd.dst_desc(), rt.engine, C)}};
    if (g.bias) {
      args.emplace(DNNL_ARG_BIAS,
                   dnnl::memory(pd.bias_desc(), rt.engine, const_cast<float*>(bias)));
    }
    if (e.impl.scratchpad_bytes > 0) {
      args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(pd.scratchpad_desc(), rt.engine, scratchpad));
    }
    e.primitive->execute(rt.stream, args);
    rt.stream.wait();
  } catch (const dnnl::error& e) {
    throw std::runtime_error(std::string("oneDNN matmul: ") + e.what());
  }
}

}  // namespace tb::cpu
