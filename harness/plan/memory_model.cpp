// The memory model (memory_model.h; docs/planner.md, "Memory model"): every tracked
// allocation of one training step, written from where the code allocates it, per category.
//
// Notation (one rank): B micro-batch, T context, C width, NH heads, V vocabulary, t tensor-
// parallel size (Ct = C/t, NHt = NH/t), N = B·T tokens of a micro-batch, R = N/t rows of the
// residual stream under sequence parallelism (else N), L_s the stage's layers, s the width of
// a stored activation (4 bytes fp32/tf32, 2 in bf16/fp16/fp8), P the stage's parameters
// (its ParameterLayout's elements), m micro-batches per optimizer step, p stages.
// Mixture of experts: E experts (E_l = E/ep on a rank under expert parallelism), top_k K,
// capacity cap = ⌈capacity_factor·K·N/E⌉ (≤ N) rows per expert, M = min(E·cap, K·N) rows
// dispatched at most (E·cap under expert parallelism, whose blocks are padded).
//
// Every tensor the model carves out of one buffer starts on a 64-byte boundary (gpt.cpp's
// Carver), so each term below is summed as ⌈bytes/64⌉·64; the tracker counts the bytes asked
// for (not the allocator's rounding). Everything here is arithmetic over one layer of each
// kind (dense, MoE) and the model's ends: O(L) at most (a flag per layer buffer), nothing per
// tensor instance.
#include "memory_model.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "model/moe_routing.h"
#include "model/precision.h"
#include "tb/cpu_backend.h"
#include "train/pipeline_schedule.h"

namespace tb {

double MemoryPrediction::total() const {
  double s = 0;
  for (double b : bytes) s += b;
  return s;
}

namespace {

using I = std::int64_t;

I round_up(I bytes, I align) { return (bytes + align - 1) / align * align; }
// A tensor carved by gpt.cpp's Carver: its bytes from a 64-byte boundary.
I carved(I numel, I elem) { return round_up(numel * elem, 64); }

bool is_fp8(NumberFormat f) { return f == NumberFormat::e4m3 || f == NumberFormat::e5m2; }

// ---- the scratch arena (kernels/scratch_arena.h), simulated --------------------------------
// The CPU's emulation stand-ins and the CUDA backend's per-call scratch each live in a
// ScratchArena: within a
// call, takes (rounded up to the alignment) are served from the last block, and a take that does
// not fit opens a new block of max(take, 2 × the last block); at the end of a call with several
// blocks, they are freed and one block of the call's total is allocated. So the arena grows to the
// largest call's total and then stays, and its tracked peak is reached while a growing call holds
// the old block and its new ones. The peak depends on the order of the calls' first occurrences
// only (a call repeated fits its block), so one forward and one backward of each kind of layer are
// simulated, in step order.
class ArenaSim {
 public:
  explicit ArenaSim(I align) : align_(align) {}
  void take(I bytes) {
    if (bytes <= 0) return;  // a tensor that is not staged (f32, absent)
    bytes = round_up(bytes, align_);
    if (blocks_.empty() || blocks_.back() - used_ < bytes) {
      const I last = blocks_.empty() ? 0 : blocks_.back();
      blocks_.push_back(std::max(bytes, 2 * last));
      held_ += blocks_.back();
      peak_ = std::max(peak_, held_);
      used_ = 0;
    }
    used_ += bytes;
    total_ += bytes;
  }
  // The end of a backend call (Scope/Staging destructor: ScratchArena::reset).
  void end_call() {
    if (blocks_.size() > 1) {
      blocks_.assign(1, total_);  // freed first, then one block of the call's total
      held_ = total_;
    }
    used_ = 0;
    total_ = 0;
  }
  I peak() const { return peak_; }

 private:
  I align_;
  std::vector<I> blocks_;
  I used_ = 0, total_ = 0, held_ = 0, peak_ = 0;
};

// Storage of a tensor an operation reads or writes.
enum class St : std::uint8_t { f32, bf16, f16 };
I elem(St s) { return s == St::f32 ? 4 : 2; }
struct Ten {
  I n = 0;  // elements; 0: absent
  St st = St::f32;
};
// A GEMM operand: the tensor as stored and the format it enters the multiply in.
struct Operand {
  Ten t;
  NumberFormat f = NumberFormat::fp32;
  bool amax = false;  // fp8 delayed scaling asks for its amax
};

// The scratch one backend call takes, per device: the CPU backend's emulation staging
// (kernels/cpu/staging.h: an fp32 stand-in for every bf16/f16 tensor a call reads or writes,
// and a rounded copy of each GEMM operand whose format is not the values' own) and its GEMM
// workspace (kernels/cpu/native_matmul.h: a linear layer whose operand values are 16-bit runs
// through oneDNN when the CPU has native instructions for it, with no stand-ins; each call
// reserves 16-bit copies of fp32 operands and oneDNN's scratchpad in an arena that grows,
// replacing its block, to the largest call's reservation — sizes the backend itself reports,
// cpu_matmul_forward_scratch in tb/cpu_backend.h); or the CUDA backend's per-call scratch
// (kernels/cuda/scratch.h: operand casts of linear.cpp, the fp32 score chunks of
// attention.cpp, column-sum partials of reduce.cu, the embedding gradient's sort buffers).
class StagingModel {
 public:
  explicit StagingModel(DeviceKind d) : cuda_(d == DeviceKind::cuda), arena_(cuda_ ? 256 : 64) {}
  I peak() const { return arena_.peak(); }
  I gemm_workspace_peak() const { return gemm_workspace_; }

  void layernorm_forward(Ten out, Ten inp) {
    if (!cuda_) cpu({out, inp});  // o = out(out), x = in(inp); mean, rstd stay fp32
    arena_.end_call();
  }
  void layernorm_backward(Ten dinp, Ten dout, Ten inp, I rows, I cols) {
    if (cuda_) {
      arena_.take(column_sum_scratch(rows, cols));
    } else {
      cpu({dinp, dout, inp});  // dx = out(dinp, load), dy = in(dout), x = in(inp)
    }
    arena_.end_call();
  }
  // out(N, OC) = inp(N, C)·wᵀ (+ bias) (+ out when accumulating). rows_vary: N is a bound
  // (an expert's block: the routing decides its rows, up to N).
  void matmul_forward(Ten out, Operand inp, Operand w, bool bias, bool accumulate, I N, I C, I OC,
                      bool rows_vary = false) {
    if (cuda_) {
      cuda_gemm(w, inp, OC, N, C, out.st, bias);
    } else {
      CpuMatmulCall call = cpu_call(N, C, OC, inp, w);
      call.result = dtype(out.st);
      call.bias = bias;
      call.accumulate = accumulate;
      if (!cpu_native(call, rows_vary, cpu_matmul_forward_scratch)) {
        stage(out);
        cpu_operand(inp);
        cpu_operand(w);
      }
    }
    arena_.end_call();
  }
  // dinp = dout·w; dw += doutᵀ·inp; dbias += Σ dout.
  void matmul_backward(Ten dinp, Operand dout, Operand inp, Operand w, bool dbias, I N, I C, I OC,
                       bool rows_vary = false) {
    if (cuda_) {
      cuda_gemm(w, dout, C, N, OC, dinp.st, false);       // dinp
      cuda_gemm(inp, dout, C, OC, N, St::f32, false);     // dweight (fp32)
      if (dbias) arena_.take(column_sum_scratch(N, OC));  // bias_backward
    } else {
      CpuMatmulCall call = cpu_call(N, C, OC, inp, w);
      call.dout = cpu_of(dout);
      call.result = dtype(dinp.st);
      call.has_result = dinp.n > 0;
      call.bias = dbias;
      if (!cpu_native(call, rows_vary, cpu_matmul_backward_scratch)) {
        stage(dinp);
        cpu_operand(dout);
        cpu_operand(inp);
        cpu_operand(w);
      }
    }
    arena_.end_call();
  }
  void attention_forward(Ten out, Ten probs, Ten qkv, I T, I NH) {
    if (cuda_) {
      attention_chunk(qkv.st, T, NH);
    } else {
      cpu({out, probs, qkv});
    }
    arena_.end_call();
  }
  void attention_backward(Ten dqkv, Ten scratch, Ten dout, Ten qkv, Ten probs, I T, I NH) {
    if (cuda_) {
      attention_chunk(qkv.st, T, NH);
    } else {
      cpu({dqkv, dout, qkv, probs, scratch});  // the scratch as an fp32 temporary
    }
    arena_.end_call();
  }
  void gelu_forward(Ten out, Ten inp) { elementwise({out, inp}); }
  void gelu_backward(Ten dinp, Ten inp, Ten dout) { elementwise({dout, inp, dinp}); }
  void add(Ten out, Ten a, Ten b) { elementwise({a, b, out}); }
  void embedding_forward(Ten out) { elementwise({out}); }
  void embedding_backward(Ten dout, I B, I T, I C) {
    if (cuda_) {
      // embedding.cu's carve: 4 key/value arrays of N ints, CUB's radix-sort temporary storage
      // (its alternate key and value buffers, 8·N bytes, and per-pass histograms — estimated
      // at 64 KiB), and the position gradient's column sums.
      const I n = B * T;
      arena_.take(4 * round_up(n * 4, 256) + round_up(8 * n + (I{64} << 10), 256) +
                  round_up(column_sum_scratch(B, T * C), 256));
    } else {
      cpu({dout});
    }
    arena_.end_call();
  }
  void gather_rows(Ten out, Ten inp, Ten weight) { elementwise({inp, weight, out}); }
  void combine_rows(Ten out, Ten inp, Ten weight) { elementwise({inp, weight, out}); }
  void gathered_row_dot(Ten out, Ten a, Ten b) { elementwise({a, b, out}); }
  // CUDA reductions to a double: chunk partials (reduce.cu, optimizer.cu: 16384 elements per
  // chunk, one double each; two for LAMB's norms).
  void cross_entropy_forward(I N) { reduction(N, 1); }
  void sum_squares(I n) { reduction(n, 1); }
  void lamb_direction(I n) { reduction(n, 2); }

 private:
  static I chunks(I n) { return std::max<I>(1, (n + 16383) / 16384); }
  // reduce.cu's column_sum_plan: ≥ 64 rows per chunk, ≤ 1024 chunks and ≤ 2^22 float2 partials.
  static I column_sum_scratch(I rows, I cols) {
    if (rows <= 0 || cols <= 0) return 0;
    I c = std::min<I>((rows + 63) / 64, 1024);
    c = std::min<I>(c, std::max<I>(1, (I{1} << 22) / std::max<I>(cols, 1)));
    c = std::max<I>(c, 1);
    return c > 1 ? c * cols * 8 : 0;
  }
  void reduction(I n, I doubles) {
    if (cuda_) arena_.take(doubles * chunks(n) * 8);
    arena_.end_call();
  }
  // Element-wise kernels: staged on the CPU, no scratch on CUDA.
  void elementwise(std::initializer_list<Ten> ts) {
    if (!cuda_) cpu(ts);
    arena_.end_call();
  }
  void stage(Ten t) {
    if (t.st != St::f32) arena_.take(t.n * 4);
  }
  void cpu(std::initializer_list<Ten> ts) {
    for (const Ten& t : ts) stage(t);
  }
  // Staging::gemm_operand after Staging::in: the fp32 stand-in of a 16-bit tensor, then a
  // rounded copy unless the format is fp32 or the values' own (bf16 stored bf16, fp16 f16).
  void cpu_operand(const Operand& o) {
    stage(o.t);
    const bool own = (o.f == NumberFormat::bf16 && o.t.st == St::bf16) ||
                     (o.f == NumberFormat::fp16 && o.t.st == St::f16);
    if (o.f != NumberFormat::fp32 && !own) arena_.take(o.t.n * 4);
  }
  // ---- the CPU's native 16-bit GEMMs (kernels/cpu/native_matmul.h) ----
  static DType dtype(St s) {
    return s == St::bf16 ? DType::bf16 : s == St::f16 ? DType::f16 : DType::f32;
  }
  static CpuMatmulOperand cpu_of(const Operand& o) { return {dtype(o.t.st), o.f, o.amax}; }
  static CpuMatmulCall cpu_call(I N, I C, I OC, const Operand& inp, const Operand& w) {
    CpuMatmulCall c;
    c.rows = N;
    c.in_features = C;
    c.out_features = OC;
    c.inp = cpu_of(inp);
    c.weight = cpu_of(w);
    return c;
  }
  // When the call runs natively (true): its GEMM workspace reservation and, when roundings
  // are counted, its result's stand-in. oneDNN's scratchpad is not monotone in the rows (the
  // weight gradient's K: an odd or partial tail is copied and padded), so a call whose rows
  // vary takes the largest over 1..N rows — an upper bound, reached when the routing gives
  // an expert such a count — and is emulated (at N rows, staging's bound) unless every row
  // count runs natively.
  template <class Query>
  bool cpu_native(const CpuMatmulCall& call, bool rows_vary, Query query) {
    I workspace = 0, emulation = 0;
    for (I n = rows_vary ? std::min<I>(1, call.rows) : call.rows; n <= call.rows; ++n) {
      CpuMatmulCall c = call;
      c.rows = n;
      const CpuMatmulScratch s = query(c);
      if (!s.native) return false;
      workspace = std::max(workspace, static_cast<I>(s.workspace_bytes));
      emulation = std::max(emulation, static_cast<I>(s.emulation_bytes));
    }
    gemm_workspace_ = std::max(gemm_workspace_, workspace);
    arena_.take(emulation);
    return true;
  }

  // ---- CUDA (kernels/cuda/linear.cpp, attention.cpp) ----
  enum class In : std::uint8_t { f32, tf32, bf16, f16 };
  // linear.cpp's holds(): the GEMM input type g carries the operand's values exactly.
  static bool holds(In g, const Operand& o) {
    const NumberFormat f = o.f;
    const bool exact = f == NumberFormat::fp32 || f == NumberFormat::tf32;
    switch (g) {
      case In::f32:
        return true;
      case In::tf32:
        return f == NumberFormat::tf32 || (f == NumberFormat::fp32 && o.t.st != St::f32);
      case In::bf16:
        return f == NumberFormat::bf16 || is_fp8(f) || (exact && o.t.st == St::bf16);
      case In::f16:
        return f == NumberFormat::fp16 || is_fp8(f) || (exact && o.t.st == St::f16);
    }
    return false;
  }
  // materialize(): a cast into scratch unless the stored values already are the input type's.
  I cast_bytes(In g, const Operand& o) const {
    const St target = g == In::bf16 ? St::bf16 : g == In::f16 ? St::f16 : St::f32;
    bool round = is_fp8(o.f) || (o.f == NumberFormat::bf16 && o.t.st != St::bf16) ||
                 (o.f == NumberFormat::fp16 && o.t.st != St::f16) ||
                 (o.f == NumberFormat::tf32 && o.t.st == St::f32 && g != In::tf32);
    if (!round && o.t.st == target) return 0;
    return o.t.n * elem(target);
  }
  // Gemm::run: D(m × n) = op(A)·op(B) into an output stored as `out`.
  void cuda_gemm(const Operand& a, const Operand& b, I m, I n, I k, St out, bool bias) {
    if (m <= 0 || n <= 0 || k <= 0) return;
    const bool fp8_pair = is_fp8(a.f) && is_fp8(b.f) &&
                          !(a.f == NumberFormat::e5m2 && b.f == NumberFormat::e5m2) &&
                          m % 16 == 0 && n % 16 == 0 && k % 16 == 0;
    if (fp8_pair) {  // run_fp8: both operands cast to one byte each (transposed as needed)
      arena_.take(a.t.n);
      arena_.take(b.t.n);
      if (bias && out != St::f32) arena_.take(m * elem(out));  // the bias in the output's type
      return;
    }
    In g = In::f32;
    for (In c : {In::bf16, In::f16, In::tf32}) {
      if (holds(c, a) && holds(c, b)) {
        g = c;
        break;
      }
    }
    arena_.take(cast_bytes(g, a));
    arena_.take(cast_bytes(g, b));
    // fp32/tf32 GEMMs write fp32 only; bf16/fp16 ones their type or fp32. Otherwise an fp32
    // scratch D, added into the output by a kernel.
    const bool writes =
        out == St::f32 || (g == In::bf16 && out == St::bf16) || (g == In::f16 && out == St::f16);
    if (!writes) {
      arena_.take(m * n * 4);
    } else if (bias && out != St::f32) {
      arena_.take(m * elem(out));
    }
  }
  // attention.cpp: with 16-bit tensors the scores (and dP) go to an fp32 chunk of as many
  // heads as fit 256 MiB (at least one); fp32 tensors use the probabilities buffer itself.
  void attention_chunk(St x, I T, I NH) {
    if (x == St::f32) return;
    const I per_head = T * T * 4;
    const I group = std::max<I>(1, std::min<I>(NH, (I{256} << 20) / per_head));
    arena_.take(group * per_head);
  }

  bool cuda_;
  ArenaSim arena_;
  I gemm_workspace_ = 0;  // the CPU's GEMM workspace arena: the largest call's reservation
};

// Everything about one rank of one stage that the formulas need.
struct Rank {
  // model
  I B, T, C, V, NH, t, Ct, NHt, N, R;
  I E, K, El, ep, cap, M;  // mixture of experts (E = 0: dense)
  int every;
  // stage
  int begin, end;  // global layer range
  I L;             // layers
  bool first, last, sp;
  // strategies
  PrecisionMode mode;
  St act;  // stored activations and activation gradients
  St wlp;  // the weights the GEMMs read (the 16-bit copy, or the fp32 masters)
  int interval;
  bool selective;
  I slots;  // micro-batches whose activations the stage holds at once
};

bool moe_layer(const Rank& r, int global_layer) {
  return r.E > 0 && (global_layer + 1) % r.every == 0;
}
// MoE blocks among global layers [b, e): the l with (l + 1) a multiple of `every`.
I moe_layers_in(const Rank& r, int b, int e) { return r.E > 0 ? e / r.every - b / r.every : 0; }

// ---- parameters (ParameterLayout, parameters.cpp) ----
struct Layout {
  I total = 0;     // elements
  I largest = 0;   // the largest tensor (LAMB's direction scratch)
  I prunable = 0;  // pruning's masked weights (train/pruning.h: the blocks' matmul weights)
};

// Per block: ln1, qkv (3Ct × C + 3Ct), proj (C × Ct + C), ln2, then the MLP — dense: fc
// (4Ct × C + 4Ct), proj (C × 4Ct + C); MoE: a router (E × C) and E_l experts' fc and proj.
// The 12·C² + 13·C per block of config.h's parameter_count at t = 1.
Layout layout(const Rank& r) {
  const I C = r.C, Ct = r.Ct;
  Layout l;
  const I attn = 4 * C + 3 * Ct * C + 3 * Ct + C * Ct + C;
  const I dense = attn + 4 * Ct * C + 4 * Ct + C * 4 * Ct + C;
  const I moe = attn + r.E * C + r.El * (4 * C * C + 4 * C + C * 4 * C + C);
  const I n_moe = moe_layers_in(r, r.begin, r.end), n_dense = r.L - n_moe;
  if (r.first || r.last) l.total += r.V * C;  // wte (tied: the last stage's LM head)
  if (r.first) l.total += r.T * C;            // wpe
  l.total += n_dense * dense + n_moe * moe;
  if (r.last) l.total += 2 * C;  // lnf
  if (r.first || r.last) l.largest = r.V * C;
  if (r.first) l.largest = std::max(l.largest, r.T * C);
  if (r.L > 0) l.largest = std::max(l.largest, 4 * Ct * C);
  if (n_moe > 0) l.largest = std::max({l.largest, r.E * C, r.El * 4 * C * C});
  l.prunable = n_dense * 12 * Ct * C + n_moe * (4 * C * C + 2 * r.El * 4 * C * C);
  return l;
}

// ---- activations (GptModel::ensure_buffers, gpt.cpp; formula in gpt.h) ----
// Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer Models",
// §4.1, Eq. 2) count s·b·h·(34 + 5·a·s/h) bytes per layer with 2-byte values and dropout;
// without dropout that is 16·sbh + a·s²·b values — the P below, plus the LayerNorm statistics
// (4·B·T fp32) the paper neglects; Eq. 4–6 (§4.2) give the tensor- and sequence-parallel
// forms, 4·R·C + 12·N·C/t + (NH/t)·B·T² here (the LayerNorm outputs are kept gathered: N·C).
struct LayerBytes {
  I common;  // every layer buffer
  I dense;   // fch, fch_gelu
  I moe;     // router logits and the dispatched rows
};

LayerBytes layer_bytes(const Rank& r) {
  const I s = elem(r.act), N = r.N, R = r.R, C = r.C, Ct = r.Ct;
  LayerBytes b{};
  b.common = carved(N * C, s)                                          // ln1 (gathered)
             + 2 * carved(R, 4)                                        // ln1 mean, rstd (fp32)
             + carved(N * 3 * Ct, s)                                   // qkv
             + (r.selective ? 0 : carved(r.B * r.NHt * r.T * r.T, s))  // attention probs
             + carved(N * Ct, s)                                       // atty
             + carved(R * C, s)                                        // res_att
             + carved(N * C, s)                                        // ln2 (gathered)
             + 2 * carved(R, 4)                                        // ln2 mean, rstd
             + carved(R * C, s);                                       // res_mlp (block output)
  b.dense = 2 * carved(N * 4 * Ct, s);                                 // fch, fch_gelu
  if (r.E > 0) {
    b.moe = carved(N * r.E, 4)            // router logits (fp32)
            + 2 * carved(r.M * C, s)      // moe_in, moe_out
            + 2 * carved(r.M * 4 * C, s)  // experts' fc, GELU outputs
            + carved(r.M, 4);             // gates (fp32)
  }
  return b;
}

// One micro-batch's activations (a pipeline slot) and token ids, in bytes.
struct SlotBytes {
  double acts = 0, tokens = 0;
};

SlotBytes slot_bytes(const Rank& r) {
  const I s = elem(r.act), N = r.N, R = r.R, C = r.C;
  const I k = r.interval;
  // Full recompute keeps one segment's worth (min(k, L) layer buffers) and each of the
  // ⌈L/k⌉ segments' inputs (Chen et al. 2016; the first is the embeddings).
  const I buffers = k > 0 ? std::min<I>(k, r.L) : r.L;
  const I segments = k > 0 ? (r.L + k - 1) / k : 0;
  // Which kinds of block each layer buffer serves (a buffer serves layers l ≡ i mod k).
  std::vector<std::uint8_t> kinds(static_cast<std::size_t>(std::max<I>(buffers, 0)), 0);
  for (I l = 0; l < r.L; ++l) {
    const I i = k > 0 ? l % k : l;
    kinds[static_cast<std::size_t>(i)] |= moe_layer(r, r.begin + static_cast<int>(l)) ? 2 : 1;
  }
  const LayerBytes lb = layer_bytes(r);
  SlotBytes b;
  b.acts = double(carved(R * C, s));  // encoded / received
  if (segments > 1) b.acts += double(segments - 1) * double(carved(R * C, s));
  I n_moe_buffers = 0;
  for (std::uint8_t f : kinds) {
    b.acts +=
        double(lb.common) + ((f & 1) ? double(lb.dense) : 0.0) + ((f & 2) ? double(lb.moe) : 0.0);
    n_moe_buffers += (f & 2) ? 1 : 0;
  }
  if (r.last) {
    b.acts += double((r.sp ? carved(N * C, s) : 0)  // final_input: the gathered last output
                     + carved(N * C, s)             // lnf
                     + 2 * carved(N, 4)             // its mean, rstd
                     + carved(N * r.V, 4)           // logits (fp32; probabilities, dlogits)
                     + carved(N, 4));               // losses
  }
  // Token ids (i32): inputs and targets, and per MoE buffer each row's token and each
  // choice's row.
  b.tokens = double(2 * carved(N, 4) + n_moe_buffers * (carved(r.M, 4) + carved(N * r.K, 4)));
  return b;
}

// ---- backward scratch (workspace), communication ----
I backward_scratch_bytes(const Rank& r) {
  const I s = elem(r.act), N = r.N, C = r.C, Ct = r.Ct;
  I b = carved(r.R * C, s)                     // d_residual (this rank's rows)
        + carved(N * C, s)                     // d_tmp
        + carved(N * 3 * Ct, s)                // d_qkv
        + carved(N * 4 * Ct, s)                // d_fch
        + carved(r.B * r.NHt * r.T * r.T, s);  // d_att: attention's dP scratch
  if (r.E > 0 && r.M > 0) {
    b += carved(r.M * C, s) + carved(r.M * 4 * C, s)  // d of the dispatched rows, hidden
         + carved(r.M, 4) + carved(N * r.E, 4)        // d gates, d router logits (fp32)
         + (r.ep > 1 ? carved(r.M * C, s) : 0);       // rows received for this rank's experts
  }
  return b;
}

// ---- the staging/scratch simulation: one step's first occurrence of every call ----
struct Formats {
  Operand inp, w, dout;
};

Formats block_formats(const Rank& r, I n_inp, I n_w, I n_dout) {
  Formats f;
  f.inp.t = {n_inp, r.act};
  f.w.t = {n_w, r.wlp};
  f.dout.t = {n_dout, r.act};
  if (r.mode == PrecisionMode::fp8) {  // E4M3 inputs and weights, E5M2 gradients, amaxes
    f.inp.f = f.w.f = NumberFormat::e4m3;
    f.dout.f = NumberFormat::e5m2;
    f.inp.amax = f.w.amax = f.dout.amax = true;
  } else {
    f.inp.f = f.w.f = forward_gemm_format(r.mode);
    f.dout.f = gradient_gemm_format(r.mode);
  }
  return f;
}

void forward_layer(StagingModel& sm, const Rank& r, bool moe) {
  const I N = r.N, C = r.C, Ct = r.Ct, R = r.R;
  const St a = r.act;
  const Ten rows{R * C, a}, full{N * C, a};
  const auto ln_to_gemm = [&] { sm.layernorm_forward(r.sp ? rows : full, rows); };
  const auto row_parallel = [&](Ten out, I in_cols, const Formats& f) {
    if (r.t == 1) {
      sm.matmul_forward(out, f.inp, f.w, true, true, N, in_cols, C);  // accumulates into out
    } else {
      sm.matmul_forward({N * C, St::f32}, f.inp, f.w, true, false, N, in_cols, C);  // partials
      sm.add(out, rows, r.sp ? Ten{R * C, St::f32} : Ten{N * C, St::f32});
    }
  };
  ln_to_gemm();
  Formats qkv = block_formats(r, N * C, 3 * Ct * C, N * 3 * Ct);
  sm.matmul_forward({N * 3 * Ct, a}, qkv.inp, qkv.w, true, false, N, C, 3 * Ct);
  sm.attention_forward({N * Ct, a}, {r.B * r.NHt * r.T * r.T, a}, {N * 3 * Ct, a}, r.T, r.NHt);
  row_parallel(rows, Ct, block_formats(r, N * Ct, C * Ct, N * C));
  ln_to_gemm();
  if (!moe) {
    Formats fc = block_formats(r, N * C, 4 * Ct * C, N * 4 * Ct);
    sm.matmul_forward({N * 4 * Ct, a}, fc.inp, fc.w, true, false, N, C, 4 * Ct);
    sm.gelu_forward({N * 4 * Ct, a}, {N * 4 * Ct, a});
    row_parallel(rows, 4 * Ct, block_formats(r, N * 4 * Ct, C * 4 * Ct, N * C));
    return;
  }
  // The router in fp32 on the fp32 master weights (gpt_moe.cpp), the dispatch, each expert's
  // block of at most `cap` rows, and the combine (M and the rows are bounds: the routing
  // decides them each step).
  Operand ln2{full};
  Operand router{{r.E * C, St::f32}};
  sm.matmul_forward({N * r.E, St::f32}, ln2, router, false, false, N, C, r.E);
  sm.gather_rows({r.M * C, a}, full, {});
  const I cap = r.cap;
  Formats fc = block_formats(r, cap * C, 4 * C * C, cap * 4 * C);
  sm.matmul_forward({cap * 4 * C, a}, fc.inp, fc.w, true, false, cap, C, 4 * C, true);
  sm.gelu_forward({cap * 4 * C, a}, {cap * 4 * C, a});
  Formats pr = block_formats(r, cap * 4 * C, C * 4 * C, cap * C);
  sm.matmul_forward({cap * C, a}, pr.inp, pr.w, true, false, cap, 4 * C, C, true);
  sm.combine_rows(rows, {r.M * C, a}, {r.M, St::f32});
}

void backward_layer(StagingModel& sm, const Rank& r, bool moe) {
  const I N = r.N, C = r.C, Ct = r.Ct, R = r.R;
  const St a = r.act;
  const Ten rows{R * C, a}, full{N * C, a};
  // The residual gradient the row-parallel GEMMs read (gathered under sequence parallelism).
  const Ten grad = full;
  // Where a column-parallel layer's input gradient lands: d_tmp, or the fp32 partial sums
  // (this rank's rows of them under sequence parallelism).
  const Ten col_dinp = r.t == 1 ? full : Ten{N * C, St::f32};
  const Ten col_grad = r.t == 1 ? full : r.sp ? Ten{R * C, St::f32} : Ten{N * C, St::f32};
  if (r.selective) {  // the probabilities recomputed from the saved qkv
    sm.attention_forward({N * Ct, a}, {r.B * r.NHt * r.T * r.T, a}, {N * 3 * Ct, a}, r.T, r.NHt);
  }
  Ten d_ln2 = col_grad;
  if (!moe) {
    Formats pr = block_formats(r, N * 4 * Ct, C * 4 * Ct, N * C);
    pr.dout.t = grad;
    sm.matmul_backward({N * 4 * Ct, a}, pr.dout, pr.inp, pr.w, true, N, 4 * Ct, C);
    sm.gelu_backward({N * 4 * Ct, a}, {N * 4 * Ct, a}, {N * 4 * Ct, a});
    Formats fc = block_formats(r, N * C, 4 * Ct * C, N * 4 * Ct);
    sm.matmul_backward(col_dinp, fc.dout, fc.inp, fc.w, true, N, C, 4 * Ct);
  } else {
    const I cap = r.cap;
    sm.gathered_row_dot({r.M, St::f32}, full, {r.M * C, a});
    sm.gather_rows({r.M * C, a}, full, {r.M, St::f32});
    Formats pr = block_formats(r, cap * 4 * C, C * 4 * C, cap * C);
    sm.matmul_backward({cap * 4 * C, a}, pr.dout, pr.inp, pr.w, true, cap, 4 * C, C, true);
    sm.gelu_backward({cap * 4 * C, a}, {cap * 4 * C, a}, {cap * 4 * C, a});
    Formats fc = block_formats(r, cap * C, 4 * C * C, cap * 4 * C);
    sm.matmul_backward({cap * C, a}, fc.dout, fc.inp, fc.w, true, cap, C, 4 * C, true);
    sm.combine_rows(full, {r.M * C, a}, {});
    Operand d_router{{N * r.E, St::f32}}, ln2{full}, router{{r.E * C, St::f32}};
    sm.matmul_backward(full, d_router, ln2, router, false, N, C, r.E);
    sm.add(full, full, full);
    d_ln2 = full;
  }
  sm.layernorm_backward(rows, d_ln2, rows, R, C);
  Formats pj = block_formats(r, N * Ct, C * Ct, N * C);
  pj.dout.t = grad;
  sm.matmul_backward({N * Ct, a}, pj.dout, pj.inp, pj.w, true, N, Ct, C);
  sm.attention_backward({N * 3 * Ct, a}, {r.B * r.NHt * r.T * r.T, a}, {N * Ct, a}, {N * 3 * Ct, a},
                        {r.B * r.NHt * r.T * r.T, a}, r.T, r.NHt);
  Formats qkv = block_formats(r, N * C, 3 * Ct * C, N * 3 * Ct);
  sm.matmul_backward(col_dinp, qkv.dout, qkv.inp, qkv.w, true, N, C, 3 * Ct);
  sm.layernorm_backward(rows, col_grad, rows, R, C);
}

// The LM head's formats: fp8 mode runs it in bf16 (precision.h).
Formats head_formats(const Rank& r) {
  Formats f;
  const PrecisionMode m = r.mode == PrecisionMode::fp8 ? PrecisionMode::bf16 : r.mode;
  f.inp = {{r.N * r.C, r.act}, forward_gemm_format(m)};
  f.w = {{r.V * r.C, r.wlp}, forward_gemm_format(m)};
  f.dout = {{r.N * r.V, St::f32}, gradient_gemm_format(m)};
  return f;
}

// The per-call scratch arenas' peaks: the emulation staging (or CUDA scratch) and the CPU's
// GEMM workspace.
struct ScratchPeaks {
  I staging = 0, gemm_workspace = 0;
};

ScratchPeaks scratch_peaks(const Rank& r, DeviceKind device, const Layout& lay, bool lamb,
                           bool parallel) {
  StagingModel sm(device);
  const I N = r.N, C = r.C;
  const Ten full{N * C, r.act};
  // The kinds of block in the order forward and backward first meet them.
  std::vector<bool> fwd_kinds, bwd_kinds;
  for (int l = r.begin; l < r.end && fwd_kinds.size() < 2; ++l) {
    const bool m = moe_layer(r, l);
    if (std::find(fwd_kinds.begin(), fwd_kinds.end(), m) == fwd_kinds.end()) fwd_kinds.push_back(m);
  }
  for (int l = r.end - 1; l >= r.begin && bwd_kinds.size() < 2; --l) {
    const bool m = moe_layer(r, l);
    if (std::find(bwd_kinds.begin(), bwd_kinds.end(), m) == bwd_kinds.end()) bwd_kinds.push_back(m);
  }
  // Forward.
  if (r.first) sm.embedding_forward(r.sp ? Ten{N * C, St::f32} : full);
  for (bool m : fwd_kinds) forward_layer(sm, r, m);
  const Formats head = head_formats(r);
  if (r.last) {
    sm.layernorm_forward(full, full);
    sm.matmul_forward({N * r.V, St::f32}, head.inp, head.w, false, false, N, C, r.V);
    sm.cross_entropy_forward(N);
  }
  // Backward (a recomputed segment repeats forward's calls first: nothing new).
  if (r.last) {
    sm.matmul_backward(full, head.dout, head.inp, head.w, false, N, C, r.V);
    sm.layernorm_backward(full, full, full, N, C);
  }
  for (bool m : bwd_kinds) backward_layer(sm, r, m);
  if (r.first) sm.embedding_backward(full, r.B, r.T, C);
  // Optimizer: the gradient norm (over the flat buffer in one process, per tensor in a
  // parallel job), LAMB's per-tensor direction.
  sm.sum_squares(parallel ? lay.largest : lay.total);
  if (lamb) sm.lamb_direction(lay.largest);
  return {sm.peak(), sm.gemm_workspace_peak()};
}

Rank make_rank(const ModelConfig& model, const RunConfig& run, int begin, int end, I slots) {
  Rank r{};
  r.B = run.micro_batch;
  r.T = model.seq_len;
  r.C = model.d_model;
  r.V = model.vocab;
  r.NH = model.n_head;
  r.t = std::max(1, run.tp);
  r.Ct = r.C / r.t;
  r.NHt = r.NH / r.t;
  r.N = r.B * r.T;
  r.sp = run.sequence_parallel && r.t > 1;
  r.R = r.sp ? r.N / r.t : r.N;
  const MoeConfig& moe = model.moe;
  r.E = moe.enabled() ? moe.experts : 0;
  r.every = std::max(1, moe.every);
  r.K = moe.top_k;
  r.ep = run.expert_parallel && r.E > 0 && run.dp > 1 ? run.dp : 1;
  r.El = r.E / r.ep;
  if (r.E > 0) {
    r.cap = moe_capacity(static_cast<int>(r.N), static_cast<int>(r.E), static_cast<int>(r.K),
                         moe.capacity_factor);
    r.M = r.ep > 1 ? r.cap * r.E : std::min(r.cap * r.E, r.N * r.K);
  }
  r.begin = begin;
  r.end = end;
  r.L = end - begin;
  r.first = begin == 0;
  r.last = end == model.n_layer;
  r.mode = parse_precision_mode(run.precision);
  r.act = activation_dtype(r.mode) == DType::bf16  ? St::bf16
          : activation_dtype(r.mode) == DType::f16 ? St::f16
                                                   : St::f32;
  r.wlp = r.act;  // gemm_weight_dtype = activation_dtype
  r.interval = run.checkpoint_interval;
  r.selective = run.checkpoint_selective && run.checkpoint_interval == 0;
  r.slots = slots;
  return r;
}

}  // namespace

MemoryPrediction predict_stage_memory(const ModelConfig& model, const RunConfig& run,
                                      DeviceKind device, int stage) {
  MemoryPrediction out;
  out.stage = stage;
  const int p = std::max(1, run.pp), L = model.n_layer;
  const int m = std::max(1, run.micro_batches());
  const int v = p > 1 ? std::max(1, run.virtual_stages) : 1;
  const bool parallel = run.ranks() > 1;
  const int dp = std::max(1, run.dp);

  // The stage's layers, and how many micro-batches' activations it holds (Narayanan et al.
  // 2021, §2.2): GPipe all m; 1F1B (PipeDream-Flush) min(m, p − s). Interleaved 1F1B with v
  // model chunks per stage (not built in trainbench: the scenario refuses virtual_stages ≠ 1;
  // modelled for the planner as Megatron-LM schedules it): stage s holds chunks s, s + p, …,
  // s + (v − 1)·p of the p·v chunks of layers, and its warm-up keeps (p − s − 1)·2 + (v − 1)·p
  // chunk-forwards in flight plus the one running, at most m·v — for stage 0 that is
  // L·(1 + (p − 1)/(p·v)) layers' worth (Korthikanti et al. 2022, §4.2.3).
  std::vector<std::pair<int, int>> chunks;
  if (p == 1) {
    chunks.emplace_back(0, L);
  } else if (v == 1) {
    chunks.push_back(stage_layers(L, p, stage));
  } else {
    for (int c = 0; c < v; ++c) chunks.push_back(stage_layers(L, p * v, c * p + stage));
  }
  I slots = 1;
  double chunk_slots = 1;  // interleaved: chunk-micro-batches in flight, per chunk (mean)
  if (p > 1 && v == 1) {
    slots = run.pp_schedule == "gpipe" ? m : std::min(m, p - stage);
  } else if (p > 1) {
    const I in_flight = std::min<I>(I{m} * v, I{p - stage - 1} * 2 + I{v - 1} * p + 1);
    chunk_slots = double(in_flight) / double(v);
  }

  double act = 0, work = 0, comm = 0, emul = 0, params = 0, grads = 0, opt = 0;
  I total_elems = 0, largest = 0, prunable = 0;
  I work_scratch = 0, staging = 0, gemm_workspace = 0;
  for (std::size_t ci = 0; ci < chunks.size(); ++ci) {
    const auto [begin, end] = chunks[ci];
    const Rank r = make_rank(model, run, begin, end, slots);
    const Layout lay = layout(r);
    total_elems += lay.total;
    largest = std::max(largest, lay.largest);
    prunable += lay.prunable;
    const SlotBytes sb = slot_bytes(r);
    const double held = v > 1 ? chunk_slots : double(r.slots);
    act += held * (sb.acts + sb.tokens);
    // Selective recompute: one probabilities buffer shared by every layer and slot.
    if (r.selective) act += double(carved(r.B * r.NHt * r.T * r.T, elem(r.act)));
    work_scratch = std::max(work_scratch, backward_scratch_bytes(r));
    const ScratchPeaks peaks = scratch_peaks(r, device, lay, run.optimizer == "lamb", parallel);
    staging = std::max(staging, peaks.staging);
    gemm_workspace = std::max(gemm_workspace, peaks.gemm_workspace);
    if (ci == 0) {
      // Communication (fp32 partial sums whatever the activation width; docs/parallel.md):
      // Megatron's tensor-parallel f/g operators reduce through one N·C buffer; sequence
      // parallelism adds this rank's rows of a summed partial (fp32), of a LayerNorm output
      // before its all-gather, and a gathered gradient (N·C).
      if (r.t > 1) comm += double(r.N * r.C * 4);
      if (r.sp)
        comm +=
            double(carved(r.R * r.C, 4) + carved(r.R * r.C, elem(r.act)) + r.N * r.C * elem(r.act));
      // Pipeline: every stage but the first sends its input's gradient back from two
      // alternating buffers (parallel_step.cpp); activations are sent from the slots.
      if (p > 1 && stage > 0) comm += double(2 * round_up(r.R * r.C * elem(r.act), 64));
    }
  }
  // Parameters, gradients, optimizer state: the model states of Rajbhandari et al. 2020
  // ("ZeRO", §3.1), 2Ψ + 2Ψ + KΨ bytes for mixed-precision Adam with K = 12 (the fp32 master
  // copy, momentum and variance). trainbench keeps fp32 masters as `parameters` (4Ψ) and fp32
  // gradients (4Ψ), Adam's or LAMB's two fp32 moments as `optimizer_state` (8Ψ; SGD's momentum
  // 4Ψ), and in the 16-bit and fp8 modes a 16-bit weight copy (2Ψ, `parameters`): 16Ψ, or
  // 18Ψ with the copy. The flat buffers are padded to a multiple of dp under ZeRO-1, whose
  // stage 1 (§5.1, P_os) divides the optimizer state by dp.
  const bool zero = run.zero == 1 && dp > 1 && parallel;
  const I flat_multiple = run.zero == 1 ? dp : 1;
  const I padded = (total_elems + flat_multiple - 1) / flat_multiple * flat_multiple;
  const Rank r0 = make_rank(model, run, chunks.front().first, chunks.front().second, slots);
  params = double(padded) * 4;
  if (r0.wlp != St::f32) params += double(total_elems) * double(elem(r0.wlp));  // 16-bit copy
  grads = double(padded) * 4;
  const I slice = zero ? padded / dp : 0;
  const double state_elems = double(std::max<I>(zero ? slice : total_elems, 1));
  if (run.optimizer == "adamw" || run.optimizer == "lamb") {
    opt = 2 * 4 * state_elems;  // m, v (Kingma & Ba 2015; LAMB: You et al. 2019, Alg. 2)
  } else if (run.optimizer == "sgd" && run.momentum != 0) {
    opt = 4 * state_elems;  // momentum buffer
  }
  if (run.pruning()) opt += 4 * double(std::max<I>(prunable, 1));  // 0/1 masks, fp32
  if (zero) comm += double(slice) * 4;  // ZeRO-1's slice for the reduce-scatter/all-gather
  // Data-parallel gradient buckets (bucket_mb) are views of the gradient buffer reduced in
  // place: no tracked memory (MPI's and NCCL's own buffers are not tracked). Loss scaling and
  // the fp8 amax histories are host scalars and vectors: none either.

  // Workspace: backward's activation-gradient scratch (one set, reused by every layer and
  // micro-batch) and LAMB's per-tensor direction (the largest tensor, fp32).
  work = double(work_scratch);
  if (run.optimizer == "lamb") work += double(largest) * 4;
  if (device == DeviceKind::cuda) {
    // The CUDA backend's own (cuda_backend.cpp): the cuBLASLt workspace (32 MiB, NVIDIA's
    // advice for Hopper; gemm_lt.h), the FP8 dequantisation scales and the reduction
    // results, the amax slots in fp8 mode (16384 floats; amax_slots.h), and its per-call
    // scratch (casts, score chunks, partials), grown to the largest call.
    work += double(I{32} << 20) + 8 + 32;
    if (r0.mode == PrecisionMode::fp8) work += 16384.0 * 4;
    work += double(staging);
  } else {
    // The CPU's GEMM workspace arena (oneDNN's scratchpad, 16-bit copies of fp32 operands),
    // grown to the largest native GEMM call's reservation while the backward scratch and
    // LAMB's direction, held from before the first GEMM, are allocated.
    work += double(gemm_workspace);
    // The CPU's fp32 stand-ins for 16-bit tensors and rounded GEMM operand copies, grown to
    // the largest call (emulation: a GPU with native kernels has none).
    emul = double(staging);
  }

  auto set = [&](MemoryCategory c, double b) { out.bytes[static_cast<std::size_t>(c)] = b; };
  set(MemoryCategory::parameters, params);
  set(MemoryCategory::gradients, grads);
  set(MemoryCategory::optimizer_state, opt);
  set(MemoryCategory::activations, act);
  set(MemoryCategory::workspace, work);
  set(MemoryCategory::communication, comm);
  set(MemoryCategory::emulation, emul);
  return out;
}

MemoryPrediction predict_peak_memory(const ModelConfig& model, const RunConfig& run,
                                     DeviceKind device) {
  const int p = std::max(1, run.pp);
  MemoryPrediction best = predict_stage_memory(model, run, device, 0);
  for (int s = 1; s < p; ++s) {
    MemoryPrediction m = predict_stage_memory(model, run, device, s);
    if (m.total() > best.total()) best = m;
  }
  return best;
}

}  // namespace tb
