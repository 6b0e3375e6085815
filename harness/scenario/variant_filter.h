// The variants a `--filter` selects (run, calibrate, plan --scenario): an ECMAScript regular
// expression searched in each variant's id (docs/scenarios.md, "Sweeps"); an empty
// pattern selects every variant.
#pragma once
#include <optional>
#include <regex>
#include <string>

namespace tb {

class VariantFilter {
 public:
  // Throws std::invalid_argument naming the pattern when it is not a valid regex.
  explicit VariantFilter(const std::string& pattern);
  bool selects(const std::string& variant_id) const;

 private:
  std::optional<std::regex> re_;
};

}  // namespace tb
