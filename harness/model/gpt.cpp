#include "gpt.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include "../common/rng.h"
#include "../parallel/comm.h"
#include "../profile/profiler.h"
#include "tensor_shard.h"

namespace tb {

namespace {

// Hands out consecutive views of one buffer, each starting on a 64-byte boundary (as the
// buffer does), so a tensor's alignment never depends on what was carved before it; sizing
// pass first (base == nullptr).
class Carver {
 public:
  static constexpr std::size_t kAlign = 64;
  Carver(void* base, DType t) : base_(static_cast<unsigned char*>(base)), dtype_(t) {}
  Tensor take(std::vector<std::int64_t> shape) { return take(dtype_, std::move(shape)); }
  Tensor take(DType t, std::vector<std::int64_t> shape) {
    used_ = (used_ + kAlign - 1) / kAlign * kAlign;
    Tensor v(base_ ? base_ + used_ : nullptr, t, std::move(shape));
    used_ += v.bytes();
    return v;
  }
  std::size_t used() const { return used_; }

 private:
  unsigned char* base_;
  DType dtype_;
  std::size_t used_ = 0;
};

std::string block(int l) { return "blocks." + std::to_string(l) + "."; }

}  // namespace

GptModel::GptModel(Backend& backend, ModelConfig config, DType dtype, ShardSpec shard,
                   std::int64_t flat_multiple)
    : backend_(backend),
      config_(std::move(config)),
      dtype_(dtype),
      shard_(shard),
      layer_end_(shard.layer_end < 0 ? config_.n_layer : shard.layer_end),
      layout_(make_parameter_layout(config_, shard_)) {
  if (dtype_ != DType::f32 && dtype_ != DType::f64) {
    throw std::invalid_argument("model dtype " + std::string(dtype_name(dtype_)) +
                                " (expected f32 or f64)");
  }
  if (flat_multiple < 1) {
    throw std::invalid_argument("flat_multiple = " + std::to_string(flat_multiple) +
                                " (expected >= 1)");
  }
  const std::int64_t padded = (layout_.total + flat_multiple - 1) / flat_multiple * flat_multiple;
  const std::size_t bytes = static_cast<std::size_t>(padded) * dtype_size(dtype_);
  params_buf_ = backend_.allocate(bytes, MemoryCategory::parameters, "parameters");
  grads_buf_ = backend_.allocate(bytes, MemoryCategory::gradients, "gradients");
  params_padded_ = Tensor(params_buf_.data(), dtype_, {padded});
  grads_padded_ = Tensor(grads_buf_.data(), dtype_, {padded});
  params_all_ = params_padded_.slice(0, {layout_.total});
  grads_all_ = grads_padded_.slice(0, {layout_.total});
  backend_.fill_zero(params_padded_);
  backend_.fill_zero(grads_padded_);
}

void GptModel::set_tensor_parallel(Comm* comm) {
  if (comm && (comm->size() != tp() || comm->rank() != shard_.tensor_parallel_rank)) {
    throw std::invalid_argument(
        "tensor-parallel communicator of size " + std::to_string(comm->size()) + ", rank " +
        std::to_string(comm->rank()) + " (expected the shard's size " + std::to_string(tp()) +
        ", rank " + std::to_string(shard_.tensor_parallel_rank) + ")");
  }
  tp_comm_ = comm;
}

void GptModel::set_expert_parallel(Comm* comm) {
  if (comm && (comm->size() != ep() || comm->rank() != shard_.expert_parallel_rank)) {
    throw std::invalid_argument(
        "expert-parallel communicator of size " + std::to_string(comm->size()) + ", rank " +
        std::to_string(comm->rank()) + " (expected the shard's size " + std::to_string(ep()) +
        ", rank " + std::to_string(shard_.expert_parallel_rank) + ")");
  }
  ep_comm_ = comm;
}

void GptModel::set_sequence_parallel(bool on) {
  if (on && tp() == 1) {
    throw std::invalid_argument(
        "sequence_parallel = true with tensor_parallel = 1 (expected tensor_parallel > 1)");
  }
  seq_parallel_ = on;
  B_ = 0;  // re-carve at the next forward
  acts_.clear();
}

std::vector<std::pair<std::int64_t, std::int64_t>> GptModel::sequence_parallel_grad_ranges() const {
  std::vector<std::pair<std::int64_t, std::int64_t>> r;
  if (!seq_parallel_) return r;
  for (int l = shard_.layer_begin; l < layer_end_; ++l) {
    for (const char* ln : {"ln1", "ln2"}) {
      const ParameterSpec& w = layout_.find(block(l) + ln + ".weight");
      r.emplace_back(w.offset, w.offset + 2 * w.numel());  // weight, then bias
    }
  }
  return r;
}

Tensor GptModel::my_rows(const Tensor& full) const {
  const std::int64_t n = full.numel() / tp();
  return full.slice(n * shard_.tensor_parallel_rank, {n / config_.d_model, config_.d_model});
}

void GptModel::set_pipeline_slots(int slots) {
  if (slots < 1) {
    throw std::invalid_argument("pipeline slots = " + std::to_string(slots) + " (expected >= 1)");
  }
  slots_ = slots;
  B_ = 0;  // re-carve at the next forward
  acts_.clear();
  acts_buf_ = {};
  acts_tokens_buf_ = {};
  work_buf_ = {};
  tp_buf_ = {};
}

Tensor GptModel::stage_output(int slot) const {
  auto& a = acts_.at(static_cast<std::size_t>(slot));
  const int k = policy_.interval, L = local_layers();
  return a.layers[static_cast<std::size_t>(k > 0 ? (L - 1) % k : L - 1)].res_mlp;
}

// The values are drawn for the WHOLE model's tensors in its layout order, and a shard copies
// its part (tensor_shard.h), so every parallel split starts from the single-process model's
// weights. (Proxies only: the host holds one full tensor at a time.)
void GptModel::init_weights(std::uint64_t seed) {
  Rng rng(seed);
  const double residual_std = 0.02 / std::sqrt(2.0 * config_.n_layer);
  std::vector<double> host64;
  std::vector<float> host32;
  const ParameterLayout full = shard_.whole() ? layout_ : make_parameter_layout(config_, {});
  for (const auto& p : full.tensors) {
    const auto n = static_cast<std::size_t>(p.numel());
    host64.assign(n, 0.0);
    const bool is_norm_weight =
        p.name.ends_with("ln1.weight") || p.name.ends_with("ln2.weight") || p.name == "lnf.weight";
    if (is_norm_weight) {
      host64.assign(n, 1.0);
    } else if (p.shape.size() >= 2) {
      // Matrices, and the experts' stacks of them; the router like any linear layer.
      const bool residual_proj = p.name.ends_with("attn.proj.weight") ||
                                 p.name.ends_with("mlp.proj.weight") ||
                                 p.name.ends_with("mlp.experts.proj.weight");
      const double sd = residual_proj ? residual_std : 0.02;
      for (auto& x : host64) x = sd * rng.normal();
    }
    const ParameterSpec* local = layout_.find_if_present(p.name);
    if (!local) continue;
    if (tp() > 1) {
      host64 = tensor_parallel_part(p.name, p.shape, host64, shard_.tensor_parallel_rank, tp());
    }
    if (local->expert_parallel_split) {
      host64 = expert_parallel_part(p.shape, host64, shard_.expert_parallel_rank, ep());
    }
    const Tensor dst = view(params_all_, *local);
    if (dtype_ == DType::f64) {
      backend_.copy_from_host(dst, host64.data());
    } else {
      host32.assign(host64.begin(), host64.end());
      backend_.copy_from_host(dst, host32.data());
    }
  }
}

void GptModel::zero_grad() { backend_.fill_zero(grads_padded_); }

void GptModel::set_checkpointing(CheckpointPolicy policy) {
  if (policy.interval < 0) {
    throw std::invalid_argument("checkpoint interval = " + std::to_string(policy.interval) +
                                " (expected 0 = off, or k >= 1)");
  }
  if (policy.selective && policy.interval != 0) {
    throw std::invalid_argument(
        "selective recomputation (selective = true) cannot combine with "
        "checkpoint interval = " +
        std::to_string(policy.interval) + " (expected interval 0)");
  }
  policy_ = policy;
  B_ = 0;  // re-carve at the next forward
  acts_.clear();
  acts_buf_ = {};
  acts_tokens_buf_ = {};
  work_buf_ = {};
}

void GptModel::set_precision(PrecisionPolicy precision) {
  if (dtype_ == DType::f64 && precision.mode != PrecisionMode::fp32) {
    throw std::invalid_argument("precision = " + std::string(precision_mode_name(precision.mode)) +
                                " on an f64 model (the f64 reference runs fp32 only)");
  }
  if (precision.mode == PrecisionMode::fp8 && config_.moe.enabled()) {
    throw std::invalid_argument(
        "precision = fp8 with experts = " + std::to_string(config_.moe.experts) +
        " (fp8 delayed scaling keeps one scale per linear layer, not per expert: expected "
        "fp32, tf32, bf16 or fp16)");
  }
  std::vector<DelayedScaling> fp8;
  if (precision.mode == PrecisionMode::fp8) {
    for (int i = 0; i < 4 * local_layers(); ++i) {
      fp8.emplace_back(NumberFormat::e4m3, precision.fp8_amax_history, precision.fp8_margin);
      fp8.emplace_back(NumberFormat::e4m3, precision.fp8_amax_history, precision.fp8_margin);
      fp8.emplace_back(NumberFormat::e5m2, precision.fp8_amax_history, precision.fp8_margin);
    }
  }
  weights_lp_ = {};
  weights_lp_buf_ = {};
  const DType wdt = gemm_weight_dtype(precision.mode);
  if (is_reduced_float(wdt)) {
    weights_lp_buf_ = backend_.allocate(static_cast<std::size_t>(layout_.total) * dtype_size(wdt),
                                        MemoryCategory::parameters, "16-bit weight copy");
    weights_lp_ = Tensor(weights_lp_buf_.data(), wdt, {layout_.total});
  }
  fp8_ = std::move(fp8);
  precision_ = precision;
  B_ = 0;  // re-carve at the next forward
  acts_.clear();
  acts_buf_ = {};
  acts_tokens_buf_ = {};
  work_buf_ = {};
}

GemmPrecision GptModel::gemm_precision(int l, int j) {
  const PrecisionMode m = precision_.mode;
  GemmPrecision g;
  if (m == PrecisionMode::fp8 && l < local_layers()) {
    auto* s = &fp8_[static_cast<std::size_t>(3 * (4 * l + j))];
    const auto operand = [](DelayedScaling& d) {
      return GemmOperand{d.format(), d.scale(), d.amax_slot()};
    };
    g.inp = operand(s[0]);
    g.weight = operand(s[1]);
    g.dout = operand(s[2]);
    return g;
  }
  // fp8 mode's LM head runs in bf16 (precision.h).
  const PrecisionMode head = m == PrecisionMode::fp8 ? PrecisionMode::bf16 : m;
  g.inp.format = g.weight.format = forward_gemm_format(head);
  g.dout.format = gradient_gemm_format(head);
  return g;
}

void GptModel::ensure_buffers(int B) {
  if (B == B_) return;
  if (tp() > 1 && !tp_comm_) {
    throw std::logic_error("a tensor-parallel shard runs only after set_tensor_parallel");
  }
  if (ep() > 1 && !ep_comm_) {
    throw std::logic_error("an expert-parallel shard runs only after set_expert_parallel");
  }
  if (B <= 0) throw std::invalid_argument("micro_batch = " + std::to_string(B) + " (expected > 0)");
  acts_buf_ = {};
  acts_tokens_buf_ = {};
  work_buf_ = {};
  tp_buf_ = {};
  acts_.clear();
  const std::int64_t T = config_.seq_len, C = config_.d_model, V = config_.vocab, t = tp(),
                     Ct = C / t, NHt = config_.n_head / t, L = local_layers();
  const std::int64_t interval = policy_.interval;
  // Full recompute: one segment's layers plus the input of each of the ⌈L/k⌉ segments.
  const std::int64_t n_layers = interval > 0 ? std::min(interval, L) : L;
  const std::int64_t n_segments = interval > 0 ? (L + interval - 1) / interval : 0;
  const bool last = last_stage();
  const bool sp = seq_parallel_;
  if (sp && (B * T) % t != 0) {
    throw std::invalid_argument("sequence_parallel over tensor_parallel = " + std::to_string(t) +
                                " ranks: micro_batch·seq = " + std::to_string(B * T) +
                                " rows (expected a multiple of tensor_parallel)");
  }
  // The residual stream's shape: (B,T,C), or this rank's rows of it.
  const std::vector<std::int64_t> rows =
      sp ? std::vector<std::int64_t>{B * T / t, C} : std::vector<std::int64_t>{B, T, C};
  const std::vector<std::int64_t> row_stats =
      sp ? std::vector<std::int64_t>{B * T / t} : std::vector<std::int64_t>{B, T};
  // Stored at the activation width; LayerNorm statistics, logits and losses in dtype_.
  const DType act = dtype_ == DType::f64 ? dtype_ : activation_dtype(precision_.mode);
  // Which kinds of block (dense, mixture of experts) each layer buffer serves.
  const std::int64_t N = B * T, E = config_.moe.experts, K = config_.moe.top_k;
  const std::int64_t M = moe_rows_max(B);
  auto serves = [&](std::int64_t i, bool moe) {
    for (int l = 0; l < L; ++l) {
      if ((interval > 0 ? l % interval : l) == i && moe_layer(l) == moe) return true;
    }
    return false;
  };
  auto carve_slot = [&](Carver& k, const Tensor& shared_att) {
    const auto A = [&](std::vector<std::int64_t> shape) { return k.take(act, std::move(shape)); };
    Activations a;
    a.encoded = A(rows);
    if (n_segments > 0) a.segment_inputs.push_back(a.encoded);
    for (std::int64_t j = 1; j < n_segments; ++j) a.segment_inputs.push_back(A(rows));
    a.layers.resize(static_cast<std::size_t>(n_layers));
    for (std::int64_t i = 0; i < n_layers; ++i) {
      auto& la = a.layers[static_cast<std::size_t>(i)];
      la.ln1 = A({B, T, C});
      la.ln1_mean = k.take(row_stats);
      la.ln1_rstd = k.take(row_stats);
      la.qkv = A({B, T, 3 * Ct});
      la.att = policy_.selective ? shared_att : A({B, NHt, T, T});
      la.atty = A({B, T, Ct});
      la.res_att = A(rows);
      la.ln2 = A({B, T, C});
      la.ln2_mean = k.take(row_stats);
      la.ln2_rstd = k.take(row_stats);
      if (serves(i, false)) {
        la.fch = A({B, T, 4 * Ct});
        la.fch_gelu = A({B, T, 4 * Ct});
      }
      if (serves(i, true)) {
        la.router_logits = k.take({N, E});
        la.moe_in = A({M, C});
        la.moe_fch = A({M, 4 * C});
        la.moe_fch_gelu = A({M, 4 * C});
        la.moe_out = A({M, C});
        la.moe_gates = k.take({M});
      }
      la.res_mlp = A(rows);
    }
    if (last) {
      if (sp) a.final_input = A({B, T, C});
      a.lnf = A({B, T, C});
      a.lnf_mean = k.take({B, T});
      a.lnf_rstd = k.take({B, T});
      a.logits = k.take({B, T, V});
      a.losses = k.take({B, T});
    }
    return a;
  };
  auto carve_acts = [&](Carver& k) {
    // Selective recompute: one probabilities buffer for every layer of every slot.
    const Tensor shared_att = policy_.selective ? k.take(act, {B, NHt, T, T}) : Tensor{};
    std::vector<Activations> slots;
    for (int i = 0; i < slots_; ++i) slots.push_back(carve_slot(k, shared_att));
    return slots;
  };
  Carver sizing(nullptr, dtype_);
  carve_acts(sizing);
  acts_buf_ = backend_.allocate(sizing.used(), MemoryCategory::activations, "activations");
  Carver real(acts_buf_.data(), dtype_);
  acts_ = carve_acts(real);
  // Sized by the same carving as the views (targets start on a 64-byte boundary).
  auto carve_tokens = [&](Carver& k, std::vector<Activations>& slots) {
    for (auto& a : slots) {
      a.tokens = k.take({B, T});
      a.targets = k.take({B, T});
      for (std::size_t i = 0; i < a.layers.size(); ++i) {
        if (!serves(static_cast<std::int64_t>(i), true)) continue;
        a.layers[i].moe_index = k.take({M});
        a.layers[i].moe_slots = k.take({N, K});
      }
    }
  };
  Carver tok_size(nullptr, DType::i32);
  std::vector<Activations> sizing_slots = acts_;
  carve_tokens(tok_size, sizing_slots);
  acts_tokens_buf_ = backend_.allocate(tok_size.used(), MemoryCategory::activations, "tokens");
  Carver tok(acts_tokens_buf_.data(), DType::i32);
  carve_tokens(tok, acts_);

  // Activation gradients, at the activation width.
  auto carve_work = [&](Carver& k) {
    d_residual_ = k.take(rows);
    d_tmp_ = k.take({B, T, C});
    d_qkv_ = k.take({B, T, 3 * Ct});
    d_fch_ = k.take({B, T, 4 * Ct});
    d_att_ = k.take({B, NHt, T, T});
    if (E > 0 && M > 0) {
      d_moe_rows_ = k.take({M, C});
      d_moe_fch_ = k.take({M, 4 * C});
      d_moe_gates_ = k.take(dtype_, {M});
      d_router_ = k.take(dtype_, {N, E});
      if (ep() > 1) d_moe_recv_ = k.take({M, C});
    }
  };
  Carver wsize(nullptr, act);
  carve_work(wsize);
  work_buf_ = backend_.allocate(wsize.used(), MemoryCategory::workspace, "backward scratch");
  Carver wreal(work_buf_.data(), act);
  carve_work(wreal);
  if (t > 1) {
    // Partial sums are reduced in fp32 (f64 in the reference model) whatever the activation
    // width, as Megatron-LM's fp32 residual/all-reduce option does.
    const DType pt = dtype_ == DType::f64 ? DType::f64 : DType::f32;
    tp_buf_ = backend_.allocate(static_cast<std::size_t>(B * T * C) * dtype_size(pt),
                                MemoryCategory::communication, "tensor-parallel partial sums");
    tp_partial_ = Tensor(tp_buf_.data(), pt, {B, T, C});
  }
  sp_buf_ = {};
  if (sp) {
    auto carve_sp = [&](Carver& k) {
      sp_rows_ = k.take(tp_partial_.dtype, rows);
      sp_local_ = k.take(act, rows);
      sp_full_ = k.take(act, {B, T, C});
    };
    Carver size(nullptr, act);
    carve_sp(size);
    sp_buf_ =
        backend_.allocate(size.used(), MemoryCategory::communication, "sequence-parallel rows");
    Carver real_sp(sp_buf_.data(), act);
    carve_sp(real_sp);
  }
  B_ = B;
}

LayerActivations& GptModel::layer_acts(Activations& a, int l) {
  const int k = policy_.interval;
  return a.layers[static_cast<std::size_t>(k > 0 ? l % k : l)];
}

const Tensor& GptModel::layer_input(Activations& a, int l) {
  const int k = policy_.interval;
  if (k > 0 && l % k == 0) return a.segment_inputs[static_cast<std::size_t>(l / k)];
  return l == 0 ? a.encoded : layer_acts(a, l - 1).res_mlp;
}

void GptModel::row_parallel_forward(const Tensor& out, const Tensor& residual, const Tensor& inp,
                                    const std::string& weight, const std::string& bias,
                                    const GemmPrecision& precision) {
  if (tp() == 1) {
    backend_.copy(out, residual);
    backend_.matmul_forward(out, inp, gemm_weight(weight), param(bias), true, precision);
    return;
  }
  // Each rank multiplies its columns of the input by its columns of W; the sum over the
  // group is the full product (Megatron's g operator: all-reduce forward, identity backward).
  // The bias is added once, by rank 0.
  const Tensor bias_t = shard_.tensor_parallel_rank == 0 ? param(bias) : Tensor{};
  backend_.matmul_forward(tp_partial_, inp, gemm_weight(weight), bias_t, false, precision);
  backend_.synchronize();
  if (seq_parallel_) {
    // Sequence parallelism: each rank gets the sum of its rows only (Korthikanti's ḡ).
    tp_comm_->reduce_scatter(sp_rows_, tp_partial_);
    backend_.add(out, residual, sp_rows_);
    return;
  }
  tp_comm_->all_reduce(tp_partial_);
  backend_.add(out, residual, tp_partial_);
}

void GptModel::layernorm_to_gemm(const Tensor& out, const Tensor& mean, const Tensor& rstd,
                                 const Tensor& inp, const std::string& weight,
                                 const std::string& bias) {
  if (!seq_parallel_) {
    backend_.layernorm_forward(out, mean, rstd, inp, param(weight), param(bias));
    return;
  }
  // This rank's rows, then every rank's (Korthikanti's g: all-gather forward).
  backend_.layernorm_forward(sp_local_, mean, rstd, inp, param(weight), param(bias));
  backend_.synchronize();
  tp_comm_->all_gather(out, sp_local_);
}

const Tensor& GptModel::gathered_grad() {
  if (!seq_parallel_) return d_residual_;
  backend_.synchronize();
  tp_comm_->all_gather(sp_full_, d_residual_);
  return sp_full_;
}

Tensor GptModel::column_parallel_backward(const Tensor& dinp, const std::string& weight,
                                          const std::string& bias, const Tensor& dout,
                                          const Tensor& inp, const GemmPrecision& precision) {
  // Megatron's f operator: identity forward, all-reduce of the input gradient backward.
  const Tensor& target = tp() == 1 ? dinp : tp_partial_;
  backend_.matmul_backward(target, grad(weight), grad(bias), dout, inp, gemm_weight(weight),
                           precision);
  if (tp() > 1) {
    backend_.synchronize();
    if (seq_parallel_) {
      // Sequence parallelism: the gradient of this rank's rows only (g's conjugate).
      tp_comm_->reduce_scatter(sp_rows_, tp_partial_);
      return sp_rows_;
    }
    tp_comm_->all_reduce(tp_partial_);
  }
  return target;
}

void GptModel::layer_forward(Activations& a, int l) {
  auto& la = layer_acts(a, l);
  const Tensor& input = layer_input(a, l);
  const std::string b = block(shard_.layer_begin + l);
  auto& be = backend_;
  const int heads = config_.n_head / tp();
  layernorm_to_gemm(la.ln1, la.ln1_mean, la.ln1_rstd, input, b + "ln1.weight", b + "ln1.bias");
  be.matmul_forward(la.qkv, la.ln1, gemm_weight(b + "attn.qkv.weight"), param(b + "attn.qkv.bias"),
                    false, gemm_precision(l, 0));
  be.attention_forward(la.atty, la.att, la.qkv, heads);
  row_parallel_forward(la.res_att, input, la.atty, b + "attn.proj.weight", b + "attn.proj.bias",
                       gemm_precision(l, 1));
  layernorm_to_gemm(la.ln2, la.ln2_mean, la.ln2_rstd, la.res_att, b + "ln2.weight", b + "ln2.bias");
  if (moe_layer(l)) {
    moe_forward(la, l);
    return;
  }
  be.matmul_forward(la.fch, la.ln2, gemm_weight(b + "mlp.fc.weight"), param(b + "mlp.fc.bias"),
                    false, gemm_precision(l, 2));
  be.gelu_forward(la.fch_gelu, la.fch);
  row_parallel_forward(la.res_mlp, la.res_att, la.fch_gelu, b + "mlp.proj.weight",
                       b + "mlp.proj.bias", gemm_precision(l, 3));
}

double GptModel::forward(int slot, const std::int32_t* inputs, const std::int32_t* targets, int B) {
  ensure_buffers(B);
  if (slot < 0 || slot >= slots_) {
    throw std::invalid_argument("pipeline slot " + std::to_string(slot) +
                                " (expected 0 <= slot < " + std::to_string(slots_) + ")");
  }
  Activations& a = acts_[static_cast<std::size_t>(slot)];
  const std::int64_t n = std::int64_t{B} * config_.seq_len;
  const bool first = first_stage(), last = last_stage();
  for (std::int64_t i = 0; i < n; ++i) {
    if ((first && (inputs[i] < 0 || inputs[i] >= config_.vocab)) ||
        (last && (targets[i] < 0 || targets[i] >= config_.vocab))) {
      throw std::invalid_argument("token id at position " + std::to_string(i) +
                                  " outside [0, vocab = " + std::to_string(config_.vocab) + ")");
    }
  }
  if (!weights_lp_.empty()) backend_.convert(weights_lp_, params_all_);
  moe_aux_loss_ = 0;
  if (first) {
    backend_.copy_from_host(a.tokens, inputs);
    if (seq_parallel_) {
      // Every rank looks up all rows (the embedding is replicated) and keeps its own.
      backend_.embedding_forward(tp_partial_, a.tokens, param("wte"), param("wpe"));
      const Tensor mine = my_rows(tp_partial_);
      if (mine.dtype == a.encoded.dtype) {
        backend_.copy(a.encoded, mine);
      } else {
        backend_.convert(a.encoded, mine);
      }
    } else {
      backend_.embedding_forward(a.encoded, a.tokens, param("wte"), param("wpe"));
    }
  }
  if (last) backend_.copy_from_host(a.targets, targets);
  const int L = local_layers(), k = policy_.interval;
  for (int l = 0; l < L; ++l) {
    // A segment's input is kept apart from the segment buffers the previous block ran in.
    if (k > 0 && l > 0 && l % k == 0) {
      backend_.copy(a.segment_inputs[static_cast<std::size_t>(l / k)],
                    layer_acts(a, l - 1).res_mlp);
    }
    layer_forward(a, l);
  }
  if (!last) return 0;
  const Tensor* x = L > 0 ? &layer_acts(a, L - 1).res_mlp : &a.encoded;
  if (seq_parallel_) {
    backend_.synchronize();
    tp_comm_->all_gather(a.final_input, *x);
    x = &a.final_input;
  }
  backend_.layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, *x, param("lnf.weight"),
                             param("lnf.bias"));
  backend_.matmul_forward(a.logits, a.lnf, gemm_weight("wte"), Tensor{}, false,
                          gemm_precision(L, 0));
  return backend_.softmax_cross_entropy_forward(a.logits, a.losses, a.targets);
}

// d_residual_ holds d(loss)/d(block output) on entry and d(loss)/d(block input) on exit.
void GptModel::layer_backward(Activations& a, int l, Profiler* profiler) {
  auto& la = layer_acts(a, l);
  const Tensor& input = layer_input(a, l);
  const std::string b = block(shard_.layer_begin + l);
  auto& be = backend_;
  const int heads = config_.n_head / tp();
  const std::int64_t Ct = config_.d_model / tp();
  // The attention output's gradient (B,T,C/t): the front of d_tmp_.
  const Tensor d_atty = d_tmp_.slice(0, {d_tmp_.dim(0), d_tmp_.dim(1), Ct});
  if (policy_.selective) {
    // The probabilities from this layer's saved qkv; the attention output (already saved as
    // atty) goes to d_tmp_, free until the MLP's backward below.
    std::optional<Profiler::Range> r;
    if (profiler) r.emplace(*profiler, Phase::recompute);
    be.attention_forward(d_atty, la.att, la.qkv, heads);
  }
  Tensor d_ln2;
  if (moe_layer(l)) {
    d_ln2 = moe_backward(la, l);
  } else {
    // res_mlp = res_att + fch_gelu·Wpᵀ + bp
    be.matmul_backward(d_fch_, grad(b + "mlp.proj.weight"), grad(b + "mlp.proj.bias"),
                       gathered_grad(), la.fch_gelu, gemm_weight(b + "mlp.proj.weight"),
                       gemm_precision(l, 3));
    be.gelu_backward(d_fch_, la.fch, d_fch_);
    d_ln2 = column_parallel_backward(d_tmp_, b + "mlp.fc.weight", b + "mlp.fc.bias", d_fch_, la.ln2,
                                     gemm_precision(l, 2));
  }
  be.layernorm_backward(d_residual_, grad(b + "ln2.weight"), grad(b + "ln2.bias"), d_ln2,
                        la.res_att, param(b + "ln2.weight"), la.ln2_mean, la.ln2_rstd);
  // res_att = input + atty·Wapᵀ + bap
  be.matmul_backward(d_atty, grad(b + "attn.proj.weight"), grad(b + "attn.proj.bias"),
                     gathered_grad(), la.atty, gemm_weight(b + "attn.proj.weight"),
                     gemm_precision(l, 1));
  be.attention_backward(d_qkv_, d_att_, d_atty, la.qkv, la.att, heads);
  const Tensor d_ln1 = column_parallel_backward(d_tmp_, b + "attn.qkv.weight", b + "attn.qkv.bias",
                                                d_qkv_, la.ln1, gemm_precision(l, 0));
  be.layernorm_backward(d_residual_, grad(b + "ln1.weight"), grad(b + "ln1.bias"), d_ln1, input,
                        param(b + "ln1.weight"), la.ln1_mean, la.ln1_rstd);
}

void GptModel::grads_ready(int local_layer) {
  if (!grad_ready_) return;
  const std::string b = block(shard_.layer_begin + local_layer);
  const ParameterSpec& first = layout_.find(b + "ln1.weight");
  const ParameterSpec& last =
      layout_.find(b + (moe_layer(local_layer) ? "mlp.experts.proj.bias" : "mlp.proj.bias"));
  backend_.synchronize();
  grad_ready_(first.offset, last.offset + last.numel());
}

void GptModel::backward(int slot, Profiler* profiler, double loss_scale) {
  if (B_ == 0) throw std::logic_error("backward() before forward()");
  Activations& a = acts_.at(static_cast<std::size_t>(slot));
  const int L = local_layers(), k = policy_.interval;
  const std::int64_t N = std::int64_t{B_} * config_.seq_len;
  loss_scale_ = loss_scale;
  if (last_stage()) {
    backend_.softmax_cross_entropy_backward(a.logits, a.targets, loss_scale / double(N));
    // With checkpointing the last block's output is still in the segment buffers from forward.
    const Tensor& last = seq_parallel_ ? a.final_input
                         : L > 0       ? layer_acts(a, L - 1).res_mlp
                                       : a.encoded;
    backend_.matmul_backward(d_tmp_, grad("wte"), Tensor{}, a.logits, a.lnf, gemm_weight("wte"),
                             gemm_precision(L, 0));
    // Under sequence parallelism the final LayerNorm ran on all rows: its input gradient is
    // full, and this rank keeps its rows.
    const Tensor& d_final = seq_parallel_ ? sp_full_ : d_residual_;
    backend_.fill_zero(d_final);
    backend_.layernorm_backward(d_final, grad("lnf.weight"), grad("lnf.bias"), d_tmp_, last,
                                param("lnf.weight"), a.lnf_mean, a.lnf_rstd);
    if (seq_parallel_) backend_.copy(d_residual_, my_rows(sp_full_));
    if (grad_ready_) {
      const ParameterSpec& w = layout_.find("lnf.weight");
      backend_.synchronize();
      grad_ready_(w.offset, w.offset + 2 * w.numel());
    }
  }
  if (k == 0) {
    for (int l = L - 1; l >= 0; --l) {
      layer_backward(a, l, profiler);
      grads_ready(l);
    }
  } else {
    for (int first = (L - 1) / k * k; first >= 0; first -= k) {
      const int end = std::min(first + k, L);
      {
        std::optional<Profiler::Range> r;
        if (profiler) r.emplace(*profiler, Phase::recompute);
        recomputing_ = true;
        for (int l = first; l < end; ++l) layer_forward(a, l);
        recomputing_ = false;
      }
      for (int l = end - 1; l >= first; --l) {
        layer_backward(a, l, profiler);
        grads_ready(l);
      }
    }
  }
  if (first_stage()) {
    // Under sequence parallelism every rank scatters all rows' gradients (gathered) into its
    // replicated embeddings, as every rank looked all of them up.
    const Tensor& d_emb = gathered_grad();
    backend_.embedding_backward(grad("wte"), grad("wpe"), d_emb, a.tokens);
  }
  if (!fp8_.empty()) {
    backend_.synchronize();  // the amaxes are host values once the device is done
    for (auto& d : fp8_) d.commit();
  }
}

}  // namespace tb
