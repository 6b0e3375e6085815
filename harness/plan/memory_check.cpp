#include "memory_check.h"

#include <algorithm>
#include <cstdio>

#include "available_memory.h"

namespace tb {

namespace {

std::string human(double bytes) {
  const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int i = 0;
  while (bytes >= 1024 && i < 5) {
    bytes /= 1024;
    ++i;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", bytes, unit[i]);
  return buf;
}

}  // namespace

std::string MemoryCheck::message() const {
  // The rank's largest categories, so the line says what does not fit.
  std::string parts;
  for (std::size_t k = 0; k < kMemoryCategoryCount; ++k) {
    const double b = rank.bytes[k];
    if (b < 0.01 * rank.total()) continue;
    parts += (parts.empty() ? "" : ", ") +
             std::string(memory_category_name(static_cast<MemoryCategory>(k))) + " " + human(b);
  }
  char predicted[32];
  std::snprintf(predicted, sizeof predicted, "%.0f", predicted_bytes);
  const std::string whose = ranks == 1
                                ? "; "
                                : " for " + std::to_string(ranks) + " ranks; this one (stage " +
                                      std::to_string(rank.stage) + "): ";
  const std::string what = "predicted peak memory " + std::string(predicted) + " bytes (" +
                           human(predicted_bytes) + whose + parts + ")";
  if (!available_known) return what + " (the device's free memory is unknown)";
  return what + (fits ? " fits" : " exceeds") + " the available " +
         std::to_string(available_bytes) + " bytes (" + human(double(available_bytes)) + ": " +
         available_source + ")";
}

MemoryCheck check_memory(const ModelConfig& model, const RunConfig& run, DeviceKind device,
                         int stage, int local_ranks, int cuda_device) {
  MemoryCheck c;
  c.rank = predict_stage_memory(model, run, device, stage);
  const int world = std::max(1, run.ranks());
  local_ranks = std::clamp(local_ranks, 1, world);
  if (device == DeviceKind::cuda) {
    c.predicted_bytes = c.rank.total();  // one GPU per rank
  } else if (local_ranks == world) {
    // Every rank of the job on this node: dp·tp ranks per stage, each its stage's total.
    double sum = 0;
    const int p = std::max(1, run.pp);
    for (int s = 0; s < p; ++s) {
      sum += s == stage ? c.rank.total() : predict_stage_memory(model, run, device, s).total();
    }
    c.predicted_bytes = sum * double(world / p);
    c.ranks = world;
  } else {
    c.predicted_bytes = predict_peak_memory(model, run, device).total() * double(local_ranks);
    c.ranks = local_ranks;
  }
  if (const auto a = available_memory(device, cuda_device)) {
    c.available_known = true;
    c.available_bytes = a->bytes;
    c.available_source = a->source;
    if (local_ranks > 1 && device == DeviceKind::cpu) {
      c.available_source += ", shared by the node's " + std::to_string(local_ranks) + " ranks";
    }
  }
  // The tracker's limit binds each rank on its own.
  const auto limit = static_cast<std::size_t>(std::max<std::int64_t>(run.memory_limit_bytes, 0));
  if (limit > 0 && c.rank.total() > double(limit)) {
    c.predicted_bytes = c.rank.total();
    c.ranks = 1;
    c.available_bytes = limit;
    c.available_known = true;
    c.available_source = "memory_limit_bytes, per rank";
    c.fits = false;
    return c;
  }
  c.fits = !c.available_known || c.predicted_bytes <= double(c.available_bytes);
  return c;
}

void require_fits(const MemoryCheck& c) {
  if (c.fits) return;
  throw PredictedOutOfMemory(static_cast<std::size_t>(c.predicted_bytes), c.available_bytes,
                             c.message());
}

}  // namespace tb
