#include "gpt.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include "../common/rng.h"
#include "../profile/profiler.h"

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

GptModel::GptModel(Backend& backend, ModelConfig config, DType dtype, ShardSpec shard)
    : backend_(backend),
      config_(std::move(config)),
      dtype_(dtype),
      shard_(shard),
      layout_(make_parameter_layout(config_, shard_)) {
  if (dtype_ != DType::f32 && dtype_ != DType::f64) {
    throw std::invalid_argument("model dtype " + std::string(dtype_name(dtype_)) +
                                " (expected f32 or f64)");
  }
  const std::size_t bytes = static_cast<std::size_t>(layout_.total) * dtype_size(dtype_);
  params_buf_ = backend_.allocate(bytes, MemoryCategory::parameters, "parameters");
  grads_buf_ = backend_.allocate(bytes, MemoryCategory::gradients, "gradients");
  params_all_ = Tensor(params_buf_.data(), dtype_, {layout_.total});
  grads_all_ = Tensor(grads_buf_.data(), dtype_, {layout_.total});
  backend_.fill_zero(params_all_);
  backend_.fill_zero(grads_all_);
}

void GptModel::init_weights(std::uint64_t seed) {
  Rng rng(seed);
  const double residual_std = 0.02 / std::sqrt(2.0 * config_.n_layer);
  std::vector<double> host64;
  std::vector<float> host32;
  for (const auto& p : layout_.tensors) {
    const auto n = static_cast<std::size_t>(p.numel());
    host64.assign(n, 0.0);
    const bool is_norm_weight =
        p.name.ends_with("ln1.weight") || p.name.ends_with("ln2.weight") || p.name == "lnf.weight";
    if (is_norm_weight) {
      host64.assign(n, 1.0);
    } else if (p.shape.size() == 2) {
      const bool residual_proj =
          p.name.ends_with("attn.proj.weight") || p.name.ends_with("mlp.proj.weight");
      const double sd = residual_proj ? residual_std : 0.02;
      for (auto& x : host64) x = sd * rng.normal();
    }
    const Tensor dst = view(params_all_, p);
    if (dtype_ == DType::f64) {
      backend_.copy_from_host(dst, host64.data());
    } else {
      host32.assign(host64.begin(), host64.end());
      backend_.copy_from_host(dst, host32.data());
    }
  }
}

void GptModel::zero_grad() { backend_.fill_zero(grads_all_); }

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
  acts_ = {};
  acts_buf_ = {};
  acts_tokens_buf_ = {};
  work_buf_ = {};
}

void GptModel::set_precision(PrecisionPolicy precision) {
  if (dtype_ == DType::f64 && precision.mode != PrecisionMode::fp32) {
    throw std::invalid_argument("precision = " + std::string(precision_mode_name(precision.mode)) +
                                " on an f64 model (the f64 reference runs fp32 only)");
  }
  std::vector<DelayedScaling> fp8;
  if (precision.mode == PrecisionMode::fp8) {
    for (int i = 0; i < 4 * config_.n_layer; ++i) {
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
  acts_ = {};
  acts_buf_ = {};
  acts_tokens_buf_ = {};
  work_buf_ = {};
}

GemmPrecision GptModel::gemm_precision(int l, int j) {
  const PrecisionMode m = precision_.mode;
  GemmPrecision g;
  if (m == PrecisionMode::fp8 && l < config_.n_layer) {
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
  if (!shard_.whole()) {
    throw std::invalid_argument(
        "a sharded model (tensor_parallel > 1 or a pipeline stage) needs the parallel runtime, "
        "which is not built yet");
  }
  if (B <= 0) throw std::invalid_argument("micro_batch = " + std::to_string(B) + " (expected > 0)");
  acts_buf_ = {};
  acts_tokens_buf_ = {};
  work_buf_ = {};
  const std::int64_t T = config_.seq_len, C = config_.d_model, V = config_.vocab,
                     NH = config_.n_head, L = config_.n_layer;
  const std::int64_t interval = policy_.interval;
  // Full recompute: one segment's layers plus the input of each of the ⌈L/k⌉ segments.
  const std::int64_t n_layers = interval > 0 ? std::min(interval, L) : L;
  const std::int64_t n_segments = interval > 0 ? (L + interval - 1) / interval : 0;
  // Stored at the activation width; LayerNorm statistics, logits and losses in dtype_.
  const DType act = dtype_ == DType::f64 ? dtype_ : activation_dtype(precision_.mode);
  auto carve_acts = [&](Carver& k) {
    const auto A = [&](std::vector<std::int64_t> shape) { return k.take(act, std::move(shape)); };
    Activations a;
    a.encoded = A({B, T, C});
    if (n_segments > 0) a.segment_inputs.push_back(a.encoded);
    for (std::int64_t j = 1; j < n_segments; ++j) a.segment_inputs.push_back(A({B, T, C}));
    const Tensor shared_att = policy_.selective ? A({B, NH, T, T}) : Tensor{};
    a.layers.resize(static_cast<std::size_t>(n_layers));
    for (auto& la : a.layers) {
      la.ln1 = A({B, T, C});
      la.ln1_mean = k.take({B, T});
      la.ln1_rstd = k.take({B, T});
      la.qkv = A({B, T, 3 * C});
      la.att = policy_.selective ? shared_att : A({B, NH, T, T});
      la.atty = A({B, T, C});
      la.res_att = A({B, T, C});
      la.ln2 = A({B, T, C});
      la.ln2_mean = k.take({B, T});
      la.ln2_rstd = k.take({B, T});
      la.fch = A({B, T, 4 * C});
      la.fch_gelu = A({B, T, 4 * C});
      la.res_mlp = A({B, T, C});
    }
    a.lnf = A({B, T, C});
    a.lnf_mean = k.take({B, T});
    a.lnf_rstd = k.take({B, T});
    a.logits = k.take({B, T, V});
    a.losses = k.take({B, T});
    return a;
  };
  Carver sizing(nullptr, dtype_);
  carve_acts(sizing);
  acts_buf_ = backend_.allocate(sizing.used(), MemoryCategory::activations, "activations");
  Carver real(acts_buf_.data(), dtype_);
  acts_ = carve_acts(real);
  // Sized by the same carving as the views (targets start on a 64-byte boundary).
  auto carve_tokens = [&](Carver& k) {
    Tensor tokens = k.take({B, T});
    Tensor targets = k.take({B, T});
    return std::pair{tokens, targets};
  };
  Carver tok_size(nullptr, DType::i32);
  carve_tokens(tok_size);
  acts_tokens_buf_ = backend_.allocate(tok_size.used(), MemoryCategory::activations, "tokens");
  Carver tok(acts_tokens_buf_.data(), DType::i32);
  std::tie(acts_.tokens, acts_.targets) = carve_tokens(tok);

  // Activation gradients, at the activation width.
  auto carve_work = [&](Carver& k) {
    d_residual_ = k.take({B, T, C});
    d_tmp_ = k.take({B, T, C});
    d_qkv_ = k.take({B, T, 3 * C});
    d_fch_ = k.take({B, T, 4 * C});
    d_att_ = k.take({B, NH, T, T});
  };
  Carver wsize(nullptr, act);
  carve_work(wsize);
  work_buf_ = backend_.allocate(wsize.used(), MemoryCategory::workspace, "backward scratch");
  Carver wreal(work_buf_.data(), act);
  carve_work(wreal);
  B_ = B;
}

LayerActivations& GptModel::layer_acts(int l) {
  const int k = policy_.interval;
  return acts_.layers[static_cast<std::size_t>(k > 0 ? l % k : l)];
}

const Tensor& GptModel::layer_input(int l) {
  const int k = policy_.interval;
  if (k > 0 && l % k == 0) return acts_.segment_inputs[static_cast<std::size_t>(l / k)];
  return l == 0 ? acts_.encoded : layer_acts(l - 1).res_mlp;
}

void GptModel::layer_forward(int l) {
  auto& a = layer_acts(l);
  const Tensor& input = layer_input(l);
  const std::string b = block(l);
  auto& be = backend_;
  be.layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, input, param(b + "ln1.weight"),
                       param(b + "ln1.bias"));
  be.matmul_forward(a.qkv, a.ln1, gemm_weight(b + "attn.qkv.weight"), param(b + "attn.qkv.bias"),
                    false, gemm_precision(l, 0));
  be.attention_forward(a.atty, a.att, a.qkv, config_.n_head);
  be.copy(a.res_att, input);
  be.matmul_forward(a.res_att, a.atty, gemm_weight(b + "attn.proj.weight"),
                    param(b + "attn.proj.bias"), true, gemm_precision(l, 1));
  be.layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, a.res_att, param(b + "ln2.weight"),
                       param(b + "ln2.bias"));
  be.matmul_forward(a.fch, a.ln2, gemm_weight(b + "mlp.fc.weight"), param(b + "mlp.fc.bias"), false,
                    gemm_precision(l, 2));
  be.gelu_forward(a.fch_gelu, a.fch);
  be.copy(a.res_mlp, a.res_att);
  be.matmul_forward(a.res_mlp, a.fch_gelu, gemm_weight(b + "mlp.proj.weight"),
                    param(b + "mlp.proj.bias"), true, gemm_precision(l, 3));
}

double GptModel::forward(const std::int32_t* inputs, const std::int32_t* targets, int B) {
  ensure_buffers(B);
  const std::int64_t n = std::int64_t{B} * config_.seq_len;
  for (std::int64_t i = 0; i < n; ++i) {
    if (inputs[i] < 0 || inputs[i] >= config_.vocab || targets[i] < 0 ||
        targets[i] >= config_.vocab) {
      throw std::invalid_argument("token id at position " + std::to_string(i) +
                                  " outside [0, vocab = " + std::to_string(config_.vocab) + ")");
    }
  }
  if (!weights_lp_.empty()) backend_.convert(weights_lp_, params_all_);
  backend_.copy_from_host(acts_.tokens, inputs);
  backend_.copy_from_host(acts_.targets, targets);
  backend_.embedding_forward(acts_.encoded, acts_.tokens, param("wte"), param("wpe"));
  const int L = config_.n_layer, k = policy_.interval;
  for (int l = 0; l < L; ++l) {
    // A segment's input is kept apart from the segment buffers the previous block ran in.
    if (k > 0 && l > 0 && l % k == 0) {
      backend_.copy(acts_.segment_inputs[static_cast<std::size_t>(l / k)],
                    layer_acts(l - 1).res_mlp);
    }
    layer_forward(l);
  }
  const Tensor& x = L > 0 ? layer_acts(L - 1).res_mlp : acts_.encoded;
  backend_.layernorm_forward(acts_.lnf, acts_.lnf_mean, acts_.lnf_rstd, x, param("lnf.weight"),
                             param("lnf.bias"));
  backend_.matmul_forward(acts_.logits, acts_.lnf, gemm_weight("wte"), Tensor{}, false,
                          gemm_precision(L, 0));
  return backend_.softmax_cross_entropy_forward(acts_.logits, acts_.losses, acts_.targets);
}

// d_residual_ holds d(loss)/d(block output) on entry and d(loss)/d(block input) on exit.
void GptModel::layer_backward(int l, Profiler* profiler) {
  auto& a = layer_acts(l);
  const Tensor& input = layer_input(l);
  const std::string b = block(l);
  auto& be = backend_;
  if (policy_.selective) {
    // The probabilities from this layer's saved qkv; the attention output (already saved as
    // atty) goes to d_tmp_, free until the MLP's backward below.
    std::optional<Profiler::Range> r;
    if (profiler) r.emplace(*profiler, Phase::recompute);
    be.attention_forward(d_tmp_, a.att, a.qkv, config_.n_head);
  }
  // res_mlp = res_att + fch_gelu·Wpᵀ + bp
  be.matmul_backward(d_fch_, grad(b + "mlp.proj.weight"), grad(b + "mlp.proj.bias"), d_residual_,
                     a.fch_gelu, gemm_weight(b + "mlp.proj.weight"), gemm_precision(l, 3));
  be.gelu_backward(d_fch_, a.fch, d_fch_);
  be.matmul_backward(d_tmp_, grad(b + "mlp.fc.weight"), grad(b + "mlp.fc.bias"), d_fch_, a.ln2,
                     gemm_weight(b + "mlp.fc.weight"), gemm_precision(l, 2));
  be.layernorm_backward(d_residual_, grad(b + "ln2.weight"), grad(b + "ln2.bias"), d_tmp_,
                        a.res_att, param(b + "ln2.weight"), a.ln2_mean, a.ln2_rstd);
  // res_att = input + atty·Wapᵀ + bap
  be.matmul_backward(d_tmp_, grad(b + "attn.proj.weight"), grad(b + "attn.proj.bias"), d_residual_,
                     a.atty, gemm_weight(b + "attn.proj.weight"), gemm_precision(l, 1));
  be.attention_backward(d_qkv_, d_att_, d_tmp_, a.qkv, a.att, config_.n_head);
  be.matmul_backward(d_tmp_, grad(b + "attn.qkv.weight"), grad(b + "attn.qkv.bias"), d_qkv_, a.ln1,
                     gemm_weight(b + "attn.qkv.weight"), gemm_precision(l, 0));
  be.layernorm_backward(d_residual_, grad(b + "ln1.weight"), grad(b + "ln1.bias"), d_tmp_, input,
                        param(b + "ln1.weight"), a.ln1_mean, a.ln1_rstd);
}

void GptModel::backward(Profiler* profiler, double loss_scale) {
  if (B_ == 0) throw std::logic_error("backward() before forward()");
  const int L = config_.n_layer, k = policy_.interval;
  const std::int64_t N = std::int64_t{B_} * config_.seq_len;
  backend_.softmax_cross_entropy_backward(acts_.logits, acts_.targets, loss_scale / double(N));
  // With checkpointing the last block's output is still in the segment buffers from forward.
  const Tensor& last = L > 0 ? layer_acts(L - 1).res_mlp : acts_.encoded;
  backend_.matmul_backward(d_tmp_, grad("wte"), Tensor{}, acts_.logits, acts_.lnf,
                           gemm_weight("wte"), gemm_precision(L, 0));
  backend_.fill_zero(d_residual_);
  backend_.layernorm_backward(d_residual_, grad("lnf.weight"), grad("lnf.bias"), d_tmp_, last,
                              param("lnf.weight"), acts_.lnf_mean, acts_.lnf_rstd);
  if (k == 0) {
    for (int l = L - 1; l >= 0; --l) layer_backward(l, profiler);
  } else {
    for (int first = (L - 1) / k * k; first >= 0; first -= k) {
      const int end = std::min(first + k, L);
      {
        std::optional<Profiler::Range> r;
        if (profiler) r.emplace(*profiler, Phase::recompute);
        for (int l = first; l < end; ++l) layer_forward(l);
      }
      for (int l = end - 1; l >= first; --l) layer_backward(l, profiler);
    }
  }
  backend_.embedding_backward(grad("wte"), grad("wpe"), d_residual_, acts_.tokens);
  if (!fp8_.empty()) {
    backend_.synchronize();  // the amaxes are host values once the device is done
    for (auto& d : fp8_) d.commit();
  }
}

}  // namespace tb
