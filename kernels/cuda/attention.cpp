// Causal attention, llm.c's unfused form: per sequence b and group of heads, strided-batched
// GEMMs (batch = heads, stride d_head along qkv's row) for the scores and the weighted values,
// and a softmax kernel between them that writes the probabilities with zeros above the
// diagonal (the full T × T product is computed; the masked half is discarded).
//
// Head h of sequence b reads q, k, v = qkv[b, :, h·hs … (h+1)·hs] + {0, C, 2C} (row length 3C).
// Row-major products in column-major form (see gemm_lt.h):
//   S  = q·kᵀ/√hs   Sᵀ (T × T)  = op_T(k) · qᵀ          A = k  (T), B = q  (N)
//   O  = P·v        Oᵀ (hs × T) = vᵀ · Pᵀ                A = v  (N), B = P  (N)
//   dP = dO·vᵀ      dPᵀ (T × T) = op_T(v) · dOᵀ          A = v  (T), B = dO (N)
//   dq = dS·k       dqᵀ         = kᵀ · dSᵀ               A = k  (N), B = dS (N)
//   dk = dSᵀ·q      dkᵀ         = qᵀ · op_T(dSᵀ)         A = q  (N), B = dS (T)
//   dv = Pᵀ·dO      dvᵀ         = dOᵀ · op_T(Pᵀ)         A = dO (N), B = P  (T)
// and dS = P ⊙ (dP − rowsum(P ⊙ dP))/√hs.
//
// Precision: the GEMMs read and write the tensors' own type (X = f32, bf16 or f16) and
// accumulate in fp32. The scores and dP go to fp32 (the probabilities' caller-visible buffer in
// f32 mode; else an fp32 scratch for a group of heads, at most kScoreBudgetBytes), so the
// softmax never sees a rounded score. A call whose tensors do not share one type is staged:
// its tensors are converted to fp32 copies, the fp32 path runs, and the outputs are converted
// back (exact on the way in, one rounding on the way out).
#include "attention.h"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "kernels.h"
#include "views.h"

namespace tb::cuda {

namespace {

constexpr std::size_t kScoreBudgetBytes = std::size_t{256} << 20;

struct Dims {
  I64 B, T, C, NH, hs;
};

// Heads per group when the scores need an fp32 scratch: as many as fit the budget, at least one.
I64 heads_per_group(const Dims& d, bool scores_in_place) {
  if (scores_in_place) return d.NH;
  const I64 per_head = d.T * d.T * static_cast<I64>(sizeof(float));
  return std::max<I64>(1, std::min<I64>(d.NH, static_cast<I64>(kScoreBudgetBytes) / per_head));
}

// Converts the tensors of a mixed-type call to fp32 copies in scratch and back.
class Fp32Staging {
 public:
  Fp32Staging(AttentionEnv& env, const char* op) : env_(env), op_(op) {}
  Tensor in(const Tensor& t) {
    if (t.dtype == DType::f32) return t;
    Tensor f = scratch_like(t);
    convert(Out{f.ptr, Elem::f32}, cuda::in(t, op_, "tensor"), t.numel(), env_.stream);
    return f;
  }
  Tensor out(const Tensor& t) {
    if (t.dtype == DType::f32) return t;
    Tensor f = scratch_like(t);
    outputs_.emplace_back(t, f);
    return f;
  }
  Tensor temp(const Tensor& t) { return t.dtype == DType::f32 ? t : scratch_like(t); }
  void commit() {
    for (const auto& [t, f] : outputs_) {
      convert(cuda::out(t, op_, "tensor"), In{f.ptr, Elem::f32}, t.numel(), env_.stream);
    }
  }

 private:
  Tensor scratch_like(const Tensor& t) {
    return Tensor(env_.scratch.take_n<float>(static_cast<std::size_t>(t.numel())), DType::f32,
                  t.shape);
  }
  AttentionEnv& env_;
  const char* op_;
  std::vector<std::pair<Tensor, Tensor>> outputs_;
};

Dims dims_of(const Tensor& y, int n_head, const char* op) {
  expect(y.shape.size() == 3, op, "(B, T, C) tensor " + shape_string(y.shape) + " is not 3-D");
  Dims d{y.dim(0), y.dim(1), y.dim(2), n_head, 0};
  expect(n_head > 0 && d.C % n_head == 0, op,
         "heads " + std::to_string(n_head) + " must divide the width " + std::to_string(d.C));
  d.hs = d.C / n_head;
  return d;
}

// A strided-batched GEMM over `heads` heads; pointers are byte addresses of head 0.
LtMatmul batched(cublasOperation_t ta, cublasOperation_t tb, I64 m, I64 n, I64 k, I64 heads,
                 LtMatrix a, LtMatrix b, LtMatrix d, float alpha) {
  LtMatmul g;
  g.trans_a = ta;
  g.trans_b = tb;
  g.m = m;
  g.n = n;
  g.k = k;
  g.batch = static_cast<int>(heads);
  g.a = a;
  g.b = b;
  g.d = d;
  g.alpha = alpha;
  g.beta = 0;
  g.compute = CUBLAS_COMPUTE_32F;
  return g;
}

void forward_uniform(AttentionEnv& env, const Tensor& out, const Tensor& probs, const Tensor& qkv,
                     const Dims& d) {
  const char* op = "attention_forward";
  const Elem x = elem_of(qkv, op, "qkv");
  const cudaDataType_t xt = lt_type(x);
  const bool in_place = x == Elem::f32;
  const I64 group = heads_per_group(d, in_place);
  float* chunk =
      in_place ? nullptr : env.scratch.take_n<float>(static_cast<std::size_t>(group * d.T * d.T));
  const float alpha = 1.0f / std::sqrt(static_cast<float>(d.hs));
  const I64 TT = d.T * d.T;
  for (I64 b = 0; b < d.B; ++b) {
    for (I64 h0 = 0; h0 < d.NH; h0 += group) {
      const I64 heads = std::min(group, d.NH - h0);
      const I64 q_off = b * d.T * 3 * d.C + h0 * d.hs;
      const void* q = offset(qkv, q_off);
      const void* k = offset(qkv, q_off + d.C);
      const void* v = offset(qkv, q_off + 2 * d.C);
      void* p = offset(probs, (b * d.NH + h0) * TT);
      float* s = in_place ? static_cast<float*>(p) : chunk;
      env.lt.run(batched(CUBLAS_OP_T, CUBLAS_OP_N, d.T, d.T, d.hs, heads, {k, xt, 3 * d.C, d.hs},
                         {q, xt, 3 * d.C, d.hs}, {s, CUDA_R_32F, d.T, TT}, alpha),
                 "attention_forward (scores)");
      causal_softmax_forward(Out{p, x}, s, heads * d.T, d.T, env.stream);
      env.lt.run(
          batched(CUBLAS_OP_N, CUBLAS_OP_N, d.hs, d.T, d.T, heads, {v, xt, 3 * d.C, d.hs},
                  {p, xt, d.T, TT}, {offset(out, b * d.T * d.C + h0 * d.hs), xt, d.C, d.hs}, 1.0f),
          "attention_forward (P·v)");
    }
  }
}

void backward_uniform(AttentionEnv& env, const Tensor& dqkv, const Tensor& scratch,
                      const Tensor& dout, const Tensor& qkv, const Tensor& probs, const Dims& d) {
  const char* op = "attention_backward";
  const Elem x = elem_of(qkv, op, "qkv");
  const cudaDataType_t xt = lt_type(x);
  const bool in_place = x == Elem::f32;
  const I64 group = heads_per_group(d, in_place);
  float* chunk =
      in_place ? nullptr : env.scratch.take_n<float>(static_cast<std::size_t>(group * d.T * d.T));
  const float scale = 1.0f / std::sqrt(static_cast<float>(d.hs));
  const I64 TT = d.T * d.T, ld = 3 * d.C;
  for (I64 b = 0; b < d.B; ++b) {
    for (I64 h0 = 0; h0 < d.NH; h0 += group) {
      const I64 heads = std::min(group, d.NH - h0);
      const I64 q_off = b * d.T * ld + h0 * d.hs;
      const void* q = offset(qkv, q_off);
      const void* k = offset(qkv, q_off + d.C);
      const void* v = offset(qkv, q_off + 2 * d.C);
      void* dq = offset(dqkv, q_off);
      void* dk = offset(dqkv, q_off + d.C);
      void* dv = offset(dqkv, q_off + 2 * d.C);
      const void* dO = offset(dout, b * d.T * d.C + h0 * d.hs);
      const void* p = offset(probs, (b * d.NH + h0) * TT);
      void* ds = offset(scratch, (b * d.NH + h0) * TT);
      float* dp = in_place ? static_cast<float*>(ds) : chunk;
      env.lt.run(batched(CUBLAS_OP_T, CUBLAS_OP_N, d.T, d.T, d.hs, heads, {v, xt, ld, d.hs},
                         {dO, xt, d.C, d.hs}, {dp, CUDA_R_32F, d.T, TT}, 1.0f),
                 "attention_backward (dP)");
      causal_softmax_backward(Out{ds, x}, dp, In{p, x}, heads * d.T, d.T, scale, env.stream);
      env.lt.run(batched(CUBLAS_OP_N, CUBLAS_OP_N, d.hs, d.T, d.T, heads, {k, xt, ld, d.hs},
                         {ds, xt, d.T, TT}, {dq, xt, ld, d.hs}, 1.0f),
                 "attention_backward (dq)");
      env.lt.run(batched(CUBLAS_OP_N, CUBLAS_OP_T, d.hs, d.T, d.T, heads, {q, xt, ld, d.hs},
                         {ds, xt, d.T, TT}, {dk, xt, ld, d.hs}, 1.0f),
                 "attention_backward (dk)");
      env.lt.run(batched(CUBLAS_OP_N, CUBLAS_OP_T, d.hs, d.T, d.T, heads, {dO, xt, d.C, d.hs},
                         {p, xt, d.T, TT}, {dv, xt, ld, d.hs}, 1.0f),
                 "attention_backward (dv)");
    }
  }
}

}  // namespace

void attention_forward(AttentionEnv& env, const Tensor& out, const Tensor& probs, const Tensor& qkv,
                       int n_head) {
  const char* op = "attention_forward";
  const Dims d = dims_of(out, n_head, op);
  expect(qkv.numel() == d.B * d.T * 3 * d.C, op,
         "qkv " + shape_string(qkv.shape) + " (expected (B, T, 3C) for out " +
             shape_string(out.shape) + ")");
  expect(probs.numel() == d.B * d.NH * d.T * d.T, op,
         "probs " + shape_string(probs.shape) + " (expected (B, NH, T, T))");
  elem_of(out, op, "out");
  elem_of(probs, op, "probs");
  elem_of(qkv, op, "qkv");
  if (out.dtype == qkv.dtype && probs.dtype == qkv.dtype) {
    forward_uniform(env, out, probs, qkv, d);
    return;
  }
  Fp32Staging s(env, op);
  const Tensor x = s.in(qkv), o = s.out(out), p = s.out(probs);
  forward_uniform(env, o, p, x, d);
  s.commit();
}

void attention_backward(AttentionEnv& env, const Tensor& dqkv, const Tensor& scratch,
                        const Tensor& dout, const Tensor& qkv, const Tensor& probs, int n_head) {
  const char* op = "attention_backward";
  const Dims d = dims_of(dout, n_head, op);
  expect(qkv.numel() == d.B * d.T * 3 * d.C && dqkv.numel() == qkv.numel(), op,
         "qkv " + shape_string(qkv.shape) + " and dqkv " + shape_string(dqkv.shape) +
             " (expected (B, T, 3C) for dout " + shape_string(dout.shape) + ")");
  expect(probs.numel() == d.B * d.NH * d.T * d.T, op,
         "probs " + shape_string(probs.shape) + " (expected (B, NH, T, T))");
  expect(scratch.numel() >= d.B * d.NH * d.T * d.T, op, "scratch smaller than B·NH·T·T");
  for (const auto* t : {&dqkv, &scratch, &dout, &qkv, &probs}) elem_of(*t, op, "tensor");
  const DType x = qkv.dtype;
  if (dqkv.dtype == x && scratch.dtype == x && dout.dtype == x && probs.dtype == x) {
    backward_uniform(env, dqkv, scratch, dout, qkv, probs, d);
    return;
  }
  Fp32Staging s(env, op);
  const Tensor dy = s.in(dout), xq = s.in(qkv), p = s.in(probs), dx = s.out(dqkv);
  // The scratch's values are not needed after the call: an fp32 stand-in, not stored back.
  const Tensor sc = s.temp(scratch.slice(0, {d.B * d.NH * d.T * d.T}));
  backward_uniform(env, dx, sc, dy, xq, p, d);
  s.commit();
}

}  // namespace tb::cuda
