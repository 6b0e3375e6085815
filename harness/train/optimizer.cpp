#include "optimizer.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace tb {

const std::vector<std::string>& optimizer_names() {
  static const std::vector<std::string> names = {"adamw", "lamb", "sgd"};
  return names;
}

Optimizer::Optimizer(GptModel& model, OptimizerConfig config)
    : model_(model), config_(std::move(config)) {}

Tensor Optimizer::state_like_params(Buffer& storage, std::string_view label) {
  Backend& be = model_.backend();
  const Tensor p = model_.params();
  storage = be.allocate(p.bytes(), MemoryCategory::optimizer_state, label);
  Tensor t(storage.data(), p.dtype, p.shape);
  be.fill_zero(t);
  return t;
}

OptimizerStepStats Optimizer::step(double lr, double loss_scale, bool skip_if_nonfinite) {
  if (!(loss_scale > 0) || !std::isfinite(loss_scale)) {
    throw std::invalid_argument("loss scale = " + std::to_string(loss_scale) +
                                " (expected a finite value > 0)");
  }
  Backend& be = model_.backend();
  OptimizerStepStats s;
  s.grad_norm = std::sqrt(be.sum_squares(model_.grads())) / loss_scale;
  if (skip_if_nonfinite && !std::isfinite(s.grad_norm)) {
    s.skipped = true;
    return s;
  }
  // Global-norm clipping (Pascanu et al. 2013): g ← g · min(1, clip/‖g‖).
  if (config_.grad_clip > 0 && s.grad_norm > config_.grad_clip) {
    s.clip_scale = config_.grad_clip / s.grad_norm;
  }
  ++t_;
  update(lr, s.clip_scale / loss_scale);
  return s;
}

// ---- AdamW ----

AdamW::AdamW(GptModel& model, OptimizerConfig config) : Optimizer(model, std::move(config)) {
  m_ = state_like_params(m_buf_, "adamw m");
  v_ = state_like_params(v_buf_, "adamw v");
}

void AdamW::update(double lr, double grad_scale) {
  Backend& be = model_.backend();
  AdamWParams hp;
  hp.lr = lr;
  hp.beta1 = config_.beta1;
  hp.beta2 = config_.beta2;
  hp.eps = config_.eps;
  hp.step = t_;
  hp.grad_scale = grad_scale;
  for (const auto& spec : model_.layout().tensors) {
    hp.weight_decay = spec.weight_decay ? config_.weight_decay : 0.0;
    auto v = [&](const Tensor& flat) { return flat.slice(spec.offset, spec.shape); };
    be.adamw_update(v(model_.params()), v(model_.grads()), v(m_), v(v_), hp);
  }
}

// ---- LAMB ----

double lamb_trust_ratio(double param_norm, double update_norm) {
  // You et al. 2019 (Alg. 2) with φ(z) = z; the reference implementations (NVIDIA apex,
  // TensorFlow Addons) fall back to 1 when either norm is zero.
  if (!(param_norm > 0) || !(update_norm > 0)) return 1.0;
  return param_norm / update_norm;
}

Lamb::Lamb(GptModel& model, OptimizerConfig config) : Optimizer(model, std::move(config)) {
  m_ = state_like_params(m_buf_, "lamb m");
  v_ = state_like_params(v_buf_, "lamb v");
  std::int64_t largest = 0;
  for (const auto& spec : model_.layout().tensors) largest = std::max(largest, spec.numel());
  const std::size_t bytes = static_cast<std::size_t>(largest) * dtype_size(model_.dtype());
  r_buf_ = model_.backend().allocate(bytes, MemoryCategory::workspace, "lamb update direction");
  r_ = Tensor(r_buf_.data(), model_.dtype(), {largest});
  trust_.assign(model_.layout().tensors.size(), 1.0);
}

void Lamb::update(double lr, double grad_scale) {
  Backend& be = model_.backend();
  LambParams hp;
  hp.beta1 = config_.beta1;
  hp.beta2 = config_.beta2;
  hp.eps = config_.eps;
  hp.step = t_;
  hp.grad_scale = grad_scale;
  const auto& tensors = model_.layout().tensors;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const ParameterSpec& spec = tensors[i];
    hp.weight_decay = spec.weight_decay ? config_.weight_decay : 0.0;
    auto v = [&](const Tensor& flat) { return flat.slice(spec.offset, spec.shape); };
    const Tensor p = v(model_.params());
    const Tensor r = r_.slice(0, spec.shape);
    const LambNorms n = be.lamb_direction(r, p, v(model_.grads()), v(m_), v(v_), hp);
    trust_[i] = lamb_trust_ratio(std::sqrt(n.param_sq), std::sqrt(n.update_sq));
    be.axpy(p, -lr * trust_[i], r);
  }
}

// ---- SGD ----

Sgd::Sgd(GptModel& model, OptimizerConfig config) : Optimizer(model, std::move(config)) {
  if (config_.momentum != 0) buf_ = state_like_params(buf_storage_, "sgd momentum");
}

void Sgd::update(double lr, double grad_scale) {
  Backend& be = model_.backend();
  SgdParams hp;
  hp.lr = lr;
  hp.momentum = config_.momentum;
  hp.grad_scale = grad_scale;
  for (const auto& spec : model_.layout().tensors) {
    hp.weight_decay = spec.weight_decay ? config_.weight_decay : 0.0;
    auto v = [&](const Tensor& flat) { return flat.slice(spec.offset, spec.shape); };
    be.sgd_update(v(model_.params()), v(model_.grads()), buf_.empty() ? Tensor{} : v(buf_), hp);
  }
}

// ---- factory ----

std::unique_ptr<Optimizer> make_optimizer(GptModel& model, const OptimizerConfig& config) {
  if (config.name == "adamw") return std::make_unique<AdamW>(model, config);
  if (config.name == "lamb") return std::make_unique<Lamb>(model, config);
  if (config.name == "sgd") return std::make_unique<Sgd>(model, config);
  std::string known;
  for (const auto& n : optimizer_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown optimizer '" + config.name + "' (expected one of: " + known +
                              ")");
}

}  // namespace tb
