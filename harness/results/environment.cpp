#include "environment.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <thread>

#include "build_info.h"
#include "cpu_features.h"
#include "tb/devices.h"

extern "C" char* openblas_get_config();

namespace tb {

namespace {
std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown";
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}
}  // namespace

nlohmann::json capture_environment(const std::string& command_line, int threads) {
  nlohmann::json env;
  const CpuFeatures features = cpu_features();
  env["cpu"] = {{"model", cpu_model()},
                {"logical_cores", std::thread::hardware_concurrency()},
                {"threads", threads},
                {"isa", features.isa_json()},
                {"memory_bytes", features.memory_bytes}};
  const GpuInventory gpus = query_gpus();
  nlohmann::json devs = nlohmann::json::array();
  for (const auto& g : gpus.devices) {
    devs.push_back({{"index", g.index},
                    {"name", g.name},
                    {"sm_count", g.sm_count},
                    {"compute_capability", std::to_string(g.compute_capability_major) + "." +
                                               std::to_string(g.compute_capability_minor)},
                    {"memory_bytes", g.memory_bytes}});
  }
  env["gpus"] = devs;
  env["cuda"] = {{"backend_built", gpus.cuda_built},
                 {"driver_version", gpus.driver_version},
                 {"runtime_version", gpus.runtime_version},
                 {"cublaslt_version", gpus.cublaslt_version},
                 {"nccl_version", gpus.nccl_version},
                 {"cupti_version", gpus.cupti_version},
                 {"note", gpus.note}};
  env["blas"] = openblas_get_config();
  env["build"] = {{"version", build_info::version},
                  {"git_revision", build_info::git_revision},
                  {"build_type", build_info::build_type},
                  {"compiler", build_info::compiler},
                  {"cxx_flags", build_info::cxx_flags}};
  env["command_line"] = command_line;
  env["hostname"] = host_name();
  env["date_utc"] = utc_now_iso8601();
  return env;
}

std::string utc_now_iso8601() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace tb
