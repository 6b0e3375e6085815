// Shared helpers of the GPU tests: a fixture that skips without a usable GPU, tensors twinned
// on the CUDA backend and the CPU reference backend (same dtype, same values), outputs
// poisoned with NaN bit patterns before each run (an element a kernel fails to write stays
// NaN), and comparisons by norm-relative error in which a NaN never passes.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "common/rng.h"
#include "tb/backend.h"
#include "tb/cpu_backend.h"
#include "tb/cuda_backend.h"
#include "tb/devices.h"
#include "tb/number_format.h"

namespace tb {
// Test parameters print by name ("bf16"), not as bytes.
inline void PrintTo(DType t, std::ostream* os) { *os << dtype_name(t); }
}  // namespace tb

namespace tb::gpu_test {

// Why the GPU tests cannot run in this process, or "" when they can.
inline std::string gpu_unavailable_reason() {
  if (!cuda_backend_built()) return "this build has no CUDA backend";
  const GpuInventory inv = query_gpus();
  if (inv.devices.empty()) return inv.note.empty() ? "CUDA reports no devices" : inv.note;
  return "";
}

inline const GpuInfo& gpu0() {
  static const GpuInventory inv = query_gpus();
  return inv.devices.at(0);
}

// FP8 GEMMs need compute capability 8.9 (Ada) or newer.
inline bool gpu_has_fp8() {
  const GpuInfo& g = gpu0();
  return g.compute_capability_major * 10 + g.compute_capability_minor >= 89;
}

inline NumberFormat storage_format(DType t) {
  return t == DType::bf16 ? NumberFormat::bf16 : NumberFormat::fp16;
}

inline std::vector<float> randn(std::size_t n, std::uint64_t seed, double sd = 1.0,
                                double mean = 0.0) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(mean + sd * rng.normal());
  return v;
}

inline std::vector<std::int32_t> random_ids(std::size_t n, int below, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::int32_t> v(n);
  for (auto& x : v) x = static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(below)));
  return v;
}

// One logical tensor on both backends.
struct Pair {
  Tensor cpu, gpu;
};

// Tensors allocated on both backends (workspace category), freed with the object.
class Twins {
 public:
  Twins(Backend& cpu, Backend& gpu) : cpu_(cpu), gpu_(gpu) {}

  // A tensor of dtype t holding `values` (rounded to t, RNE) on both backends.
  Pair make(DType t, std::vector<std::int64_t> shape, const std::vector<float>& values) {
    Pair p = alloc(t, std::move(shape));
    set(p, values);
    return p;
  }
  Pair make_ids(std::vector<std::int64_t> shape, const std::vector<std::int32_t>& ids) {
    Pair p = alloc(DType::i32, std::move(shape));
    cpu_.copy_from_host(p.cpu, ids.data());
    gpu_.copy_from_host(p.gpu, ids.data());
    return p;
  }
  // An output: every byte 0xFF on both sides (a NaN in f32, bf16 and f16).
  Pair output(DType t, std::vector<std::int64_t> shape) {
    Pair p = alloc(t, std::move(shape));
    poison(p);
    return p;
  }
  void poison(const Pair& p) {
    const std::vector<unsigned char> bytes(p.cpu.bytes(), 0xFF);
    cpu_.copy_from_host(p.cpu, bytes.data());
    gpu_.copy_from_host(p.gpu, bytes.data());
  }
  void set(const Pair& p, const std::vector<float>& values) {
    set_one(cpu_, p.cpu, values);
    set_one(gpu_, p.gpu, values);
  }
  std::vector<float> cpu(const Pair& p) { return get(cpu_, p.cpu); }
  std::vector<float> gpu(const Pair& p) { return get(gpu_, p.gpu); }

  static std::vector<float> get(Backend& be, const Tensor& t) {
    std::vector<float> f(static_cast<std::size_t>(t.numel()));
    if (t.dtype == DType::f64) {
      std::vector<double> d(f.size());
      be.copy_to_host(d.data(), t);
      return {d.begin(), d.end()};
    }
    if (is_reduced_float(t.dtype)) {
      std::vector<std::uint16_t> bits(f.size());
      be.copy_to_host(bits.data(), t);
      decode_array(storage_format(t.dtype), bits.data(), f.data(), t.numel());
    } else {
      be.copy_to_host(f.data(), t);
    }
    return f;
  }
  static void set_one(Backend& be, const Tensor& t, const std::vector<float>& values) {
    if (is_reduced_float(t.dtype)) {
      std::vector<std::uint16_t> bits(values.size());
      encode_array(storage_format(t.dtype), values.data(), bits.data(),
                   static_cast<std::int64_t>(values.size()));
      be.copy_from_host(t, bits.data());
    } else if (t.dtype == DType::f64) {
      const std::vector<double> d(values.begin(), values.end());
      be.copy_from_host(t, d.data());
    } else {
      be.copy_from_host(t, values.data());
    }
  }

 private:
  Pair alloc(DType t, std::vector<std::int64_t> shape) {
    Tensor c(nullptr, t, shape), g(nullptr, t, std::move(shape));
    bufs_.push_back(cpu_.allocate(c.bytes(), MemoryCategory::workspace, "gpu test"));
    c.ptr = bufs_.back().data();
    bufs_.push_back(gpu_.allocate(g.bytes(), MemoryCategory::workspace, "gpu test"));
    g.ptr = bufs_.back().data();
    return {c, g};
  }
  Backend& cpu_;
  Backend& gpu_;
  std::vector<Buffer> bufs_;
};

// ‖got − want‖₂ / ‖want‖₂ over the elements where want is finite; a NaN or inf in got where
// want has a finite value, or a mismatch of non-finite values, fails outright.
inline ::testing::AssertionResult close(const std::vector<float>& want,
                                        const std::vector<float>& got, double tol) {
  if (want.size() != got.size()) {
    return ::testing::AssertionFailure()
           << "sizes differ: want " << want.size() << ", got " << got.size();
  }
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double w = want[i], g = got[i];
    if (std::isfinite(w) != std::isfinite(g) || (std::isnan(w) != std::isnan(g)) ||
        (std::isinf(w) && w != g)) {
      return ::testing::AssertionFailure()
             << "element " << i << " of " << want.size() << ": want " << w << ", got " << g;
    }
    if (!std::isfinite(w)) continue;
    diff += (g - w) * (g - w);
    norm += w * w;
  }
  const double rel = norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
  if (!(rel <= tol)) {
    return ::testing::AssertionFailure()
           << "relative error " << rel << " > " << tol << " over " << want.size() << " elements";
  }
  return ::testing::AssertionSuccess();
}

// Bitwise equality (NaN payloads aside: both NaN counts as equal).
inline ::testing::AssertionResult same_values(const std::vector<float>& a,
                                              const std::vector<float>& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << "sizes differ";
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    std::uint32_t x, y;
    std::memcpy(&x, &a[i], 4);
    std::memcpy(&y, &b[i], 4);
    if (x != y) {
      return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs " << b[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// Tolerance of an elementwise or row operation whose output is stored as t: fp32 arithmetic
// in a different order, then (for 16-bit outputs) a rounding that may land one ulp apart.
inline double output_tolerance(DType t) {
  switch (t) {
    case DType::bf16:
      return 1e-2;
    case DType::f16:
      return 2e-3;
    default:
      return 2e-5;
  }
}

// The fixture: a CUDA backend on device 0 and the CPU reference, and twinned tensors. Every
// test is skipped (GTEST_SKIP, reported by ctest as skipped) without a usable GPU.
class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = gpu_unavailable_reason();
    if (!why.empty()) GTEST_SKIP() << "no usable GPU: " << why;
    gpu_ = make_cuda_backend(0);
    cpu_ = make_cpu_backend();
    twins_ = std::make_unique<Twins>(*cpu_, *gpu_);
  }
  void TearDown() override {
    twins_.reset();  // the buffers go back before their backends
    gpu_.reset();
    cpu_.reset();
  }
  Twins& t() { return *twins_; }

  std::unique_ptr<Backend> gpu_, cpu_;
  std::unique_ptr<Twins> twins_;
};

}  // namespace tb::gpu_test
