#include "hardware.h"

#include <stdexcept>

#include "results/peaks.h"

namespace tb {

namespace {

// Dense peaks from the MFU table (results/peaks.h), so a plan's MFU and a run's MFU divide by
// the same number.
Accelerator with_peaks(Accelerator a) {
  for (const GpuPeakRow& r : gpu_peak_table()) {
    if (r.device != a.name) continue;
    a.fp32 = r.fp32 * 1e12;
    a.tf32 = r.tf32 * 1e12;
    a.bf16 = r.bf16 * 1e12;
    a.fp8 = r.fp8 * 1e12;
  }
  return a;
}

// Latencies: 5 µs inside a node and 10 µs between nodes are assumed defaults of the order of
// nccl-tests' small-message times; a calibration file's measured collectives replace them.
constexpr double kIntraLatency = 5e-6, kInterLatency = 10e-6;

}  // namespace

double Accelerator::peak_flops(const std::string& precision) const {
  if (precision == "fp32") return fp32;
  if (precision == "tf32") return tf32;
  if (precision == "bf16" || precision == "fp16") return bf16;
  if (precision == "fp8") return fp8;
  return 0;
}

const std::vector<Accelerator>& accelerators() {
  // Memory in decimal GB as the datasheets state it. NVLink: the datasheets' total
  // bidirectional bandwidth per GPU, halved for one direction (A100 600 GB/s, H100/H200
  // 900 GB/s). Between nodes: one NIC per GPU as in the DGX systems — DGX A100: 8× ConnectX-6
  // HDR 200 Gb/s (25 GB/s per GPU); DGX H100/H200: 8× ConnectX-7 NDR 400 Gb/s (50 GB/s).
  static const std::vector<Accelerator> rows = {
      with_peaks({"a100-40gb",
                  "A100 SXM",
                  40e9,
                  0,
                  0,
                  0,
                  0,
                  1555e9,
                  {300e9, kIntraLatency},
                  {25e9, kInterLatency},
                  8,
                  "NVIDIA A100 datasheet (40GB SXM: 1,555 GB/s HBM2, NVLink 600 GB/s); DGX A100 "
                  "user guide (8x HDR 200 Gb/s)"}),
      with_peaks({"a100-80gb",
                  "A100 SXM",
                  80e9,
                  0,
                  0,
                  0,
                  0,
                  2039e9,
                  {300e9, kIntraLatency},
                  {25e9, kInterLatency},
                  8,
                  "NVIDIA A100 datasheet (80GB SXM: 2,039 GB/s HBM2e, NVLink 600 GB/s); DGX A100 "
                  "user guide (8x HDR 200 Gb/s)"}),
      with_peaks({"h100-sxm",
                  "H100 SXM",
                  80e9,
                  0,
                  0,
                  0,
                  0,
                  3350e9,
                  {450e9, kIntraLatency},
                  {50e9, kInterLatency},
                  8,
                  "NVIDIA H100 datasheet (SXM5: 80 GB HBM3, 3.35 TB/s, NVLink 900 GB/s); DGX "
                  "H100 user guide (8x NDR 400 Gb/s)"}),
      with_peaks({"h200",
                  "H200 SXM",
                  141e9,
                  0,
                  0,
                  0,
                  0,
                  4800e9,
                  {450e9, kIntraLatency},
                  {50e9, kInterLatency},
                  8,
                  "NVIDIA H200 product brief (141 GB HBM3e, 4.8 TB/s, NVLink 900 GB/s); DGX "
                  "H200 (8x NDR 400 Gb/s)"}),
  };
  return rows;
}

const Accelerator& accelerator(const std::string& key) {
  std::string names;
  for (const Accelerator& a : accelerators()) {
    if (a.key == key) return a;
    names += (names.empty() ? "" : ", ") + a.key;
  }
  throw std::invalid_argument("unknown GPU '" + key + "' (expected one of: " + names + ")");
}

}  // namespace tb
