#include "variant_process.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "../results/environment.h"
#include "failure_report.h"
#include "launcher.h"

namespace tb {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

// As run_variant writes it (runner.cpp).
constexpr int kSchemaVersion = 1;
// How much of a failed worker's log is read for the launcher's messages and the tail.
constexpr std::size_t kLogBytes = 64 * 1024;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read '" + path + "'");
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("cannot write '" + path + "'");
}

std::string join(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

// Scenario::document keeps keys sorted; the sweep axes' file order (which names and orders
// the variants) is Scenario::axes.
ordered_json ordered_document(const Scenario& s) {
  ordered_json doc = ordered_json::object();
  for (const auto& [key, value] : s.document.items()) {
    if (key == "sweep" && value.is_object()) {
      ordered_json sweep = ordered_json::object();
      for (const auto& axis : s.axes) {
        if (value.contains(axis)) sweep[axis] = ordered_json::parse(value[axis].dump());
      }
      doc[key] = std::move(sweep);
    } else {
      doc[key] = ordered_json::parse(value.dump());
    }
  }
  return doc;
}

}  // namespace

std::string worker_scenario_text(const Scenario& s) {
  ordered_json w = ordered_json::object();
  w["path"] = s.path;
  w["document"] = ordered_document(s);
  return w.dump(2) + "\n";
}

Scenario parse_worker_scenario(const std::string& text, const std::string& file) {
  const auto w = ordered_json::parse(text, nullptr, false);
  if (w.is_discarded() || !w.is_object() || !w.contains("path") || !w["path"].is_string() ||
      !w.contains("document")) {
    throw std::runtime_error("worker scenario file '" + file +
                             "' is not what the sweep writes (expected {\"path\", \"document\"})");
  }
  return parse_scenario(w["document"].dump(), w["path"].get<std::string>());
}

int variant_ranks(const Variant& v) {
  const json c = v.config.to_json();
  const auto get = [&](const char* key) {
    const auto it = c.find(key);
    return it != c.end() && it->is_number_integer() ? std::max(1, it->get<int>()) : 1;
  };
  return get("dp") * get("tp") * get("pp");
}

ProcessRunner::ProcessRunner(const Scenario& s, const RunOptions& o, const json& environment)
    : s_(s), o_(o), environment_(environment) {
  work_root_ = fs::absolute(fs::path(o.out_dir) / ".work").lexically_normal().string();
  std::error_code ec;
  fs::create_directories(work_root_, ec);
  if (ec) {
    throw std::runtime_error("cannot create work directory '" + work_root_ + "': " + ec.message());
  }
  environment_path_ = (fs::path(work_root_) / "environment.json").string();
  write_text(environment_path_, environment.dump() + "\n");
  scenario_text_ = worker_scenario_text(s);
  const Scenario again = parse_worker_scenario(scenario_text_, s.path);
  for (std::size_t i = 0; i < s.variants.size(); ++i) {
    const std::string got = i < again.variants.size() ? again.variants[i].id : "(none)";
    if (got != s.variants[i].id) {
      throw std::logic_error("scenario '" + s.path +
                             "' as written for the workers expands variant " + std::to_string(i) +
                             " to '" + got + "' (expected '" + s.variants[i].id + "')");
    }
  }
  executable_ = o.worker_executable;
  if (executable_.empty()) {
    executable_ = fs::read_symlink("/proc/self/exe", ec).string();
    if (ec)
      throw std::runtime_error("cannot find this executable (/proc/self/exe): " + ec.message());
  }
}

ProcessRunner::~ProcessRunner() {
  std::error_code ec;
  fs::remove(environment_path_, ec);
  if (fs::is_empty(work_root_, ec) && !ec) fs::remove(work_root_, ec);
}

json ProcessRunner::error_line(const Variant& v, const std::string& started_utc, double duration_s,
                               const std::string& reason, const json& failure) const {
  // The top-level fields run_variant writes for a failure.
  Variant run = v;
  if (o_.device) run.config.device = *o_.device;
  json line;
  line["schema_version"] = kSchemaVersion;
  line["scenario"] = {{"name", s_.name}, {"path", s_.path}, {"description", s_.description}};
  line["variant"] = {
      {"index", v.index}, {"id", v.id}, {"keys", v.keys}, {"baseline", v.is_baseline}};
  line["config"] = run.config.to_json();
  line["started_utc"] = started_utc;
  line["status"] = "error";
  line["reason"] = reason;
  line["failure"] = failure;
  line["duration_s"] = duration_s;
  line["environment"] = environment_;
  return line;
}

json ProcessRunner::run(const Variant& v) const {
  const fs::path dir = fs::path(work_root_) / std::to_string(v.index);
  std::error_code ec;
  fs::remove_all(dir, ec);  // a run that was cut short before
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create '" + dir.string() + "': " + ec.message());
  const std::string scenario_path = (dir / "scenario.json").string();
  const std::string result_path = (dir / "result.json").string();
  const std::string log_path = (dir / "worker.log").string();
  write_text(scenario_path, scenario_text_);

  const int ranks = variant_ranks(v);
  std::vector<std::string> argv;
  std::string launch;
  if (ranks > 1) {
    argv = expand_launch_template(o_.launcher.empty() ? default_launch_template() : o_.launcher,
                                  ranks);
    launch = join(argv);
  }
  // --key=value throughout: a value never reads as a flag.
  argv.insert(
      argv.end(),
      {executable_, "worker", "--scenario=" + scenario_path, "--variant=" + std::to_string(v.index),
       "--variant-id=" + v.id, "--environment=" + environment_path_, "--result=" + result_path,
       "--work-dir=" + dir.string(), "--out=" + o_.out_dir, "--command-line=" + o_.command_line});
  if (o_.device) argv.push_back("--device=" + *o_.device);
  if (o_.trace) argv.push_back("--trace");
  if (!launch.empty()) argv.push_back("--launcher=" + launch);

  const std::string started_utc = utc_now_iso8601();
  WatchOptions watch;
  watch.hang_timeout_s = o_.hang_timeout_s;
  watch.variant_timeout_s = o_.variant_timeout_s;
  const ProcessEnd end = run_watched(argv, log_path, dir.string(), watch);

  json line;
  std::string unreadable;
  if (fs::exists(result_path)) {
    line = json::parse(read_text(result_path), nullptr, false);
    if (line.is_discarded() || !line.is_object() || !line.contains("status")) {
      unreadable = " (its result file " + result_path + " is not a result line)";
      line = json();
    }
  }
  if (line.is_null()) {
    const FailureReport r =
        describe_failure(end, ranks, launch, read_file_end(log_path, kLogBytes));
    line = error_line(v, started_utc, end.elapsed_s, r.reason + unreadable, r.failure);
  }
  if (line.value("status", "") == "ok") fs::remove_all(dir, ec);
  return line;
}

}  // namespace tb
