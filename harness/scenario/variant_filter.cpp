#include "variant_filter.h"

#include <stdexcept>

namespace tb {

VariantFilter::VariantFilter(const std::string& pattern) {
  if (pattern.empty()) return;
  try {
    re_.emplace(pattern);
  } catch (const std::regex_error& e) {
    throw std::invalid_argument("--filter '" + pattern + "' is not a valid regular expression (" +
                                e.what() + ")");
  }
}

bool VariantFilter::selects(const std::string& variant_id) const {
  return !re_ || std::regex_search(variant_id, *re_);
}

}  // namespace tb
