#include "plan_json.h"

#include <cmath>

namespace tb {

namespace {

nlohmann::json number_or_null(std::optional<double> v) {
  if (v && std::isfinite(*v)) return *v;
  return nullptr;
}

}  // namespace

nlohmann::json time_breakdown_json(const TimeBreakdown& t) {
  return {{"forward", t.forward},
          {"backward", t.backward},
          {"recompute", t.recompute},
          {"tensor_parallel_comm", t.tensor_parallel_comm},
          {"pipeline_comm", t.pipeline_comm},
          {"pipeline_bubble", t.pipeline_bubble},
          {"data_parallel_comm", t.data_parallel_comm},
          {"optimizer", t.optimizer},
          {"expert_parallel_comm", t.expert_parallel_comm}};
}

nlohmann::json plan_entry_json(const PlanEntry& e, int rank) {
  const PlanCandidate& c = e.candidate;
  nlohmann::json memory = nlohmann::json::object();
  for (std::size_t i = 0; i < kMemoryCategoryCount; ++i) {
    memory[std::string(memory_category_name(static_cast<MemoryCategory>(i)))] = e.memory.bytes[i];
  }
  memory["total"] = e.memory.total();
  const TimeBreakdown& t = e.iteration.time;
  nlohmann::json goodput = nullptr;
  if (e.goodput) {
    goodput = {{"checkpoint_bytes", e.checkpoint_bytes},
               {"checkpoint_write_s", e.checkpoint_write_s},
               {"interval_s", e.goodput->interval_s},
               {"interval_method", "daly"},
               {"expected_overhead_fraction", number_or_null(e.goodput->overhead_fraction)},
               {"time_to_train_s", number_or_null(e.goodput->wall_s)}};
  }
  return {{"rank", rank},
          {"dp", c.dp},
          {"tp", c.tp},
          {"pp", c.pp},
          {"virtual_stages", c.virtual_stages},
          {"micro_batch", c.micro_batch},
          {"micro_batches", e.iteration.micro_batches},
          {"recompute", recompute_name(c.recompute)},
          {"sequence_parallel", c.sequence_parallel},
          {"zero", c.zero},
          {"expert_parallel", c.expert_parallel},
          {"precision", c.precision},
          {"schedule", c.schedule},
          {"fits", e.fits},
          {"memory_bytes", memory},
          {"memory_stage", e.memory.stage},
          {"memory_usable_bytes", e.memory_usable_bytes},
          {"iteration_s", t.iteration()},
          {"time_breakdown_s", time_breakdown_json(t)},
          {"priced_by", e.iteration.priced_by},
          {"tokens_per_s", e.tokens_per_s},
          {"mfu", e.mfu},
          {"hfu", e.hfu},
          {"time_to_train_s", e.time_to_train_s},
          {"gpu_hours", e.gpu_hours},
          {"cost", number_or_null(e.cost)},
          {"checkpoint_bytes", e.checkpoint_bytes},
          {"checkpoint_write_s", e.checkpoint_write_s},
          {"goodput", goodput}};
}

nlohmann::json plan_json(const PlanRequest& r, const PlanResult& result,
                         const std::vector<ScalingPoint>& scaling, const nlohmann::json& pinned) {
  const ModelConfig& m = r.model;
  const Accelerator& d = r.device;
  nlohmann::json configurations = nlohmann::json::array();
  for (std::size_t i = 0; i < result.ranked.size(); ++i) {
    configurations.push_back(plan_entry_json(result.ranked[i], int(i) + 1));
  }
  nlohmann::json points = nlohmann::json::array();
  for (const ScalingPoint& p : scaling) {
    points.push_back({{"gpus", p.gpus},
                      {"best", p.best ? plan_entry_json(*p.best, 1) : nlohmann::json(nullptr)}});
  }
  nlohmann::json calibration;
  if (r.calibration) {
    calibration = {{"source", "file"},
                   {"path", r.calibration->path},
                   {"device", r.calibration->device},
                   {"note",
                    "operations priced by their measured times at the same shape, or "
                    "the nearest measured rate; the rest from datasheet peaks"}};
  } else {
    calibration = {{"source", "datasheet"},
                   {"path", nullptr},
                   {"device", d.name},
                   {"note",
                    "no calibration file: datasheet peaks times default efficiencies "
                    "(docs/planner.md), not a measurement of this machine"}};
  }
  calibration["efficiencies"] = {{"gemm", r.time.efficiency.gemm},
                                 {"attention", r.time.efficiency.attention},
                                 {"memory", r.time.efficiency.memory},
                                 {"network", r.time.efficiency.network}};
  return {
      {"schema", "trainbench.plan/1"},
      {"inputs",
       {{"model",
         {{"name", m.name},
          {"layers", m.n_layer},
          {"d_model", m.d_model},
          {"heads", m.n_head},
          {"vocab", m.vocab},
          {"seq", m.seq_len},
          {"parameters", double(parameter_count(m))},
          {"experts", m.moe.experts},
          {"top_k", m.moe.top_k}}},
        {"gpu", d.key},
        {"gpus", r.gpus},
        {"gpus_per_node", r.time.gpus_per_node},
        {"tokens", r.tokens},
        {"global_batch", r.global_batch},
        {"price_per_gpu_hour", number_or_null(r.price_per_gpu_hour)},
        {"mtbf_hours", number_or_null(r.mtbf_gpu_hours)},
        {"restart_s", r.restart_s},
        {"storage_bytes_per_s_per_gpu", r.storage_bytes_per_s_per_gpu},
        {"memory_headroom", r.memory_headroom},
        {"pinned", pinned}}},
      {"hardware",
       {{"name", d.name},
        {"memory_bytes", d.memory_bytes},
        {"peak_flops",
         {{"fp32", d.fp32}, {"tf32", d.tf32}, {"bf16", d.bf16}, {"fp16", d.bf16}, {"fp8", d.fp8}}},
        {"memory_bytes_per_s", d.memory_bytes_per_s},
        {"intra_node",
         {{"bytes_per_s", d.intra_node.bytes_per_s}, {"latency_s", d.intra_node.latency_s}}},
        {"inter_node",
         {{"bytes_per_s", d.inter_node.bytes_per_s}, {"latency_s", d.inter_node.latency_s}}},
        {"source", d.source}}},
      {"calibration", calibration},
      {"evaluated", result.evaluated},
      {"feasible", result.feasible},
      {"configurations", configurations},
      {"scaling", points}};
}

}  // namespace tb
