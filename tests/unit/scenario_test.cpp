// Scenario files: sweep expansion (product and zip), baseline selection, --set overrides,
// defaults, and one precise one-line error for every kind of bad input.
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "scenario/scenario.h"
#include "unit/temp_dir.h"

namespace tb {
namespace {

using nlohmann::json;
using test::thrown_message;

const char* const kFile = "scen.json";

// A tiny model so that every variant resolves quickly: 1 block, 2 heads of 16, T=16, V=64.
const char* const kTinyBase =
    R"("base": {"layers": 1, "d_model": 32, "heads": 2, "seq": 16, "vocab": 64})";

std::string doc(const std::string& rest) {
  return std::string(R"({"name": "t", )") + kTinyBase + (rest.empty() ? "" : ", " + rest) + "}";
}

Scenario parse(const std::string& text, const std::vector<std::string>& sets = {}) {
  return parse_scenario(text, kFile, sets);
}

std::vector<std::string> ids(const Scenario& s) {
  std::vector<std::string> out;
  for (const auto& v : s.variants) out.push_back(v.id);
  return out;
}

// The error for `text` must be one line that names the file and contains every `part`.
void expect_error(const std::string& text, std::initializer_list<const char*> parts,
                  const std::vector<std::string>& sets = {}) {
  const std::string msg =
      thrown_message<ScenarioError>([&] { (void)parse_scenario(text, kFile, sets); });
  SCOPED_TRACE(msg);
  EXPECT_EQ(msg.rfind(std::string(kFile) + ": ", 0), 0u) << "does not start with the file name";
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line";
  for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "missing: " << p;
}

// ---- expansion ----

TEST(ScenarioExpansion, ProductVariesTheLastAxisFastest) {
  const Scenario s = parse(doc(R"("sweep": {"micro_batch": [4, 8], "layers": [1, 2, 3]})"));
  EXPECT_EQ(s.mode, SweepMode::product);
  EXPECT_EQ(s.axes, (std::vector<std::string>{"micro_batch", "layers"}));  // file order
  EXPECT_EQ(ids(s), (std::vector<std::string>{"micro_batch=4,layers=1", "micro_batch=4,layers=2",
                                              "micro_batch=4,layers=3", "micro_batch=8,layers=1",
                                              "micro_batch=8,layers=2", "micro_batch=8,layers=3"}));
  for (std::size_t i = 0; i < s.variants.size(); ++i) {
    const Variant& v = s.variants[i];
    EXPECT_EQ(v.index, i);
    EXPECT_EQ(v.keys, (json{{"micro_batch", i < 3 ? 4 : 8}, {"layers", int(i % 3) + 1}}));
    EXPECT_EQ(v.config.micro_batch, i < 3 ? 4 : 8);
    EXPECT_EQ(v.config.proxy.n_layer, int(i % 3) + 1);
    EXPECT_EQ(v.config.proxy.d_model, 32);  // from the base
  }
}

TEST(ScenarioExpansion, ZipPairsTheIthValues) {
  const Scenario s =
      parse(doc(R"("sweep": {"layers": [1, 2, 3], "heads": [1, 2, 4]}, "sweep_mode": "zip")"));
  EXPECT_EQ(s.mode, SweepMode::zip);
  EXPECT_EQ(ids(s),
            (std::vector<std::string>{"layers=1,heads=1", "layers=2,heads=2", "layers=3,heads=4"}));
  EXPECT_EQ(s.variants[2].config.proxy.n_layer, 3);
  EXPECT_EQ(s.variants[2].config.proxy.n_head, 4);
  EXPECT_EQ(s.variants[1].keys, (json{{"layers", 2}, {"heads", 2}}));
}

TEST(ScenarioExpansion, NoSweepIsOneBaseVariant) {
  const Scenario s = parse(doc(""));
  ASSERT_EQ(s.variants.size(), 1u);
  EXPECT_EQ(s.variants[0].id, "base");
  EXPECT_EQ(s.variants[0].keys, json::object());
  EXPECT_TRUE(s.variants[0].is_baseline);
  EXPECT_TRUE(s.axes.empty());
}

TEST(ScenarioExpansion, IdsPrintValuesCompactly) {
  const Scenario s = parse(doc(
      R"("sweep": {"lr": [0.001, null], "data": ["synthetic", "a b.bin"], "width_scale": [1.0]})"));
  EXPECT_EQ(ids(s),
            (std::vector<std::string>{
                "lr=0.001,data=synthetic,width_scale=1.0", "lr=0.001,data=a b.bin,width_scale=1.0",
                "lr=null,data=synthetic,width_scale=1.0", "lr=null,data=a b.bin,width_scale=1.0"}));
  EXPECT_EQ(s.variants[0].config.lr, 0.001);
  EXPECT_FALSE(s.variants[2].config.lr.has_value());
  EXPECT_EQ(s.variants[1].config.data, "a b.bin");
}

TEST(ScenarioExpansion, SweepValueWinsOverTheBase) {
  const Scenario s = parse(R"({"name": "t", "base": {"micro_batch": 2, "layers": 1, "seq": 8},
                               "sweep": {"micro_batch": [16]}})");
  EXPECT_EQ(s.base.micro_batch, 2);
  EXPECT_EQ(s.variants[0].config.micro_batch, 16);
  EXPECT_EQ(s.variants[0].config.proxy.seq_len, 8);
}

// ---- defaults ----

TEST(ScenarioDefaults, MinimalFileGetsEveryDefault) {
  const Scenario s = parse(R"({"name": "minimal"})");
  EXPECT_EQ(s.name, "minimal");
  EXPECT_EQ(s.description, "");
  EXPECT_EQ(s.path, kFile);
  const RunConfig& r = s.variants.at(0).config;
  EXPECT_EQ(r.preset, "gpt3-125m");
  EXPECT_FALSE(r.proxy.any());
  EXPECT_EQ(r.micro_batch, 4);
  EXPECT_FALSE(r.global_batch.has_value());
  EXPECT_EQ(r.resolved_global_batch(), 4);
  EXPECT_EQ(r.precision, "fp32");
  EXPECT_EQ(r.checkpoint_interval, 0);
  EXPECT_EQ(r.optimizer, "adamw");
  EXPECT_FALSE(r.lr.has_value());
  EXPECT_EQ(r.lr_schedule, "constant");
  EXPECT_EQ(r.lr_warmup_steps, 0);
  EXPECT_EQ(r.min_lr_ratio, 0.1);
  EXPECT_EQ(r.weight_decay, 0.1);
  EXPECT_EQ(r.grad_clip, 1.0);
  EXPECT_EQ(r.beta1, 0.9);
  EXPECT_EQ(r.beta2, 0.95);
  EXPECT_EQ(r.momentum, 0.9);
  EXPECT_EQ(r.device, "auto");
  EXPECT_EQ(r.threads, 0);
  EXPECT_EQ(r.data, "synthetic");
  EXPECT_EQ(r.data_format, "bytes");
  EXPECT_EQ(r.markov_branching, 4);
  EXPECT_EQ(r.memory_limit_bytes, 0);
  EXPECT_EQ(s.measure.warmup_steps, 2);
  EXPECT_EQ(s.measure.min_steps, 5);
  EXPECT_EQ(s.measure.max_steps, 50);
  EXPECT_EQ(s.measure.target_rel_noise, 0.02);
  EXPECT_EQ(s.measure.time_budget_s, 30);
  EXPECT_EQ(s.accuracy.train_steps, 100);
  EXPECT_EQ(s.accuracy.eval_interval, 0);
  EXPECT_EQ(s.accuracy.eval_batches, 4);
  EXPECT_EQ(s.accuracy.seeds, 3);
  EXPECT_EQ(s.accuracy.seed, 1u);
}

TEST(ScenarioDefaults, EveryKeyIsRead) {
  const Scenario s = parse(R"({"name": "all", "description": "d", "base": {
      "preset": "gpt3-350m", "layers": 2, "width_scale": 0.25, "seq": 32, "vocab": 100,
      "micro_batch": 3, "global_batch": 12, "precision": "fp16", "checkpoint_interval": 0,
      "loss_scaling": "none", "loss_scale_init": 1024, "loss_scale_growth_interval": 50,
      "fp8_amax_history": 4, "fp8_margin": 1,
      "optimizer": "lamb", "lr": 3e-4, "lr_schedule": "cosine", "lr_warmup_steps": 7,
      "min_lr_ratio": 0.25, "weight_decay": 0, "grad_clip": -1, "beta1": 0.8, "beta2": 0.99,
      "momentum": 0.5, "device": "cpu", "threads": 2,
      "data": "tokens.bin", "data_format": "u16", "markov_branching": 2,
      "memory_limit_bytes": 1e9},
    "measure": {"warmup_steps": 0, "min_steps": 3, "max_steps": 3, "target_rel_noise": 0.5,
                "time_budget_s": 1.5},
    "accuracy": {"train_steps": 0, "eval_interval": 5, "eval_batches": 1, "seeds": 1,
                 "seed": 18446744073709551615}})");
  const RunConfig& r = s.base;
  EXPECT_EQ(s.description, "d");
  EXPECT_EQ(r.preset, "gpt3-350m");
  EXPECT_EQ(r.proxy.width_scale, 0.25);
  EXPECT_EQ(r.lr, 3e-4);
  EXPECT_EQ(r.global_batch, 12);
  EXPECT_EQ(r.resolved_global_batch(), 12);
  EXPECT_EQ(r.optimizer, "lamb");
  EXPECT_EQ(r.lr_schedule, "cosine");
  EXPECT_EQ(r.lr_warmup_steps, 7);
  EXPECT_EQ(r.min_lr_ratio, 0.25);
  EXPECT_EQ(r.beta1, 0.8);
  EXPECT_EQ(r.beta2, 0.99);
  EXPECT_EQ(r.momentum, 0.5);
  EXPECT_EQ(r.grad_clip, -1);
  EXPECT_EQ(r.device, "cpu");
  EXPECT_EQ(r.data, "tokens.bin");
  EXPECT_EQ(r.data_format, "u16");
  EXPECT_EQ(r.memory_limit_bytes, 1'000'000'000);
  EXPECT_EQ(s.measure.time_budget_s, 1.5);
  EXPECT_EQ(s.accuracy.seed, 18446744073709551615u);
  EXPECT_EQ(s.variants[0].config.threads, 2);
}

TEST(ScenarioDefaults, ToJsonHasEveryConfigurationKey) {
  const Scenario s = parse(R"({"name": "t", "base": {"layers": 2, "lr": 0.01}})");
  const json j = s.variants[0].config.to_json();
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), config_keys().size());
  for (const auto& k : config_keys()) EXPECT_TRUE(j.contains(k.key)) << k.key;
  EXPECT_EQ(j["layers"], 2);
  EXPECT_TRUE(j["d_model"].is_null());  // unset proxy keys: null
  EXPECT_EQ(j["lr"], 0.01);
  EXPECT_TRUE(RunConfig{}.to_json()["lr"].is_null());  // default lr: null
  EXPECT_EQ(j["preset"], "gpt3-125m");
  EXPECT_EQ(j["memory_limit_bytes"], 0);
  EXPECT_TRUE(j["global_batch"].is_null());  // default: micro_batch
  EXPECT_EQ(j["lr_schedule"], "constant");
  EXPECT_EQ(j["lr_warmup_steps"], 0);
  EXPECT_EQ(j["min_lr_ratio"], 0.1);
  EXPECT_EQ(j["momentum"], 0.9);
}

// ---- optimizers, schedules and gradient accumulation ----

TEST(ScenarioOptimizer, OptimizerNamesAndRanges) {
  for (const char* name : {"adamw", "lamb", "sgd"}) {
    const Scenario s =
        parse(std::string(R"({"name": "t", "base": {"optimizer": ")") + name + R"("}})");
    EXPECT_EQ(s.base.optimizer, name);
  }
  expect_error(R"({"name": "t", "base": {"optimizer": "adam"}})",
               {R"(/base/optimizer: "adam" (expected one of: adamw, lamb, sgd))"});
  expect_error(R"({"name": "t", "base": {"momentum": 1}})",
               {"/base/momentum: 1 (expected a number from 0 to below 1)"});
  expect_error(R"({"name": "t", "base": {"beta2": -0.1}})",
               {"/base/beta2: -0.1 (expected a number from 0 to below 1)"});
  expect_error(R"({"name": "t", "base": {"min_lr_ratio": 1.5}})",
               {"/base/min_lr_ratio: 1.5 (expected a number from 0 to 1)"});
  expect_error(R"({"name": "t", "base": {"lr_schedule": "linear"}})",
               {R"(/base/lr_schedule: "linear" (expected one of: constant, cosine))"});
  expect_error(R"({"name": "t", "base": {"lr_warmup_steps": -1}})",
               {"/base/lr_warmup_steps: -1 (expected an integer >= 0)"});
}

TEST(ScenarioAccumulation, GlobalBatchMustBeAMultipleOfMicroBatch) {
  const Scenario ok = parse(R"({"name": "t", "base": {"micro_batch": 4, "global_batch": 16}})");
  EXPECT_EQ(ok.base.resolved_global_batch(), 16);
  const Scenario reset = parse(R"({"name": "t", "base": {"global_batch": null}})");
  EXPECT_FALSE(reset.base.global_batch.has_value());
  expect_error(R"({"name": "t", "base": {"micro_batch": 4, "global_batch": 6}})",
               {"/base/global_batch: variant 0 (base): global_batch = 6 is not a multiple "
                "of micro_batch·dp = 4 (expected a multiple >= micro_batch·dp, or null for "
                "micro_batch·dp)"});
  expect_error(R"({"name": "t", "base": {"micro_batch": 8, "global_batch": 4}})",
               {"/base/global_batch: variant 0 (base): global_batch = 4 is not a multiple "
                "of micro_batch·dp = 8 (expected a multiple >= micro_batch·dp, or null for "
                "micro_batch·dp)"});
  expect_error(R"({"name": "t", "base": {"global_batch": 0}})",
               {"/base/global_batch: 0 (expected an integer from 1 to 1048576 (a multiple "
                "of micro_batch), or null)"});
}

// The impossible combination is per variant and names the sweep value responsible.
TEST(ScenarioAccumulation, SweptMicroBatchThatDoesNotDivideIsAVariantError) {
  const Scenario s = parse(R"({"name": "t", "base": {"global_batch": 16},
                               "sweep": {"micro_batch": [16, 8, 4, 2]}})");
  ASSERT_EQ(s.variants.size(), 4u);
  EXPECT_EQ(s.variants[3].config.resolved_global_batch() / s.variants[3].config.micro_batch, 8);
  expect_error(R"({"name": "t", "base": {"global_batch": 16},
                   "sweep": {"micro_batch": [16, 8, 3]}})",
               {"/sweep/micro_batch/2: variant 2 (micro_batch=3): global_batch = 16 is not "
                "a multiple of micro_batch·dp = 3 (expected a multiple >= micro_batch·dp, or null "
                "for micro_batch·dp)"});
}

TEST(ScenarioSchedule, CosineWarmUpMustLeaveDecaySteps) {
  expect_error(R"({"name": "t", "base": {"lr_schedule": "cosine", "lr_warmup_steps": 10},
                   "accuracy": {"train_steps": 10}})",
               {"/base/lr_warmup_steps: variant 0 (base): lr_warmup_steps = 10 leaves no "
                "cosine decay in train_steps = 10 (expected lr_warmup_steps < "
                "/accuracy/train_steps)"});
  // Without an accuracy run (or with a constant schedule) the warm-up is not limited.
  parse(R"({"name": "t", "base": {"lr_schedule": "cosine", "lr_warmup_steps": 10},
            "accuracy": {"train_steps": 0}})");
  parse(R"({"name": "t", "base": {"lr_warmup_steps": 500}, "accuracy": {"train_steps": 10}})");
}

TEST(ScenarioDefaults, ConfigKeysTableDescribesEnums) {
  bool saw_precision = false, saw_preset = false;
  for (const auto& k : config_keys()) {
    EXPECT_FALSE(k.help.empty()) << k.key;
    EXPECT_EQ(k.help.find('\n'), std::string::npos) << k.key;
    if (k.key == "precision") {
      saw_precision = true;
      EXPECT_EQ(k.type, "enum");
      EXPECT_EQ(k.choices, (std::vector<std::string>{"fp32", "tf32", "bf16", "fp16", "fp8"}));
    }
    if (k.key == "preset") {
      saw_preset = true;
      EXPECT_EQ(k.choices.size(), gpt3_presets().size());
    }
    if (k.type != "enum") {
      EXPECT_TRUE(k.choices.empty()) << k.key;
    }
  }
  EXPECT_TRUE(saw_precision && saw_preset);
}

// ---- baseline ----

TEST(ScenarioBaseline, FirstVariantWhenAbsent) {
  const Scenario s = parse(doc(R"("sweep": {"micro_batch": [1, 2, 3]})"));
  EXPECT_TRUE(s.variants[0].is_baseline);
  EXPECT_FALSE(s.variants[1].is_baseline || s.variants[2].is_baseline);
}

TEST(ScenarioBaseline, SelectsTheNamedVariant) {
  const Scenario s = parse(doc(R"("sweep": {"micro_batch": [1, 2], "layers": [1, 2]},
                                  "baseline": {"layers": 1, "micro_batch": 2})"));
  int n = 0;
  for (const auto& v : s.variants) n += v.is_baseline;
  EXPECT_EQ(n, 1);
  EXPECT_TRUE(s.variants[2].is_baseline) << s.variants[2].id;  // micro_batch=2,layers=1
}

TEST(ScenarioBaseline, OneAxisIsEnoughInZipMode) {
  const Scenario s = parse(doc(R"("sweep": {"micro_batch": [1, 2], "layers": [1, 2]},
                                  "sweep_mode": "zip", "baseline": {"layers": 2.0})"));
  EXPECT_TRUE(s.variants[1].is_baseline);
  EXPECT_FALSE(s.variants[0].is_baseline);
}

// ---- --set ----

TEST(ScenarioSet, DottedPathsIntoTheDocument) {
  const Scenario s = parse(doc(R"("measure": {"max_steps": 20})"),
                           {"measure.max_steps=10", "base.lr=3e-4", "accuracy.seeds=1",
                            "name=renamed", "measure.min_steps=2"});
  EXPECT_EQ(s.measure.max_steps, 10);
  EXPECT_EQ(s.measure.min_steps, 2);
  EXPECT_EQ(s.base.lr, 3e-4);
  EXPECT_EQ(s.accuracy.seeds, 1);
  EXPECT_EQ(s.name, "renamed");
  EXPECT_EQ(s.document["measure"]["max_steps"], 10);  // the document after overrides
  EXPECT_EQ(s.document["name"], "renamed");
}

TEST(ScenarioSet, BareConfigurationKeyMeansBase) {
  const Scenario s = parse(doc(""), {"micro_batch=8", "precision=fp32", "data=my tokens.bin"});
  EXPECT_EQ(s.base.micro_batch, 8);
  EXPECT_EQ(s.variants[0].config.micro_batch, 8);
  EXPECT_EQ(s.document["base"]["micro_batch"], 8);
  EXPECT_EQ(s.base.precision, "fp32");  // not JSON: a plain string
  EXPECT_EQ(s.document["base"]["data"], "my tokens.bin");
}

TEST(ScenarioSet, JsonValuesAndNewSections) {
  const Scenario s = parse(R"({"name": "t", "base": {"layers": 1, "seq": 8}})",
                           {"sweep.micro_batch=[4,8]", "baseline={\"micro_batch\": 8}", "lr=null",
                            "sweep.micro_batch.2=16"});
  EXPECT_EQ(ids(s), (std::vector<std::string>{"micro_batch=4", "micro_batch=8", "micro_batch=16"}));
  EXPECT_TRUE(s.variants[1].is_baseline);
  EXPECT_FALSE(s.base.lr.has_value());
}

TEST(ScenarioSet, AppliedInOrderAndSweepWinsOverBase) {
  const Scenario s = parse(doc(R"("sweep": {"micro_batch": [1, 2]})"),
                           {"layers=3", "layers=2", "micro_batch=64", "sweep.micro_batch.0=5"});
  EXPECT_EQ(s.base.proxy.n_layer, 2);
  EXPECT_EQ(s.base.micro_batch, 64);
  EXPECT_EQ(ids(s), (std::vector<std::string>{"micro_batch=5", "micro_batch=2"}));
  EXPECT_EQ(s.variants[0].config.micro_batch, 5);  // the sweep wins over base.micro_batch
}

// ---- files ----

class ScenarioFile : public test::TempDirTest {};

TEST_F(ScenarioFile, LoadsFromDisk) {
  const std::string p = path("s.json");
  write_bytes(p, doc(R"("sweep": {"micro_batch": [1, 2]})"));
  const Scenario s = load_scenario(p, {"accuracy.train_steps=0"});
  EXPECT_EQ(s.path, p);
  EXPECT_EQ(s.variants.size(), 2u);
  EXPECT_EQ(s.accuracy.train_steps, 0);
}

TEST_F(ScenarioFile, MissingFileNamesPathAndReason) {
  const std::string p = path("absent.json");
  const std::string msg = thrown_message<ScenarioError>([&] { (void)load_scenario(p); });
  EXPECT_EQ(msg, "cannot open scenario file '" + p + "': No such file or directory");
}

TEST_F(ScenarioFile, DirectoryIsAReadError) {
  const std::string msg = thrown_message<ScenarioError>([&] { (void)load_scenario(dir_); });
  EXPECT_NE(msg.find("scenario file '" + dir_.string() + "'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Is a directory"), std::string::npos) << msg;
}

TEST_F(ScenarioFile, ErrorsNameTheFile) {
  const std::string p = path("bad.json");
  write_bytes(p, R"({"name": "t", "base": {"micro_bach": 4}})");
  const std::string msg = thrown_message<ScenarioError>([&] { (void)load_scenario(p); });
  EXPECT_EQ(msg, p + ": /base/micro_bach: unknown key (did you mean \"micro_batch\"?)");
}

// ---- bad input: every message is one line naming the file, the pointer and the value ----

TEST(ScenarioErrors, UnknownKeySuggestsTheNearest) {
  expect_error(R"({"name": "t", "base": {"micro_bach": 4}})",
               {"/base/micro_bach: unknown key (did you mean \"micro_batch\"?)"});
  expect_error(R"({"name": "t", "sweeep": {}})", {"/sweeep: unknown key", "\"sweep\""});
  expect_error(R"({"name": "t", "sweep": {"Layer": [1]}})", {"/sweep/Layer", "\"layers\""});
  expect_error(R"({"name": "t", "measure": {"max_step": 4}})",
               {"/measure/max_step", "\"max_steps\""});
  expect_error(R"({"name": "t", "accuracy": {"seed_count": 4}})", {"/accuracy/seed_count"});
  expect_error(R"({"name": "t", "sweep": {"layers": [1, 2]}, "baseline": {"layer": 1}})",
               {"/baseline/layer: unknown key (did you mean \"layers\"?)"});
}

TEST(ScenarioErrors, WrongTypes) {
  expect_error(doc(R"("sweep": {"micro_batch": [4, "8"]})"),
               {"/sweep/micro_batch/1: \"8\" (expected", "integer"});
  expect_error(R"({"name": "t", "base": {"lr": "fast"}})", {"/base/lr: \"fast\" (expected"});
  expect_error(R"({"name": "t", "base": {"precision": 32}})",
               {"/base/precision: 32 (expected one of: fp32, tf32, bf16, fp16, fp8)"});
  expect_error(R"({"name": "t", "base": {"layers": 2.5}})", {"/base/layers: 2.5"});
  expect_error(R"({"name": "t", "base": {"micro_batch": true}})", {"/base/micro_batch: true"});
  expect_error(R"({"name": "t", "base": [1]})", {"/base: [1] (expected an object"});
  expect_error(R"({"name": "t", "sweep": {"layers": 2}})",
               {"/sweep/layers: 2 (expected a non-empty array"});
  expect_error(R"({"name": 5})", {"/name: 5 (expected a non-empty string)"});
  expect_error(R"({"name": "t", "description": ["x"]})", {"/description"});
  expect_error(R"({"name": "t", "sweep_mode": "cartesian"})",
               {"/sweep_mode: \"cartesian\" (expected one of: product, zip)"});
  expect_error(R"({"name": "t", "measure": 3})", {"/measure: 3 (expected an object"});
  expect_error(R"({"name": "t", "base": {"data": 1}})", {"/base/data: 1"});
  expect_error(R"({"description": "no name"})", {"/name: missing"});
  expect_error(R"([{"name": "t"}])", {"[{\"name\":\"t\"}] (expected a JSON object"});
}

TEST(ScenarioErrors, OutOfRange) {
  expect_error(R"({"name": "t", "base": {"micro_batch": 0}})",
               {"/base/micro_batch: 0 (expected an integer from 1"});
  expect_error(R"({"name": "t", "base": {"layers": -2}})", {"/base/layers: -2"});
  expect_error(R"({"name": "t", "base": {"heads": 99999999999}})", {"/base/heads: 99999999999"});
  expect_error(R"({"name": "t", "base": {"width_scale": 0}})", {"/base/width_scale: 0"});
  expect_error(R"({"name": "t", "base": {"lr": -0.1}})", {"/base/lr: -0.1 (expected a positive"});
  expect_error(R"({"name": "t", "base": {"weight_decay": -1}})", {"/base/weight_decay: -1"});
  expect_error(R"({"name": "t", "base": {"threads": -1}})", {"/base/threads: -1"});
  expect_error(R"({"name": "t", "base": {"markov_branching": 0}})", {"/base/markov_branching: 0"});
  expect_error(R"({"name": "t", "base": {"memory_limit_bytes": -5}})",
               {"/base/memory_limit_bytes: -5"});
  expect_error(R"({"name": "t", "base": {"checkpoint_interval": -1}})",
               {"/base/checkpoint_interval: -1"});
  expect_error(R"({"name": "t", "base": {"loss_scaling": "static"}})",
               {"/base/loss_scaling: \"static\" (expected one of: auto, dynamic, none)"});
  expect_error(R"({"name": "t", "base": {"loss_scale_init": 0}})",
               {"/base/loss_scale_init: 0 (expected a number in (0, 2^100])"});
  expect_error(R"({"name": "t", "base": {"loss_scale_growth_interval": 0}})",
               {"/base/loss_scale_growth_interval: 0"});
  expect_error(R"({"name": "t", "base": {"fp8_amax_history": 0}})",
               {"/base/fp8_amax_history: 0 (expected an integer from 1 to 1024"});
  expect_error(R"({"name": "t", "base": {"fp8_margin": 17}})", {"/base/fp8_margin: 17"});
  expect_error(R"({"name": "t", "base": {"checkpoint_selective": 1}})",
               {"/base/checkpoint_selective: 1 (expected true or false"});
  expect_error(
      R"({"name": "t", "base": {"checkpoint_selective": true}, "sweep": {"checkpoint_interval": [0, 2]}})",
      {"/sweep/checkpoint_interval/1", "checkpoint_selective = true with checkpoint_interval = 2"});
  expect_error(R"({"name": "t", "measure": {"warmup_steps": -1}})", {"/measure/warmup_steps: -1"});
  expect_error(R"({"name": "t", "measure": {"min_steps": 0}})", {"/measure/min_steps: 0"});
  expect_error(R"({"name": "t", "measure": {"min_steps": 8, "max_steps": 4}})",
               {"/measure/max_steps: 4 (expected an integer >= min_steps = 8)"});
  expect_error(R"({"name": "t", "measure": {"min_steps": 80}})",
               {"/measure/min_steps: 80 (expected an integer <= max_steps = 50"});
  expect_error(R"({"name": "t", "measure": {"target_rel_noise": 0}})",
               {"/measure/target_rel_noise: 0"});
  expect_error(R"({"name": "t", "measure": {"time_budget_s": -1}})", {"/measure/time_budget_s"});
  expect_error(R"({"name": "t", "accuracy": {"train_steps": -1}})", {"/accuracy/train_steps: -1"});
  expect_error(R"({"name": "t", "accuracy": {"eval_batches": 0}})", {"/accuracy/eval_batches: 0"});
  expect_error(R"({"name": "t", "accuracy": {"seeds": 0}})", {"/accuracy/seeds: 0"});
  expect_error(R"({"name": "t", "accuracy": {"seed": -1}})", {"/accuracy/seed: -1"});
}

TEST(ScenarioErrors, BadEnumValueInASweep) {
  expect_error(doc(R"("sweep": {"precision": ["fp32", "fp32", "fp99"]})"),
               {"/sweep/precision/2: \"fp99\" (expected one of: fp32, tf32, bf16, fp16, fp8)"});
  expect_error(doc(R"("sweep": {"device": ["cpu", "tpu"]})"),
               {"/sweep/device/1: \"tpu\" (expected one of: auto, cpu, cuda)"});
}

TEST(ScenarioErrors, ZipLengthMismatchNamesTheAxis) {
  expect_error(doc(R"("sweep": {"layers": [1, 2], "micro_batch": [1, 2, 3]}, "sweep_mode": "zip")"),
               {"/sweep/micro_batch: 3 values (expected 2", "/sweep/layers"});
}

TEST(ScenarioErrors, EmptySweepArray) {
  expect_error(doc(R"("sweep": {"micro_batch": []})"),
               {"/sweep/micro_batch: [] (expected a non-empty array"});
}

TEST(ScenarioErrors, RepeatedSweepValue) {
  expect_error(doc(R"("sweep": {"micro_batch": [4, 8, 4]})"),
               {"/sweep/micro_batch/2", "micro_batch=4", "/sweep/micro_batch/0"});
}

TEST(ScenarioErrors, BaselineThatIsNotAValueOrAxis) {
  expect_error(
      doc(R"("sweep": {"micro_batch": [4, 8]}, "baseline": {"micro_batch": 5})"),
      {"/baseline/micro_batch: 5 (expected one of the values of /sweep/micro_batch: 4, 8)"});
  expect_error(doc(R"("sweep": {"micro_batch": [4, 8]}, "baseline": {"layers": 1})"),
               {"/baseline/layers: not a sweep axis (expected one of: micro_batch)"});
  expect_error(doc(R"("baseline": {"layers": 1})"), {"/baseline/layers: not a sweep axis"});
  expect_error(doc(R"("sweep": {"micro_batch": [4]}, "baseline": "micro_batch=4")"),
               {"/baseline: \"micro_batch=4\" (expected an object"});
}

TEST(ScenarioErrors, BaselineMatchingNoVariant) {
  expect_error(doc(R"("sweep": {"micro_batch": [1, 2], "layers": [1, 2]}, "sweep_mode": "zip",
                      "baseline": {"micro_batch": 1, "layers": 2})"),
               {"/baseline: {\"micro_batch\":1,\"layers\":2} selects no variant"});
}

TEST(ScenarioErrors, BaselineMatchingSeveralVariants) {
  expect_error(doc(R"("sweep": {"micro_batch": [1, 2], "layers": [1, 2]},
                      "baseline": {"micro_batch": 2})"),
               {"/baseline: {\"micro_batch\":2} selects 2 variants",
                "micro_batch=2,layers=1; micro_batch=2,layers=2"});
}

TEST(ScenarioErrors, HeadsNotDividingTheWidthInOneVariant) {
  expect_error(doc(R"("sweep": {"heads": [2, 3, 4]})"),
               {"/sweep/heads/1: variant 1 (heads=3): heads = 3 does not divide d_model = 32"});
  // In the base: the pointer is the base key.
  expect_error(R"({"name": "t", "base": {"d_model": 100, "heads": 3, "layers": 1}})",
               {"/base/heads: variant 0 (base): heads = 3 does not divide d_model = 100"});
  // The varying key is blamed: d_model sweeps over a fixed head count.
  expect_error(doc(R"("sweep": {"micro_batch": [1], "d_model": [32, 33]})"),
               {"/sweep/d_model/1: variant 1 (micro_batch=1,d_model=33)"});
}

TEST(ScenarioErrors, UnknownPreset) {
  expect_error(
      doc(R"("sweep": {"preset": ["gpt3-125m", "gpt3-1b"]})"),
      {"/sweep/preset/1: variant 1 (preset=gpt3-1b): unknown preset 'gpt3-1b'", "gpt3-175b"});
  expect_error(R"({"name": "t", "base": {"preset": "gpt-4"}})",
               {"/base/preset: variant 0 (base): unknown preset 'gpt-4'"});
  expect_error(R"({"name": "t", "base": {"preset": 125}})", {"/base/preset: 125 (expected"});
}

TEST(ScenarioErrors, ImpossibleSizes) {
  expect_error(R"({"name": "t", "base": {"width_scale": 1000, "preset": "gpt3-175b"}})",
               {"/base/width_scale: variant 0 (base): width_scale = 1000", "(expected at most"});
  expect_error(
      doc(R"("sweep": {"markov_branching": [4, 65]})"),
      {"/sweep/markov_branching/1: variant 1 (markov_branching=65)", "exceeds vocab = 64"});
}

TEST(ScenarioErrors, MalformedJsonGivesLineAndColumn) {
  expect_error("{\"name\": \"t\",\n  \"base\": {\n    \"layers\" 2}}",
               {"line 3, column", "syntax error", "expected ':'"});
  expect_error("", {"line 1, column 1", "unexpected end of input"});
  expect_error("{\"name\": \"t\"} trailing", {"line 1, column", "expected end of input"});
  expect_error("{\"name\": \"a\nb\"}", {"line 2", "control character"});
}

TEST(ScenarioErrors, StructuralProblemsInOtherwiseValidJson) {
  expect_error(R"({"name": "t", "base": {"layers": 1, "layers": 2}})",
               {"/base/layers: duplicate key \"layers\""});
  expect_error(R"({"name": "t", "base": {"lr": 1e999}})", {"/base/lr: number overflow", "1e999"});
  expect_error(std::string(100, '[') + std::string(100, ']'), {"nested deeper than"});
  expect_error(
      doc(R"("sweep": {"micro_batch": [1,2,3,4,5,6,7,8,9,10], "threads": [0,1,2,3,4,5,6,7,8,9],
                      "layers": [1,2,3,4,5,6,7,8,9,10], "seq": [1,2,3,4,5,6,7,8,9,10,11]})"),
      {"/sweep: the product of the axes has more than 10000 variants"});
}

TEST(ScenarioErrors, MessagesStayOnOneLineAndShort) {
  expect_error("{\"name\": \"t\", \"base\": {\"micro\\nbatch\": 1}}",
               {"/base/micro\\nbatch: unknown key"});
  expect_error(R"({"name": "t", "base": {"data": "a\nb", "seq": "x\ty"}})", {"/base/seq"});
  const std::string long_key(100000, 'k');
  const std::string msg = thrown_message<ScenarioError>(
      [&] { (void)parse(R"({"name": "t", "base": {")" + long_key + R"(": 1}})"); });
  EXPECT_LT(msg.size(), 400u);
  EXPECT_NE(msg.find("/base/kkkk"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown key"), std::string::npos) << msg;
}

TEST(ScenarioErrors, MalformedSet) {
  expect_error(doc(""), {"--set 'micro_batch'", "expected KEY=VALUE"}, {"micro_batch"});
  expect_error(doc(""), {"--set '=4'", "expected KEY=VALUE"}, {"=4"});
  expect_error(doc(""), {"--set 'base..lr=1'", "empty name"}, {"base..lr=1"});
  expect_error(doc(""), {"--set 'micro_bach=8': unknown key \"micro_bach\"", "\"micro_batch\""},
               {"micro_bach=8"});
  expect_error(doc(""), {"--set 'name.first=x': /name is a string"}, {"name.first=x"});
  expect_error(doc(R"("sweep": {"layers": [1]})"), {"--set 'sweep.layers.5=1': /sweep/layers"},
               {"sweep.layers.5=1"});
  expect_error(doc(""), {"--set 'lr=1e999'", "number overflow"}, {"lr=1e999"});
  // Results files are JSON: a plain-string value must be UTF-8.
  expect_error(doc(""), {"--set 'data=", "not valid UTF-8"}, {"data=\xff\xfe.bin"});
  EXPECT_EQ(parse(doc(""), {"data=t\xc3\xb6kens.bin"}).base.data, "t\xc3\xb6kens.bin");
}

TEST(ScenarioErrors, SetValuesAreValidatedLikeTheFile) {
  expect_error(doc(""),
               {"/base/precision: \"fp99\" (expected one of: fp32, tf32, bf16, fp16, fp8)"},
               {"precision=fp99"});
  expect_error(doc(""), {"/measure/max_steps: 0"}, {"measure.max_steps=0"});
  expect_error(doc(""), {"/sweep/micro_batch: [] (expected a non-empty array"},
               {"sweep.micro_batch=[]"});
  expect_error(doc(""), {"/measure/max_stepz: unknown key (did you mean \"max_steps\"?)"},
               {"measure.max_stepz=3"});
}

// ---- parallel splits (docs/parallel.md) ----

TEST(ScenarioParallel, KeysExpandAndResolveTheBatchOverReplicas) {
  const Scenario s = parse(R"({"name": "t", "base": {"layers": 4, "heads": 4, "d_model": 64,
      "micro_batch": 2, "global_batch": 16},
      "sweep": {"dp": [1, 2], "tp": [2, 1], "pp": [2, 4], "pp_schedule": ["gpipe", "1f1b"]},
      "sweep_mode": "zip"})");
  ASSERT_EQ(s.variants.size(), 2u);
  const RunConfig& a = s.variants[0].config;
  EXPECT_EQ(a.ranks(), 4);
  EXPECT_EQ(a.micro_batches(), 8);
  EXPECT_EQ(a.pp_schedule, "gpipe");
  const RunConfig& b = s.variants[1].config;
  EXPECT_EQ(b.ranks(), 8);
  EXPECT_EQ(b.micro_batches(), 4);  // 16 / (2 · 2)
  const Scenario d = parse(R"({"name": "t", "base": {"micro_batch": 3, "dp": 4}})");
  EXPECT_EQ(d.base.resolved_global_batch(), 12);  // one micro-batch per replica
  EXPECT_EQ(d.base.to_json()["dp"], 4);
}

TEST(ScenarioParallel, ImpossibleSplitsAreOneLineErrorsNamingTheValue) {
  expect_error(R"({"name": "t", "base": {"heads": 4, "d_model": 64, "tp": 3}})",
               {"/base/tp: variant 0 (base): tp = 3 does not divide heads = 4 (expected a "
                "divisor of the head count)"});
  expect_error(R"({"name": "t", "base": {"layers": 2, "pp": 3}})",
               {"/base/pp: variant 0 (base): pp = 3 exceeds layers = 2 (expected at most one "
                "stage per layer)"});
  expect_error(R"({"name": "t", "base": {"micro_batch": 4, "dp": 2, "global_batch": 12}})",
               {"global_batch = 12 is not a multiple of micro_batch·dp = 8"});
  expect_error(R"({"name": "t", "base": {"sequence_parallel": true}})",
               {"/base/sequence_parallel: variant 0 (base): sequence_parallel = true with tp = 1 "
                "(expected tp > 1"});
  expect_error(R"({"name": "t", "base": {"heads": 4, "d_model": 64, "optimizer": "lamb",
                   "tp": 2}})",
               {"optimizer lamb with tp = 2, zero = 0 (expected adamw or sgd"});
  expect_error(R"({"name": "t", "base": {"virtual_stages": 2}})",
               {"/base/virtual_stages: variant 0 (base): virtual_stages = 2 (expected 1: "
                "interleaved 1F1B is not built"});
  expect_error(R"({"name": "t", "base": {"pp_schedule": "zb"}})",
               {"/base/pp_schedule", "one of: gpipe, 1f1b"});
  expect_error(R"({"name": "t", "base": {"zero": 2}})", {"/base/zero: 2"});
  expect_error(R"({"name": "t", "base": {"dp": 0}})", {"/base/dp: 0"});
  expect_error(R"({"name": "t", "base": {"bucket_mb": 0}})", {"/base/bucket_mb: 0"});
}

// ---- pruning (train/pruning.h) ----

TEST(ScenarioPruning, KeysExpandWithDefaults) {
  const Scenario s = parse(R"({"name": "t",
                               "sweep": {"prune_pattern": ["unstructured", "2:4"],
                                         "prune_schedule": ["oneshot", "gradual"]},
                               "base": {"layers": 1, "d_model": 32, "heads": 2, "seq": 16,
                                        "vocab": 64, "prune_sparsity": 0.5,
                                        "prune_end_step": 20, "prune_frequency": 5},
                               "accuracy": {"train_steps": 30}})");
  ASSERT_EQ(s.variants.size(), 4u);
  EXPECT_EQ(s.variants[3].config.prune_pattern, "2:4");
  EXPECT_EQ(s.variants[3].config.prune_schedule, "gradual");
  EXPECT_TRUE(s.variants[0].config.pruning());
  const json j = s.variants[1].config.to_json();
  EXPECT_EQ(j["prune_sparsity"], 0.5);
  EXPECT_EQ(j["prune_end_step"], 20);
  EXPECT_EQ(j["prune_frequency"], 5);
  EXPECT_EQ(j["prune_begin_step"], 0);
  const RunConfig d;
  EXPECT_FALSE(d.pruning());  // off by default
  EXPECT_TRUE(d.to_json()["prune_end_step"].is_null());
  EXPECT_EQ(d.to_json()["prune_pattern"], "unstructured");
  // N:M alone turns pruning on at 1 - N/M.
  EXPECT_TRUE(parse(R"({"name": "t", "base": {"prune_pattern": "1:4"}})").base.pruning());
}

TEST(ScenarioPruning, BadInputIsOneLineNamingTheValue) {
  expect_error(R"({"name": "t", "base": {"prune_sparsity": 1}})",
               {"/base/prune_sparsity: 1 (expected a number from 0 to below 1 (0: no pruning))"});
  expect_error(R"({"name": "t", "base": {"prune_sparsity": -0.5}})",
               {"/base/prune_sparsity: -0.5 (expected a number from 0 to below 1"});
  for (const char* bad : {"4:2", "2:2", "0:4", "2:4:8", "dense"}) {
    expect_error(
        std::string(R"({"name": "t", "sweep": {"prune_pattern": ["2:4", ")") + bad + R"("]}})",
        {"/sweep/prune_pattern/1: \"", bad,
         "\" (expected \"unstructured\" or \"N:M\" with 1 <= N < M <= 65536"});
  }
  expect_error(R"({"name": "t", "base": {"prune_pattern": 24}})",
               {"/base/prune_pattern: 24 (expected \"unstructured\" or \"N:M\""});
  expect_error(R"({"name": "t", "base": {"prune_schedule": "cubic"}})",
               {R"(/base/prune_schedule: "cubic" (expected one of: oneshot, gradual))"});
  expect_error(R"({"name": "t", "base": {"prune_frequency": 0}})",
               {"/base/prune_frequency: 0 (expected a positive integer)"});
  expect_error(R"({"name": "t", "base": {"prune_begin_step": -1}})",
               {"/base/prune_begin_step: -1 (expected an integer >= 0)"});
  expect_error(R"({"name": "t", "base": {"prune_end_step": 0}})",
               {"/base/prune_end_step: 0 (expected a positive integer, or null (oneshot))"});
  // Combinations, per variant, naming the key responsible.
  expect_error(R"({"name": "t", "base": {"prune_pattern": "2:4", "prune_sparsity": 0.7}})",
               {"/base/prune_sparsity: variant 0 (base): prune_sparsity = 0.7 with prune_pattern "
                "2:4 (expected 0 or 0.5 = 1 - N/M"});
  expect_error(R"({"name": "t", "base": {"prune_sparsity": 0.5, "prune_schedule": "gradual"}})",
               {"/base/prune_schedule: variant 0 (base): prune_schedule gradual without "
                "prune_end_step (expected an integer > prune_begin_step = 0"});
  expect_error(R"({"name": "t", "base": {"prune_sparsity": 0.5, "prune_schedule": "gradual",
                   "prune_begin_step": 10, "prune_end_step": 10}})",
               {"/base/prune_end_step: variant 0 (base): prune_end_step = 10 (expected > "
                "prune_begin_step = 10)"});
  expect_error(R"({"name": "t", "base": {"prune_sparsity": 0.5, "prune_schedule": "gradual",
                   "prune_end_step": 50}, "accuracy": {"train_steps": 50}})",
               {"/base/prune_end_step: variant 0 (base): prune_end_step = 50 is not reached in "
                "train_steps = 50 (expected prune_end_step < /accuracy/train_steps"});
  expect_error(R"({"name": "t", "base": {"prune_sparsity": 0.5, "prune_begin_step": 100},
                   "accuracy": {"train_steps": 50}})",
               {"/base/prune_begin_step: variant 0 (base): prune_begin_step = 100 is not reached"});
  expect_error(R"({"name": "t", "base": {"d_model": 36, "heads": 2, "layers": 1},
                   "sweep": {"prune_pattern": ["unstructured", "1:8"]}})",
               {"/sweep/prune_pattern/1: variant 1 (prune_pattern=1:8): prune_pattern 1:8: "
                "blocks.*.attn.proj.weight has input dimension d_model/tp = 36 (expected a "
                "multiple of M = 8"});
  // Pruning off: its other keys are not checked together.
  parse(R"({"name": "t", "base": {"prune_schedule": "gradual"}})");
  // Without an accuracy run the steps are not limited.
  parse(R"({"name": "t", "base": {"prune_sparsity": 0.5, "prune_begin_step": 100},
            "accuracy": {"train_steps": 0}})");
}

}  // namespace
}  // namespace tb

namespace tb {
namespace {

// Mixture-of-experts keys (docs/sparse.md): values outside their range, and combinations the
// model cannot run, are one-line errors naming the value and what was expected.
TEST(ScenarioMoe, BadValuesAndCombinationsAreOneLineErrors) {
  const Scenario s = parse_scenario(
      R"({"name": "t", "base": {"layers": 4, "experts": 8, "top_k": 2, "moe_every": 2,
          "capacity_factor": 1.5, "moe_aux_loss": 0.02, "moe_z_loss": 0.001}})",
      "t.json");
  const MoeConfig m = s.base.moe();
  EXPECT_EQ(m.experts, 8);
  EXPECT_EQ(m.top_k, 2);
  EXPECT_EQ(m.every, 2);
  EXPECT_DOUBLE_EQ(m.capacity_factor, 1.5);
  EXPECT_EQ(s.base.to_json()["experts"], 8);
  EXPECT_EQ(variant_model(s.base, preset("gpt3-125m")).moe.moe_layers(4), 2);
  expect_error(R"({"name": "t", "base": {"experts": 4, "top_k": 5}})",
               {"/base/top_k", "top_k = 5 with experts = 4 (expected 1 <= top_k <= experts)"});
  expect_error(R"({"name": "t", "base": {"experts": 4, "capacity_factor": 0}})",
               {"/base/capacity_factor", "expected"});
  expect_error(R"({"name": "t", "base": {"experts": 4, "capacity_factor": -1}})",
               {"/base/capacity_factor"});
  expect_error(R"({"name": "t", "base": {"experts": -1}})", {"/base/experts"});
  expect_error(R"({"name": "t", "base": {"layers": 2, "experts": 4, "moe_every": 3}})",
               {"/base/moe_every", "moe_every = 3 with layers = 2"});
  expect_error(R"({"name": "t", "base": {"heads": 4, "experts": 4, "tp": 2}})",
               {"experts = 4 with tp = 2 (expected tp = 1"});
  expect_error(R"({"name": "t", "base": {"experts": 4, "precision": "fp8"}})",
               {"experts = 4 with precision fp8"});
  expect_error(R"({"name": "t", "base": {"experts": 4, "moe_aux_loss": -0.1}})",
               {"/base/moe_aux_loss"});
  expect_error(R"({"name": "t", "base": {"experts": 4, "expert_parallel": true}})",
               {"/base/expert_parallel",
                "expert_parallel = true with experts = 4, dp = 1, zero = 0 (expected dp > 1 "
                "dividing experts > 0, and zero = 0)"});
  expect_error(R"({"name": "t", "base": {"experts": 3, "dp": 2, "expert_parallel": true}})",
               {"experts = 3, dp = 2"});
  expect_error(
      R"({"name": "t", "base": {"experts": 4, "dp": 2, "zero": 1, "expert_parallel": true}})",
      {"zero = 1"});
}

}  // namespace
}  // namespace tb
