#include "calibration.h"

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
  nlohmann::json ops_json = nlohmann::json::array();
  for (const CalibratedOp& o : ops) {
    ops_json.push_back({{"op", o.op},
                        {"precision", o.precision},
                        {"dims", o.dims},
                        {"kind", kind_name(o.kind)},
                        {"flops", o.flops},
                        {"bytes", o.bytes},
                        {"seconds", o.seconds}});
  }
  return {{"schema", "trainbench.calibration/1"},
          {"device", device},
          {"device_kind", device_kind},
          {"threads", threads},
          {"created", created},
          {"memory_bytes", memory_bytes},
          {"intra_node",
           {{"bytes_per_s", intra_node.bytes_per_s}, {"latency_s", intra_node.latency_s}}},
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
    c.created = j.value("created", std::string());
    c.memory_bytes = j.value("memory_bytes", 0.0);
    if (j.contains("intra_node")) {
      c.intra_node.bytes_per_s = j["intra_node"].at("bytes_per_s").get<double>();
      c.intra_node.latency_s = j["intra_node"].at("latency_s").get<double>();
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

std::optional<double> Calibration::exact_seconds(const OpCost& o,
                                                 const std::string& precision) const {
  for (const CalibratedOp& c : ops) {
    if (c.op == o.op && c.precision == precision && c.dims == o.dims) return c.seconds;
  }
  return std::nullopt;
}

std::optional<double> Calibration::nearest_rate(const OpCost& o,
                                                const std::string& precision) const {
  const double want = work(o.kind, o.flops, o.bytes);
  double best_distance = std::numeric_limits<double>::infinity(), rate = 0;
  for (const CalibratedOp& c : ops) {
    const double have = work(c.kind, c.flops, c.bytes);
    if (c.op != o.op || c.precision != precision || !(have > 0) || !(want > 0)) continue;
    const double d = std::abs(std::log(have / want));
    if (d < best_distance) {
      best_distance = d;
      rate = have / c.seconds;
    }
  }
  if (rate > 0) return rate;
  return std::nullopt;
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
