// Data-parallel gradient all-reduce in buckets, overlapped with backward (as PyTorch DDP
// and Megatron-LM's distributed optimizer do; Li et al. 2020, "PyTorch Distributed", §3.2.3):
// the flat gradient buffer is cut, from its end (the last layers, whose gradients backward
// finishes first), into contiguous buckets of about `bucket_bytes`, each a whole number of
// parameter tensors. While armed, a bucket's non-blocking all-reduce is issued as soon as
// every tensor in it is reported final (mark_ready), and pending ones are polled so the
// transport progresses; finish() issues the rest and waits for all.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "../model/parameters.h"
#include "comm.h"

namespace tb {

class GradientBuckets {
 public:
  // grads: the flat gradient buffer (layout.total elements); data: the data-parallel group.
  // Tensors for which `local_only` is true are left out of every bucket (expert-parallel
  // stacks: their gradients are already the job's).
  GradientBuckets(const ParameterLayout& layout, Tensor grads, Comm& data, double bucket_bytes,
                  const std::function<bool(const ParameterSpec&)>& local_only = {});

  // The next mark_ready calls belong to the step's last backward.
  void arm();
  void mark_ready(std::int64_t begin, std::int64_t end);
  // Issues every bucket not yet issued and waits for all; disarms.
  void finish();
  // Of the last armed step: seconds from the first bucket's issue to finish() — buckets in
  // flight while backward still ran (overlapped) — and the seconds finish() took (exposed).
  double overlapped_s() const { return overlapped_s_; }
  double exposed_s() const { return exposed_s_; }

  struct Bucket {
    std::int64_t begin, end;  // elements
    std::int64_t ready = 0;
    std::unique_ptr<CommRequest> request;
  };
  const std::vector<Bucket>& buckets() const { return buckets_; }

 private:
  void issue(Bucket& b);
  Tensor grads_;
  Comm& data_;
  std::vector<Bucket> buckets_;  // from the end of the buffer to its start
  bool armed_ = false;
  std::chrono::steady_clock::time_point first_issue_{};
  bool issued_any_ = false;
  double overlapped_s_ = 0, exposed_s_ = 0;
};

}  // namespace tb
