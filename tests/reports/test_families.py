"""Strategy families and labels from the sweep axes; the Pareto frontier; headline numbers."""
from __future__ import annotations

from pathlib import Path

from reports.analysis import analyse
from reports.families import classify, short_label
from reports.headlines import headlines
from reports.load import Results, Variant
from reports.plot_speedup import pareto_frontier


def results(axes: list[str], rows: list[tuple[dict, bool]]) -> Results:
    vs = []
    for i, (keys, baseline) in enumerate(rows):
        vid = ",".join(f"{a}={keys[a]}" for a in axes)
        vs.append(Variant(i + 1, {"schema_version": 1, "scenario": {"name": "t"}, "status": "ok",
                                  "variant": {"index": i, "id": vid, "keys": keys, "baseline": baseline}}))
    return Results(path=Path("r.jsonl"), variants=vs, axes=axes)


def test_one_axis_is_one_family_labelled_by_value():
    r = results(["precision"], [({"precision": "fp32"}, True), ({"precision": "bf16"}, False),
                                ({"precision": "fp8"}, False)])
    c = classify(r)
    assert c.families == ["precision"]
    assert [c.label[v.id] for v in r.variants] == ["baseline (fp32)", "bf16", "fp8"]


def test_checkpoint_axes_form_one_family():
    axes = ["checkpoint_interval", "checkpoint_selective"]
    r = results(axes, [({"checkpoint_interval": 0, "checkpoint_selective": False}, True),
                       ({"checkpoint_interval": 2, "checkpoint_selective": False}, False),
                       ({"checkpoint_interval": 0, "checkpoint_selective": True}, False)])
    c = classify(r)
    assert c.families == ["checkpointing"]
    assert [c.label[v.id] for v in r.variants[1:]] == ["k=2", "selective"]


def test_hyperparameters_swept_with_a_strategy_follow_it():
    axes = ["optimizer", "lr", "weight_decay"]
    r = results(axes, [({"optimizer": "adamw", "lr": 0.01, "weight_decay": 0.1}, True),
                       ({"optimizer": "lamb", "lr": 0.05, "weight_decay": 0.01}, False),
                       ({"optimizer": "adamw", "lr": 0.02, "weight_decay": 0.1}, False)])
    c = classify(r)
    assert c.family[r.variants[1].id] == "optimizer"
    assert c.label[r.variants[1].id] == "lamb, lr=0.05, wd=0.01"
    assert c.family[r.variants[2].id] == "hyperparameters"  # only the learning rate changed
    assert c.families == ["optimizer", "hyperparameters"]


def test_a_product_sweep_gives_each_axis_and_their_combination():
    axes = ["micro_batch", "layers"]
    r = results(axes, [({"micro_batch": 4, "layers": 2}, False), ({"micro_batch": 4, "layers": 4}, False),
                       ({"micro_batch": 8, "layers": 2}, True), ({"micro_batch": 8, "layers": 4}, False)])
    c = classify(r)
    assert [c.family[v.id] for v in r.variants] == ["batch", "batch + model size", "baseline", "model size"]
    assert [c.label[v.id] for v in r.variants] == ["mb=4", "mb=4, L=4", "baseline (mb=8, L=2)", "L=4"]
    assert c.families == ["batch", "model size", "batch + model size"]


def test_without_a_baseline_line_the_varying_axes_decide():
    r = results(["micro_batch"], [({"micro_batch": 2}, False), ({"micro_batch": 4}, False)])
    c = classify(r)
    assert c.families == ["batch"] and [c.label[v.id] for v in r.variants] == ["mb=2", "mb=4"]


def test_unknown_axes_are_their_own_family():
    r = results(["zero_stage"], [({"zero_stage": 0}, True), ({"zero_stage": 3}, False)])
    c = classify(r)
    assert c.families == ["zero_stage"] and c.label[r.variants[1].id] == "zero_stage=3"


def test_parallel_axes_form_one_family_and_a_pipeline_names_its_schedule():
    axes = ["dp", "tp", "pp", "pp_schedule"]
    rows = [({"dp": 1, "tp": 1, "pp": 1, "pp_schedule": "1f1b"}, True),
            ({"dp": 2, "tp": 1, "pp": 1, "pp_schedule": "1f1b"}, False),
            ({"dp": 2, "tp": 2, "pp": 1, "pp_schedule": "1f1b"}, False),
            ({"dp": 1, "tp": 1, "pp": 2, "pp_schedule": "gpipe"}, False),
            ({"dp": 1, "tp": 1, "pp": 2, "pp_schedule": "1f1b"}, False)]
    r = results(axes, rows)
    c = classify(r)
    assert c.families == ["parallelism"]
    # The schedule qualifies pp: shown with it even where it equals the baseline's.
    assert [c.label[v.id] for v in r.variants[1:]] == ["dp2", "dp2, tp2", "pp2, gpipe", "pp2, 1f1b"]
    assert short_label("zero", 1) == "ZeRO-1" and short_label("sequence_parallel", True) == "SP"
    assert short_label("virtual_stages", 2) == "v=2"


def test_short_labels():
    assert short_label("precision", "bf16") == "bf16"
    assert short_label("checkpoint_interval", 2) == "k=2"
    assert short_label("checkpoint_interval", 0) == "no checkpointing"
    assert short_label("global_batch", 64) == "gb=64"
    assert short_label("lr", 0.001) == "lr=0.001"
    assert short_label("memory_limit_bytes", 1 << 20) == "limit 1 MiB"
    assert short_label("data", "/data/tokens.bin") == "tokens.bin"


def test_pareto_frontier():
    pts = [(1.0, 0.0), (1.5, 2.0), (0.8, -1.0), (1.2, 3.0), (0.7, 0.5), (1.5, 1.0)]
    assert pareto_frontier(pts) == [(0.8, -1.0), (1.0, 0.0), (1.5, 1.0)]


def test_headline_numbers_follow_the_line():
    rows = [({"precision": "fp32"}, True), ({"precision": "bf16"}, False)]
    r = results(["precision"], rows)
    base, bf16 = r.variants
    for v in r.variants:
        v.data.update(timing={"step_s": {"median": 0.1}, "phases_s": {}},
                      throughput={"tokens_per_s": 1.0, "tokens_per_step": 512},
                      memory={"peak_bytes": {}, "peak_total_bytes": 1})
    base.data["accuracy"] = {"eval_loss_mean": 2.0, "eval_loss": [2.0, 2.0]}
    bf16.data["accuracy"] = {"eval_loss_mean": 2.006, "eval_loss": [2.0, 2.012]}
    bf16.data["vs_baseline"] = {"baseline_id": base.id, "speedup": 1.04, "speedup_ci95": [1.0, 1.1],
                                "loss_delta": 0.006, "loss_delta_ci95": [0.002, 0.010],
                                "loss_delta_rel": 0.003}
    h = headlines(analyse(r))
    assert [x.plain() for x in h] == ["precision — bf16: 1.04x speed, +0.30% loss ± 0.20%."]
