"""`trainbench plan` and `trainbench calibrate` (docs/planner.md): a plan's output and JSON, a
pinned configuration, the scenario prediction from a calibration, and bad input."""
import json
import os
import shutil
import subprocess

import pytest

from tbcli import TINY, assert_one_line_error, run

PLAN = ["plan", "--model", "gpt3-175b", "--global-batch", "1536"]
A100 = ["--gpu", "a100-80gb"]


def test_plan_ranks_feasible_configurations(trainbench, tmp_path):
    out = tmp_path / "plan.json"
    proc = run(trainbench, *PLAN, *A100, "--gpus", "256", "--price-per-gpu-hour", "2", "--json", out)
    assert proc.returncode == 0, proc.stderr
    assert "datasheet peaks" in proc.stdout  # says where its prices come from
    plan = json.loads(out.read_text())
    assert plan["schema"] == "trainbench.plan/1"
    assert plan["calibration"]["source"] == "datasheet"
    configs = plan["configurations"]
    assert configs and plan["feasible"] == len(configs) < plan["evaluated"]
    usable = 0.9 * plan["hardware"]["memory_bytes"]
    for rank, c in enumerate(configs, 1):
        assert c["rank"] == rank and c["fits"]
        assert c["dp"] * c["tp"] * c["pp"] == 256
        assert c["memory_bytes"]["total"] <= usable
        assert c["iteration_s"] == pytest.approx(sum(c["time_breakdown_s"].values()), rel=1e-9)
        assert c["cost"] == pytest.approx(2 * c["gpu_hours"], rel=1e-9)
        assert c["goodput"]["time_to_train_s"] >= c["time_to_train_s"]
    times = [c["goodput"]["time_to_train_s"] for c in configs]
    assert times == sorted(times)
    gpus = [p["gpus"] for p in plan["scaling"]]
    assert 256 in gpus and gpus == sorted(gpus)


def test_fully_pinned_configuration_is_evaluated(trainbench, tmp_path):
    out = tmp_path / "plan.json"
    proc = run(trainbench, *PLAN, *A100, "--gpus", "1024", "--tp", "8", "--pp", "16", "--dp", "8",
               "--micro-batch", "1", "--recompute", "full", "--sequence-parallel", "off",
               "--zero", "0", "--json", out)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(out.read_text())
    assert plan["evaluated"] == 1
    c = plan["configurations"][0]
    assert (c["dp"], c["tp"], c["pp"], c["recompute"]) == (8, 8, 16, "full")
    assert c["time_breakdown_s"]["recompute"] > 0


def test_nothing_fits_is_an_error(trainbench):
    assert_one_line_error(run(trainbench, *PLAN, *A100, "--gpus", "8"), "no configuration", "fits")


@pytest.mark.parametrize("args,fragments", [
    ([*A100, "--gpus", "0"], ["--gpus 0", "expected at least 1"]),
    (["--gpus", "64", "--gpu", "b300"], ["unknown GPU 'b300'", "h100-sxm"]),
    ([*A100, "--gpus", "64", "--tp", "7"], ["--tp 7 does not divide heads = 96"]),
    ([*A100, "--gpus", "64", "--tp", "8", "--pp", "16"], ["--gpus 64", "dp·tp·pp"]),
    ([*A100, "--gpus", "64", "--precision", "fp8"], ["fp8", "A100"]),
    ([*A100, "--gpus", "64", "--micro-batch", "0"], ["--micro-batch 0", "expected at least 1"]),
    ([*A100, "--gpus", "64", "--pp", "0"], ["--pp 0", "expected at least 1"]),
    ([*A100, "--gpus", "64", "--tp", "-2"], ["--tp -2", "expected at least 1"]),
    ([*A100, "--gpus", "64", "--tokens", "0"], ["--tokens", "expected a positive token count"]),
])
def test_bad_plan_requests(trainbench, args, fragments):
    assert_one_line_error(run(trainbench, *PLAN, *args), *fragments)


def test_malformed_calibration(trainbench, tmp_path):
    missing = tmp_path / "none.json"
    assert_one_line_error(run(trainbench, *PLAN, *A100, "--gpus", "64", "--calibration", missing),
                          str(missing), "cannot be read")
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "trainbench.calibration/1", "device": "x", "device_kind": "cpu",'
                   ' "ops": [{"op": "add", "precision": "fp32", "dims": [1, 0, 0, 0],'
                   ' "kind": "memory", "flops": 0, "bytes": 12, "seconds": -1}]}')
    assert_one_line_error(run(trainbench, *PLAN, *A100, "--gpus", "64", "--calibration", bad),
                          "ops[0]", "seconds -1", "expected a positive time")
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"schema": "trainbench.plan/1"}')
    assert_one_line_error(run(trainbench, *PLAN, *A100, "--gpus", "64", "--calibration", wrong),
                          "trainbench.calibration/1")


def tiny_scenario(tmp_path, sweep):
    """A one-block 32-wide proxy scenario (CPU) sweeping `sweep`, written under tmp_path."""
    scenario = tmp_path / "tiny.json"
    scenario.write_text(json.dumps({
        "name": "tiny", "base": {"preset": "gpt3-125m", "layers": 1, "d_model": 32, "heads": 2,
                                 "seq": 16, "vocab": 64, "micro_batch": 2, "device": "cpu"},
        "sweep": sweep}))
    return scenario


def calibrate_on_two_ranks(trainbench, scenario, out, args):
    """`mpirun -np 2 trainbench calibrate --scenario SCENARIO --out OUT ARGS…` (as root too)."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1")
    return subprocess.run(["mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none",
                           str(trainbench), "calibrate", "--scenario", str(scenario), "--out",
                           str(out), *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_calibrate_then_predict_a_scenario(trainbench, tmp_path):
    scenario = tiny_scenario(tmp_path, {"precision": ["fp32", "bf16"]})
    cal = tmp_path / "cal.json"
    proc = run(trainbench, "calibrate", "--scenario", scenario, "--out", cal,
               "--min-seconds", "0.001", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    c = json.loads(cal.read_text())
    assert c["schema"] == "trainbench.calibration/1" and c["device_kind"] == "cpu"
    ops = {(o["op"], o["precision"]) for o in c["ops"]}
    assert ("matmul_forward", "fp32") in ops and ("matmul_backward", "bf16") in ops
    assert ("adamw_update", "fp32") in ops and ("convert", "bf16") in ops
    assert all(o["seconds"] > 0 for o in c["ops"])
    assert c["checkpoint_write_bytes_per_s"] > 0
    pred = tmp_path / "pred.json"
    proc = run(trainbench, "plan", "--scenario", scenario, "--calibration", cal, "--json", pred)
    assert proc.returncode == 0, proc.stderr
    variants = json.loads(pred.read_text())["variants"]
    assert [v["variant"] for v in variants] == ["precision=fp32", "precision=bf16"]
    for v in variants:
        assert v["priced_by"] == "calibration"  # every operation was measured at its shape
        t = v["time_breakdown_s"]
        assert t["forward"] > 0 and t["backward"] > 0 and t["optimizer"] > 0
        assert v["predicted_step_s"] == pytest.approx(sum(t.values()), rel=1e-9)
    assert_one_line_error(run(trainbench, "plan", "--scenario", scenario), "--calibration")


def test_filter_calibrates_and_predicts_the_selected_variants(trainbench, tmp_path):
    """--filter (a regex on variant ids, as `run` takes it) narrows calibrate and plan
    --scenario to the selected variants: only their operations are timed and predicted."""
    scenario = tiny_scenario(tmp_path, {"precision": ["fp32", "bf16"]})
    cal = tmp_path / "cal.json"
    proc = run(trainbench, "calibrate", "--scenario", scenario, "--filter", "=bf16$", "--out", cal,
               "--min-seconds", "0.001", "--passes", "1", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    # Every operation is the bf16 variant's (without --filter both precisions are timed).
    assert {o["precision"] for o in json.loads(cal.read_text())["ops"]} == {"bf16"}
    pred = tmp_path / "pred.json"
    proc = run(trainbench, "plan", "--scenario", scenario, "--filter", "=bf16$", "--calibration",
               cal, "--json", pred)
    assert proc.returncode == 0, proc.stderr
    variants = json.loads(pred.read_text())["variants"]
    assert [v["variant"] for v in variants] == ["precision=bf16"]
    assert variants[0]["priced_by"] == "calibration"
    for cmd in (["plan", "--calibration", cal], ["calibrate", "--out", tmp_path / "x.json"]):
        assert_one_line_error(run(trainbench, *cmd, "--scenario", scenario, "--filter", "("),
                              "--filter '('", "not a valid regular expression")
    assert_one_line_error(run(trainbench, "plan", "--scenario", scenario, "--filter", "tp=2",
                              "--calibration", cal), "--filter 'tp=2'", "selects none of the 2")
    assert_one_line_error(run(trainbench, "calibrate", "--scenario", scenario, "--filter", "tp=2",
                              "--out", tmp_path / "x.json"), "--filter 'tp=2'", "no variant")


def test_calibrate_two_ranks_measures_the_synchronisation_wait(trainbench, tmp_path):
    """Under mpirun, calibrate times the 2-rank variant's operations on every rank at once and
    measures the ranks' all-reduce and their wait at a barrier after segments of computation;
    the plan then prices the tensor-parallel variant's collectives with both."""
    if shutil.which("mpirun") is None:
        pytest.skip("mpirun not installed")
    scenario = tiny_scenario(tmp_path, {"tp": [1, 2]})
    cal1, cal2 = tmp_path / "cal1.json", tmp_path / "cal2.json"
    fast = ["--min-seconds", "0.001", "--passes", "2", "--device", "cpu"]
    proc = run(trainbench, "calibrate", "--scenario", scenario, "--out", cal1, *fast)
    assert proc.returncode == 0, proc.stderr
    proc = calibrate_on_two_ranks(trainbench, scenario, cal2, fast)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    c = json.loads(cal2.read_text())
    assert {t["ranks"] for t in c["collectives"]} == {2}
    waits = c["sync_wait"]
    assert len(waits) >= 2 and {w["ranks"] for w in waits} == {2}
    assert all(w["segment_s"] > 0 and w["wait_s"] >= 0 for w in waits)
    segments = [w["segment_s"] for w in waits]
    assert segments == sorted(segments) and segments[-1] > 10 * segments[0]
    assert all(o["ranks"] == 2 for o in c["ops"])
    # The busy speed (CPU): 1 of 2 busy (over both sets of one busy rank), relative to both.
    busy = {b["busy"]: b["speed"] for b in c["busy_speed"] if b["ranks"] == 2}
    assert busy[2] == 1 and 0.2 < busy[1] < 5
    pred = tmp_path / "pred.json"
    proc = run(trainbench, "plan", "--scenario", scenario, "--calibration", cal1, cal2,
               "--json", pred)
    assert proc.returncode == 0, proc.stderr
    by_id = {v["variant"]: v for v in json.loads(pred.read_text())["variants"]}
    assert by_id["tp=1"]["time_breakdown_s"]["tensor_parallel_comm"] == 0
    tp2 = by_id["tp=2"]
    assert tp2["priced_by"] == "calibration"
    assert tp2["time_breakdown_s"]["tensor_parallel_comm"] > 0
    assert tp2["predicted_step_s"] == pytest.approx(sum(tp2["time_breakdown_s"].values()), rel=1e-9)


def test_calibrate_times_zero_collectives_at_the_variants_bytes(trainbench, tmp_path):
    """Under mpirun, calibrate times ZeRO-1's reduce-scatter and all-gather at the gradients'
    bytes over the data-parallel group (Open MPI's need not cost an all-reduce's α–β), and the
    plan prices the ZeRO-1 variant's data-parallel communication with them."""
    if shutil.which("mpirun") is None:
        pytest.skip("mpirun not installed")
    scenario = tiny_scenario(tmp_path, {"dp": [2], "zero": [0, 1]})
    cal = tmp_path / "cal2.json"
    fast = ["--min-seconds", "0.001", "--passes", "2", "--device", "cpu"]
    proc = calibrate_on_two_ranks(trainbench, scenario, cal, fast)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    timed = json.loads(cal.read_text())["collective_times"]
    assert sorted(t["collective"] for t in timed) == ["all_gather", "reduce_scatter"]
    assert all(t["ranks"] == 2 and t["group"] == 2 and t["seconds"] > 0 for t in timed)
    # The one-block 32-wide proxy's fp32 gradients: 15,328 parameters (block 12,704, token
    # and position embeddings 2,048 + 512, final LayerNorm 64).
    assert [t["bytes"] for t in timed] == [4 * 15328] * 2
    assert "reduce_scatter over 2 of 2 ranks" in proc.stdout
    pred = tmp_path / "pred.json"
    proc = run(trainbench, "plan", "--scenario", scenario, "--calibration", cal, "--json", pred)
    assert proc.returncode == 0, proc.stderr
    by_id = {v["variant"]: v["time_breakdown_s"] for v in json.loads(pred.read_text())["variants"]}
    measured = sum(t["seconds"] for t in timed)
    # zero=1: the two measured, plus the synchronisation waits (≥ 0).
    assert by_id["dp=2,zero=1"]["data_parallel_comm"] >= measured
