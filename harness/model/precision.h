// Precision modes of a training step (the scenario's `precision` key). Every mode keeps fp32
// master weights, fp32 weight gradients and fp32 optimizer state (Micikevicius et al. 2018,
// "Mixed Precision Training", §3.1); they differ in what the GEMMs multiply and in how wide
// the saved activations and activation gradients are stored:
//
//   mode  GEMM operands (fp32 accumulation)          activations, their gradients
//   fp32  fp32                                        fp32
//   tf32  tf32 (10 mantissa bits; NVIDIA A100 TF32)  fp32
//   bf16  bf16                                        bf16
//   fp16  fp16                                        fp16 (loss scaling: train/loss_scaler.h)
//   fp8   E4M3 weights and activations, E5M2 output   bf16
//         gradients, per-tensor delayed scaling
//         (Micikevicius et al. 2022, "FP8 Formats for Deep Learning", §3-4; fp8_scaling.h)
//
// In the 16-bit and fp8 modes the model multiplies with a 16-bit copy of the master weights
// (bf16; fp16 in fp16 mode), refreshed from them at each forward, as autocast and Megatron-LM
// do. LayerNorm statistics, the logits and the loss stay fp32 (autocast runs LayerNorm and
// cross-entropy in fp32; Megatron-LM computes the loss on fp32 logits). In fp8 mode the LM
// head (the tied embedding's GEMM) runs in bf16: Transformer Engine recipes put only the
// blocks' linear layers under fp8.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tb/dtype.h"
#include "tb/number_format.h"

namespace tb {

enum class PrecisionMode : std::uint8_t { fp32, tf32, bf16, fp16, fp8 };

std::string_view precision_mode_name(PrecisionMode m);
// Throws std::invalid_argument naming the value and the accepted ones.
PrecisionMode parse_precision_mode(std::string_view s);
const std::vector<std::string>& precision_mode_names();

struct PrecisionPolicy {
  PrecisionMode mode = PrecisionMode::fp32;
  // fp8 delayed scaling: amaxes remembered per tensor, and the margin m in
  // scale = max_format / (amax · 2^m).
  int fp8_amax_history = 16;
  int fp8_margin = 0;
};

// How wide the model stores saved activations and activation gradients (f32, bf16, f16).
DType activation_dtype(PrecisionMode m);
// The 16-bit dtype of the weight copy the GEMMs read; f32 when the mode multiplies the
// master weights directly (fp32, tf32).
DType gemm_weight_dtype(PrecisionMode m);
// Format of the forward GEMMs' operands (inputs and weights), and of the output gradients
// entering the backward GEMMs.
NumberFormat forward_gemm_format(PrecisionMode m);
NumberFormat gradient_gemm_format(PrecisionMode m);

}  // namespace tb
