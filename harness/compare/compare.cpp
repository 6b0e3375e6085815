#include "compare.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <map>
#include <stdexcept>

#include "mann_whitney.h"

namespace tb {

namespace {

using nlohmann::json;

__attribute__((format(printf, 1, 2))) std::string strf(const char* format, ...) {
  char buf[256];
  va_list args;
  va_start(args, format);
  const int n = std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  return n < 0 ? std::string()
               : std::string(buf, std::min<std::size_t>(std::size_t(n), sizeof buf - 1));
}

// One result line, with where it came from for messages.
struct Line {
  const json* j = nullptr;
  const std::string* path = nullptr;
  std::size_t line_no = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw ResultsFileError(*path + ":" + std::to_string(line_no) + ": " + what);
  }
  const std::string& id() const { return (*j)["variant"]["id"].get_ref<const std::string&>(); }
  const std::string& status() const { return (*j)["status"].get_ref<const std::string&>(); }

  // The member at `section`.`key`, or nullptr when the section or the key is absent or null.
  const json* find(const char* section, const char* key) const {
    const auto s = j->find(section);
    if (s == j->end() || s->is_null()) return nullptr;
    if (!s->is_object()) fail(std::string(section) + " must be an object");
    const auto v = s->find(key);
    return v == s->end() || v->is_null() ? nullptr : &*v;
  }
  std::optional<double> number(const json* v, const std::string& name) const {
    if (v == nullptr) return std::nullopt;
    if (!v->is_number()) fail(name + " must be a number");
    return v->get<double>();
  }
  std::vector<double> numbers(const json* v, const std::string& name) const {
    std::vector<double> out;
    if (v == nullptr) return out;
    if (!v->is_array()) fail(name + " must be an array of numbers");
    for (const json& x : *v) {
      if (!x.is_number()) fail(name + " must be an array of numbers, got " + x.dump());
      out.push_back(x.get<double>());
    }
    return out;
  }
  std::string reason() const {
    const auto r = j->find("reason");
    return r != j->end() && r->is_string() ? r->get<std::string>() : std::string();
  }
};

// The lines of a file by id (checked unique), and the ids in file order.
struct Indexed {
  std::vector<Line> lines;
  std::map<std::string, std::size_t> by_id;
};

Indexed index_file(const ResultsFile& f) {
  Indexed out;
  for (std::size_t i = 0; i < f.lines.size(); ++i) {
    Line line{&f.lines[i], &f.path, i + 1};
    const auto [it, inserted] = out.by_id.emplace(line.id(), i);
    if (!inserted) {
      line.fail("variant " + json(line.id()).dump() + " already has a result on line " +
                std::to_string(it->second + 1) + " (one result per variant)");
    }
    out.lines.push_back(line);
  }
  return out;
}

bool significant(const std::optional<double>& p, double alpha) { return p && *p < alpha; }

VariantComparison compare_variant(const Line& b, const Line& n, const CompareOptions& opt) {
  VariantComparison v;
  v.id = b.id();
  v.base_status = b.status();
  v.new_status = n.status();
  if (!v.both_ok()) return v;
  const double threshold = opt.threshold_pct / 100;

  // Step time: the recorded median (else the samples' median), U test over the samples.
  const std::vector<double> bs = b.numbers(b.find("timing", "samples_s"), "timing.samples_s");
  const std::vector<double> ns = n.numbers(n.find("timing", "samples_s"), "timing.samples_s");
  const auto median_of = [](const Line& l, const std::vector<double>& samples) {
    std::optional<double> m;
    if (const json* step = l.find("timing", "step_s")) {
      if (!step->is_object()) l.fail("timing.step_s must be an object");
      const auto it = step->find("median");
      if (it != step->end() && !it->is_null()) m = l.number(&*it, "timing.step_s.median");
    }
    if (!m && !samples.empty()) {
      std::vector<double> s = samples;
      std::sort(s.begin(), s.end());
      const std::size_t k = s.size() / 2;
      m = s.size() % 2 ? s[k] : (s[k - 1] + s[k]) / 2;
    }
    return m;
  };
  v.base_median_s = median_of(b, bs);
  v.new_median_s = median_of(n, ns);
  v.base_samples = bs.size();
  v.new_samples = ns.size();
  const auto tokens_of = [](const Line& l) {
    const std::optional<double> t =
        l.number(l.find("throughput", "tokens_per_step"), "throughput.tokens_per_step");
    if (t && !(*t > 0 && std::isfinite(*t))) {
      l.fail("throughput.tokens_per_step must be a positive number");
    }
    return t;
  };
  v.base_tokens_per_step = tokens_of(b);
  v.new_tokens_per_step = tokens_of(n);
  // Steps of different sizes (tokens per step) compare on throughput, not on step time.
  v.by_throughput = v.base_tokens_per_step && v.new_tokens_per_step &&
                    *v.base_tokens_per_step != *v.new_tokens_per_step;
  if (v.base_median_s && v.new_median_s && *v.base_median_s > 0) {
    v.time_change = *v.new_median_s / *v.base_median_s - 1;
    if (v.by_throughput) {
      v.time_change = (*v.new_median_s / *v.new_tokens_per_step) /
                          (*v.base_median_s / *v.base_tokens_per_step) -
                      1;
    }
  }
  if (!bs.empty() && !ns.empty()) {
    if (v.by_throughput) {
      const auto tokens_per_s = [](const std::vector<double>& samples, double tokens) {
        std::vector<double> out(samples.size());
        for (std::size_t i = 0; i < samples.size(); ++i) out[i] = tokens / samples[i];
        return out;
      };
      v.time_p = mann_whitney_u(tokens_per_s(ns, *v.new_tokens_per_step),
                                tokens_per_s(bs, *v.base_tokens_per_step))
                     .p;
    } else {
      v.time_p = mann_whitney_u(ns, bs).p;
    }
  }
  if (v.time_change && significant(v.time_p, opt.alpha)) {
    v.slower = *v.time_change > threshold;
    v.faster = *v.time_change < -threshold;
  }

  // Loss: the recorded mean over seeds (else the per-seed values' mean), Welch over seeds.
  const std::vector<double> bl = b.numbers(b.find("accuracy", "eval_loss"), "accuracy.eval_loss");
  const std::vector<double> nl = n.numbers(n.find("accuracy", "eval_loss"), "accuracy.eval_loss");
  const auto mean_of = [](const Line& l, const std::vector<double>& losses) {
    std::optional<double> m =
        l.number(l.find("accuracy", "eval_loss_mean"), "accuracy.eval_loss_mean");
    if (!m && !losses.empty()) {
      double sum = 0;
      for (double x : losses) sum += x;
      m = sum / double(losses.size());
    }
    return m;
  };
  v.base_loss = mean_of(b, bl);
  v.new_loss = mean_of(n, nl);
  v.base_seeds = bl.size();
  v.new_seeds = nl.size();
  if (v.base_loss && v.new_loss && *v.base_loss != 0 && std::isfinite(*v.base_loss) &&
      std::isfinite(*v.new_loss)) {
    v.loss_change = (*v.new_loss - *v.base_loss) / std::fabs(*v.base_loss);
  }
  if (bl.size() >= 2 && nl.size() >= 2) v.loss_p = welch_t_test(nl, bl).p;
  if (v.loss_change && significant(v.loss_p, opt.alpha)) {
    v.worse_loss = *v.loss_change > threshold;
    v.better_loss = *v.loss_change < -threshold;
  }
  return v;
}

std::string pad(const std::string& s, std::size_t width, bool right) {
  if (s.size() >= width) return s;
  const std::string fill(width - s.size(), ' ');
  return right ? fill + s : s + fill;
}

std::string fmt_ms(const std::optional<double>& s) {
  return s ? strf("%.3f", *s * 1e3) : std::string("n/a");
}
std::string fmt_loss(const std::optional<double>& l) {
  return l ? strf("%.4f", *l) : std::string("n/a");
}
std::string fmt_change(const std::optional<double>& c) {
  return c ? strf("%+.2f%%", *c * 100) : std::string("n/a");
}
std::string fmt_p(const std::optional<double>& p) {
  if (!p) return "n/a";
  return *p < 1e-4 ? std::string("<0.0001") : strf("%.4f", *p);
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

std::string VariantComparison::verdict() const {
  if (!both_ok()) {
    if (base_status == new_status) return "n/a (" + base_status + ")";
    return "n/a (base " + base_status + ", new " + new_status + ")";
  }
  std::vector<std::string> parts;
  if (slower) parts.emplace_back("slower");
  if (faster) parts.emplace_back("faster");
  if (worse_loss) parts.emplace_back("worse loss");
  if (better_loss) parts.emplace_back("better loss");
  if (!parts.empty()) return join(parts, ", ");
  if (!time_change && !loss_change) return "n/a (no timing or loss)";
  return "same";
}

std::size_t Comparison::regressed_count() const {
  return static_cast<std::size_t>(std::count_if(
      variants.begin(), variants.end(), [](const VariantComparison& v) { return v.regressed(); }));
}

Comparison compare_results(const ResultsFile& base, const ResultsFile& next,
                           const CompareOptions& options) {
  if (!(options.threshold_pct >= 0) || !std::isfinite(options.threshold_pct)) {
    throw std::invalid_argument("compare: the threshold must be a percentage >= 0");
  }
  if (!(options.alpha > 0 && options.alpha < 1)) {
    throw std::invalid_argument("compare: alpha must lie strictly between 0 and 1");
  }
  Comparison c;
  c.base_path = base.path;
  c.new_path = next.path;
  c.base_count = base.lines.size();
  c.new_count = next.lines.size();
  c.options = options;
  const Indexed bi = index_file(base), ni = index_file(next);

  for (const Line& b : bi.lines) {
    if (b.status() != "ok") c.not_ok.push_back({b.id(), "base", b.status(), b.reason()});
    const auto it = ni.by_id.find(b.id());
    if (it == ni.by_id.end()) {
      c.only_in_base.push_back(b.id());
      continue;
    }
    VariantComparison v = compare_variant(b, ni.lines[it->second], options);
    if (v.time_p && std::min(v.base_samples, v.new_samples) < kRecommendedSamples) {
      c.few_samples.push_back(v.id);
    }
    c.variants.push_back(std::move(v));
  }
  for (const Line& n : ni.lines) {
    if (n.status() != "ok") c.not_ok.push_back({n.id(), "new", n.status(), n.reason()});
    if (!bi.by_id.count(n.id())) c.only_in_new.push_back(n.id());
  }
  return c;
}

std::string format_comparison(const Comparison& c) {
  std::string out;
  out += "base: " + c.base_path + " (" + std::to_string(c.base_count) + " results)\n";
  out += "new:  " + c.new_path + " (" + std::to_string(c.new_count) + " results)\n";
  out += strf(
      "rule: regressed when step time or eval loss is more than %g%% worse with p < %g "
      "(step time: Mann-Whitney U over timing.samples_s; loss: Welch t over per-seed "
      "accuracy.eval_loss)\n\n",
      c.options.threshold_pct, c.options.alpha);

  const std::vector<std::string> header = {"variant", "base ms",   "new ms",   "time chg",
                                           "p",       "base loss", "new loss", "loss chg",
                                           "p",       "verdict"};
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> by_throughput;
  for (const VariantComparison& v : c.variants) {
    std::string change = fmt_change(v.time_change);
    if (v.by_throughput) {
      change += "*";
      by_throughput.push_back(v.id + " (tokens per step: base " +
                              strf("%.15g", *v.base_tokens_per_step) + ", new " +
                              strf("%.15g", *v.new_tokens_per_step) + ")");
    }
    rows.push_back({v.id, fmt_ms(v.base_median_s), fmt_ms(v.new_median_s), change, fmt_p(v.time_p),
                    fmt_loss(v.base_loss), fmt_loss(v.new_loss), fmt_change(v.loss_change),
                    fmt_p(v.loss_p), v.verdict()});
  }
  if (rows.empty()) {
    out += "no variant is in both files\n";
  } else {
    std::vector<std::size_t> width(header.size());
    for (std::size_t k = 0; k < header.size(); ++k) width[k] = header[k].size();
    for (const auto& r : rows) {
      for (std::size_t k = 0; k < r.size(); ++k) width[k] = std::max(width[k], r[k].size());
    }
    const auto print_row = [&](const std::vector<std::string>& r) {
      std::string line;
      for (std::size_t k = 0; k < r.size(); ++k) {
        const bool text = k == 0 || k + 1 == r.size();  // variant and verdict: left-aligned
        line += (k ? "  " : "") + (k + 1 == r.size() ? r[k] : pad(r[k], width[k], !text));
      }
      out += line + "\n";
    };
    print_row(header);
    for (const auto& r : rows) print_row(r);
  }
  if (!by_throughput.empty()) {
    out +=
        "\n* compared on throughput, not step time: the tokens per step differ between the "
        "files, so the U test runs over each sample's tokens/s (throughput.tokens_per_step / "
        "step time) and the change is that of the time per token: " +
        join(by_throughput, "; ") + "\n";
  }

  if (!c.only_in_base.empty()) out += "\nonly in base: " + join(c.only_in_base, ", ") + "\n";
  if (!c.only_in_new.empty()) {
    out += (c.only_in_base.empty() ? "\n" : "") + std::string("only in new: ") +
           join(c.only_in_new, ", ") + "\n";
  }
  if (!c.not_ok.empty()) {
    out += "\nnot ok:\n";
    for (const NotOk& n : c.not_ok) {
      out += "  " + n.id + " (" + n.side + "): " + n.status +
             (n.reason.empty() ? std::string() : " - " + n.reason) + "\n";
    }
  }

  std::size_t compared = 0;
  std::vector<std::string> regressed;
  for (const VariantComparison& v : c.variants) {
    if (v.both_ok()) ++compared;
    if (v.regressed()) regressed.push_back(v.id + " (" + v.verdict() + ")");
  }
  out += "\n";
  if (regressed.empty()) {
    out += "result: no regression among " + std::to_string(compared) + " compared variant" +
           (compared == 1 ? "" : "s") + "\n";
  } else {
    out += "result: REGRESSED: " + std::to_string(regressed.size()) + " of " +
           std::to_string(compared) + " compared variant" + (compared == 1 ? "" : "s") + ": " +
           join(regressed, "; ") + "\n";
  }
  return out;
}

std::string few_samples_warning(const Comparison& c) {
  if (c.few_samples.empty()) return {};
  std::vector<std::string> ids(
      c.few_samples.begin(),
      c.few_samples.begin() +
          static_cast<std::ptrdiff_t>(std::min<std::size_t>(c.few_samples.size(), 5)));
  std::string list = join(ids, ", ");
  if (c.few_samples.size() > ids.size()) {
    list += " and " + std::to_string(c.few_samples.size() - ids.size()) + " more";
  }
  return "fewer than " + std::to_string(kRecommendedSamples) + " step time samples in " +
         std::to_string(c.few_samples.size()) + " variant" +
         (c.few_samples.size() == 1 ? "" : "s") + " (" + list +
         "): the U test's p-values may be unreliable; at least " +
         std::to_string(kRecommendedSamples) + " are recommended";
}

}  // namespace tb
