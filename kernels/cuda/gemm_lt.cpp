#include "gemm_lt.h"

#include <stdexcept>

namespace tb::cuda {

namespace {

std::string status_text(cublasStatus_t s) {
  return std::string(cublasLtGetStatusName(s)) + " (" + cublasLtGetStatusString(s) + ")";
}

// The largest power of two dividing the address, capped at 256 (cuBLASLt's default assumption).
std::int64_t alignment(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  std::int64_t al = 256;
  while (al > 1 && a % static_cast<std::uintptr_t>(al) != 0) al /= 2;
  return al;
}

std::string describe(const LtMatmul& g) {
  return "m=" + std::to_string(g.m) + " n=" + std::to_string(g.n) + " k=" + std::to_string(g.k) +
         (g.batch > 1 ? " batch=" + std::to_string(g.batch) : std::string()) + " op " +
         (g.trans_a == CUBLAS_OP_T ? "T" : "N") + (g.trans_b == CUBLAS_OP_T ? "T" : "N") + ", A " +
         lt_type_name(g.a.type) + " B " + lt_type_name(g.b.type) + " D " + lt_type_name(g.d.type);
}

}  // namespace

void throw_cublas_error(cublasStatus_t status, const std::string& call) {
  throw std::runtime_error(call + " failed: " + status_text(status));
}

const char* lt_type_name(cudaDataType_t t) {
  switch (t) {
    case CUDA_R_32F:
      return "f32";
    case CUDA_R_16BF:
      return "bf16";
    case CUDA_R_16F:
      return "f16";
    case CUDA_R_8F_E4M3:
      return "e4m3";
    case CUDA_R_8F_E5M2:
      return "e5m2";
    default:
      return "?";
  }
}

struct LtContext::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool supported = false;
  std::string why_not;  // when not supported: the heuristic's answer

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

LtContext::LtContext(cudaStream_t stream, void* workspace, std::size_t workspace_bytes)
    : stream_(stream), workspace_(workspace), workspace_bytes_(workspace_bytes) {
  check(cublasLtCreate(&handle_), "cublasLtCreate(&handle)");
}

LtContext::~LtContext() {
  plans_.clear();
  if (handle_) cublasLtDestroy(handle_);
}

namespace {

template <class T>
void set_desc(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const T& value,
              const char* what) {
  check(cublasLtMatmulDescSetAttribute(desc, attr, &value, sizeof(value)), what);
}

// A column-major rows × cols matrix (per batch entry).
cublasLtMatrixLayout_t make_layout(const LtMatrix& m, std::int64_t rows, std::int64_t cols,
                                   int batch) {
  cublasLtMatrixLayout_t l = nullptr;
  check(cublasLtMatrixLayoutCreate(&l, m.type, static_cast<std::uint64_t>(rows),
                                   static_cast<std::uint64_t>(cols), m.ld),
        "cublasLtMatrixLayoutCreate");
  if (batch > 1) {
    const std::int32_t count = batch;
    const std::int64_t stride = m.batch_stride;
    const cublasStatus_t s1 = cublasLtMatrixLayoutSetAttribute(
        l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count));
    const cublasStatus_t s2 = cublasLtMatrixLayoutSetAttribute(
        l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride));
    if (s1 != CUBLAS_STATUS_SUCCESS || s2 != CUBLAS_STATUS_SUCCESS) {
      cublasLtMatrixLayoutDestroy(l);
      throw_cublas_error(s1 != CUBLAS_STATUS_SUCCESS ? s1 : s2,
                         "cublasLtMatrixLayoutSetAttribute(batch)");
    }
  }
  return l;
}

}  // namespace

LtContext::Plan& LtContext::plan_for(const LtMatmul& g, const Key& key) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;
  auto plan = std::make_unique<Plan>();
  check(cublasLtMatmulDescCreate(&plan->desc, g.compute, CUDA_R_32F), "cublasLtMatmulDescCreate");
  const std::int32_t ta = g.trans_a, tb = g.trans_b;
  set_desc(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, ta, "cublasLtMatmulDescSetAttribute(TRANSA)");
  set_desc(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, tb, "cublasLtMatmulDescSetAttribute(TRANSB)");
  if (g.bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    set_desc(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue,
             "cublasLtMatmulDescSetAttribute(EPILOGUE)");
    // The heuristic reads the bias address for its alignment.
    set_desc(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, g.bias,
             "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
  }
  if (g.a_scale) {
    set_desc(plan->desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, g.a_scale,
             "cublasLtMatmulDescSetAttribute(A_SCALE_POINTER)");
  }
  if (g.b_scale) {
    set_desc(plan->desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, g.b_scale,
             "cublasLtMatmulDescSetAttribute(B_SCALE_POINTER)");
  }
  const bool na = g.trans_a == CUBLAS_OP_N, nb = g.trans_b == CUBLAS_OP_N;
  plan->a = make_layout(g.a, na ? g.m : g.k, na ? g.k : g.m, g.batch);
  plan->b = make_layout(g.b, nb ? g.k : g.n, nb ? g.n : g.k, g.batch);
  plan->d = make_layout(g.d, g.m, g.n, g.batch);

  cublasLtMatmulPreference_t pref = nullptr;
  check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  const std::uint64_t ws = workspace_bytes_;
  const std::uint32_t al_a = static_cast<std::uint32_t>(alignment(g.a.ptr)),
                      al_b = static_cast<std::uint32_t>(alignment(g.b.ptr)),
                      al_d = static_cast<std::uint32_t>(alignment(g.d.ptr));
  cublasStatus_t s = cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  if (s == CUBLAS_STATUS_SUCCESS) {
    s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                             &al_a, sizeof(al_a));
  }
  if (s == CUBLAS_STATUS_SUCCESS) {
    s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                             &al_b, sizeof(al_b));
  }
  if (s == CUBLAS_STATUS_SUCCESS) {
    s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                             &al_d, sizeof(al_d));
  }
  if (s == CUBLAS_STATUS_SUCCESS) {
    s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                             &al_d, sizeof(al_d));
  }
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  if (s == CUBLAS_STATUS_SUCCESS) {
    s = cublasLtMatmulAlgoGetHeuristic(handle_, plan->desc, plan->a, plan->b, plan->d, plan->d,
                                       pref, 1, &result, &returned);
  }
  cublasLtMatmulPreferenceDestroy(pref);
  if (s == CUBLAS_STATUS_SUCCESS && returned > 0 && result.state == CUBLAS_STATUS_SUCCESS) {
    plan->algo = result.algo;
    plan->supported = true;
  } else if (s == CUBLAS_STATUS_SUCCESS || s == CUBLAS_STATUS_NOT_SUPPORTED ||
             s == CUBLAS_STATUS_INVALID_VALUE) {
    // No algorithm, or a type/layout combination cuBLASLt rejects (it answers either way):
    // the caller may fall back to another formulation.
    plan->why_not = s == CUBLAS_STATUS_SUCCESS ? "no algorithm returned" : status_text(s);
  } else {
    throw_cublas_error(s, "cublasLtMatmulAlgoGetHeuristic(" + describe(g) + ")");
  }
  return *plans_.emplace(key, std::move(plan)).first->second;
}

bool LtContext::try_run(const LtMatmul& g) {
  if (g.m <= 0 || g.n <= 0) return true;  // nothing to write
  if (g.batch < 1) throw std::logic_error("LtMatmul: batch < 1");
  const Key key = {g.trans_a,
                   g.trans_b,
                   g.m,
                   g.n,
                   g.k,
                   g.batch,
                   g.a.ld,
                   g.b.ld,
                   g.d.ld,
                   g.a.batch_stride,
                   g.b.batch_stride,
                   g.d.batch_stride,
                   g.a.type,
                   g.b.type,
                   g.d.type,
                   g.compute,
                   g.bias != nullptr,
                   g.a_scale != nullptr,
                   g.b_scale != nullptr,
                   alignment(g.a.ptr),
                   alignment(g.b.ptr),
                   alignment(g.d.ptr),
                   g.bias ? alignment(g.bias) : 0};
  Plan& plan = plan_for(g, key);
  if (!plan.supported) {
    last_failure_ = plan.why_not;
    return false;
  }
  if (g.bias) {
    set_desc(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, g.bias,
             "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
  }
  if (g.a_scale) {
    set_desc(plan.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, g.a_scale,
             "cublasLtMatmulDescSetAttribute(A_SCALE_POINTER)");
  }
  if (g.b_scale) {
    set_desc(plan.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, g.b_scale,
             "cublasLtMatmulDescSetAttribute(B_SCALE_POINTER)");
  }
  const cublasStatus_t s = cublasLtMatmul(
      handle_, plan.desc, &g.alpha, g.a.ptr, plan.a, g.b.ptr, plan.b, &g.beta, g.d.ptr, plan.d,
      const_cast<void*>(g.d.ptr), plan.d, &plan.algo, workspace_, workspace_bytes_, stream_);
  if (s == CUBLAS_STATUS_NOT_SUPPORTED) {
    plan.supported = false;
    plan.why_not = "cublasLtMatmul: " + status_text(s);
    last_failure_ = plan.why_not;
    return false;
  }
  if (s != CUBLAS_STATUS_SUCCESS) throw_cublas_error(s, "cublasLtMatmul(" + describe(g) + ")");
  return true;
}

void LtContext::run(const LtMatmul& g, const char* what) {
  if (!try_run(g)) {
    throw std::runtime_error(std::string(what) + ": cuBLASLt has no algorithm for " + describe(g) +
                             " (" + last_failure_ + ")");
  }
}

}  // namespace tb::cuda
