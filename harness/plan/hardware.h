// The accelerators the capacity planner knows (docs/planner.md, "Hardware"): memory, dense
// peak FLOP/s per precision, memory bandwidth, and the two network tiers a job spans — inside
// a node (NVLink) and between nodes (InfiniBand, one NIC per GPU). Peaks come from the same
// table MFU uses (results/peaks.h); the rest from NVIDIA's datasheets, cited per row.
#pragma once
#include <string>
#include <vector>

namespace tb {

// One network tier in the α–β (latency–bandwidth) model: moving S bytes point to point
// takes latency_s + S / bytes_per_s (Hockney 1994).
struct LinkTier {
  double bytes_per_s = 0;  // per GPU, one direction
  double latency_s = 0;
};

struct Accelerator {
  std::string key;   // command-line name, e.g. "h100-sxm"
  std::string name;  // as the peak table names it, e.g. "H100 SXM"
  double memory_bytes = 0;
  double fp32 = 0, tf32 = 0, bf16 = 0, fp8 = 0;  // dense peak FLOP/s (fp16 = bf16)
  double memory_bytes_per_s = 0;                 // HBM
  LinkTier intra_node, inter_node;
  int gpus_per_node = 8;
  std::string source;
  // Dense peak FLOP/s of `precision` (fp32 | tf32 | bf16 | fp16 | fp8); 0 when the part has
  // none.
  double peak_flops(const std::string& precision) const;
};

const std::vector<Accelerator>& accelerators();
// Throws std::invalid_argument("unknown GPU 'x' (expected one of: …)").
const Accelerator& accelerator(const std::string& key);

}  // namespace tb
