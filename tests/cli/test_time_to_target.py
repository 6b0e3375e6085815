"""`trainbench run` with accuracy.target_loss (docs/scenarios.md, docs/results-schema.md *Time
to target*): the lines validate against the schema, each seed's time to target follows the
rule on its own recorded curve (the first evaluation at or below the target; its step, tokens
and training seconds; the interpolation between it and the point before), the aggregate
counts the seeds, vs_baseline carries the time-to-target speedup (or null and a reason), and
a target relative to the entropy floor of data without one is a one-line error."""
import pytest

from test_run import FAST_MEASURE, read_lines, validate, write_scenario
from tbcli import assert_one_line_error, run

ACCURACY = {"train_steps": 12, "eval_interval": 3, "eval_batches": 1, "seeds": 2, "seed": 1}


def check_seed(acc, k, row, tokens_per_step):
    """Seed k's per_seed row against the seed's own curve."""
    curve = acc["curve"]
    target = acc["target"]["loss"][k]
    assert row["target"] == target and row["seed"] == acc["seeds"][k]
    losses = [p["eval_loss"][k] for p in curve]
    assert row["best_eval_loss"] == pytest.approx(min(losses))
    first = next((i for i, l in enumerate(losses) if l <= target), None)
    assert row["reached"] == (first is not None)
    if first is None:
        assert row["step"] is None and row["train_s"] is None and row["step_interp"] is None
        return
    p = curve[first]
    assert row["step"] == p["step"]
    assert row["train_s"] == pytest.approx(p["train_s"][k])
    assert row["tokens"] == p["tokens"] == p["step"] * tokens_per_step
    lo = curve[first - 1]["step"] if first > 0 else 0
    assert lo <= row["step_interp"] <= row["step"]
    assert row["interp_from"] == ("eval" if first > 0 else "start")
    if first > 0:  # the straight line between the two evaluations, solved for the target
        prev = curve[first - 1]["eval_loss"][k]
        f = (prev - target) / (prev - losses[first])
        assert row["step_interp"] == pytest.approx(lo + f * (row["step"] - lo))
        assert row["train_s_interp"] == pytest.approx(
            curve[first - 1]["train_s"][k] + f * (p["train_s"][k] - curve[first - 1]["train_s"][k]))


def test_time_to_target_follows_the_recorded_curves(trainbench, tmp_path):
    sc = write_scenario(tmp_path / "s.json", {"micro_batch": [2, 4]}, baseline={"micro_batch": 2},
                        base={"lr": 0.01}, measure=FAST_MEASURE,
                        accuracy={**ACCURACY, "target_loss": 4.0})
    out = tmp_path / "out"
    proc = run(trainbench, "run", sc, "--out", out)
    assert proc.returncode == 0, proc.stderr
    lines = read_lines(out)
    for l in lines:
        validate(l)
        assert l["status"] == "ok", l.get("reason")
        acc = l["accuracy"]
        assert acc["target"] == {"spec": 4.0, "loss": [4.0, 4.0]}
        tokens = l["throughput"]["tokens_per_step"]
        for p in acc["curve"]:
            assert p["tokens"] == p["step"] * tokens
            assert len(p["train_s"]) == 2 and all(s > 0 for s in p["train_s"])
        for k in range(2):  # seconds only grow
            secs = [p["train_s"][k] for p in acc["curve"]]
            assert secs == sorted(secs)
        ttt = acc["time_to_target"]
        for k, row in enumerate(ttt["per_seed"]):
            check_seed(acc, k, row, tokens)
        reached = [r for r in ttt["per_seed"] if r["reached"]]
        assert ttt["seeds_run"] == 2 and ttt["seeds_reached"] == len(reached)
        # The seeded runs of this tiny model all get below 4.0 nats within 12 steps.
        assert len(reached) == 2, ttt
        assert ttt["train_s"]["mean"] == pytest.approx(sum(r["train_s"] for r in reached) / 2)
        assert ttt["step"]["mean"] == pytest.approx(sum(r["step"] for r in reached) / 2)
    base, other = lines
    vs = other["vs_baseline"]
    bt, ot = base["accuracy"]["time_to_target"], other["accuracy"]["time_to_target"]
    assert vs["time_to_target_speedup"] == pytest.approx(bt["train_s"]["mean"] / ot["train_s"]["mean"])
    assert vs["steps_to_target_ratio"] == pytest.approx(bt["step"]["mean"] / ot["step"]["mean"])
    lo, hi = vs["time_to_target_speedup_ci95"]
    assert 0 < lo <= vs["time_to_target_speedup"] <= hi
    assert vs["time_to_target_method"] == "paired"
    assert "speedup" in vs and "step_time_ratio" in vs  # the per-step speedup stays


def test_a_target_never_reached_gives_null_and_a_reason(trainbench, tmp_path):
    sc = write_scenario(tmp_path / "s.json", {"micro_batch": [2, 4]}, baseline={"micro_batch": 2},
                        measure=FAST_MEASURE,
                        accuracy={**ACCURACY, "train_steps": 3, "target_loss": {"floor_ratio": 1.0}})
    out = tmp_path / "out"
    proc = run(trainbench, "run", sc, "--out", out)
    assert proc.returncode == 0, proc.stderr
    lines = read_lines(out)
    for l in lines:
        validate(l)
        acc = l["accuracy"]
        assert acc["target"]["spec"] == {"floor_ratio": 1.0}
        # Each seed's target is its own chain's floor; nothing reaches the floor in 3 steps.
        assert acc["target"]["loss"][-1] == pytest.approx(acc["entropy_floor"])
        ttt = acc["time_to_target"]
        assert ttt["seeds_reached"] == 0 and ttt["train_s"] is None and ttt["step"] is None
    vs = lines[1]["vs_baseline"]
    assert vs["time_to_target_speedup"] is None and vs["steps_to_target_ratio"] is None
    assert vs["time_to_target_reason"] == ("not every seed reached the target: the baseline in "
                                           "0 of 2, this variant in 0 of 2")


def test_a_floor_ratio_without_a_floor_is_one_line(trainbench, tmp_path):
    sc = write_scenario(tmp_path / "s.json", {"micro_batch": [2]},
                        base={"data": str(tmp_path / "tokens.bin"), "vocab": 256},
                        accuracy={**ACCURACY, "target_loss": {"floor_ratio": 1.1}})
    proc = run(trainbench, "validate", sc)
    assert_one_line_error(proc, "/accuracy/target_loss", "entropy floor", "tokens.bin")
    proc = run(trainbench, "run", sc, "--out", tmp_path / "out", "--set",
               'accuracy.target_loss={"floor_ratio": 0.5}')
    assert_one_line_error(proc, "/accuracy/target_loss/floor_ratio: 0.5", "a number >= 1")
