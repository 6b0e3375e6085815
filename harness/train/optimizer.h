// Optimizers over a model's flat parameters: AdamW, LAMB and SGD with momentum, all behind
// one interface and all with global gradient-norm clipping (Pascanu et al. 2013):
// g ← g · min(1, clip/‖g‖), ‖g‖ the L2 norm over every parameter's gradient.
//
// Defaults are GPT-3's AdamW (Brown et al. 2020, App. B): β1 = 0.9, β2 = 0.95, ε = 1e−8,
// weight decay 0.1, gradients clipped to global norm 1.0. Weight decay applies only to the
// tensors the ParameterLayout flags (matmul weights and embeddings).
//
//  - adamw: decoupled weight decay (Loshchilov & Hutter 2019, Alg. 2) with Adam's bias
//    correction (Kingma & Ba 2015, Alg. 1); Backend::adamw_update.
//  - lamb: You et al. 2019, "Large Batch Optimization for Deep Learning", Alg. 2: Adam's
//    bias-corrected moments, r = m̂/(√v̂ + ε) + λ·p, and per parameter TENSOR the trust
//    ratio φ(‖p‖)/‖r‖ with φ the identity (1 when either norm is 0); p −= lr·trust·r.
//    Backend::lamb_direction computes r and both norms; the ratio is computed here.
//  - sgd: PyTorch's torch.optim.SGD (dampening 0, no Nesterov): weight decay is coupled
//    (L2: g ← g + wd·p before the momentum), v = μ·v + g, p −= lr·v; Backend::sgd_update.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../model/gpt.h"

namespace tb {

struct OptimizerConfig {
  std::string name = "adamw";  // adamw | lamb | sgd
  double lr = 6e-4;            // peak learning rate (the schedule's; step() takes the lr)
  double beta1 = 0.9;          // adamw, lamb
  double beta2 = 0.95;         // adamw, lamb
  double eps = 1e-8;           // adamw, lamb
  double weight_decay = 0.1;   // adamw, lamb: decoupled; sgd: coupled (L2)
  double grad_clip = 1.0;      // ≤ 0: no clipping
  double momentum = 0.9;       // sgd (0: plain SGD, no state)
};
// The former name, from when AdamW was the only optimizer.
using AdamWConfig = OptimizerConfig;

// The optimizer names make_optimizer accepts, in documentation order.
const std::vector<std::string>& optimizer_names();

// Which part of the flat parameters this rank's optimizer updates, and how the global
// gradient norm is formed — for parallel runs (docs/parallel.md). ZeRO stage 1 (Rajbhandari
// et al. 2020, §5.1) gives each data-parallel rank a 1/dp slice [begin, end): its optimizer
// state (and fp32 master weights) exist only for that slice.
struct OptimizerPartition {
  std::int64_t begin = 0;
  std::int64_t end = -1;  // −1: through the end of the layout
  // Σ g² over the WHOLE job's gradients (each parameter counted once). Empty: this model's
  // sum_squares.
  std::function<double()> grad_sum_squares;
  // False when a parameter tensor may be split over ranks (tensor parallelism, ZeRO): LAMB's
  // per-tensor trust ratio needs whole tensors and refuses.
  bool whole_tensors = true;
};

struct OptimizerStepStats {
  double grad_norm = 0;   // global L2 norm before clipping (of the unscaled gradients)
  double clip_scale = 1;  // factor applied to the (unscaled) gradients
  bool skipped = false;   // non-finite gradients, step not taken (skip_if_nonfinite)
};

class Optimizer {
 public:
  Optimizer(GptModel& model, OptimizerConfig config, OptimizerPartition partition = {});
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual std::string name() const = 0;
  // One update from the model's accumulated gradients, at learning rate lr: the global
  // gradient norm and clipping scale, then update(). The gradients are not modified.
  // loss_scale: the gradients hold loss_scale·∇ (loss scaling), divided out here. With
  // skip_if_nonfinite, a non-finite gradient norm (an overflow) takes no step: the step
  // count is unchanged and the stats say skipped.
  virtual OptimizerStepStats step(double lr, double loss_scale = 1, bool skip_if_nonfinite = false);
  long steps_taken() const { return t_; }
  // Sets the step count (bias correction, the lr schedule's position): checkpoint restore.
  void restore_steps_taken(long t) { t_ = t; }
  const OptimizerConfig& config() const { return config_; }
  std::int64_t partition_begin() const { return begin_; }
  std::int64_t partition_end() const { return end_; }

 protected:
  // One parameter tensor's part inside the partition: flat views of the parameters and
  // gradients, and the offset of the part in the optimizer state.
  struct Part {
    const ParameterSpec* spec;
    Tensor params, grads;
    std::int64_t state_offset;
    bool whole;  // the part is the whole tensor
    Tensor state(const Tensor& flat_state) const {
      return flat_state.slice(state_offset, params.shape);
    }
  };
  std::vector<Part> parts() const;
  // The update proper: step t_ (1-based, already incremented), gradients to be multiplied
  // by grad_scale first.
  virtual void update(double lr, double grad_scale) = 0;
  // A zeroed buffer like the partition's parameters, tracked as MemoryCategory::optimizer_state.
  Tensor state_like_params(Buffer& storage, std::string_view label);

  GptModel& model_;
  OptimizerConfig config_;
  OptimizerPartition partition_;
  std::int64_t begin_, end_;
  long t_ = 0;
};

class AdamW final : public Optimizer {
 public:
  AdamW(GptModel& model, OptimizerConfig config, OptimizerPartition partition = {});
  std::string name() const override { return "adamw"; }
  Tensor first_moment() const { return m_; }
  Tensor second_moment() const { return v_; }

 private:
  void update(double lr, double grad_scale) override;
  Buffer m_buf_, v_buf_;
  Tensor m_, v_;
};

class Lamb final : public Optimizer {
 public:
  Lamb(GptModel& model, OptimizerConfig config, OptimizerPartition partition = {});
  std::string name() const override { return "lamb"; }
  Tensor first_moment() const { return m_; }
  Tensor second_moment() const { return v_; }
  // The trust ratio each parameter tensor (layout order) got in the last step.
  const std::vector<double>& last_trust_ratios() const { return trust_; }

 private:
  void update(double lr, double grad_scale) override;
  Buffer m_buf_, v_buf_, r_buf_;
  Tensor m_, v_;
  Tensor r_;  // scratch for one tensor's direction (workspace), the largest tensor's size
  std::vector<double> trust_;
};

class Sgd final : public Optimizer {
 public:
  Sgd(GptModel& model, OptimizerConfig config, OptimizerPartition partition = {});
  std::string name() const override { return "sgd"; }
  // Empty when momentum is 0.
  Tensor momentum_buffer() const { return buf_; }

 private:
  void update(double lr, double grad_scale) override;
  Buffer buf_storage_;
  Tensor buf_;
};

// LAMB's trust ratio φ(‖p‖)/‖r‖ with φ the identity; 1 when either norm is 0.
double lamb_trust_ratio(double param_norm, double update_norm);

// Builds the optimizer `config.name` names; std::invalid_argument naming an unknown one.
std::unique_ptr<Optimizer> make_optimizer(GptModel& model, const OptimizerConfig& config,
                                          const OptimizerPartition& partition = {});

}  // namespace tb
