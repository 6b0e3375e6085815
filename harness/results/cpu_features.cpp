#include "cpu_features.h"

#include <fstream>
#include <set>
#include <sstream>

namespace tb {

namespace {

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The value of the first line starting with `key` (up to its colon), or "".
std::string field(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    if (line.find_first_not_of(" \t", key.size()) != colon) continue;  // "flags" ≠ "flagsx"
    return line.substr(colon + 1);
  }
  return "";
}

}  // namespace

nlohmann::json CpuFeatures::isa_json() const {
  return {{"avx2", avx2},
          {"avx512f", avx512f},
          {"avx512_bf16", avx512_bf16},
          {"avx512_fp16", avx512_fp16},
          {"amx_tile", amx_tile},
          {"amx_bf16", amx_bf16},
          {"amx_fp16", amx_fp16},
          {"amx_int8", amx_int8}};
}

CpuFeatures parse_cpu_features(const std::string& cpuinfo, const std::string& meminfo) {
  std::set<std::string> flags;
  std::istringstream words(field(cpuinfo, "flags"));
  for (std::string w; words >> w;) flags.insert(w);
  CpuFeatures f;
  f.avx2 = flags.count("avx2") > 0;
  f.avx512f = flags.count("avx512f") > 0;
  f.avx512_bf16 = flags.count("avx512_bf16") > 0;
  f.avx512_fp16 = flags.count("avx512_fp16") > 0;
  f.amx_tile = flags.count("amx_tile") > 0;
  f.amx_bf16 = flags.count("amx_bf16") > 0;
  f.amx_fp16 = flags.count("amx_fp16") > 0;
  f.amx_int8 = flags.count("amx_int8") > 0;
  // "MemTotal:       24683868 kB" (kibibytes, proc(5)).
  std::istringstream kb(field(meminfo, "MemTotal"));
  std::uint64_t k = 0;
  if (kb >> k) f.memory_bytes = k * 1024;
  return f;
}

CpuFeatures cpu_features() {
  return parse_cpu_features(read_file("/proc/cpuinfo"), read_file("/proc/meminfo"));
}

}  // namespace tb
