// What memory a run can still allocate on its device, read before anything is allocated
// (memory_check.h compares it with the memory model's prediction; docs/planner.md):
//  - CPU: the smallest of /proc/meminfo's MemAvailable (what the kernel can hand out without
//    swapping) and, for each cgroup that limits this process (its own and every ancestor up
//    to the hierarchy's root), the limit less the usage — cgroup v2's memory.max −
//    memory.current, or v1's memory.limit_in_bytes − memory.usage_in_bytes;
//  - CUDA: the device's free bytes (cudaMemGetInfo; tb/device_memory.h).
// The parsers take the files' text, so they are tested on strings.
#pragma once
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "tb/backend.h"

namespace tb {

struct AvailableMemory {
  std::size_t bytes = 0;
  std::string source;  // where the figure comes from, e.g. "MemAvailable of /proc/meminfo"
};

// MemAvailable of /proc/meminfo's text ("MemAvailable:   23809956 kB"), in bytes; nullopt when
// the line is missing or malformed (kernels before 3.14 have none).
std::optional<std::size_t> parse_meminfo_available(std::string_view meminfo);
// cgroup v2: memory.max ("max" = no limit → nullopt) less memory.current; 0 when the usage
// is at or over the limit; nullopt when either is malformed.
std::optional<std::size_t> parse_cgroup_v2_available(std::string_view max,
                                                     std::string_view current);
// cgroup v1: memory.limit_in_bytes less memory.usage_in_bytes; a limit of 2^62 bytes or more
// is the kernel's "unlimited" (9223372036854771712 = PAGE_COUNTER_MAX pages) → nullopt.
std::optional<std::size_t> parse_cgroup_v1_available(std::string_view limit,
                                                     std::string_view usage);

// This process's cgroup per hierarchy, from /proc/self/cgroup: the v2 line "0::/path" and
// the v1 line whose controllers include memory ("4:memory:/path").
struct CgroupPaths {
  std::optional<std::string> v2, v1_memory;
};
CgroupPaths parse_proc_self_cgroup(std::string_view text);

// Reads a file's whole text; nullopt when it cannot be read.
using ReadFile = std::function<std::optional<std::string>(const std::string& path)>;

// The CPU's figure (above) with files read through `read` (paths under /proc and
// /sys/fs/cgroup); the real file system when `read` is empty.
AvailableMemory host_available_memory(const ReadFile& read = {});
// For `device`: the host's figure, or CUDA device `cuda_device`'s free bytes. nullopt when it
// cannot be known (a CUDA device this build cannot query).
std::optional<AvailableMemory> available_memory(DeviceKind device, int cuda_device = 0);

}  // namespace tb
