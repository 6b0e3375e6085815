"""`trainbench run`: result lines that conform to the schema, statuses recorded while the
sweep goes on, resume after SIGKILL with every variant exactly once, traces, progress."""
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest

from tbcli import assert_one_line_error, run

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "results.schema.json").read_text())

TINY_BASE = {"preset": "gpt3-125m", "layers": 1, "d_model": 32, "heads": 2, "seq": 16, "vocab": 64,
             "micro_batch": 2, "lr": 0.002, "threads": 1}
FAST_MEASURE = {"warmup_steps": 1, "min_steps": 3, "max_steps": 5, "target_rel_noise": 0.5,
                "time_budget_s": 5}
FAST_ACCURACY = {"train_steps": 6, "eval_interval": 3, "eval_batches": 1, "seeds": 2, "seed": 1}


def write_scenario(path, sweep, baseline=None, base=None, measure=None, accuracy=None, name="t"):
    doc = {"name": name, "description": "test", "base": {**TINY_BASE, **(base or {})},
           "sweep": sweep, "measure": measure or FAST_MEASURE, "accuracy": accuracy or FAST_ACCURACY}
    if baseline:
        doc["baseline"] = baseline
    path.write_text(json.dumps(doc))
    return path


def read_lines(out):
    text = (out / "results.jsonl").read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def validate(line):
    jsonschema.Draft202012Validator(SCHEMA).validate(line)


def test_sweep_writes_one_schema_line_per_variant(trainbench, tmp_path):
    sc = write_scenario(tmp_path / "s.json", {"micro_batch": [1, 2, 3]}, baseline={"micro_batch": 2})
    out = tmp_path / "out"
    proc = run(trainbench, "run", sc, "--out", out)
    assert proc.returncode == 0, proc.stderr
    lines = read_lines(out)
    assert [l["variant"]["id"] for l in lines] == ["micro_batch=2", "micro_batch=1", "micro_batch=3"]
    for l in lines:
        validate(l)
        assert l["status"] == "ok", l.get("reason")
        assert l["timing"]["step_s"]["n"] == len(l["timing"]["samples_s"]) >= 3
        assert len(l["accuracy"]["eval_loss"]) == 2
        assert l["accuracy"]["curve"][0]["step"] == 3
        assert l["throughput"]["tokens_per_step"] == l["config"]["micro_batch"] * 16
        # MFU against the CPU's measured SGEMM peak. A model step cannot beat a large GEMM, but
        # on a machine loaded by other processes the peak and the step are measured at
        # different moments, so allow some slack above 1 rather than a flaky bound.
        assert l["throughput"]["mfu"] is None or 0 < l["throughput"]["mfu"] < 1.5
    base = lines[0]
    assert base["variant"]["baseline"] and "vs_baseline" not in base
    for l in lines[1:]:
        vs = l["vs_baseline"]
        assert vs["baseline_id"] == "micro_batch=2"
        lo, hi = vs["speedup_ci95"]
        assert lo <= vs["speedup"] <= hi
        assert vs["loss_delta"] == pytest.approx(
            l["accuracy"]["eval_loss_mean"] - base["accuracy"]["eval_loss_mean"])
    # One progress line per variant start and end, plain (not a terminal).
    assert proc.stderr.count("[") >= 6 and "\r" not in proc.stderr


def test_oom_and_divergence_recorded_while_the_sweep_continues(trainbench, tmp_path):
    # memory_limit_bytes 200 kB: the parameters fit, the activations do not → a real oom.
    # lr 1e4: AdamW steps of ~1e4 per weight → the loss explodes or turns NaN → diverged.
    sc = write_scenario(tmp_path / "s.json", {"memory_limit_bytes": [0, 200000], "lr": [0.002, 10000.0]},
                        accuracy={**FAST_ACCURACY, "train_steps": 0})
    out = tmp_path / "out"
    proc = run(trainbench, "run", sc, "--out", out)
    assert proc.returncode == 0, proc.stderr
    by_id = {l["variant"]["id"]: l for l in read_lines(out)}
    assert len(by_id) == 4
    for l in by_id.values():
        validate(l)
    assert by_id["memory_limit_bytes=0,lr=0.002"]["status"] == "ok"
    assert by_id["memory_limit_bytes=0,lr=10000.0"]["status"] == "diverged"
    d = by_id["memory_limit_bytes=0,lr=10000.0"]["diverged"]
    assert d["phase"] == "timing" and d["step"] >= 1
    for lr in ("0.002", "10000.0"):
        oom = by_id[f"memory_limit_bytes=200000,lr={lr}"]
        assert oom["status"] == "oom"
        assert oom["oom"]["required_bytes"] > oom["oom"]["available_bytes"]


def test_unsupported_device_is_recorded(trainbench, tmp_path):
    sc = write_scenario(tmp_path / "s.json", {"micro_batch": [1, 2]})
    out = tmp_path / "out"
    proc = run(trainbench, "run", sc, "--out", out, "--device", "cuda")
    assert proc.returncode == 0, proc.stderr
    for l in read_lines(out):
        validate(l)
        assert l["status"] == "unsupported" and "cuda" in l["reason"]


def test_existing_results_need_resume(trainbench, tmp_path):
    sc = write_scenario(tmp_path / "s.json", {"micro_batch": [1]}, accuracy={**FAST_ACCURACY, "train_steps": 0})
    out = tmp_path / "out"
    assert run(trainbench, "run", sc, "--out", out).returncode == 0
    before = (out / "results.jsonl").read_text()
    assert_one_line_error(run(trainbench, "run", sc, "--out", out), "results.jsonl", "--resume")
    assert (out / "results.jsonl").read_text() == before


def test_resume_after_sigkill_records_every_variant_exactly_once(trainbench, tmp_path):
    ids = [f"micro_batch={b}" for b in range(1, 9)]
    sc = write_scenario(tmp_path / "s.json", {"micro_batch": list(range(1, 9))},
                        measure={**FAST_MEASURE, "min_steps": 20, "max_steps": 20},
                        accuracy={**FAST_ACCURACY, "train_steps": 30})
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([trainbench, "run", str(sc), "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = out / "results.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if results.exists() and results.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep finished before it could be killed; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = results.read_text().count("\n")
    assert 2 <= done_before < len(ids)
    with open(results, "a") as f:  # a crash in the middle of a write leaves a partial line
        f.write('{"schema_version": 1, "variant": {"id": "micro_b')
    resumed = run(trainbench, "run", sc, "--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    lines = read_lines(out)
    assert sorted(l["variant"]["id"] for l in lines) == sorted(ids)
    assert f"{done_before} resumed" in resumed.stdout
    for l in lines:
        validate(l)
        assert l["status"] == "ok"


def test_filter_and_trace(trainbench, tmp_path):
    sc = write_scenario(tmp_path / "s.json", {"micro_batch": [1, 2, 3]}, accuracy={**FAST_ACCURACY, "train_steps": 0})
    out = tmp_path / "out"
    proc = run(trainbench, "run", sc, "--out", out, "--filter", "=(1|3)$", "--trace")
    assert proc.returncode == 0, proc.stderr
    lines = read_lines(out)
    assert [l["variant"]["id"] for l in lines] == ["micro_batch=1", "micro_batch=3"]
    trace = json.loads(Path(lines[0]["timing"]["trace"]).read_text())
    names = {e["name"] for e in trace["traceEvents"] if e.get("ph") == "X"}
    assert {"forward", "backward", "optimizer", "data_wait"} <= names
    steps = lines[0]["timing"]["step_s"]["n"] + lines[0]["timing"]["warmup_steps"]
    assert sum(1 for e in trace["traceEvents"] if e.get("ph") == "X" and e["name"] == "forward") == steps


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="parallel variants need mpirun")
def test_parallel_trace_has_a_track_per_rank(trainbench, tmp_path):
    # A 2-stage pipeline: both ranks' events in one trace that parses (each rank once wrote the
    # same file at once), rank 0's time base, a host track per rank.
    sc = write_scenario(tmp_path / "s.json", {"pp": [2]}, base={"layers": 2, "global_batch": 4},
                        accuracy={**FAST_ACCURACY, "train_steps": 0})
    out = tmp_path / "out"
    proc = run(trainbench, "run", sc, "--out", out, "--trace")
    assert proc.returncode == 0, proc.stderr
    (line,) = read_lines(out)
    assert line["status"] == "ok", line.get("reason")
    trace = json.loads(Path(line["timing"]["trace"]).read_text())
    assert trace["distributedInfo"] == {"rank": 0, "world_size": 2}
    names = {e["pid"]: e["args"]["name"] for e in trace["traceEvents"]
             if e["ph"] == "M" and e["name"] == "process_name"}
    assert names == {0: "trainbench pp=2 rank 0", 100: "trainbench pp=2 rank 1"}
    steps = line["timing"]["step_s"]["n"] + line["timing"]["warmup_steps"]
    for pid in (0, 100):
        ranges = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["pid"] == pid]
        # Two micro-batches a step, each a forward and a backward on every stage.
        assert sum(1 for e in ranges if e["name"] == "forward") == 2 * steps
        assert sum(1 for e in ranges if e["name"] == "backward") == 2 * steps
        assert any(e["name"] == "communication" for e in ranges)
    # One time base: the last stage cannot finish its first forward before the first stage
    # has finished its own (it waits for that activation).
    def first_end(pid):
        f = min((e for e in trace["traceEvents"] if e["ph"] == "X" and e["pid"] == pid
                 and e["name"] == "forward"), key=lambda e: e["ts"])
        return f["ts"] + f["dur"]
    assert first_end(100) > first_end(0)


def test_bad_filter_is_one_line(trainbench, tmp_path):
    sc = write_scenario(tmp_path / "s.json", {"micro_batch": [1]})
    assert_one_line_error(run(trainbench, "run", sc, "--out", tmp_path / "o", "--filter", "(("), "((")


def test_precision_sweep_records_modes_memory_and_rounding(trainbench, tmp_path):
    modes = ["fp32", "tf32", "bf16", "fp16", "fp16", "fp8"]
    scaling = ["auto", "auto", "auto", "dynamic", "none", "auto"]
    sc = write_scenario(tmp_path / "p.json", {"precision": modes, "loss_scaling": scaling},
                        baseline={"precision": "fp32"})
    doc = json.loads(sc.read_text())
    doc["sweep_mode"] = "zip"
    sc.write_text(json.dumps(doc))
    out = tmp_path / "out"
    proc = run(trainbench, "run", sc, "--out", out)
    assert proc.returncode == 0, proc.stderr
    lines = {l["variant"]["id"]: l for l in read_lines(out)}
    assert len(lines) == 6
    for l in lines.values():
        validate(l)
        assert l["status"] == "ok", l.get("reason")
    fp32 = lines["precision=fp32,loss_scaling=auto"]
    assert fp32["precision"]["execution"] == "native"
    assert "gradient_rounding" not in fp32["precision"]
    act32 = fp32["memory"]["peak_bytes"]["activations"]
    for vid, l in lines.items():
        p = l["precision"]
        assert p["mode"] == l["config"]["precision"] and p["master_weights"] == "f32"
        if p["mode"] == "fp32":
            continue
        # bf16/fp16 GEMMs run natively through oneDNN where the CPU has the instructions (the
        # record names the ISA); everything else on a CPU is emulated. Either way the other
        # kernels widen 16-bit tensors into fp32 stand-ins (emulation memory).
        native_gemm = "(native, ISA" in p["gemm"]
        assert p["execution"] == ("native" if native_gemm else "emulated") and p["note"]
        if native_gemm:
            assert p["mode"] in ("bf16", "fp16") and p["gemm_isa"] in p["gemm"], p
        else:
            assert "gemm_isa" not in p
        assert l["memory"]["peak_bytes"]["emulation"] > 0
        assert p["gradient_rounding"]["values"] > 0
        if p["mode"] in ("bf16", "fp16", "fp8"):
            # 16-bit activations: well under the fp32 count (logits and LN statistics stay fp32).
            assert l["memory"]["peak_bytes"]["activations"] < 0.8 * act32, vid
            assert p["activation_dtype"] in ("bf16", "f16")
        assert "vs_baseline" in l and "loss_delta" in l["vs_baseline"]
        assert l["vs_baseline"]["loss_delta_method"] == "paired"  # the same seeds on both sides
    assert lines["precision=fp8,loss_scaling=auto"]["precision"]["gemm_operands"] == {
        "forward": "e4m3", "gradient": "e5m2"}
    dyn = lines["precision=fp16,loss_scaling=dynamic"]["precision"]
    none = lines["precision=fp16,loss_scaling=none"]["precision"]
    assert dyn["loss_scaling"]["dynamic"] and not none["loss_scaling"]["dynamic"]
    assert dyn["loss_scaling"]["accuracy_final_scale"][0] > 1
    # Without a loss scale, fp16 gradients of this tiny model sit far below fp16's normal range:
    # most of them are subnormal (and some flush to zero); the scale lifts them out of it.
    sub_none = none["gradient_rounding"]["subnormal_fraction"]
    sub_dyn = dyn["gradient_rounding"]["subnormal_fraction"]
    assert sub_none > 0.1 and sub_dyn < 0.02 and sub_none > 10 * sub_dyn, (sub_none, sub_dyn)
    assert none["gradient_rounding"]["underflow_fraction"] > dyn["gradient_rounding"]["underflow_fraction"]
