// The CPU features that decide how fast reduced precision runs on a CPU: the vector and
// matrix instruction sets of /proc/cpuinfo's flags (AVX-512, AVX512-BF16 and -FP16, AMX tiles
// with their bf16/fp16/int8 units) and the installed memory (MemTotal of /proc/meminfo).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tb {

struct CpuFeatures {
  bool avx2 = false, avx512f = false, avx512_bf16 = false, avx512_fp16 = false;
  bool amx_tile = false, amx_bf16 = false, amx_fp16 = false, amx_int8 = false;
  std::uint64_t memory_bytes = 0;  // installed (MemTotal); 0 when unknown

  // The instruction-set flags, by /proc/cpuinfo's names.
  nlohmann::json isa_json() const;
};

// From the text of /proc/cpuinfo (the first processor's flags) and of /proc/meminfo.
CpuFeatures parse_cpu_features(const std::string& cpuinfo, const std::string& meminfo);
// This machine's (empty features where /proc cannot be read).
CpuFeatures cpu_features();

}  // namespace tb
