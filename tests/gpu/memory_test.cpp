// The CUDA backend's memory and errors: allocations are tracked per category and returned;
// the tracker's limit and the device's own capacity both end in tb::OutOfMemory (with the
// bytes asked for and available), not a crash; bad requests are one-line errors.
#include <gtest/gtest.h>

#include <string>

#include "gpu_test_util.h"

namespace tb::gpu_test {
namespace {

TEST_F(GpuTest, AllocationsAreTrackedByCategory) {
  MemoryTracker& m = gpu_->memory();
  const std::size_t before = m.current_bytes(MemoryCategory::activations);
  {
    Buffer a = gpu_->allocate(1000, MemoryCategory::activations, "a");
    Buffer b = gpu_->allocate(3 << 20, MemoryCategory::activations, "b");
    EXPECT_NE(a.data(), nullptr);
    EXPECT_EQ(m.current_bytes(MemoryCategory::activations), before + 1000 + (3 << 20));
  }
  EXPECT_EQ(m.current_bytes(MemoryCategory::activations), before);
  EXPECT_GE(m.peak_bytes(MemoryCategory::activations), before + 1000 + (3 << 20));
  // A freed block is reused (the pool), and a reused block is usable.
  Buffer c = gpu_->allocate(3 << 20, MemoryCategory::workspace, "c");
  const Tensor t(c.data(), DType::f32, {(3 << 20) / 4});
  gpu_->fill_zero(t);
  gpu_->synchronize();
}

TEST_F(GpuTest, TrackerLimitIsOutOfMemory) {
  auto be = make_cuda_backend(0, 1 << 20);
  Buffer a = be->allocate(512 << 10, MemoryCategory::parameters, "half");
  try {
    Buffer b = be->allocate(768 << 10, MemoryCategory::activations, "too much");
    ADD_FAILURE() << "allocation over the limit succeeded";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.requested_bytes, std::size_t{768} << 10);
    EXPECT_EQ(e.available_bytes, std::size_t{512} << 10);
  }
  EXPECT_EQ(be->memory().current_total_bytes(), std::size_t{512} << 10);
}

TEST_F(GpuTest, DeviceOutOfMemoryIsOutOfMemory) {
  const std::size_t huge = gpu0().memory_bytes * 4;  // more than the device has
  try {
    Buffer b = gpu_->allocate(huge, MemoryCategory::activations, "huge");
    ADD_FAILURE() << "allocation of " << huge << " bytes succeeded";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.requested_bytes, huge);
    EXPECT_LT(e.available_bytes, huge);
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
  EXPECT_EQ(gpu_->memory().current_bytes(MemoryCategory::activations), 0u);
  // The backend still works afterwards.
  const Pair x = t().make(DType::f32, {1000}, randn(1000, 501));
  EXPECT_GT(gpu_->sum_squares(x.gpu), 0.0);
}

TEST_F(GpuTest, BadRequestsAreOneLineErrors) {
  EXPECT_THROW(make_cuda_backend(1 << 20), std::runtime_error);
  const Pair x64 = t().make(DType::f64, {10}, randn(10, 502));
  const Pair y64 = t().output(DType::f64, {10});
  try {
    gpu_->gelu_forward(y64.gpu, x64.gpu);
    ADD_FAILURE() << "f64 accepted";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("gelu_forward"), std::string::npos) << what;
    EXPECT_NE(what.find("f64"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
  const Pair p = t().make(DType::f32, {10}, randn(10, 503));
  const Pair g = t().make(DType::f32, {9}, randn(9, 504));
  EXPECT_THROW(gpu_->adamw_update(p.gpu, g.gpu, g.gpu, g.gpu, AdamWParams{}),
               std::invalid_argument);
  EXPECT_EQ(gpu_->kind(), DeviceKind::cuda);
  EXPECT_NE(gpu_->name().find("cuda:0"), std::string::npos);
  EXPECT_EQ(cuda_stream_of(*cpu_), nullptr);
}

}  // namespace
}  // namespace tb::gpu_test
