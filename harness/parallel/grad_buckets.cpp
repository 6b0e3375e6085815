#include "grad_buckets.h"

#include <algorithm>
#include <stdexcept>

namespace tb {

GradientBuckets::GradientBuckets(const ParameterLayout& layout, Tensor grads, Comm& data,
                                 double bucket_bytes,
                                 const std::function<bool(const ParameterSpec&)>& local_only)
    : grads_(std::move(grads)), data_(data) {
  if (!(bucket_bytes > 0)) {
    throw std::invalid_argument("bucket_mb = " + std::to_string(bucket_bytes / 1048576.0) +
                                " (expected > 0)");
  }
  const double elem = double(dtype_size(grads_.dtype));
  std::int64_t end = layout.total;
  for (auto it = layout.tensors.rbegin(); it != layout.tensors.rend(); ++it) {
    if (local_only && local_only(*it)) {
      // Close the bucket above this tensor; the next one starts below it.
      const std::int64_t tensor_end = it->offset + it->numel();
      if (end > tensor_end) buckets_.push_back({tensor_end, end, 0, nullptr});
      end = it->offset;
      continue;
    }
    const std::int64_t begin = it->offset;
    const bool last_tensor = std::next(it) == layout.tensors.rend();
    if (double(end - begin) * elem >= bucket_bytes || last_tensor) {
      buckets_.push_back({begin, end, 0, nullptr});
      end = begin;
    }
  }
}

void GradientBuckets::arm() {
  armed_ = true;
  issued_any_ = false;
  for (auto& b : buckets_) {
    b.ready = 0;
    b.request.reset();
  }
}

void GradientBuckets::issue(Bucket& b) {
  if (!issued_any_) {
    issued_any_ = true;
    first_issue_ = std::chrono::steady_clock::now();
  }
  b.request = data_.all_reduce_async(grads_.slice(b.begin, {b.end - b.begin}));
}

void GradientBuckets::mark_ready(std::int64_t begin, std::int64_t end) {
  if (!armed_) return;
  for (auto& b : buckets_) {
    if (b.request) {
      b.request->test();  // lets the transport progress the ones in flight
      continue;
    }
    const std::int64_t lo = std::max(begin, b.begin), hi = std::min(end, b.end);
    if (lo >= hi) continue;
    b.ready += hi - lo;
    if (b.ready >= b.end - b.begin) issue(b);
  }
}

void GradientBuckets::finish() {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  overlapped_s_ = issued_any_ ? std::chrono::duration<double>(start - first_issue_).count() : 0.0;
  for (auto& b : buckets_) {
    if (!b.request) issue(b);
  }
  for (auto& b : buckets_) b.request->wait();
  for (auto& b : buckets_) b.request.reset();
  exposed_s_ = std::chrono::duration<double>(Clock::now() - start).count();
  armed_ = false;
}

}  // namespace tb
