// `trainbench compare`'s pieces: the Mann–Whitney U and Welch t tests (against exact
// enumeration, closed forms and scipy 1.10 reference values), the distribution functions
// under them, the results.jsonl reader's errors, and the comparison's decision rule.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <numbers>
#include <string>
#include <vector>

#include "compare/compare.h"
#include "compare/mann_whitney.h"
#include "results/results_file.h"
#include "unit/temp_dir.h"

namespace tb {
namespace {

using nlohmann::json;
using test::thrown_message;

// ---- Mann–Whitney U ----

// U of x: the number of pairs with x above y, ties counting ½ — by definition, in O(n1·n2).
double u_by_pairs(const std::vector<double>& x, const std::vector<double>& y) {
  double u = 0;
  for (double a : x) {
    for (double b : y) u += a > b ? 1.0 : a == b ? 0.5 : 0.0;
  }
  return u;
}

TEST(MannWhitney, SeparatedSamplesExact) {
  // U1 = 0, U = 9; of the C(6,3) = 20 equally likely arrangements only one has U ≥ 9 in each
  // tail, so p = 2/20.
  const MannWhitneyResult r = mann_whitney_u({1, 2, 3}, {4, 5, 6});
  EXPECT_EQ(r.u1, 0);
  EXPECT_EQ(r.u, 9);
  EXPECT_TRUE(r.exact);
  EXPECT_FALSE(r.ties);
  EXPECT_NEAR(r.p, 0.1, 1e-15);
}

TEST(MannWhitney, ExactMatchesScipy) {
  // scipy.stats.mannwhitneyu(x, y) (method "auto" picks "exact": a side of ≤ 8, no ties).
  const std::vector<double> x = {0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46};
  const std::vector<double> y = {1.15, 0.88, 0.90, 0.74, 1.21};
  MannWhitneyResult r = mann_whitney_u(x, y);
  EXPECT_EQ(r.u1, 35);
  EXPECT_TRUE(r.exact);
  EXPECT_NEAR(r.p, 0.2544122544122544, 1e-14);  // = 2·382/3003

  r = mann_whitney_u({19.0, 22.1, 8.4, 30.2, 11.7}, {25.3, 40.1, 33.6, 28.8, 35.0, 27.2, 31.9});
  EXPECT_EQ(r.u1, 3);
  EXPECT_NEAR(r.p, 0.01767676767676768, 1e-14);  // = 2·7/792
}

// Every arrangement of m x-values and n y-values among the ranks 1…m+n is equally likely under
// H0. Enumerating them all gives the exact null distribution of U; the two-sided p-value of
// each observed U must be 2·#{U' ≥ max(U, mn − U)} / C(m+n, m), clipped to 1.
TEST(MannWhitney, ExactMatchesEnumeration) {
  const std::vector<std::pair<int, int>> sizes = {{1, 1}, {1, 6},  {2, 3}, {3, 3}, {4, 6},
                                                  {6, 4}, {5, 12}, {8, 8}, {8, 9}};
  for (const auto& [m, n] : sizes) {
    const int total_n = m + n;
    std::map<int, std::uint64_t> count;    // U → arrangements
    std::map<int, std::uint32_t> example;  // U → one arrangement (bit i: rank i+1 is an x)
    std::uint64_t total = 0;
    for (std::uint32_t mask = 0; mask < (1u << total_n); ++mask) {
      if (__builtin_popcount(mask) != m) continue;
      int u = 0, ys_below = 0;
      for (int i = 0; i < total_n; ++i) {
        if (mask >> i & 1u) {
          u += ys_below;
        } else {
          ++ys_below;
        }
      }
      ++count[u];
      example.emplace(u, mask);
      ++total;
    }
    for (const auto& [u, mask] : example) {
      std::vector<double> x, y;
      for (int i = 0; i < total_n; ++i) (mask >> i & 1u ? x : y).push_back(i + 1);
      const int big = std::max(u, m * n - u);
      std::uint64_t tail = 0;
      for (const auto& [v, c] : count) tail += v >= big ? c : 0;
      const double expected = std::min(1.0, 2.0 * double(tail) / double(total));
      const MannWhitneyResult r = mann_whitney_u(x, y);
      ASSERT_TRUE(r.exact) << m << "x" << n;
      ASSERT_EQ(r.u1, u) << m << "x" << n;
      ASSERT_NEAR(r.p, expected, 1e-14) << m << "x" << n << " U=" << u;
    }
  }
}

TEST(MannWhitney, ExactWithALargeOtherSample) {
  // A smaller side of 8 is exact whatever the other side's size (scipy's rule); checked
  // against scipy.stats.mannwhitneyu(x, y, method="exact") with y = the rest of 0…207.
  const auto rest = [](const std::vector<double>& x) {
    std::vector<double> y;
    for (int v = 0; v < 208; ++v) {
      if (std::find(x.begin(), x.end(), double(v)) == x.end()) y.push_back(v);
    }
    return y;
  };
  std::vector<double> x = {100, 150, 160, 170, 180, 190, 200, 207};
  MannWhitneyResult r = mann_whitney_u(x, rest(x));
  EXPECT_TRUE(r.exact);
  EXPECT_EQ(r.u1, 1329);
  EXPECT_NEAR(r.p, 0.00079561633226753257, 1e-16);
  x = {4, 54, 55, 78, 96, 145, 150, 152};
  r = mann_whitney_u(x, rest(x));
  EXPECT_EQ(r.u1, 706);
  EXPECT_NEAR(r.p, 0.58195681402907373, 1e-14);  // the normal approximation says 0.5754
}

TEST(MannWhitney, TiesUseTheCorrectedNormalApproximation) {
  // Worked by hand: N = 15; tied groups 2 (×3), 3 (×5), 4 (×3), 5 (×2), so Σ(t³ − t) =
  // 24 + 120 + 24 + 6 = 174 and σ² = 7·8/12 · (16 − 174/210) = 70.8; U1 = 11, U = 45,
  // z = (45 − 28 − ½)/√70.8 = 1.96097…, p = 2·(1 − Φ(z)). scipy: 0.049884436979925881.
  const std::vector<double> x = {1, 2, 2, 3, 3, 3, 4}, y = {2, 3, 3, 4, 4, 5, 5, 6};
  const MannWhitneyResult r = mann_whitney_u(x, y);
  EXPECT_EQ(r.u1, 11);
  EXPECT_EQ(r.u1, u_by_pairs(x, y));
  EXPECT_EQ(r.u, 45);
  EXPECT_TRUE(r.ties);
  EXPECT_FALSE(r.exact);
  EXPECT_NEAR(r.p, 2 * normal_sf(16.5 / std::sqrt(56.0 / 12 * (16 - 174.0 / 210))), 1e-15);
  EXPECT_NEAR(r.p, 0.049884436979925881, 1e-14);
}

TEST(MannWhitney, LargeSamplesUseTheNormalApproximation) {
  // Both sides above 8: asymptotic even without ties. scipy: U1 = 25, p = 0.0016479834444807768.
  const std::vector<double> a = {104.082, 94.889, 100.836, 98.864,  99.095,  99.569,
                                 95.96,   99.536, 98.27,   106.646, 100.452, 99.295};
  const std::vector<double> b = {102.437, 101.664, 100.89,  102.218, 103.964,
                                 102.523, 104.916, 102.6,   103.049, 106.092,
                                 104.09,  101.99,  102.634, 104.081, 106.87};
  const MannWhitneyResult r = mann_whitney_u(a, b);
  EXPECT_FALSE(r.exact);
  EXPECT_EQ(r.u1, 25);
  EXPECT_EQ(r.u1, u_by_pairs(a, b));
  EXPECT_NEAR(r.p, 0.0016479834444807768, 1e-15);
  // The test is symmetric: swapping the samples swaps U1 and U2 and keeps p.
  const MannWhitneyResult s = mann_whitney_u(b, a);
  EXPECT_EQ(s.u1, 12 * 15 - 25);
  EXPECT_DOUBLE_EQ(s.p, r.p);
}

TEST(MannWhitney, IdenticalSamplesHavePOne) {
  EXPECT_EQ(mann_whitney_u({1, 2, 3, 4, 5}, {1, 2, 3, 4, 5}).p, 1.0);  // ties: asymptotic
  EXPECT_EQ(mann_whitney_u({7, 7, 7}, {7, 7, 7, 7}).p, 1.0);           // σ = 0
  EXPECT_EQ(mann_whitney_u({1, 4}, {2, 3}).p, 1.0);  // exact, U at the centre: 2·4/6 clips
  EXPECT_EQ(mann_whitney_u({5}, {6}).p, 1.0);        // one value each: nothing to conclude
}

TEST(MannWhitney, RejectsEmptyAndNaN) {
  EXPECT_THROW(mann_whitney_u({}, {1.0}), std::invalid_argument);
  EXPECT_THROW(mann_whitney_u({1.0}, {}), std::invalid_argument);
  EXPECT_THROW(mann_whitney_u({1.0, std::nan("")}, {2.0}), std::invalid_argument);
}

// ---- Welch's t ----

TEST(Welch, MatchesScipy) {
  // Welch's classic unequal-variance example data (as on Wikipedia's "Welch's t-test");
  // scipy.stats.ttest_ind(a, b, equal_var=False): t = −2.455356398286006, p = 0.021378001462866985.
  const std::vector<double> a = {27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1,
                                 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4};
  const std::vector<double> b = {27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0,
                                 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4};
  WelchResult r = welch_t_test(a, b);
  EXPECT_NEAR(r.t, -2.455356398286006, 1e-12);
  EXPECT_NEAR(r.df, 24.988529290231416, 1e-10);
  EXPECT_NEAR(r.p, 0.021378001462866985, 1e-13);

  // Three seeds each, as a loss comparison would have.
  r = welch_t_test({3.21, 3.25, 3.19}, {3.40, 3.38, 3.45});
  EXPECT_NEAR(r.t, -7.0858277726656835, 1e-11);
  EXPECT_NEAR(r.df, 3.8950108459869801, 1e-11);
  EXPECT_NEAR(r.p, 0.0023135413360253444, 1e-13);

  r = welch_t_test({2.0, 2.1}, {2.05, 2.3, 2.2, 2.6});  // unequal sizes
  EXPECT_NEAR(r.t, -1.8782138580089711, 1e-12);
  EXPECT_NEAR(r.p, 0.13688998108264883, 1e-13);
}

TEST(Welch, ClosedFormWithTwoDegreesOfFreedom) {
  // Equal variances 0.02, n = 2 each: t = 0.1/√0.02 = 1/√2, df = 2, and for df = 2 the
  // two-sided p is 1 − |t|/√(2 + t²) = 1 − 1/√5.
  const WelchResult r = welch_t_test({4.1, 4.3}, {4.2, 4.0});
  EXPECT_NEAR(r.t, 1 / std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(r.df, 2, 1e-12);
  EXPECT_NEAR(r.p, 1 - 1 / std::sqrt(5.0), 1e-13);
}

TEST(Welch, ConstantSamples) {
  EXPECT_EQ(welch_t_test({3, 3, 3}, {3, 3}).p, 1.0);
  const WelchResult r = welch_t_test({3, 3, 3}, {4, 4});
  EXPECT_EQ(r.p, 0.0);
  EXPECT_TRUE(std::isinf(r.t) && r.t < 0);
  // One constant side: the other's variance alone, df = its n − 1.
  const WelchResult s = welch_t_test({3, 3, 3}, {3.5, 4.5});
  EXPECT_NEAR(s.df, 1, 1e-12);
  EXPECT_NEAR(s.p, 2 * (1 - (0.5 + std::atan(std::fabs(s.t)) / std::numbers::pi)), 1e-13);
}

TEST(Welch, NeedsTwoValuesASide) {
  EXPECT_THROW(welch_t_test({1.0}, {1.0, 2.0}), std::invalid_argument);
  EXPECT_THROW(welch_t_test({1.0, 2.0}, {2.0}), std::invalid_argument);
}

// ---- distribution functions ----

TEST(Distributions, IncompleteBetaClosedForms) {
  for (double x : {0.0, 1e-9, 0.01, 0.3, 0.5, 0.77, 0.999, 1.0}) {
    EXPECT_NEAR(regularized_incomplete_beta(1, 1, x), x, 1e-14) << x;
    EXPECT_NEAR(regularized_incomplete_beta(3.5, 1, x), std::pow(x, 3.5), 1e-14) << x;
    EXPECT_NEAR(regularized_incomplete_beta(1, 4, x), 1 - std::pow(1 - x, 4), 1e-14) << x;
  }
  for (double a : {0.5, 2.0, 7.5, 60.0}) {
    EXPECT_NEAR(regularized_incomplete_beta(a, a, 0.5), 0.5, 1e-14) << a;  // symmetry
  }
  EXPECT_NEAR(regularized_incomplete_beta(500, 500, 0.5), 0.5, 1e-13);  // a·ln x rounds: 7e-14
}

TEST(Distributions, IncompleteBetaMatchesScipy) {
  // mpmath.betainc(a, b, 0, x, regularized=True) at 40 digits. (scipy 1.10's betainc is off
  // by 3e-13 relative at a = 500: its ln B loses digits to cancellation.)
  struct Case {
    double a, b, x, expected;
  };
  for (const Case& c :
       {Case{0.5, 5, 0.3, 0.93473775383109182}, Case{2.5, 0.5, 0.9, 0.48958974456442755},
        Case{500, 0.5, 0.99, 0.0015273578790529891}, Case{10, 0.5, 0.2, 1.9949824936130947e-8},
        Case{3, 4, 0.01, 1.9553590000000001e-5}, Case{50, 50, 0.55, 0.84134780106290142}}) {
    EXPECT_NEAR(regularized_incomplete_beta(c.a, c.b, c.x), c.expected, 2e-14 * c.expected)
        << c.a << " " << c.b << " " << c.x;
  }
}

TEST(Distributions, StudentT) {
  for (double t : {-30.0, -3.0, -1.0, -0.2, 0.0, 0.5, 2.0, 12.0}) {
    // One degree of freedom is the Cauchy distribution; two have a closed form too.
    EXPECT_NEAR(student_t_cdf(t, 1), 0.5 + std::atan(t) / std::numbers::pi, 1e-14) << t;
    EXPECT_NEAR(student_t_cdf(t, 2), 0.5 + t / (2 * std::sqrt(2 + t * t)), 1e-14) << t;
  }
  // mpmath at 40 digits (through the same incomplete beta identity).
  EXPECT_NEAR(student_t_cdf(2.0, 3), 0.93033701572057841, 1e-15);
  EXPECT_NEAR(student_t_cdf(-1.5, 7.5), 0.087240285293232117, 1e-15);
  EXPECT_NEAR(student_t_cdf(4.0, 24.9), 0.99975078906473281, 1e-15);
  EXPECT_NEAR(student_t_cdf(0.3, 1000), 0.61788024791637798, 1e-14);
  // ≈ Φ(3) = 0.99865010; the continued fraction needs ~√(df/2) terms here, each rounding.
  EXPECT_NEAR(student_t_cdf(3.0, 1e6), 0.9986500687292891, 1e-13);
  EXPECT_EQ(student_t_two_sided_p(0, 5), 1.0);
  EXPECT_EQ(student_t_two_sided_p(INFINITY, 5), 0.0);
}

TEST(Distributions, NormalTail) {
  EXPECT_DOUBLE_EQ(normal_sf(0), 0.5);
  EXPECT_NEAR(normal_sf(1.959963984540054), 0.025, 1e-15);
  EXPECT_NEAR(normal_sf(10), 7.6198530241604696e-24, 1e-36);  // no cancellation in the tail
}

// ---- results.jsonl reader ----

std::string result_line(const std::string& id, const std::string& status = "ok", int version = 1) {
  return json{{"schema_version", version}, {"variant", {{"id", id}}}, {"status", status}}.dump() +
         "\n";
}

class ResultsFileTest : public test::TempDirTest {
 protected:
  std::string file(const std::string& bytes) {
    const std::string p = path("results.jsonl");
    write_bytes(p, bytes);
    return p;
  }
  std::string error(const std::string& p, bool tolerate = false) {
    ResultsReadOptions o;
    o.tolerate_truncated_tail = tolerate;
    return thrown_message<ResultsFileError>([&] { read_results_file(p, o); });
  }
};

TEST_F(ResultsFileTest, ReadsEveryLine) {
  const std::string text = result_line("a") + result_line("b", "oom");
  const ResultsFile f = read_results_file(file(text));
  ASSERT_EQ(f.lines.size(), 2u);
  EXPECT_EQ(f.lines[1]["status"], "oom");
  EXPECT_FALSE(f.truncated_tail);
  EXPECT_EQ(f.complete_bytes, text.size());
  EXPECT_EQ(read_results(f.path).lines.size(), 2u);
}

TEST_F(ResultsFileTest, MissingFile) {
  const std::string p = path("nope.jsonl");
  const std::string msg = error(p);
  EXPECT_NE(msg.find(p + ": cannot open results file"), std::string::npos) << msg;
  EXPECT_NE(error(dir_.string()).find("is a directory"), std::string::npos);
}

TEST_F(ResultsFileTest, EmptyFile) {
  const std::string p = file("");
  EXPECT_EQ(error(p), p + ":1: empty results file (no results)");
  ResultsReadOptions o;
  o.allow_empty = true;
  EXPECT_TRUE(read_results_file(p, o).lines.empty());
}

TEST_F(ResultsFileTest, TruncatedMidLine) {
  const std::string first = result_line("a");
  const std::string p = file(first + R"({"schema_version": 1, "variant": {"id": "b"}, "st)");
  const std::string msg = error(p);
  EXPECT_EQ(msg.rfind(p + ":2: truncated mid-line", 0), 0u) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);

  ResultsReadOptions o;
  o.tolerate_truncated_tail = true;
  const ResultsFile f = read_results_file(p, o);
  ASSERT_EQ(f.lines.size(), 1u);
  EXPECT_TRUE(f.truncated_tail);
  EXPECT_EQ(f.truncated_line, 2u);
  EXPECT_EQ(f.complete_bytes, first.size());
  EXPECT_EQ(read_results(p, true).lines.size(), 1u);
}

TEST_F(ResultsFileTest, CompleteJsonWithoutNewlineIsStillTruncated) {
  const std::string line = result_line("a");
  const std::string p = file(line + line.substr(0, line.size() - 1));  // valid JSON, no '\n'
  EXPECT_EQ(error(p).rfind(p + ":2: truncated mid-line", 0), 0u);
}

TEST_F(ResultsFileTest, OnlyATruncatedLine) {
  const std::string p = file(R"({"schema_version": 1, "vari)");
  EXPECT_EQ(error(p).rfind(p + ":1: truncated mid-line", 0), 0u);
  EXPECT_EQ(error(p, true), p + ":1: no complete result line (only a line truncated mid-write)");
  ResultsReadOptions o;
  o.tolerate_truncated_tail = o.allow_empty = true;
  const ResultsFile f = read_results_file(p, o);
  EXPECT_TRUE(f.lines.empty());
  EXPECT_TRUE(f.truncated_tail);
  EXPECT_EQ(f.complete_bytes, 0u);
}

TEST_F(ResultsFileTest, UnknownOrMissingSchemaVersion) {
  std::string p = file(result_line("a") + result_line("b", "ok", 2));
  EXPECT_EQ(error(p), p + ":2: unsupported schema_version 2 (this build reads version 1)");
  p = file(result_line("a") + result_line("b") + R"({"variant": {"id": "c"}, "status": "ok"})" +
           "\n");
  EXPECT_EQ(error(p), p + ":3: missing schema_version (this build reads version 1)");
  p = file(R"({"schema_version": "1", "variant": {"id": "c"}, "status": "ok"})"
           "\n");
  EXPECT_EQ(error(p).rfind(p + ":1: unsupported schema_version \"1\"", 0), 0u);
}

TEST_F(ResultsFileTest, InvalidJsonLine) {
  const std::string p = file(result_line("a") + result_line("b") + "{\"schema_version\": 1,,}\n");
  const std::string msg = error(p);
  EXPECT_EQ(msg.rfind(p + ":3: not valid JSON: parse error at column 22: ", 0), 0u) << msg;
  EXPECT_EQ(msg.find("[json.exception"), std::string::npos) << msg;
}

TEST_F(ResultsFileTest, LineNotAnObject) {
  const std::string p = file("[1, 2]\n");
  EXPECT_EQ(error(p), p + ":1: expected a JSON object (one result per line), got array");
}

TEST_F(ResultsFileTest, MissingVariantIdOrStatus) {
  std::string p = file(R"({"schema_version": 1, "variant": {"index": 0}, "status": "ok"})"
                       "\n");
  EXPECT_EQ(error(p), p + ":1: missing variant.id (a string)");
  p = file(R"({"schema_version": 1, "status": "ok"})"
           "\n");
  EXPECT_EQ(error(p).rfind(p + ":1: missing variant", 0), 0u);
  p = file(result_line("a") + R"({"schema_version": 1, "variant": {"id": "b"}})" + "\n");
  EXPECT_EQ(error(p).rfind(p + ":2: missing status", 0), 0u);
}

TEST_F(ResultsFileTest, BlankLine) {
  const std::string p = file(result_line("a") + "\n" + result_line("b"));
  EXPECT_EQ(error(p), p + ":2: blank line (expected one JSON object per line)");
}

TEST_F(ResultsFileTest, CompletePrefixBytes) {
  EXPECT_EQ(complete_prefix_bytes(file("")), 0u);
  EXPECT_EQ(complete_prefix_bytes(file("no newline at all")), 0u);
  EXPECT_EQ(complete_prefix_bytes(file("abc\ndef")), 4u);
  EXPECT_EQ(complete_prefix_bytes(file("abc\ndef\n")), 8u);
  // The last '\n' far before the end: the backwards scan crosses block boundaries.
  EXPECT_EQ(complete_prefix_bytes(file(std::string(10, 'x') + "\n" + std::string(200000, 'y'))),
            11u);
  EXPECT_EQ(complete_prefix_bytes(file(std::string(70000, 'x') + "\n" + std::string(70000, 'y'))),
            70001u);
  EXPECT_THROW(complete_prefix_bytes(path("missing.jsonl")), ResultsFileError);
}

// ---- the comparison ----

json timed_line(const std::string& id, const std::vector<double>& samples,
                const std::vector<double>& losses, const std::string& status = "ok") {
  json j = {{"schema_version", 1}, {"variant", {{"id", id}}}, {"status", status}};
  if (status != "ok") {
    j["reason"] = "out of memory";
    return j;
  }
  std::vector<double> s = samples;
  std::sort(s.begin(), s.end());
  const double median =
      s.size() % 2 ? s[s.size() / 2] : (s[s.size() / 2 - 1] + s[s.size() / 2]) / 2;
  j["timing"] = {{"samples_s", samples}, {"step_s", {{"median", median}}}};
  double mean = 0;
  for (double l : losses) mean += l / double(losses.size());
  j["accuracy"] = {{"eval_loss", losses}, {"eval_loss_mean", mean}};
  return j;
}

ResultsFile results(const std::string& path, std::vector<json> lines) {
  ResultsFile f;
  f.path = path;
  f.lines = std::move(lines);
  return f;
}

std::vector<double> scaled(std::vector<double> v, double k) {
  for (double& x : v) x *= k;
  return v;
}

const std::vector<double> kSamples = {0.100, 0.101,  0.099,  0.1005, 0.0995, 0.102,
                                      0.098, 0.1002, 0.0998, 0.1012, 0.0988, 0.1};

TEST(Compare, DecisionRule) {
  const std::vector<double> loss = {3.20, 3.22, 3.21};
  const ResultsFile base = results(
      "base.jsonl", {timed_line("same", kSamples, loss), timed_line("slow", kSamples, loss),
                     timed_line("fast", kSamples, loss), timed_line("lossy", kSamples, loss),
                     timed_line("small", kSamples, loss), timed_line("gone", kSamples, loss),
                     timed_line("oom", kSamples, loss)});
  const ResultsFile next = results(
      "new.jsonl", {timed_line("same", scaled(kSamples, 1.001), loss),
                    timed_line("slow", scaled(kSamples, 1.15), loss),
                    timed_line("fast", scaled(kSamples, 0.8), loss),
                    timed_line("lossy", kSamples, {3.50, 3.52, 3.49}),
                    timed_line("small", scaled(kSamples, 1.03), loss),  // significant but under 5%
                    timed_line("oom", {}, {}, "oom"), timed_line("added", kSamples, loss)});
  const Comparison c = compare_results(base, next);
  ASSERT_EQ(c.variants.size(), 6u);
  std::map<std::string, VariantComparison> by;
  for (const auto& v : c.variants) by[v.id] = v;
  EXPECT_EQ(by["same"].verdict(), "same");
  EXPECT_EQ(by["slow"].verdict(), "slower");
  EXPECT_NEAR(*by["slow"].time_change, 0.15, 1e-12);
  EXPECT_LT(*by["slow"].time_p, 1e-4);
  EXPECT_EQ(by["fast"].verdict(), "faster");
  EXPECT_EQ(by["lossy"].verdict(), "worse loss");
  EXPECT_LT(*by["lossy"].loss_p, 0.05);
  EXPECT_EQ(by["small"].verdict(), "same");
  EXPECT_LT(*by["small"].time_p, 0.05);
  EXPECT_EQ(by["oom"].verdict(), "n/a (base ok, new oom)");
  EXPECT_FALSE(by["oom"].regressed());
  EXPECT_EQ(c.regressed_count(), 2u);  // slow, lossy
  EXPECT_EQ(c.only_in_base, std::vector<std::string>{"gone"});
  EXPECT_EQ(c.only_in_new, std::vector<std::string>{"added"});
  ASSERT_EQ(c.not_ok.size(), 1u);
  EXPECT_EQ(c.not_ok[0].side, "new");
  EXPECT_TRUE(c.few_samples.empty());

  const std::string report = format_comparison(c);
  EXPECT_NE(report.find("only in base: gone"), std::string::npos) << report;
  EXPECT_NE(report.find("REGRESSED: 2 of 5"), std::string::npos) << report;

  // A 20% threshold forgives both the 15% slowdown and the 9.4% loss increase; 10% only the
  // loss increase.
  CompareOptions loose;
  loose.threshold_pct = 20;
  EXPECT_EQ(compare_results(base, next, loose).regressed_count(), 0u);
  loose.threshold_pct = 10;
  EXPECT_EQ(compare_results(base, next, loose).regressed_count(), 1u);
}

TEST(Compare, OneSeedHasNoLossPValue) {
  const ResultsFile base = results("b", {timed_line("v", kSamples, {3.0})});
  const ResultsFile next = results("n", {timed_line("v", kSamples, {3.9})});
  const Comparison c = compare_results(base, next);
  ASSERT_EQ(c.variants.size(), 1u);
  EXPECT_NEAR(*c.variants[0].loss_change, 0.3, 1e-12);
  EXPECT_FALSE(c.variants[0].loss_p.has_value());
  EXPECT_EQ(c.variants[0].verdict(), "same");  // a change without evidence is not a regression
}

TEST(Compare, FewSamplesAreFlagged) {
  const std::vector<double> few = {0.1, 0.11, 0.09};
  const Comparison c = compare_results(results("b", {timed_line("v", few, {})}),
                                       results("n", {timed_line("v", few, {})}));
  EXPECT_EQ(c.few_samples, std::vector<std::string>{"v"});
  EXPECT_EQ(few_samples_warning(c).find('\n'), std::string::npos);
  EXPECT_NE(few_samples_warning(c).find("fewer than 9"), std::string::npos);
}

// Matched variants whose steps hold different numbers of tokens (a split or batch change
// between the files) are compared on throughput: a micro-batch-4 step that takes 0.532× the
// time of a micro-batch-8 step is 1.88× faster per step but 0.94× the tokens/s, so it is
// slower, not faster.
TEST(Compare, DifferentTokensPerStepCompareThroughput) {
  const auto with_tokens = [](json j, double tokens) {
    j["throughput"] = {{"tokens_per_step", tokens}};
    return j;
  };
  const std::vector<double> loss = {3.20, 3.22, 3.21};
  const std::vector<double> half_step = scaled(kSamples, 0.532);
  const ResultsFile base =
      results("base.jsonl", {with_tokens(timed_line("split", kSamples, loss), 1024),
                             with_tokens(timed_line("equal", kSamples, loss), 1024),
                             with_tokens(timed_line("untold", kSamples, loss), 1024)});
  const ResultsFile next =
      results("new.jsonl", {with_tokens(timed_line("split", half_step, loss), 512),
                            with_tokens(timed_line("equal", half_step, loss), 1024),
                            timed_line("untold", half_step, loss)});
  const Comparison c = compare_results(base, next);
  ASSERT_EQ(c.variants.size(), 3u);
  std::map<std::string, VariantComparison> by;
  for (const auto& v : c.variants) by[v.id] = v;

  const VariantComparison& split = by["split"];
  EXPECT_TRUE(split.by_throughput);
  EXPECT_EQ(*split.base_tokens_per_step, 1024);
  EXPECT_EQ(*split.new_tokens_per_step, 512);
  // Time per token: (0.532 · m / 512) / (m / 1024) − 1 = 0.064: 6.4% slower.
  EXPECT_NEAR(*split.time_change, 2 * 0.532 - 1, 1e-12);
  std::vector<double> base_tps, new_tps;
  for (double x : kSamples) base_tps.push_back(1024 / x);
  for (double x : half_step) new_tps.push_back(512 / x);
  EXPECT_EQ(*split.time_p, mann_whitney_u(new_tps, base_tps).p);
  EXPECT_LT(*split.time_p, 1e-4);
  EXPECT_EQ(split.verdict(), "slower");
  EXPECT_TRUE(split.regressed());
  // The median step times stay what the files recorded.
  EXPECT_NEAR(*split.new_median_s / *split.base_median_s, 0.532, 1e-12);

  // The same tokens per step, or a line that does not say: step times, as before.
  for (const char* id : {"equal", "untold"}) {
    const VariantComparison& v = by[id];
    EXPECT_FALSE(v.by_throughput) << id;
    EXPECT_NEAR(*v.time_change, 0.532 - 1, 1e-12) << id;
    EXPECT_EQ(*v.time_p, mann_whitney_u(half_step, kSamples).p) << id;
    EXPECT_EQ(v.verdict(), "faster") << id;
  }
  EXPECT_FALSE(by["untold"].new_tokens_per_step.has_value());

  // The output marks the change and says why, naming the tokens per step.
  const std::string report = format_comparison(c);
  EXPECT_NE(report.find("+6.40%*"), std::string::npos) << report;
  EXPECT_NE(report.find("* compared on throughput, not step time"), std::string::npos) << report;
  EXPECT_NE(report.find("split (tokens per step: base 1024, new 512)"), std::string::npos)
      << report;
  EXPECT_EQ(report.find("equal (tokens per step"), std::string::npos) << report;
  EXPECT_NE(report.find("REGRESSED: 1 of 3 compared variants: split (slower)"), std::string::npos)
      << report;

  // Without a split, no note.
  const std::string plain = format_comparison(compare_results(base, base));
  EXPECT_EQ(plain.find("compared on throughput"), std::string::npos) << plain;

  // A tokens_per_step that is not a positive number names the line.
  json bad = with_tokens(timed_line("split", kSamples, loss), 0);
  std::string msg =
      thrown_message<ResultsFileError>([&] { compare_results(base, results("n.jsonl", {bad})); });
  EXPECT_EQ(msg, "n.jsonl:1: throughput.tokens_per_step must be a positive number");
  bad["throughput"]["tokens_per_step"] = "many";
  msg = thrown_message<ResultsFileError>([&] { compare_results(base, results("n.jsonl", {bad})); });
  EXPECT_EQ(msg, "n.jsonl:1: throughput.tokens_per_step must be a number");
}

TEST(Compare, BadFieldsAndDuplicatesNameTheLine) {
  json bad = timed_line("v", kSamples, {});
  bad["timing"]["samples_s"] = "fast";
  std::string msg = thrown_message<ResultsFileError>([&] {
    compare_results(results("b.jsonl", {timed_line("w", kSamples, {}), bad}),
                    results("n.jsonl", {timed_line("v", kSamples, {})}));
  });
  EXPECT_EQ(msg, "b.jsonl:2: timing.samples_s must be an array of numbers");
  msg = thrown_message<ResultsFileError>([&] {
    compare_results(
        results("b.jsonl", {timed_line("v", kSamples, {})}),
        results("n.jsonl", {timed_line("v", kSamples, {}), timed_line("v", kSamples, {})}));
  });
  EXPECT_EQ(msg,
            "n.jsonl:2: variant \"v\" already has a result on line 1 (one result per variant)");
  CompareOptions o;
  o.alpha = 1.5;
  EXPECT_THROW(compare_results(results("b", {}), results("n", {}), o), std::invalid_argument);
}

}  // namespace
}  // namespace tb
