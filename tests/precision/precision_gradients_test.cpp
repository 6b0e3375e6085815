// Each precision mode's loss and gradients against the double-precision model on the same
// weights and batch: the error must sit within what the mode's number formats justify, and
// above fp32's, so a mode that silently ran in fp32 fails too. Relative errors by norm over
// all parameters; the unit roundoffs u = 2^-(mantissa bits + 1) are tf32 2^-11 ≈ 4.9e-4,
// fp16 2^-11, bf16 2^-8 ≈ 3.9e-3, E4M3 2^-4, E5M2 2^-3 (tb/number_format.h).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/gpt.h"
#include "numerics/numerics_util.h"
#include "tb/cpu_backend.h"

namespace tb::test {
namespace {

constexpr int kLayers = 2, kWidth = 32, kHeads = 4, kSeq = 24, kVocab = 41, kBatch = 3;

struct Result {
  double loss;
  std::vector<double> grads;
};

Result loss_and_grads(DType dtype, PrecisionMode mode, double loss_scale) {
  auto be = make_cpu_backend();
  GptModel model(*be, model_config(kLayers, kWidth, kHeads, kSeq, kVocab), dtype);
  model.set_precision({mode});
  model.init_weights(11);
  if (dtype == DType::f32) {  // the f64 model's weights, rounded once to f32, for both
    auto be64 = make_cpu_backend();
    GptModel ref(*be64, model.config(), DType::f64);
    ref.init_weights(11);
    upload(*be, model.params(), download(*be64, ref.params()));
  }
  Rng rng(4);
  const auto n = static_cast<std::size_t>(kBatch * kSeq);
  const auto in = ids_vec(rng, n, kVocab), tg = ids_vec(rng, n, kVocab);
  model.zero_grad();
  Result r;
  r.loss = model.forward(in.data(), tg.data(), kBatch);
  model.backward(nullptr, loss_scale);
  r.grads = download(*be, model.grads());
  for (auto& g : r.grads) g /= loss_scale;
  return r;
}

TEST(PrecisionGradients, ErrorAgainstF64WithinFormatBounds) {
  const Result ref = loss_and_grads(DType::f64, PrecisionMode::fp32, 1.0);
  // Bounds: a few times u times a growth factor for the depth of the computation; fp16 runs
  // with a loss scale of 1024 (its gradients would otherwise be subnormal).
  struct Mode {
    PrecisionMode mode;
    double loss_scale, max_grad_err, min_grad_err;
  };
  // (Measured on a 2-layer model: fp32 2e-7, tf32 3e-4, fp16 6e-4, bf16 5e-3, fp8 4e-2.)
  const Mode modes[] = {{PrecisionMode::fp32, 1, 1e-5, 0},
                        {PrecisionMode::tf32, 1, 4 * 0x1p-11, 1e-5},
                        {PrecisionMode::fp16, 1024, 4 * 0x1p-11, 1e-5},
                        {PrecisionMode::bf16, 1, 5 * 0x1p-8, 1e-4},
                        {PrecisionMode::fp8, 1, 3 * 0x1p-4, 1e-3}};
  std::map<std::string, double> err;
  for (const Mode& m : modes) {
    const std::string name(precision_mode_name(m.mode));
    SCOPED_TRACE(name);
    const Result r = loss_and_grads(DType::f32, m.mode, m.loss_scale);
    const double loss_err = std::abs(r.loss - ref.loss) / ref.loss;
    const double grad_err = rel_err(r.grads, ref.grads);
    noted(name + " loss rel err", loss_err);
    noted(name + " grad rel err", grad_err);
    err[name] = grad_err;
    EXPECT_LT(grad_err, m.max_grad_err);
    EXPECT_GT(grad_err, m.min_grad_err) << "no rounding happened?";
    EXPECT_LT(loss_err, m.max_grad_err);
  }
  // Coarser formats err more: fp32 < tf32 ≈ fp16 < bf16 < fp8.
  EXPECT_LT(err["fp32"], err["tf32"]);
  EXPECT_LT(err["tf32"], err["bf16"]);
  EXPECT_LT(err["fp16"], err["bf16"]);
  EXPECT_LT(err["bf16"], err["fp8"]);
}

TEST(PrecisionGradients, F64ModelRejectsReducedPrecision) {
  auto be = make_cpu_backend();
  GptModel model(*be, model_config(1, 16, 2, 8, 20), DType::f64);
  try {
    model.set_precision({PrecisionMode::bf16});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("precision = bf16"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tb::test
