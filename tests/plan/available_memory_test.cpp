// The available-memory figure (harness/plan/available_memory.h) from the files' text:
// /proc/meminfo, /proc/self/cgroup, cgroup v2's memory.max/memory.current and v1's
// memory.limit_in_bytes/memory.usage_in_bytes — and the check built on it (memory_check.h).
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "plan/available_memory.h"
#include "plan/memory_check.h"
#include "plan/memory_model_util.h"

namespace tb::test {
namespace {

constexpr const char* kMeminfo =
    "MemTotal:       24683584 kB\n"
    "MemFree:         1234567 kB\n"
    "MemAvailable:   23809956 kB\n"
    "Buffers:          123456 kB\n";

TEST(PlanAvailableMemory, MeminfoAvailableInBytes) {
  EXPECT_EQ(parse_meminfo_available(kMeminfo), std::size_t{23809956} * 1024);
  EXPECT_EQ(parse_meminfo_available("MemAvailable: 17"), std::size_t{17});  // no unit: bytes
  EXPECT_EQ(parse_meminfo_available("MemTotal: 5 kB\nMemFree: 3 kB\n"), std::nullopt);
  EXPECT_EQ(parse_meminfo_available("MemAvailable: lots kB\n"), std::nullopt);
  EXPECT_EQ(parse_meminfo_available(""), std::nullopt);
}

TEST(PlanAvailableMemory, CgroupV2LimitLessUsage) {
  EXPECT_EQ(parse_cgroup_v2_available("8589934592\n", "1073741824\n"), std::size_t{7} << 30);
  EXPECT_EQ(parse_cgroup_v2_available("max\n", "1073741824\n"), std::nullopt);
  EXPECT_EQ(parse_cgroup_v2_available("100\n", "250\n"), std::size_t{0});  // over the limit
  EXPECT_EQ(parse_cgroup_v2_available("12x\n", "1\n"), std::nullopt);
}

TEST(PlanAvailableMemory, CgroupV1LimitLessUsageAndItsUnlimitedValue) {
  EXPECT_EQ(parse_cgroup_v1_available("4294967296\n", "1073741824\n"), std::size_t{3} << 30);
  EXPECT_EQ(parse_cgroup_v1_available("9223372036854771712\n", "2583203840\n"), std::nullopt);
  EXPECT_EQ(parse_cgroup_v1_available("", "5"), std::nullopt);
}

TEST(PlanAvailableMemory, ProcSelfCgroupPaths) {
  const CgroupPaths hybrid = parse_proc_self_cgroup(
      "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/ccc3\n2:cpu,cpuacct:/\n0::/\n");
  EXPECT_EQ(hybrid.v2, "/");
  EXPECT_EQ(hybrid.v1_memory, "/process_api/ccc3");
  const CgroupPaths v2 = parse_proc_self_cgroup("0::/user.slice/session-3.scope\n");
  EXPECT_EQ(v2.v2, "/user.slice/session-3.scope");
  EXPECT_EQ(v2.v1_memory, std::nullopt);
  EXPECT_EQ(parse_proc_self_cgroup("5:cpuset,memory:/docker/abc\n").v1_memory, "/docker/abc");
}

// The smallest of MemAvailable and every limiting cgroup on the way to the root.
TEST(PlanAvailableMemory, HostFigureIsTheTightestOfMeminfoAndEveryCgroupLevel) {
  std::map<std::string, std::string> files = {
      {"/proc/meminfo", kMeminfo},
      {"/proc/self/cgroup", "0::/a/b\n"},
      {"/sys/fs/cgroup/a/b/memory.max", "max\n"},
      {"/sys/fs/cgroup/a/b/memory.current", "100\n"},
      {"/sys/fs/cgroup/a/memory.max", "4294967296\n"},  // the parent's limit binds: 4 GiB − 1 GiB
      {"/sys/fs/cgroup/a/memory.current", "1073741824\n"},
  };
  const auto read = [&](const std::string& p) -> std::optional<std::string> {
    auto it = files.find(p);
    if (it == files.end()) return std::nullopt;
    return it->second;
  };
  AvailableMemory a = host_available_memory(read);
  EXPECT_EQ(a.bytes, std::size_t{3} << 30);
  EXPECT_NE(a.source.find("/sys/fs/cgroup/a memory.max"), std::string::npos) << a.source;
  // Without a limiting cgroup: MemAvailable.
  files.erase("/sys/fs/cgroup/a/memory.max");
  a = host_available_memory(read);
  EXPECT_EQ(a.bytes, std::size_t{23809956} * 1024);
  EXPECT_EQ(a.source, "MemAvailable of /proc/meminfo");
  // cgroup v1, limited at the mount's root (a container without a cgroup namespace).
  files = {{"/proc/meminfo", kMeminfo},
           {"/proc/self/cgroup", "4:memory:/docker/abc\n0::/\n"},
           {"/sys/fs/cgroup/memory/memory.limit_in_bytes", "2147483648\n"},
           {"/sys/fs/cgroup/memory/memory.usage_in_bytes", "1073741824\n"}};
  EXPECT_EQ(host_available_memory(read).bytes, std::size_t{1} << 30);
}

TEST(PlanAvailableMemory, TheRealHostHasSome) {
  const auto a = available_memory(DeviceKind::cpu);
  ASSERT_TRUE(a.has_value());
  EXPECT_GT(a->bytes, 0u);
  EXPECT_FALSE(a->source.empty());
}

// The check: a model far beyond any machine does not fit, and says so in one line naming
// both byte counts; the test model fits; a tracker limit below the prediction binds.
TEST(PlanMemoryCheck, RefusesWhatCannotFitAndNamesBothByteCounts) {
  RunConfig c = base_config();
  c.proxy.n_layer = 100000;
  c.proxy.d_model.reset();
  c.proxy.n_head.reset();
  c.proxy.width_scale = 0.01;
  c.proxy.seq_len.reset();
  c.proxy.vocab.reset();
  const MemoryCheck big = check_memory(model_of(c), c, DeviceKind::cpu, 0, 1);
  EXPECT_FALSE(big.fits);
  const std::string line = big.message();
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_NE(line.find("predicted peak memory"), std::string::npos) << line;
  EXPECT_NE(line.find(std::to_string(big.available_bytes) + " bytes"), std::string::npos) << line;
  EXPECT_THROW(require_fits(big), OutOfMemory);

  RunConfig small = base_config();
  EXPECT_TRUE(check_memory(model_of(small), small, DeviceKind::cpu, 0, 1).fits);
  small.memory_limit_bytes = 200000;
  const MemoryCheck limited = check_memory(model_of(small), small, DeviceKind::cpu, 0, 1);
  EXPECT_FALSE(limited.fits);
  EXPECT_EQ(limited.available_bytes, 200000u);
  EXPECT_NE(limited.message().find("memory_limit_bytes"), std::string::npos);
}

// Ranks sharing a node's RAM: the whole job's stages when every rank is local.
TEST(PlanMemoryCheck, NodeRanksShareTheHostMemory) {
  RunConfig c = base_config();
  c.dp = 2;
  c.pp = 2;
  c.global_batch = 2 * c.micro_batch * c.dp;
  const ModelConfig m = model_of(c);
  const double s0 = predict_stage_memory(m, c, DeviceKind::cpu, 0).total();
  const double s1 = predict_stage_memory(m, c, DeviceKind::cpu, 1).total();
  EXPECT_DOUBLE_EQ(check_memory(m, c, DeviceKind::cpu, 1, 4).predicted_bytes, 2 * (s0 + s1));
  EXPECT_DOUBLE_EQ(check_memory(m, c, DeviceKind::cpu, 1, 2).predicted_bytes, 2 * std::max(s0, s1));
}

}  // namespace
}  // namespace tb::test
