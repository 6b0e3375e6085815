// The CPU features `trainbench info` reports, parsed from /proc text as the kernel writes it.
#include <gtest/gtest.h>

#include "results/cpu_features.h"

namespace tb {
namespace {

TEST(CpuFeatures, SapphireRapidsFlagsAndMemory) {
  const std::string cpuinfo =
      "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n"
      "flags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_bf16 avx512_fp16 amx_bf16 amx_tile "
      "amx_int8\n\nprocessor\t: 1\nflags\t\t: fpu\n";
  const std::string meminfo = "MemTotal:       24683868 kB\nMemFree:         1000 kB\n";
  const CpuFeatures f = parse_cpu_features(cpuinfo, meminfo);
  EXPECT_TRUE(f.avx2 && f.avx512f && f.avx512_bf16 && f.avx512_fp16);
  EXPECT_TRUE(f.amx_tile && f.amx_bf16 && f.amx_int8);
  EXPECT_FALSE(f.amx_fp16);  // not listed
  EXPECT_EQ(f.memory_bytes, 24683868ull * 1024);
  EXPECT_EQ(f.isa_json()["avx512_bf16"], true);
  EXPECT_EQ(f.isa_json()["amx_fp16"], false);
}

TEST(CpuFeatures, WithoutAvx512OrProcFiles) {
  const CpuFeatures f = parse_cpu_features("flags\t\t: fpu sse2 avx2 avx512_bf16x\n", "");
  EXPECT_TRUE(f.avx2);
  EXPECT_FALSE(f.avx512f || f.avx512_bf16 || f.amx_bf16);  // a longer name is not the flag
  EXPECT_EQ(f.memory_bytes, 0u);
  const CpuFeatures none = parse_cpu_features("", "");
  EXPECT_FALSE(none.avx2);
}

}  // namespace
}  // namespace tb
