#include "heartbeat.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace tb {

namespace {

using Clock = std::chrono::steady_clock;
// Often enough for a watchdog that waits tens of seconds; rare enough to cost nothing.
constexpr auto kMinInterval = std::chrono::milliseconds(200);

enum class FaultKind { none, crash, hang, exit };

struct Fault {
  FaultKind kind = FaultKind::none;
  int rank = -1;
  int code = 0;
};

struct State {
  std::mutex mu;
  std::atomic<bool> active{false};
  std::string path, tmp;
  int rank = 0;
  std::string where;
  long step = 0;
  long beats = 0;
  Clock::time_point last_write{};
  Fault fault;
};

State& state() {
  static State s;
  return s;
}

bool parse_int(std::string_view text, int& out) {
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && p == end && !text.empty();
}

// TB_FAULT=KIND:RANK[:CODE][@VARIANT_REGEX]; the fault applies when the regex (if any)
// matches the variant id.
Fault parse_fault(const std::string& text, std::string_view variant_id) {
  const auto bad = [&](const std::string& why) {
    return std::invalid_argument("TB_FAULT '" + text + "' " + why +
                                 " (expected crash:RANK, hang:RANK or exit:RANK:CODE, "
                                 "optionally followed by @VARIANT_REGEX)");
  };
  std::string spec = text;
  if (const auto at = text.find('@'); at != std::string::npos) {
    spec = text.substr(0, at);
    std::regex filter;
    try {
      filter.assign(text.substr(at + 1));
    } catch (const std::regex_error& e) {
      throw bad(std::string("has an invalid variant regex: ") + e.what());
    }
    if (!std::regex_search(std::string(variant_id), filter)) return {};
  }
  std::vector<std::string> parts;
  std::stringstream in(spec);
  for (std::string part; std::getline(in, part, ':');) parts.push_back(part);
  Fault f;
  if (parts.size() == 2 && parts[0] == "crash") {
    f.kind = FaultKind::crash;
  } else if (parts.size() == 2 && parts[0] == "hang") {
    f.kind = FaultKind::hang;
  } else if (parts.size() == 3 && parts[0] == "exit") {
    f.kind = FaultKind::exit;
    if (!parse_int(parts[2], f.code)) throw bad("has exit code '" + parts[2] + "'");
  } else {
    throw bad("is malformed");
  }
  if (!parse_int(parts[1], f.rank) || f.rank < 0) throw bad("has rank '" + parts[1] + "'");
  return f;
}

// Writes the record to a temporary file and renames it over the real one, so a reader never
// sees half a record. Called with the state's mutex held.
void write_record(const State& s, bool done) {
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const nlohmann::json j = {{"rank", s.rank},   {"pid", static_cast<long>(::getpid())},
                            {"where", s.where}, {"step", s.step},
                            {"beats", s.beats}, {"time", now},
                            {"done", done}};
  const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  const int fd = ::open(s.tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0;
  if (ok) {
    const char* p = text.data();
    std::size_t left = text.size();
    while (ok && left > 0) {
      const ssize_t n = ::write(fd, p, left);
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      if (ok) {
        p += n;
        left -= static_cast<std::size_t>(n);
      }
    }
    ok = (::close(fd) == 0) && ok;
  }
  if (!ok || std::rename(s.tmp.c_str(), s.path.c_str()) != 0) {
    throw std::runtime_error("cannot write heartbeat file '" + s.path +
                             "': " + std::strerror(errno));
  }
}

[[noreturn]] void fire(const Fault& f) {
  switch (f.kind) {
    case FaultKind::crash:
      std::raise(SIGSEGV);
      break;
    case FaultKind::exit:
      std::_Exit(f.code);
    case FaultKind::hang:
    case FaultKind::none:
      break;
  }
  // hang, and a crash whose SIGSEGV some handler swallowed: no progress, ever.
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

}  // namespace

void heartbeat_init(const std::string& dir, int rank, std::string_view variant_id) {
  State& s = state();
  Fault fault;
  if (const char* env = std::getenv("TB_FAULT"); env && *env) {
    fault = parse_fault(env, variant_id);
    if (fault.rank != rank) fault = {};
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    throw std::runtime_error("cannot create heartbeat directory '" + dir + "': " + ec.message());
  const std::lock_guard lock(s.mu);
  const std::string name = "rank-" + std::to_string(rank) + ".json";
  s.path = (std::filesystem::path(dir) / name).string();
  s.tmp = (std::filesystem::path(dir) / ("." + name + ".tmp")).string();
  s.rank = rank;
  s.where = "start";
  s.step = 0;
  s.beats = 0;
  s.fault = fault;
  write_record(s, false);
  s.last_write = Clock::now();
  s.active.store(true, std::memory_order_release);
}

void heartbeat(std::string_view where, long step) {
  State& s = state();
  if (!s.active.load(std::memory_order_acquire)) return;
  std::unique_lock lock(s.mu);
  if (s.beats == 0 && s.fault.kind != FaultKind::none) {
    const Fault f = s.fault;
    lock.unlock();
    fire(f);
  }
  ++s.beats;
  s.step = step;
  const auto now = Clock::now();
  if (where == s.where && now - s.last_write < kMinInterval) return;
  s.where = where;
  write_record(s, false);
  s.last_write = now;
}

void heartbeat_done() {
  State& s = state();
  if (!s.active.load(std::memory_order_acquire)) return;
  const std::lock_guard lock(s.mu);
  s.where = "done";
  write_record(s, true);
  s.active.store(false, std::memory_order_release);
}

std::vector<HeartbeatRecord> read_heartbeats(const std::string& dir) {
  static const std::regex name_re(R"(rank-(\d+)\.json)");
  std::vector<HeartbeatRecord> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!std::regex_match(name, name_re)) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    HeartbeatRecord r;
    r.text = buf.str();
    const auto j = nlohmann::json::parse(r.text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;
    try {
      r.rank = j.at("rank").get<int>();
      r.pid = j.at("pid").get<long>();
      r.where = j.at("where").get<std::string>();
      r.step = j.at("step").get<long>();
      r.beats = j.at("beats").get<long>();
      r.time = j.at("time").get<double>();
      r.done = j.value("done", false);
    } catch (const nlohmann::json::exception&) {
      continue;  // not a record of ours
    }
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(),
            [](const HeartbeatRecord& a, const HeartbeatRecord& b) { return a.rank < b.rank; });
  return out;
}

}  // namespace tb
