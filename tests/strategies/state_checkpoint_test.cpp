// Training-state checkpoints (train/training_state.h): training k steps, saving, loading into
// a fresh backend, model, data source and trainer, and training n − k more gives every
// per-step loss and every final weight bit of an uninterrupted n-step run — compared with ==,
// for AdamW in fp32, fp16 with dynamic loss scaling (the scale and the skipped steps carry),
// SGD with momentum, a cosine schedule with warm-up, LAMB with accumulation, fp8's delayed
// scaling, gradual pruning and a token-file source. Each piece of the state is shown to matter:
// a resume that loses the moments, the step count, the loss scale or the data position
// differs. Loading checks what it loads into: another model shape, a weights file, another
// optimizer or precision are one-line errors naming the value.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "data/markov_source.h"
#include "data/token_file.h"
#include "io/safetensors.h"
#include "numerics/numerics_util.h"
#include "profile/profiler.h"
#include "tb/cpu_backend.h"
#include "train/trainer.h"
#include "train/training_state.h"
#include "unit/temp_dir.h"

namespace tb::test {
namespace {

constexpr int kSeq = 16, kVocab = 32, kBatch = 2;
constexpr double kInitScale = 0x1p20;

struct Case {
  std::string name;
  std::string optimizer = "adamw";
  PrecisionMode precision = PrecisionMode::fp32;
  bool dynamic_scaling = false;
  std::string schedule = "constant";
  int accumulation = 1;
  bool pruning = false;
  bool token_file = false;
  int steps = 6, split = 3;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// One training setup, built from scratch: its own backend, model, data and trainer.
struct TrainingRun {
  std::unique_ptr<Backend> be = make_cpu_backend();
  std::unique_ptr<TokenSource> data;
  std::unique_ptr<GptModel> model;
  Profiler profiler{false};
  std::unique_ptr<Trainer> trainer;
  std::vector<bool> skipped;  // per step trained

  TrainingRun(const Case& c, const std::string& token_file, std::uint64_t init_seed,
              ModelConfig config = model_config(2, 16, 2, kSeq, kVocab)) {
    if (c.token_file) {
      data = std::make_unique<TokenFileSource>(token_file, TokenFormat::bytes, kVocab, 3, kSeq);
    } else {
      data = std::make_unique<MarkovSource>(kVocab, 4, 3);
    }
    model = std::make_unique<GptModel>(*be, config, DType::f32);
    model->set_precision({c.precision});
    model->init_weights(init_seed);
    OptimizerConfig opt;
    opt.name = c.optimizer;
    opt.lr = c.optimizer == "sgd" ? 0.05 : 3e-3;
    TrainingConfig t(kBatch, c.accumulation);
    t.schedule.kind = c.schedule;
    if (c.schedule == "cosine") {
      t.schedule.warmup_steps = 2;
      t.schedule.total_steps = c.steps;
    }
    if (c.dynamic_scaling) {
      // Starts far too high, so the first steps overflow and back off; grows every 2 good
      // steps, so the scale at the split is neither the initial one nor fixed.
      t.loss_scaling.dynamic = true;
      t.loss_scaling.init_scale = kInitScale;
      t.loss_scaling.growth_interval = 2;
    }
    if (c.pruning) {
      PruningConfig p;
      p.sparsity = 0.5;
      p.schedule = PruneSchedule::gradual;
      p.begin_step = 1;
      p.end_step = 5;
      p.frequency = 1;
      t.pruning = p;
    }
    trainer = std::make_unique<Trainer>(*model, *data, opt, t, profiler);
  }

  std::vector<double> train(int n) {
    std::vector<double> losses;
    for (int i = 0; i < n; ++i) {
      const StepRecord r = trainer->step();
      losses.push_back(r.loss);
      skipped.push_back(r.skipped);
    }
    return losses;
  }
  std::vector<unsigned char> weights() const {
    std::vector<unsigned char> v(model->params().bytes());
    be->copy_to_host(v.data(), model->params());
    return v;
  }
};

// What a run ends with: per-step losses (skipped steps included), the weights' bytes, the
// loss scale.
struct Outcome {
  std::vector<double> losses;
  std::vector<unsigned char> weights;
  double loss_scale = 1;
  long skipped = 0;
  std::vector<bool> skipped_steps;  // uninterrupted(): which steps overflowed
};

// The parts of the state held outside the weights and the optimizer's tensors.
struct StateSnapshot {
  long step = 0;
  LossScaler::State scaler;
  std::map<std::string, std::string> data;
  std::vector<std::vector<float>> fp8_histories;
  std::vector<float> fp8_scales;
  double sparsity = 0;
  std::vector<std::vector<std::uint8_t>> masks;
  bool operator==(const StateSnapshot& o) const {
    return step == o.step && scaler.scale == o.scaler.scale &&
           scaler.good_steps == o.scaler.good_steps && scaler.skipped == o.scaler.skipped &&
           scaler.growths == o.scaler.growths && data == o.data &&
           fp8_histories == o.fp8_histories && fp8_scales == o.fp8_scales &&
           sparsity == o.sparsity && masks == o.masks;
  }
};

StateSnapshot snapshot(TrainingRun& r) {
  StateSnapshot s;
  s.step = r.trainer->optimizer().steps_taken();
  s.scaler = r.trainer->loss_scaler().state();
  s.data = r.data->train_position();
  for (const DelayedScaling& d : std::as_const(*r.model).fp8_scaling()) {
    s.fp8_histories.push_back(d.history());
    s.fp8_scales.push_back(d.scale());
  }
  if (const Pruner* p = r.trainer->pruner()) {
    s.sparsity = p->current_sparsity();
    for (std::size_t i = 0; i < p->tensors().size(); ++i) s.masks.push_back(p->host_mask(i));
  }
  return s;
}

class StateCheckpoint : public TempDirTest, public ::testing::WithParamInterface<Case> {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    token_file_ = path("tokens.bin");
    std::string bytes(6000, '\0');
    Rng rng(11);
    for (auto& b : bytes) b = static_cast<char>(rng.below(kVocab));
    write_bytes(token_file_, bytes);
  }

  Outcome uninterrupted(const Case& c) {
    TrainingRun r(c, token_file_, 7);
    Outcome o;
    o.losses = r.train(c.steps);
    o.weights = r.weights();
    o.loss_scale = r.trainer->loss_scaler().scale();
    o.skipped = r.trainer->loss_scaler().skipped_steps();
    o.skipped_steps = r.skipped;
    return o;
  }

  // k steps, save; a fresh run (other initial weights) loads, `tamper` may spoil it, and it
  // trains the rest.
  Outcome resumed(const Case& c, const std::function<void(TrainingRun&)>& tamper = {}) {
    Outcome o;
    const std::string file = path("state.safetensors");
    std::optional<StateSnapshot> saved;
    {
      TrainingRun first(c, token_file_, 7);
      o.losses = first.train(c.split);
      const StateFileStats s = save_training_state(file, *first.trainer);
      EXPECT_GT(s.bytes, first.model->params().bytes());
      EXPECT_EQ(s.steps_run, c.split);
      saved = snapshot(first);
    }
    TrainingRun second(c, token_file_, 99);
    const StateFileStats s = load_training_state(file, *second.trainer);
    EXPECT_EQ(s.steps_run, c.split);
    // What is not a tensor of the model or optimizer, compared directly: some of it (pruning
    // masks, which the zeroed weights imply) would also be rebuilt by training on.
    EXPECT_TRUE(snapshot(second) == *saved);
    if (tamper) tamper(second);
    for (double l : second.train(c.steps - c.split)) o.losses.push_back(l);
    o.weights = second.weights();
    o.loss_scale = second.trainer->loss_scaler().scale();
    o.skipped = second.trainer->loss_scaler().skipped_steps();
    return o;
  }

  std::string token_file_;
};

TEST_P(StateCheckpoint, ResumeIsBitExact) {
  const Case c = GetParam();
  const Outcome a = uninterrupted(c);
  const Outcome b = resumed(c);
  ASSERT_EQ(a.losses.size(), static_cast<std::size_t>(c.steps));
  EXPECT_EQ(a.losses, b.losses);
  EXPECT_TRUE(a.weights == b.weights) << "final weights differ";
  EXPECT_EQ(a.loss_scale, b.loss_scale);
  EXPECT_EQ(a.skipped, b.skipped);
  if (c.dynamic_scaling) {
    // The test should see overflowing steps before the split and steps that train after it.
    const auto split = a.skipped_steps.begin() + c.split;
    EXPECT_NE(std::find(a.skipped_steps.begin(), split, true), split);
    EXPECT_NE(std::find(split, a.skipped_steps.end(), false), a.skipped_steps.end());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Trainer, StateCheckpoint,
    ::testing::Values(
        Case{.name = "adamw_fp32"},
        Case{.name = "fp16_dynamic_loss_scaling",
             .precision = PrecisionMode::fp16,
             .dynamic_scaling = true,
             .steps = 10,
             .split = 5},
        Case{.name = "sgd_momentum", .optimizer = "sgd"},
        Case{.name = "cosine_with_warmup", .schedule = "cosine", .steps = 7, .split = 1},
        Case{.name = "lamb_accumulation", .optimizer = "lamb", .accumulation = 2},
        Case{.name = "fp8_delayed_scaling", .precision = PrecisionMode::fp8},
        Case{.name = "gradual_pruning", .pruning = true},
        Case{.name = "token_file", .token_file = true}),
    [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

// Each part of the state matters: spoil one after the load and the run no longer matches.
class StateCheckpointSensitivity : public StateCheckpoint {};

TEST_F(StateCheckpointSensitivity, LosingTheAdamMomentsChangesTheRun) {
  const Case c{.name = "adamw"};
  const Outcome a = uninterrupted(c);
  const Outcome b = resumed(c, [](TrainingRun& r) {
    auto& adam = dynamic_cast<AdamW&>(r.trainer->optimizer());
    r.be->fill_zero(adam.first_moment());
    r.be->fill_zero(adam.second_moment());
  });
  EXPECT_NE(a.losses.back(), b.losses.back());
  EXPECT_FALSE(a.weights == b.weights);
}

TEST_F(StateCheckpointSensitivity, LosingTheStepCountChangesTheRun) {
  const Case c{.name = "adamw"};  // bias correction
  const Outcome a = uninterrupted(c);
  const Outcome b =
      resumed(c, [](TrainingRun& r) { r.trainer->optimizer().restore_steps_taken(0); });
  EXPECT_FALSE(a.weights == b.weights);
}

TEST_F(StateCheckpointSensitivity, LosingTheSgdMomentumChangesTheRun) {
  const Case c{.name = "sgd", .optimizer = "sgd"};
  const Outcome a = uninterrupted(c);
  const Outcome b = resumed(c, [](TrainingRun& r) {
    r.be->fill_zero(dynamic_cast<Sgd&>(r.trainer->optimizer()).momentum_buffer());
  });
  EXPECT_FALSE(a.weights == b.weights);
}

TEST_F(StateCheckpointSensitivity, LosingTheLossScaleChangesTheRun) {
  const Case c{.name = "fp16",
               .precision = PrecisionMode::fp16,
               .dynamic_scaling = true,
               .steps = 10,
               .split = 5};
  const Outcome a = uninterrupted(c);
  const Outcome b = resumed(c, [](TrainingRun& r) {
    r.trainer->loss_scaler().restore(
        {.scale = kInitScale, .good_steps = 0, .skipped = 0, .growths = 0});
  });
  EXPECT_NE(a.losses, b.losses);
}

TEST_F(StateCheckpointSensitivity, LosingTheDataPositionChangesTheRun) {
  const Case c{.name = "adamw"};
  const Outcome a = uninterrupted(c);
  const Outcome b = resumed(c, [](TrainingRun& r) {  // back at the stream's start
    r.data->restore_train_position(MarkovSource(kVocab, 4, 3).train_position());
  });
  EXPECT_NE(a.losses, b.losses);
}

// ---- what a load checks ----

class StateCheckpointErrors : public TempDirTest {};

TEST_F(StateCheckpointErrors, AnotherModelShapeIsNamed) {
  const Case c{.name = "adamw"};
  TrainingRun small(c, "", 7);
  small.train(1);
  const std::string file = path("s.safetensors");
  save_training_state(file, *small.trainer);
  TrainingRun wide(c, "", 7, model_config(2, 32, 2, kSeq, kVocab));
  const std::string msg =
      thrown_message<std::runtime_error>([&] { load_training_state(file, *wide.trainer); });
  EXPECT_NE(msg.find("d_model = 16"), std::string::npos) << msg;
  EXPECT_NE(msg.find("d_model = 32"), std::string::npos) << msg;
  EXPECT_NE(msg.find(file), std::string::npos) << msg;
}

TEST_F(StateCheckpointErrors, AWeightsFileIsNotAState) {
  const Case c{.name = "adamw"};
  TrainingRun r(c, "", 7);
  const std::string file = path("w.safetensors");
  save_safetensors(file, *r.model);
  const std::string msg =
      thrown_message<std::runtime_error>([&] { load_training_state(file, *r.trainer); });
  EXPECT_NE(msg.find("weights file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--save-state"), std::string::npos) << msg;
}

TEST_F(StateCheckpointErrors, AStateFileIsAlsoAWeightsFile) {
  const Case c{.name = "adamw"};
  TrainingRun r(c, "", 7);
  r.train(2);
  const std::string file = path("s.safetensors");
  save_training_state(file, *r.trainer);
  TrainingRun other(c, "", 99);
  load_safetensors(file, *other.model);
  EXPECT_TRUE(r.weights() == other.weights());
  EXPECT_EQ(read_safetensors_config(file).d_model, 16);
}

TEST_F(StateCheckpointErrors, AnotherOptimizerOrPrecisionIsNamed) {
  const Case adam{.name = "adamw"};
  TrainingRun r(adam, "", 7);
  r.train(1);
  const std::string file = path("s.safetensors");
  save_training_state(file, *r.trainer);
  TrainingRun sgd(Case{.name = "sgd", .optimizer = "sgd"}, "", 7);
  std::string msg =
      thrown_message<std::runtime_error>([&] { load_training_state(file, *sgd.trainer); });
  EXPECT_NE(msg.find("optimizer = adamw (this run's optimizer = sgd"), std::string::npos) << msg;
  TrainingRun bf16(Case{.name = "bf16", .precision = PrecisionMode::bf16}, "", 7);
  msg = thrown_message<std::runtime_error>([&] { load_training_state(file, *bf16.trainer); });
  EXPECT_NE(msg.find("precision = fp32"), std::string::npos) << msg;
}

TEST_F(StateCheckpointErrors, AMissingFileIsNamed) {
  TrainingRun r(Case{.name = "adamw"}, "", 7);
  const std::string file = path("absent.safetensors");
  const std::string msg =
      thrown_message<std::runtime_error>([&] { load_training_state(file, *r.trainer); });
  EXPECT_NE(msg.find(file), std::string::npos) << msg;
}

}  // namespace
}  // namespace tb::test
