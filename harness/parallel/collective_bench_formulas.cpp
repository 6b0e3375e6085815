// The pure parts of the collective benchmark: names, nccl-tests' bus-bandwidth factors,
// message sizes, the input pattern and expected outputs, the memory bound, the JSON.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "collective_bench.h"

namespace tb {

std::string_view collective_name(Collective c) {
  switch (c) {
    case Collective::all_reduce:
      return "all_reduce";
    case Collective::reduce_scatter:
      return "reduce_scatter";
    case Collective::all_gather:
      return "all_gather";
    case Collective::all_to_all:
      return "all_to_all";
    case Collective::send_recv:
      return "send_recv";
  }
  return "?";
}

Collective parse_collective(std::string_view name) {
  std::string choices;
  for (Collective c : kAllCollectives) {
    if (collective_name(c) == name) return c;
    choices += (choices.empty() ? "" : ", ") + std::string(collective_name(c));
  }
  throw std::invalid_argument("collective '" + std::string(name) + "' (expected one of " + choices +
                              ")");
}

double busbw_factor(Collective c, int n) {
  if (n < 1) {
    throw std::invalid_argument("busbw factor for " + std::to_string(n) + " ranks (expected >= 1)");
  }
  const double dn = n;
  switch (c) {
    // nccl-tests doc/PERFORMANCE.md: each element needs n−1 additions and n assignments, so
    // 2(n−1) transfers of S/n per link: t = (S/B)·2(n−1)/n.
    case Collective::all_reduce:
      return 2 * (dn - 1) / dn;
    // Only the addition half (reduce-scatter) or the assignment half (all-gather): (n−1)/n,
    // with S the whole array (recvcount·n resp. sendcount·n elements).
    case Collective::reduce_scatter:
    case Collective::all_gather:
    // All-to-all: (n−1) of the n chunks leave each rank (PERFORMANCE.md, "Summary").
    case Collective::all_to_all:
      return (dn - 1) / dn;
    // Point-to-point: the bus carries S (src/sendrecv.cu, SendRecvGetBw: factor 1).
    case Collective::send_recv:
      return 1;
  }
  return 0;
}

namespace {
bool splits_in_chunks(Collective c) {
  return c == Collective::reduce_scatter || c == Collective::all_gather ||
         c == Collective::all_to_all;
}
}  // namespace

std::int64_t message_elements(Collective c, std::size_t bytes, DType t, int n) {
  const auto e = static_cast<std::int64_t>(bytes / dtype_size(t));
  return splits_in_chunks(c) ? e / n * n : e;
}

std::int64_t input_elements(Collective c, std::int64_t elements, int n) {
  return c == Collective::all_gather ? elements / n : elements;
}

std::int64_t output_elements(Collective c, std::int64_t elements, int n) {
  return c == Collective::reduce_scatter ? elements / n : elements;
}

double input_value(int rank, std::int64_t i) {
  return static_cast<double>((i + 17 * static_cast<std::int64_t>(rank)) % 256);
}

ExpectedOutput::ExpectedOutput(Collective c, int n, int rank, std::int64_t elements)
    : c_(c), n_(n), rank_(rank), chunk_(splits_in_chunks(c) ? elements / n : elements) {
  if (c == Collective::all_reduce || c == Collective::reduce_scatter) {
    for (std::int64_t j = 0; j < 256; ++j) {
      double s = 0;
      for (int k = 0; k < n; ++k) s += input_value(k, j);
      sums_[static_cast<std::size_t>(j)] = s;
    }
  }
}

double ExpectedOutput::operator()(std::int64_t i) const {
  switch (c_) {
    case Collective::all_reduce:
      return sums_[static_cast<std::size_t>(i % 256)];
    case Collective::reduce_scatter:
      return sums_[static_cast<std::size_t>((rank_ * chunk_ + i) % 256)];
    case Collective::all_gather:
      return input_value(static_cast<int>(i / chunk_), i % chunk_);
    case Collective::all_to_all:
      return input_value(static_cast<int>(i / chunk_), rank_ * chunk_ + i % chunk_);
    case Collective::send_recv:
      return input_value((rank_ - 1 + n_) % n_, i);
  }
  return 0;
}

std::size_t default_max_bytes(std::size_t host_available, int local_ranks,
                              std::size_t device_memory) {
  const auto l = static_cast<std::size_t>(local_ranks < 1 ? 1 : local_ranks);
  // Largest S with 2S per rank (both buffers) within half the memory that holds them.
  const std::size_t limit = device_memory > 0 ? std::min(device_memory / 4, host_available / 2 / l)
                                              : host_available / 4 / l;
  std::size_t s = kMaxCommBytes;
  while (s > limit && s >= 8) s /= 2;
  return s >= 8 && s <= limit ? s : 0;
}

std::int64_t CollectiveBenchReport::wrong() const {
  std::int64_t w = 0;
  for (const auto& r : results) w += r.wrong;
  return w;
}

nlohmann::json collective_bench_json(const CollectiveBenchReport& r,
                                     const nlohmann::json& environment) {
  nlohmann::json j = {{"schema", "trainbench-comm/1"}, {"world_size", r.world_size},
                      {"backend", r.backend},          {"device", r.device},
                      {"iters", r.options.iters},      {"warmup", r.options.warmup}};
  if (!environment.is_null()) j["environment"] = environment;
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& x : r.results) {
    rows.push_back({{"collective", collective_name(x.collective)},
                    {"bytes", x.bytes},
                    {"elements", x.elements},
                    {"dtype", dtype_name(x.dtype)},
                    {"time_s", x.time_s},
                    {"algbw_GBps", x.algbw_GBps},
                    {"busbw_GBps", x.busbw_GBps},
                    {"wrong", x.wrong}});
  }
  j["results"] = std::move(rows);
  return j;
}

}  // namespace tb
