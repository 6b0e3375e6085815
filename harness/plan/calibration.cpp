#include "calibration.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <stdexcept>

namespace tb {

namespace {

const char* kind_name(OpKind k) {
  switch (k) {
    case OpKind::gemm:
      return "gemm";
    case OpKind::attention:
      return "attention";
    default:
      return "memory";
  }
}

OpKind parse_kind(const std::string& s, const std::string& where) {
  if (s == "gemm") return OpKind::gemm;
  if (s == "attention") return OpKind::attention;
  if (s == "memory") return OpKind::memory;
  throw std::invalid_argument(where + ": kind '" + s + "' (expected gemm, attention or memory)");
}

// The size an operation's rate is measured against: FLOPs for compute, bytes otherwise.
double work(OpKind k, double flops, double bytes) { return k == OpKind::memory ? bytes : flops; }

}  // namespace

nlohmann::json Calibration::to_json() const {
  nlohmann::json tiers = nlohmann::json::array();
  for (const auto& [n, t] : collectives) {
    tiers.push_back({{"ranks", n}, {"bytes_per_s", t.bytes_per_s}, {"latency_s", t.latency_s}});
  }
  nlohmann::json timed = nlohmann::json::array();
  for (const CalibratedCollective& k : collective_times) {
    timed.push_back({{"collective", k.collective},
                     {"ranks", k.ranks},
                     {"group", k.group},
                     {"bytes", k.bytes},
                     {"seconds", k.seconds}});
  }
  nlohmann::json waits = nlohmann::json::array();
  for (const auto& [n, points] : sync_wait) {
    for (const SyncWaitPoint& w : points) {
      waits.push_back({{"ranks", n}, {"segment_s", w.segment_s}, {"wait_s", w.wait_s}});
    }
  }
  nlohmann::json speeds = nlohmann::json::array();
  for (const auto& [n, by_busy] : busy_speed) {
    for (std::size_t k = 0; k < by_busy.size(); ++k) {
      speeds.push_back({{"ranks", n}, {"busy", k + 1}, {"speed", by_busy[k]}});
    }
  }
  nlohmann::json ops_json = nlohmann::json::array();
  for (const CalibratedOp& o : ops) {
    ops_json.push_back({{"op", o.op},
                        {"precision", o.precision},
                        {"dims", o.dims},
                        {"kind", kind_name(o.kind)},
                        {"flops", o.flops},
                        {"bytes", o.bytes},
                        {"seconds", o.seconds},
                        {"threads", o.threads},
                        {"ranks", o.ranks}});
  }
  return {{"schema", "trainbench.calibration/1"},
          {"device", device},
          {"device_kind", device_kind},
          {"threads", threads},
          {"cores", cores},
          {"created", created},
          {"memory_bytes", memory_bytes},
          {"collectives", tiers},
          {"collective_times", timed},
          {"sync_wait", waits},
          {"busy_speed", speeds},
          {"checkpoint_write_bytes_per_s", checkpoint_write_bytes_per_s},
          {"ops", ops_json}};
}

Calibration Calibration::from_json(const nlohmann::json& j, const std::string& path) {
  auto fail = [&](const std::string& what) { throw std::invalid_argument(path + ": " + what); };
  if (!j.is_object()) fail("not a JSON object (expected a trainbench calibration file)");
  if (j.value("schema", std::string()) != "trainbench.calibration/1") {
    fail("schema " + (j.contains("schema") ? j["schema"].dump() : std::string("missing")) +
         " (expected \"trainbench.calibration/1\")");
  }
  Calibration c;
  c.path = path;
  try {
    c.device = j.at("device").get<std::string>();
    c.device_kind = j.at("device_kind").get<std::string>();
    c.threads = j.value("threads", 0);
    c.cores = j.value("cores", 0);
    c.created = j.value("created", std::string());
    c.memory_bytes = j.value("memory_bytes", 0.0);
    for (const auto& t : j.value("collectives", nlohmann::json::array())) {
      c.collectives[t.at("ranks").get<int>()] = {t.at("bytes_per_s").get<double>(),
                                                 t.at("latency_s").get<double>()};
    }
    for (const auto& t : j.value("collective_times", nlohmann::json::array())) {
      CalibratedCollective k{t.at("collective").get<std::string>(), t.at("ranks").get<int>(),
                             t.at("group").get<int>(), t.at("bytes").get<double>(),
                             t.at("seconds").get<double>()};
      if ((k.collective != "reduce_scatter" && k.collective != "all_gather") || k.group < 2 ||
          k.ranks < k.group || !(k.bytes > 0) || !(k.seconds > 0) || !std::isfinite(k.seconds)) {
        fail("collective_times " + t.dump() +
             " (expected reduce_scatter or all_gather, 2 ≤ group ≤ ranks, positive bytes and "
             "seconds)");
      }
      c.collective_times.push_back(std::move(k));
    }
    for (const auto& w : j.value("sync_wait", nlohmann::json::array())) {
      const SyncWaitPoint p{w.at("segment_s").get<double>(), w.at("wait_s").get<double>()};
      if (!(p.segment_s > 0) || !(p.wait_s >= 0) || !std::isfinite(p.wait_s)) {
        fail("sync_wait " + w.dump() + " (expected a positive segment_s and a wait_s ≥ 0)");
      }
      c.sync_wait[w.at("ranks").get<int>()].push_back(p);
    }
    for (auto& [n, points] : c.sync_wait) {
      std::sort(points.begin(), points.end(),
                [](const auto& a, const auto& b) { return a.segment_s < b.segment_s; });
    }
    for (const auto& b : j.value("busy_speed", nlohmann::json::array())) {
      const int n = b.at("ranks").get<int>(), k = b.at("busy").get<int>();
      const double v = b.at("speed").get<double>();
      if (n < 2 || k < 1 || k > n || !(v > 0) || !std::isfinite(v)) {
        fail("busy_speed " + b.dump() +
             " (expected ranks ≥ 2, busy in [1, ranks] and a positive speed)");
      }
      std::vector<double>& by_busy = c.busy_speed[n];
      by_busy.resize(std::size_t(n), 0.0);
      by_busy[std::size_t(k - 1)] = v;
    }
    for (const auto& [n, by_busy] : c.busy_speed) {
      if (std::find(by_busy.begin(), by_busy.end(), 0.0) != by_busy.end()) {
        fail("busy_speed for " + std::to_string(n) +
             " ranks (expected a speed for every busy count 1.." + std::to_string(n) + ")");
      }
    }
    c.checkpoint_write_bytes_per_s = j.value("checkpoint_write_bytes_per_s", 0.0);
    const auto& ops = j.at("ops");
    if (!ops.is_array()) fail("ops is not an array (expected a list of measured operations)");
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const auto& o = ops[i];
      const std::string where = path + ": ops[" + std::to_string(i) + "]";
      CalibratedOp op;
      op.op = o.at("op").get<std::string>();
      op.precision = o.at("precision").get<std::string>();
      op.dims = o.at("dims").get<std::array<std::int64_t, 4>>();
      op.kind = parse_kind(o.at("kind").get<std::string>(), where);
      op.flops = o.at("flops").get<double>();
      op.bytes = o.at("bytes").get<double>();
      op.seconds = o.at("seconds").get<double>();
      op.threads = o.value("threads", 0);
      op.ranks = o.value("ranks", 1);
      if (!(op.seconds > 0) || !std::isfinite(op.seconds)) {
        throw std::invalid_argument(where + ": seconds " + o.at("seconds").dump() +
                                    " (expected a positive time)");
      }
      c.ops.push_back(op);
    }
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("malformed calibration (") + e.what() + ")");
  }
  if (c.device_kind != "cpu" && c.device_kind != "cuda") {
    fail("device_kind '" + c.device_kind + "' (expected cpu or cuda)");
  }
  return c;
}

std::optional<double> Calibration::exact_seconds(const OpCost& o, const std::string& precision,
                                                 int op_threads, int op_ranks) const {
  for (const CalibratedOp& c : ops) {
    if (c.op == o.op && c.precision == precision && c.dims == o.dims && c.threads == op_threads &&
        c.ranks == op_ranks) {
      return c.seconds;
    }
  }
  return std::nullopt;
}

std::optional<double> Calibration::nearest_rate(const OpCost& o, const std::string& precision,
                                                int op_threads, int op_ranks) const {
  const double want = work(o.kind, o.flops, o.bytes);
  double best_distance = std::numeric_limits<double>::infinity(), rate = 0;
  for (const CalibratedOp& c : ops) {
    const double have = work(c.kind, c.flops, c.bytes);
    if (c.op != o.op || c.precision != precision || c.threads != op_threads ||
        c.ranks != op_ranks || !(have > 0) || !(want > 0)) {
      continue;
    }
    const double d = std::abs(std::log(have / want));
    if (d < best_distance) {
      best_distance = d;
      rate = have / c.seconds;
    }
  }
  if (rate > 0) return rate;
  return std::nullopt;
}

std::optional<double> Calibration::sync_wait_s(int ranks, double segment_s) const {
  const auto it = sync_wait.find(ranks);
  if (it == sync_wait.end() || it->second.empty()) return std::nullopt;
  const std::vector<SyncWaitPoint>& p = it->second;  // ascending segment_s
  if (segment_s <= p.front().segment_s) return p.front().wait_s / p.front().segment_s * segment_s;
  if (segment_s >= p.back().segment_s) return p.back().wait_s / p.back().segment_s * segment_s;
  for (std::size_t i = 1; i < p.size(); ++i) {
    if (segment_s <= p[i].segment_s) {
      const double f = (segment_s - p[i - 1].segment_s) / (p[i].segment_s - p[i - 1].segment_s);
      return p[i - 1].wait_s + f * (p[i].wait_s - p[i - 1].wait_s);
    }
  }
  return p.back().wait_s;
}

std::optional<double> Calibration::busy_speed_of(int ranks, int busy) const {
  const auto it = busy_speed.find(ranks);
  if (it == busy_speed.end() || busy < 1 || busy > ranks) return std::nullopt;
  return it->second[std::size_t(busy - 1)];
}

void Calibration::merge(const Calibration& other) {
  if (other.device_kind != device_kind || other.device != device) {
    throw std::invalid_argument(other.path + ": device '" + other.device + "' (expected '" +
                                device + "' of " + path + ": one machine's calibrations)");
  }
  ops.insert(ops.end(), other.ops.begin(), other.ops.end());
  for (const auto& [n, t] : other.collectives) collectives[n] = t;
  collective_times.insert(collective_times.end(), other.collective_times.begin(),
                          other.collective_times.end());
  for (const auto& [n, w] : other.sync_wait) sync_wait[n] = w;
  for (const auto& [n, v] : other.busy_speed) busy_speed[n] = v;
  path += "+" + other.path;
}

std::optional<double> Calibration::collective_seconds(const std::string& collective, int ranks,
                                                      int group, double bytes) const {
  for (const CalibratedCollective& k : collective_times) {
    if (k.collective == collective && k.ranks == ranks && k.group == group &&
        std::abs(k.bytes - bytes) <= 1e-9 * bytes) {
      return k.seconds;
    }
  }
  return std::nullopt;
}

LinkTier fit_all_reduce_tier(int n, const std::vector<std::pair<double, double>>& points) {
  // Weighted least squares of t = a + b·S with weights 1/t² (relative error).
  double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const auto& [S, t] : points) {
    const double w = 1.0 / (t * t);
    sw += w;
    sx += w * S;
    sy += w * t;
    sxx += w * S * S;
    sxy += w * S * t;
  }
  const double det = sw * sxx - sx * sx;
  if (n < 2 || points.size() < 2 || !(det > 0)) {
    throw std::invalid_argument("all-reduce fit: " + std::to_string(points.size()) +
                                " sizes over " + std::to_string(n) +
                                " ranks (expected at least 2 of each)");
  }
  const double b = (sw * sxy - sx * sy) / det, a = (sy - b * sx) / sw;
  if (!(b > 0)) throw std::invalid_argument("all-reduce fit: times do not grow with size");
  LinkTier t;
  t.latency_s = std::max(0.0, a) / (2.0 * (n - 1));
  t.bytes_per_s = 2.0 * (n - 1) / n / b;
  return t;
}

Calibration load_calibration(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("calibration file '" + path + "': cannot be read");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::invalid_argument(path + ": not JSON (" + std::string(e.what()) +
                                "; expected a trainbench calibration file)");
  }
  return Calibration::from_json(j, path);
}

void save_calibration(const Calibration& c, const std::string& path) {
  std::ofstream out(path);
  if (!out) throw std::invalid_argument("calibration output '" + path + "': cannot be written");
  out << c.to_json().dump(1) << "\n";
  if (!out) throw std::runtime_error("calibration output '" + path + "': write failed");
}

}  // namespace tb
