// Reduced precision on the CPU, emulated: the fp32 kernels see fp32 stand-ins for bf16/f16
// tensors (decoded exactly on the way in, rounded to nearest even on the way out), and GEMM
// operands are rounded to their number format in a copy. The stand-ins live in one scratch
// arena that grows to the largest call's need and then stays, tracked under
// MemoryCategory::emulation (memory a GPU with native 16-bit kernels would not need).
#pragma once
#include <cstddef>
#include <utility>
#include <vector>

#include "../scratch_arena.h"
#include "tb/backend.h"

namespace tb::cpu {

// One backend call's stand-ins. Tensors that are not bf16/f16 (f32, f64, i32, empty) pass
// through as themselves, so an all-f32 call costs nothing.
class Staging {
 public:
  // stats: when given, every rounding into a 16-bit tensor (commit) and every rounding of an
  // operand marked `counted` (gemm_operand) is counted there.
  explicit Staging(ScratchArena& arena, RoundingStats* stats = nullptr)
      : arena_(arena), stats_(stats) {}
  ~Staging() { arena_.reset(); }
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;

  // An fp32 view holding t's values.
  Tensor in(const Tensor& t);
  // The view a kernel writes for t; a reduced t gets an fp32 stand-in that commit() rounds
  // back into it. load: the stand-in starts with t's values (for outputs that accumulate).
  Tensor out(const Tensor& t, bool load = false);
  // Scratch a kernel may overwrite whose values are dropped after the call: t itself, or an
  // fp32 stand-in of t's shape when t is reduced (never stored back).
  Tensor temp(const Tensor& t);
  // GEMM operand: the fp32 view `x` (from in()) entering as `op` says — x itself for fp32 or
  // when `stored` is already in op.format; else a rounded (FP8: scaled) copy. Records the
  // amax of x when op.amax is set.
  Tensor gemm_operand(const Tensor& x, const Tensor& stored, const GemmOperand& op,
                      bool counted = false);
  // Rounds every stand-in from out() into its tensor.
  void commit();

 private:
  Tensor scratch_like(const Tensor& t, DType dtype);
  ScratchArena& arena_;
  RoundingStats* stats_;
  std::vector<std::pair<Tensor, Tensor>> outputs_;  // (reduced tensor, fp32 stand-in)
};

// Adds to `stats` how rounding x[0..n) into f (FP8: x·scale, saturating) goes: underflow to
// zero, subnormal results, overflow to ±inf.
void count_rounding(NumberFormat f, const float* x, std::int64_t n, float scale,
                    RoundingStats& stats);

// dst = src between f32, bf16 and f16 (RNE), same element count.
void convert(const Tensor& dst, const Tensor& src);

}  // namespace tb::cpu
