#include "available_memory.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>
#include <vector>

#include "tb/device_memory.h"

namespace tb {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// A whole non-negative decimal (surrounding white space allowed).
std::optional<std::size_t> parse_count(std::string_view s) {
  s = trim(s);
  std::size_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::vector<std::string_view> lines(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    out.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

std::optional<std::string> read_real_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream s;
  s << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return s.str();
}

// The directories from the cgroup of `path` (e.g. "/a/b") up to the hierarchy's root, under
// the mount point `root`: root/a/b, root/a, root.
std::vector<std::string> cgroup_dirs(const std::string& root, std::string_view path) {
  std::vector<std::string> dirs;
  std::string p(trim(path));
  while (!p.empty() && p.back() == '/') p.pop_back();
  while (true) {
    dirs.push_back(root + p);
    if (p.empty()) break;
    p.erase(p.rfind('/'));
  }
  return dirs;
}

}  // namespace

std::optional<std::size_t> parse_meminfo_available(std::string_view meminfo) {
  for (std::string_view line : lines(meminfo)) {
    constexpr std::string_view key = "MemAvailable:";
    if (line.substr(0, key.size()) != key) continue;
    std::string_view rest = trim(line.substr(key.size()));
    std::size_t unit = 1;
    if (rest.size() >= 2 && rest.substr(rest.size() - 2) == "kB") {
      unit = 1024;
      rest = trim(rest.substr(0, rest.size() - 2));
    }
    const auto v = parse_count(rest);
    if (!v) return std::nullopt;
    return *v * unit;
  }
  return std::nullopt;
}

std::optional<std::size_t> parse_cgroup_v2_available(std::string_view max,
                                                     std::string_view current) {
  if (trim(max) == "max") return std::nullopt;
  const auto limit = parse_count(max), used = parse_count(current);
  if (!limit || !used) return std::nullopt;
  return *limit > *used ? *limit - *used : 0;
}

std::optional<std::size_t> parse_cgroup_v1_available(std::string_view limit,
                                                     std::string_view usage) {
  const auto l = parse_count(limit), u = parse_count(usage);
  if (!l || !u || *l >= (std::size_t{1} << 62)) return std::nullopt;
  return *l > *u ? *l - *u : 0;
}

CgroupPaths parse_proc_self_cgroup(std::string_view text) {
  CgroupPaths c;
  for (std::string_view line : lines(text)) {
    // hierarchy-ID:controller-list:cgroup-path (cgroups(7))
    const auto a = line.find(':');
    if (a == std::string_view::npos) continue;
    const auto b = line.find(':', a + 1);
    if (b == std::string_view::npos) continue;
    const std::string_view id = line.substr(0, a), controllers = line.substr(a + 1, b - a - 1);
    const std::string path(trim(line.substr(b + 1)));
    if (id == "0" && controllers.empty()) {
      c.v2 = path;
      continue;
    }
    std::string_view rest = controllers;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      if (rest.substr(0, comma) == "memory") c.v1_memory = path;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return c;
}

AvailableMemory host_available_memory(const ReadFile& read_arg) {
  const ReadFile read = read_arg ? read_arg : ReadFile(read_real_file);
  AvailableMemory best;
  bool have = false;
  const auto consider = [&](std::optional<std::size_t> bytes, std::string source) {
    if (!bytes || (have && *bytes >= best.bytes)) return;
    best = {*bytes, std::move(source)};
    have = true;
  };
  if (const auto m = read("/proc/meminfo")) {
    consider(parse_meminfo_available(*m), "MemAvailable of /proc/meminfo");
  }
  if (!have) {
    const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) {
      consider(static_cast<std::size_t>(pages) * static_cast<std::size_t>(page),
               "free pages (sysconf)");
    }
  }
  const CgroupPaths cg = parse_proc_self_cgroup(read("/proc/self/cgroup").value_or(""));
  if (cg.v2) {
    for (const std::string& d : cgroup_dirs("/sys/fs/cgroup", *cg.v2)) {
      const auto max = read(d + "/memory.max"), cur = read(d + "/memory.current");
      if (max && cur)
        consider(parse_cgroup_v2_available(*max, *cur),
                 "cgroup " + d + " memory.max − memory.current");
    }
  }
  if (cg.v1_memory) {
    for (const std::string& d : cgroup_dirs("/sys/fs/cgroup/memory", *cg.v1_memory)) {
      const auto lim = read(d + "/memory.limit_in_bytes"), use = read(d + "/memory.usage_in_bytes");
      if (lim && use) {
        consider(parse_cgroup_v1_available(*lim, *use),
                 "cgroup " + d + " memory.limit_in_bytes − memory.usage_in_bytes");
      }
    }
  }
  return best;
}

std::optional<AvailableMemory> available_memory(DeviceKind device, int cuda_device) {
  if (device == DeviceKind::cpu) return host_available_memory();
  const auto m = cuda_device_memory(cuda_device);
  if (!m) return std::nullopt;
  return AvailableMemory{m->free_bytes,
                         "cudaMemGetInfo free bytes of CUDA device " + std::to_string(cuda_device)};
}

}  // namespace tb
