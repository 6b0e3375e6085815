// `trainbench validate FILE [--set KEY=VALUE]...`: checks a scenario file and lists its
// expanded variants with the model each one builds. Errors propagate to main (one line).
#include <fmt/core.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "../model/config.h"
#include "../scenario/scenario.h"
#include "commands.h"

namespace tb::cli {

namespace {

struct ValidateOptions {
  std::string file;
  std::vector<std::string> sets;
};

int validate_scenario(const ValidateOptions& o) {
  const Scenario s = load_scenario(o.file, o.sets);
  std::string axes;
  for (const auto& a : s.axes) axes += (axes.empty() ? "" : " × ") + a;
  fmt::print("scenario  {}  ({})\n", s.name, s.path);
  if (!s.description.empty()) fmt::print("          {}\n", s.description);
  fmt::print("variants  {}", s.variants.size());
  if (!s.axes.empty()) {
    fmt::print("  ({} of {})", s.mode == SweepMode::zip ? "zip" : "product", axes);
  }
  fmt::print("\n");
  std::size_t width = 2;
  for (const auto& v : s.variants) width = std::max(width, v.id.size());
  for (const auto& v : s.variants) {
    // load_scenario has resolved every variant's model once already: this cannot throw.
    const ModelConfig m = variant_model(v.config, preset(v.config.preset));
    const RunConfig& r = v.config;
    const std::string accumulation =
        r.global_batch ? fmt::format(" global_batch={}", r.resolved_global_batch()) : "";
    fmt::print(
        "  {:>3}  {:<{}}  {:<8}  L={} d={} heads={} T={} V={}  micro_batch={}{}  {}  ranks={}\n",
        v.index, v.id, width, v.is_baseline ? "baseline" : "", m.n_layer, m.d_model, m.n_head,
        m.seq_len, m.vocab, r.micro_batch, accumulation, r.optimizer, r.ranks());
  }
  return 0;
}

}  // namespace

Run add_validate_command(CLI::App& app) {
  auto o = std::make_shared<ValidateOptions>();
  app.add_option("file", o->file, "scenario file (JSON; docs/scenarios.md)")->required();
  app.add_option("--set", o->sets,
                 "override a scenario key: KEY=VALUE, KEY a dotted path (measure.max_steps) or a "
                 "configuration key (micro_batch); repeatable")
      ->allow_extra_args(false);
  return [o]() { return validate_scenario(*o); };
}

}  // namespace tb::cli
