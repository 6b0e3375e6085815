#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <utility>

#include "cpu_kernels.h"
#include "native_matmul.h"
#include "staging.h"
#include "tb/cpu_backend.h"

namespace tb {

namespace {

void expect(bool ok, const char* op, const std::string& what) {
  if (!ok) throw std::invalid_argument(std::string(op) + ": " + what);
}

// After staging, all floating views of a call share a dtype (f32, or f64 for the reference);
// dispatch once on it (p<T> rejects a view of another dtype).
template <class F>
void dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32:
      f(float{});
      return;
    case DType::f64:
      f(double{});
      return;
    default:
      expect(false, op, "expected f32 or f64, got " + std::string(dtype_name(t)));
  }
}

template <class T>
T* p(const Tensor& t) {
  return t.empty() ? nullptr : t.data<T>();
}

int as_int(std::int64_t v) { return static_cast<int>(v); }

// Every entry of an i32 row index in [0, rows) (−1 too when allow_none).
void expect_rows(const char* op, const Tensor& index, std::int64_t rows, bool allow_none = false) {
  expect(index.dtype == DType::i32, op, "index must be i32");
  const std::int32_t* ix = index.data<std::int32_t>();
  for (std::int64_t i = 0; i < index.numel(); ++i) {
    const bool ok = (ix[i] >= 0 && ix[i] < rows) || (allow_none && ix[i] == -1);
    expect(ok, op,
           "index[" + std::to_string(i) + "] = " + std::to_string(ix[i]) + " (expected in [0, " +
               std::to_string(rows) + ")" + (allow_none ? " or -1)" : ")"));
  }
}

class CpuBackend final : public Backend {
 public:
  CpuBackend(int threads, std::size_t limit)
      : tracker_(limit),
        arena_(
            [this](std::size_t bytes) {
              return allocate(bytes, MemoryCategory::emulation, "reduced-precision staging");
            },
            /*alignment=*/64),
        gemm_workspace_(
            [this](std::size_t bytes) {
              return allocate(bytes, MemoryCategory::workspace,
                              "GEMM workspace (oneDNN scratchpad, 16-bit operand copies)");
            },
            cpu::kGemmWorkspaceAlignment) {
    cpu::set_num_threads(threads);
  }

  DeviceKind kind() const override { return DeviceKind::cpu; }
  std::string name() const override { return "cpu"; }
  MemoryTracker& memory() override { return tracker_; }

  Buffer allocate(std::size_t bytes, MemoryCategory c, std::string_view label) override {
    tracker_.on_alloc(c, bytes, label);  // throws OutOfMemory over the limit
    constexpr std::size_t kAlign = 64;
    void* ptr =
        bytes ? std::aligned_alloc(kAlign, (bytes + kAlign - 1) / kAlign * kAlign) : nullptr;
    if (bytes && !ptr) {
      tracker_.on_free(c, bytes);
      throw OutOfMemory(bytes, 0, label);
    }
    return Buffer(ptr, bytes, c, [this](void* q, std::size_t b, MemoryCategory cat) {
      std::free(q);
      tracker_.on_free(cat, b);
    });
  }
  void copy_from_host(const Tensor& dst, const void* src) override {
    std::memcpy(dst.ptr, src, dst.bytes());
  }
  void copy_to_host(void* dst, const Tensor& src) override {
    std::memcpy(dst, src.ptr, src.bytes());
  }
  void fill_zero(const Tensor& t) override { std::memset(t.ptr, 0, t.bytes()); }
  void copy(const Tensor& dst, const Tensor& src) override {
    expect(dst.dtype == src.dtype && dst.numel() == src.numel(), "copy",
           "dst " + shape_string(dst.shape) + " and src " + shape_string(src.shape) + " differ");
    std::memcpy(dst.ptr, src.ptr, src.bytes());
  }
  void convert(const Tensor& dst, const Tensor& src) override { cpu::convert(dst, src); }
  void synchronize() override {}

  void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte,
                         const Tensor& wpe) override {
    const int B = as_int(out.dim(0)), T_ = as_int(out.dim(1)), C = as_int(out.dim(2));
    expect(tokens.dtype == DType::i32, "embedding_forward", "tokens must be i32");
    expect(T_ <= wpe.dim(0), "embedding_forward", "sequence longer than the position table");
    cpu::Staging s(arena_, stats());
    const Tensor o = s.out(out);
    dispatch_float(o.dtype, "embedding_forward", [&](auto z) {
      using T = decltype(z);
      cpu::embedding_forward(p<T>(o), tokens.data<std::int32_t>(), p<T>(wte), p<T>(wpe), B, T_, C);
    });
    s.commit();
  }
  void embedding_backward(const Tensor& dwte, const Tensor& dwpe, const Tensor& dout,
                          const Tensor& tokens) override {
    const int B = as_int(dout.dim(0)), T_ = as_int(dout.dim(1)), C = as_int(dout.dim(2));
    cpu::Staging s(arena_, stats());
    const Tensor d = s.in(dout);
    dispatch_float(d.dtype, "embedding_backward", [&](auto z) {
      using T = decltype(z);
      cpu::embedding_backward(p<T>(dwte), p<T>(dwpe), p<T>(d), tokens.data<std::int32_t>(), B, T_,
                              C);
    });
  }

  void layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd,
                         const Tensor& inp, const Tensor& weight, const Tensor& bias) override {
    const int C = as_int(weight.numel());
    const std::int64_t N = inp.numel() / C;
    cpu::Staging s(arena_, stats());
    const Tensor o = s.out(out), x = s.in(inp);
    dispatch_float(x.dtype, "layernorm_forward", [&](auto z) {
      using T = decltype(z);
      cpu::layernorm_forward(p<T>(o), p<T>(mean), p<T>(rstd), p<T>(x), p<T>(weight), p<T>(bias), N,
                             C);
    });
    s.commit();
  }
  void layernorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias,
                          const Tensor& dout, const Tensor& inp, const Tensor& weight,
                          const Tensor& mean, const Tensor& rstd) override {
    const int C = as_int(weight.numel());
    const std::int64_t N = inp.numel() / C;
    cpu::Staging s(arena_, stats());
    const Tensor dx = s.out(dinp, /*load=*/true), dy = s.in(dout), x = s.in(inp);
    dispatch_float(x.dtype, "layernorm_backward", [&](auto z) {
      using T = decltype(z);
      cpu::layernorm_backward(p<T>(dx), p<T>(dweight), p<T>(dbias), p<T>(dy), p<T>(x), p<T>(weight),
                              p<T>(mean), p<T>(rstd), N, C);
    });
    s.commit();
  }

  void matmul_forward(const Tensor& out, const Tensor& inp, const Tensor& weight,
                      const Tensor& bias, bool accumulate_out, const GemmPrecision& prec) override {
    const int OC = as_int(weight.dim(0)), C = as_int(weight.dim(1));
    expect(inp.numel() % C == 0 && out.numel() / OC == inp.numel() / C, "matmul_forward",
           "shapes " + shape_string(out.shape) + " = " + shape_string(inp.shape) + " · " +
               shape_string(weight.shape) + "ᵀ do not agree");
    // 16-bit operand values: through oneDNN where it runs them natively (native_matmul.h),
    // without fp32 stand-ins; otherwise emulated below.
    if (cpu::native_matmul_forward(out, inp, weight, bias, accumulate_out, prec, native_scratch()))
      return;
    cpu::Staging s(arena_, stats());
    const Tensor o = s.out(out, accumulate_out);
    const Tensor x = s.gemm_operand(s.in(inp), inp, prec.inp);
    const Tensor w = s.gemm_operand(s.in(weight), weight, prec.weight);
    dispatch_float(x.dtype, "matmul_forward", [&](auto z) {
      using T = decltype(z);
      cpu::matmul_forward(p<T>(o), p<T>(x), p<T>(w), p<T>(bias), inp.numel() / C, C, OC,
                          accumulate_out);
    });
    s.commit();
  }
  void matmul_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias,
                       const Tensor& dout, const Tensor& inp, const Tensor& weight,
                       const GemmPrecision& prec) override {
    const int OC = as_int(weight.dim(0)), C = as_int(weight.dim(1));
    if (cpu::native_matmul_backward(dinp, dweight, dbias, dout, inp, weight, prec,
                                    native_scratch()))
      return;
    cpu::Staging s(arena_, stats());
    const Tensor dx = s.out(dinp);
    const Tensor dy_stored = s.in(dout);
    const Tensor dy = s.gemm_operand(dy_stored, dout, prec.dout, /*counted=*/true);
    const Tensor x = s.gemm_operand(s.in(inp), inp, prec.inp);
    const Tensor w = s.gemm_operand(s.in(weight), weight, prec.weight);
    dispatch_float(x.dtype, "matmul_backward", [&](auto z) {
      using T = decltype(z);
      cpu::matmul_backward(p<T>(dx), p<T>(dweight), static_cast<T*>(nullptr), p<T>(dy), p<T>(x),
                           p<T>(w), inp.numel() / C, C, OC);
      // The bias gradient sums dout as stored, not as the GEMM's rounded operand.
      if (!dbias.empty()) cpu::bias_backward(p<T>(dbias), p<T>(dy_stored), inp.numel() / C, OC);
    });
    s.commit();
  }

  void attention_forward(const Tensor& out, const Tensor& probs, const Tensor& qkv,
                         int n_head) override {
    const int B = as_int(out.dim(0)), T_ = as_int(out.dim(1)), C = as_int(out.dim(2));
    expect(C % n_head == 0, "attention_forward", "heads must divide the width");
    cpu::Staging s(arena_, stats());
    const Tensor o = s.out(out), pr = s.out(probs), x = s.in(qkv);
    dispatch_float(x.dtype, "attention_forward", [&](auto z) {
      using T = decltype(z);
      cpu::attention_forward(p<T>(o), p<T>(pr), p<T>(x), B, T_, C, n_head);
    });
    s.commit();
  }
  void attention_backward(const Tensor& dqkv, const Tensor& scratch, const Tensor& dout,
                          const Tensor& qkv, const Tensor& probs, int n_head) override {
    const int B = as_int(dout.dim(0)), T_ = as_int(dout.dim(1)), C = as_int(dout.dim(2));
    expect(scratch.numel() >= std::int64_t{B} * n_head * T_ * T_, "attention_backward",
           "scratch smaller than B·NH·T·T");
    cpu::Staging s(arena_, stats());
    const Tensor dx = s.out(dqkv), dy = s.in(dout), x = s.in(qkv), pr = s.in(probs);
    // The scratch's values are not needed after the call: an fp32 stand-in, not stored back.
    const Tensor sc = s.temp(scratch);
    dispatch_float(x.dtype, "attention_backward", [&](auto z) {
      using T = decltype(z);
      cpu::attention_backward(p<T>(dx), p<T>(sc), p<T>(dy), p<T>(x), p<T>(pr), B, T_, C, n_head);
    });
    s.commit();
  }

  void gelu_forward(const Tensor& out, const Tensor& inp) override {
    cpu::Staging s(arena_, stats());
    const Tensor o = s.out(out), x = s.in(inp);
    dispatch_float(x.dtype, "gelu_forward", [&](auto z) {
      using T = decltype(z);
      cpu::gelu_forward(p<T>(o), p<T>(x), inp.numel());
    });
    s.commit();
  }
  void gelu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout) override {
    cpu::Staging s(arena_, stats());
    const Tensor dy = s.in(dout), x = s.in(inp), dx = s.out(dinp);
    dispatch_float(x.dtype, "gelu_backward", [&](auto z) {
      using T = decltype(z);
      cpu::gelu_backward(p<T>(dx), p<T>(x), p<T>(dy), inp.numel());
    });
    s.commit();
  }
  void add(const Tensor& out, const Tensor& a, const Tensor& b) override {
    cpu::Staging s(arena_, stats());
    const Tensor x = s.in(a), y = s.in(b), o = s.out(out);
    dispatch_float(x.dtype, "add", [&](auto z) {
      using T = decltype(z);
      cpu::add(p<T>(o), p<T>(x), p<T>(y), a.numel());
    });
    s.commit();
  }
  void mul(const Tensor& out, const Tensor& a, const Tensor& b) override {
    expect(a.numel() == out.numel() && b.numel() == out.numel(), "mul",
           "a, b and out must have the same element count");
    cpu::Staging s(arena_, stats());
    const Tensor x = s.in(a), y = s.in(b), o = s.out(out);
    dispatch_float(x.dtype, "mul", [&](auto z) {
      using T = decltype(z);
      cpu::mul(p<T>(o), p<T>(x), p<T>(y), a.numel());
    });
    s.commit();
  }
  void scale(const Tensor& t, double s) override {
    cpu::Staging st(arena_, stats());
    const Tensor x = st.out(t, /*load=*/true);
    dispatch_float(x.dtype, "scale", [&](auto z) {
      using T = decltype(z);
      cpu::scale(p<T>(x), T(s), t.numel());
    });
    st.commit();
  }

  void gather_rows(const Tensor& out, const Tensor& inp, const Tensor& index,
                   const Tensor& weight) override {
    const char* op = "gather_rows";
    const std::int64_t M = index.numel(), C = inp.shape.back(), N = inp.numel() / C;
    expect(out.numel() == M * C && (weight.empty() || weight.numel() == M), op,
           "out " + shape_string(out.shape) + ", weight " + shape_string(weight.shape) +
               " (expected M·C and M elements, M = " + std::to_string(M) + ")");
    expect_rows(op, index, N);
    cpu::Staging s(arena_, stats());
    const Tensor x = s.in(inp), w = s.in(weight), o = s.out(out);
    dispatch_float(x.dtype, op, [&](auto z) {
      using T = decltype(z);
      cpu::gather_rows(p<T>(o), p<T>(x), index.data<std::int32_t>(), p<T>(w), M, C);
    });
    s.commit();
  }
  void combine_rows(const Tensor& out, const Tensor& inp, const Tensor& slots,
                    const Tensor& weight) override {
    const char* op = "combine_rows";
    const std::int64_t C = inp.shape.back(), M = inp.numel() / C, N = out.numel() / C;
    expect(slots.numel() % N == 0 && (weight.empty() || weight.numel() == M), op,
           "slots " + shape_string(slots.shape) + ", weight " + shape_string(weight.shape) +
               " (expected N·K slots and M weights, N = " + std::to_string(N) +
               ", M = " + std::to_string(M) + ")");
    const int K = as_int(slots.numel() / N);
    expect_rows(op, slots, M, /*allow_none=*/true);
    cpu::Staging s(arena_, stats());
    const Tensor x = s.in(inp), w = s.in(weight), o = s.out(out, /*load=*/true);
    dispatch_float(x.dtype, op, [&](auto z) {
      using T = decltype(z);
      cpu::combine_rows(p<T>(o), p<T>(x), slots.data<std::int32_t>(), p<T>(w), N, K, C);
    });
    s.commit();
  }
  void gathered_row_dot(const Tensor& out, const Tensor& a, const Tensor& index,
                        const Tensor& b) override {
    const char* op = "gathered_row_dot";
    const std::int64_t M = index.numel(), C = a.shape.back(), N = a.numel() / C;
    expect(out.numel() == M && b.numel() == M * C, op,
           "out " + shape_string(out.shape) + ", b " + shape_string(b.shape) +
               " (expected M and M·C elements, M = " + std::to_string(M) + ")");
    expect_rows(op, index, N);
    cpu::Staging s(arena_, stats());
    const Tensor x = s.in(a), y = s.in(b), o = s.out(out);
    dispatch_float(x.dtype, op, [&](auto z) {
      using T = decltype(z);
      cpu::gathered_row_dot(p<T>(o), p<T>(x), index.data<std::int32_t>(), p<T>(y), M, C);
    });
    s.commit();
  }

  double softmax_cross_entropy_forward(const Tensor& logits, const Tensor& losses,
                                       const Tensor& targets) override {
    const int V = as_int(logits.shape.back());
    double mean = 0;
    expect(logits.dtype == losses.dtype, "softmax_cross_entropy_forward",
           "logits and losses must be f32 (or f64), got " + std::string(dtype_name(logits.dtype)));
    dispatch_float(logits.dtype, "softmax_cross_entropy_forward", [&](auto z) {
      using T = decltype(z);
      mean = cpu::softmax_cross_entropy_forward(
          p<T>(logits), p<T>(losses), targets.data<std::int32_t>(), logits.numel() / V, V);
    });
    return mean;
  }
  void softmax_cross_entropy_backward(const Tensor& probs, const Tensor& targets,
                                      double dloss_scale) override {
    const int V = as_int(probs.shape.back());
    dispatch_float(probs.dtype, "softmax_cross_entropy_backward", [&](auto z) {
      using T = decltype(z);
      cpu::softmax_cross_entropy_backward(p<T>(probs), targets.data<std::int32_t>(),
                                          probs.numel() / V, V, T(dloss_scale));
    });
  }

  double sum_squares(const Tensor& x) override {
    double s = 0;
    cpu::Staging st(arena_, stats());
    const Tensor v = st.in(x);
    dispatch_float(v.dtype, "sum_squares", [&](auto z) {
      using T = decltype(z);
      s = cpu::sum_squares(p<T>(v), x.numel());
    });
    return s;
  }
  void adamw_update(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v,
                    const AdamWParams& hp) override {
    dispatch_float(params.dtype, "adamw_update", [&](auto z) {
      using T = decltype(z);
      cpu::adamw_update(p<T>(params), p<T>(grads), p<T>(m), p<T>(v), params.numel(), hp);
    });
  }
  void sgd_update(const Tensor& params, const Tensor& grads, const Tensor& momentum_buf,
                  const SgdParams& hp) override {
    expect(grads.numel() == params.numel(), "sgd_update", "grads and params differ in size");
    expect(momentum_buf.empty() ? hp.momentum == 0 : momentum_buf.numel() == params.numel(),
           "sgd_update", "the momentum buffer must be like params (empty only when momentum = 0)");
    dispatch_float(params.dtype, "sgd_update", [&](auto z) {
      using T = decltype(z);
      cpu::sgd_update(p<T>(params), p<T>(grads), p<T>(momentum_buf), params.numel(), hp);
    });
  }
  LambNorms lamb_direction(const Tensor& update, const Tensor& params, const Tensor& grads,
                           const Tensor& m, const Tensor& v, const LambParams& hp) override {
    const std::int64_t n = params.numel();
    expect(update.numel() == n && grads.numel() == n && m.numel() == n && v.numel() == n,
           "lamb_direction", "update, grads, m and v must be like params");
    LambNorms out;
    dispatch_float(params.dtype, "lamb_direction", [&](auto z) {
      using T = decltype(z);
      out = cpu::lamb_direction(p<T>(update), p<T>(params), p<T>(grads), p<T>(m), p<T>(v), n, hp);
    });
    return out;
  }
  void axpy(const Tensor& y, double alpha, const Tensor& x) override {
    expect(y.dtype == x.dtype && y.numel() == x.numel(), "axpy", "y and x differ");
    dispatch_float(y.dtype, "axpy", [&](auto z) {
      using T = decltype(z);
      cpu::axpy(p<T>(y), T(alpha), p<T>(x), y.numel());
    });
  }

  bool count_rounding(bool on) override {
    counting_ = on;
    return true;
  }
  RoundingStats take_rounding_stats() override { return std::exchange(rounding_, {}); }

 private:
  RoundingStats* stats() { return counting_ ? &rounding_ : nullptr; }
  cpu::NativeScratch native_scratch() { return {gemm_workspace_, arena_, stats()}; }
  MemoryTracker tracker_;
  ScratchArena arena_;           // emulation: fp32 stand-ins (staging.h)
  ScratchArena gemm_workspace_;  // workspace: oneDNN's scratchpad, 16-bit operand copies
  bool counting_ = false;
  RoundingStats rounding_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads, std::size_t memory_limit_bytes) {
  return std::make_unique<CpuBackend>(threads, memory_limit_bytes);
}

}  // namespace tb

namespace tb {
int cpu_thread_count() { return cpu::num_threads(); }
}  // namespace tb
