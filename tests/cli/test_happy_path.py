"""A tiny training run, its JSON results, weights evaluation, and `trainbench info`."""
import json
import math

import pytest

from tbcli import TINY, assert_one_line_error, eval_loss, read_safetensors, run

MEMORY_CATEGORIES = {"parameters", "gradients", "optimizer_state", "activations", "workspace",
                     "communication", "emulation"}
PHASES = {"forward", "backward", "recompute", "optimizer", "communication", "data_wait"}


def params_formula(L, d, T, V):
    return V * d + T * d + L * (12 * d * d + 13 * d) + 2 * d


@pytest.fixture(scope="module")
def results(trained):
    return json.loads(trained["json"].read_text())


def test_step_succeeds_quietly(trained):
    proc = trained["proc"]
    assert proc.returncode == 0
    assert proc.stderr == ""
    assert "step time" in proc.stdout and "throughput" in proc.stdout


def test_step_json_top_level(results):
    assert results["schema_version"] == 1
    for key in ("model", "timing", "throughput", "loss", "memory", "environment", "training"):
        assert key in results, key


def test_step_json_model(results):
    full, proxy = results["model"]["full"], results["model"]["proxy"]
    assert full["name"] == "gpt3-125m"
    assert (full["n_layer"], full["d_model"], full["n_head"]) == (12, 768, 12)
    assert full["parameters"] == params_formula(12, 768, 2048, 50257)
    assert (proxy["n_layer"], proxy["d_model"], proxy["n_head"], proxy["seq_len"],
            proxy["vocab"]) == (1, 32, 2, 16, 64)
    assert proxy["parameters"] == params_formula(1, 32, 16, 64) == 15328
    for m in (full, proxy):
        n_matmul = m["parameters"] - m["seq_len"] * m["d_model"]
        want = 6 * n_matmul + 12 * m["n_layer"] * m["d_model"] * m["seq_len"]
        assert m["model_flops_per_token"] == pytest.approx(want, rel=1e-12)


def test_step_json_timing_and_throughput(results):
    step = results["timing"]["step_s"]
    assert step["n"] == 3
    assert 0 < step["p10"] <= step["median"] <= step["p90"]
    assert step["min"] <= step["p10"] and step["p90"] <= step["max"]
    phases = results["timing"]["phases_s"]
    assert set(phases) == PHASES
    for phase in PHASES:
        assert phases[phase]["n"] == 3
    for phase in ("forward", "backward", "optimizer", "data_wait"):
        assert phases[phase]["median"] > 0, phase
    # No recomputation or communication in a single-process step without checkpointing.
    assert phases["recompute"]["max"] == 0 and phases["communication"]["max"] == 0
    # The phases partition the step: their means add up to the mean step time.
    assert sum(phases[p]["mean"] for p in PHASES) == pytest.approx(step["mean"], rel=1e-9)
    tps = results["throughput"]["tokens_per_s"]
    assert tps == pytest.approx(2 * 16 / step["median"], rel=1e-9)
    assert results["throughput"]["model_flops_per_s"] == pytest.approx(
        tps * results["model"]["proxy"]["model_flops_per_token"], rel=1e-9)


def test_step_trace_is_a_chrome_trace(trainbench, tmp_path):
    out = tmp_path / "trace.json"
    proc = run(trainbench, "step", *TINY, "--batch", "2", "--steps", "2", "--warmup", "1",
               "--eval-batches", "1", "--trace", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    trace = json.loads(out.read_text())
    assert trace["displayTimeUnit"] == "ms"
    assert trace["distributedInfo"] == {"rank": 0, "world_size": 1}
    assert trace["otherData"]["timed_steps"] == 2
    events = trace["traceEvents"]
    meta = {e["name"]: e["args"]["name"] for e in events if e["ph"] == "M"}
    assert meta == {"process_name": "trainbench step", "thread_name": "host"}
    marks = [e["name"] for e in events if e["ph"] == "i"]
    assert marks == ["warmup step 0", "step 1", "step 2"]
    ranges = [e for e in events if e["ph"] == "X"]
    # Three steps of data wait, forward, backward and optimizer; evaluation opens no range.
    assert len(ranges) == 12
    assert {e["name"] for e in ranges} == {"data_wait", "forward", "backward", "optimizer"}
    for e in ranges:
        assert e["cat"] == "phase" and e["pid"] == 0 and e["tid"] == 0
        assert e["ts"] >= 0 and e["dur"] >= 0
    starts = [e["ts"] for e in events if e["ph"] != "M"]
    assert starts == sorted(starts)


def test_step_trace_to_an_unwritable_path_fails_cleanly(trainbench, tmp_path):
    bad = tmp_path / "missing" / "trace.json"
    proc = run(trainbench, "step", *TINY, "--batch", "1", "--steps", "1", "--warmup", "0",
               "--eval-batches", "0", "--trace", bad)
    assert_one_line_error(proc, str(bad))


def test_step_json_loss(results):
    loss = results["loss"]
    assert len(loss["train_per_step"]) == 4  # warmup + timed steps
    for x in loss["train_per_step"]:
        assert math.isfinite(x) and 0 < x < 10
    # Synthetic data: the Markov chain's entropy floor; a barely trained model is above it.
    assert 0 < loss["entropy_floor"] < math.log(64)
    assert loss["eval"] > loss["entropy_floor"]


def test_step_json_training(results):
    t = results["training"]
    # Defaults: no accumulation, AdamW at a constant learning rate.
    assert t["micro_batch"] == 2 and t["global_batch"] == 2 and t["accumulation"] == 1
    assert t["optimizer"] == "adamw" and t["lr_schedule"] == "constant"
    assert t["lr_warmup_steps"] == 0 and t["min_lr_ratio"] == 0.1
    assert (t["beta1"], t["beta2"], t["momentum"]) == (0.9, 0.95, 0.9)
    assert t["lr_per_step"] == [t["lr"]] * 4
    assert results["throughput"]["tokens_per_step"] == 2 * 16


def test_step_with_accumulation_lamb_and_cosine(trainbench, tmp_path):
    out = tmp_path / "acc.json"
    proc = run(trainbench, "step", *TINY, "--batch", "1", "--global-batch", "3", "--steps", "3",
               "--warmup", "1", "--eval-batches", "1", "--optimizer", "lamb", "--lr", "0.01",
               "--lr-schedule", "cosine", "--lr-warmup-steps", "1", "--min-lr-ratio", "0.2",
               "--json", out)
    assert proc.returncode == 0, proc.stderr
    j = json.loads(out.read_text())
    t = j["training"]
    assert (t["micro_batch"], t["global_batch"], t["accumulation"]) == (1, 3, 3)
    assert t["optimizer"] == "lamb"
    # Warm-up step 0 at the peak (1 warm-up step), cosine over steps 1..3, 0.2·peak at 4.
    lrs = t["lr_per_step"]
    assert lrs[0] == pytest.approx(0.01) and lrs[1] == pytest.approx(0.01)
    assert lrs[2] == pytest.approx(0.002 + 0.008 * 0.5 * (1 + math.cos(math.pi / 3)))
    assert lrs[3] == pytest.approx(0.002 + 0.008 * 0.5 * (1 + math.cos(2 * math.pi / 3)))
    assert j["throughput"]["tokens_per_step"] == 3 * 16
    tps = j["throughput"]["tokens_per_s"]
    assert tps == pytest.approx(3 * 16 / j["timing"]["step_s"]["median"], rel=1e-9)


def test_step_global_batch_not_a_multiple_is_an_error(trainbench):
    proc = run(trainbench, "step", *TINY, "--batch", "2", "--global-batch", "3")
    assert_one_line_error(proc, "--global-batch = 3 is not a multiple of --batch = 2")


def test_step_unknown_optimizer_is_an_error(trainbench):
    proc = run(trainbench, "step", *TINY, "--optimizer", "adagrad")
    assert proc.returncode != 0
    assert "adagrad" in proc.stderr


def test_step_json_memory(results):
    peaks = results["memory"]["peak_bytes"]
    assert set(peaks) == MEMORY_CATEGORIES
    n = results["model"]["proxy"]["parameters"]
    assert peaks["parameters"] == 4 * n  # fp32
    assert peaks["gradients"] == 4 * n
    assert peaks["optimizer_state"] == 8 * n  # AdamW: m and v
    assert peaks["activations"] > 0
    assert results["memory"]["peak_total_bytes"] >= sum(peaks[c] for c in
                                                        ("parameters", "gradients",
                                                         "optimizer_state"))


def test_step_json_environment(results):
    env = results["environment"]
    assert env["build"]["git_revision"]
    assert isinstance(env["cuda"]["backend_built"], bool)
    assert "--save-weights" in env["command_line"]
    assert env["cpu"]["logical_cores"] >= 1


def test_saved_weights_header(trained):
    header, data = read_safetensors(trained["weights"])
    meta = header["__metadata__"]
    assert meta["format"] == "trainbench"
    assert (meta["n_layer"], meta["d_model"], meta["n_head"], meta["seq_len"], meta["vocab"]) == \
        ("1", "32", "2", "16", "64")
    assert header["wte"]["shape"] == [64, 32]
    assert len(data) == 4 * 15328


def eval_args(trained, *extra):
    return ["eval", "--load-weights", trained["weights"], "--data", trained["data"], "--seq", "16",
            *extra]


def test_eval_prints_a_loss(trainbench, trained):
    proc = run(trainbench, *eval_args(trained))
    loss = eval_loss(proc)
    assert proc.stderr == ""
    assert "235 windows" in proc.stdout  # ⌊4000 / 17⌋
    # Three steps from initialisation on uniform random tokens: near ln 64.
    assert abs(loss - math.log(64)) < 0.5


def test_eval_is_deterministic_and_batch_independent(trainbench, trained):
    a = eval_loss(run(trainbench, *eval_args(trained)))
    b = eval_loss(run(trainbench, *eval_args(trained)))
    assert a == b
    b1 = eval_loss(run(trainbench, *eval_args(trained, "--batch", "1")))
    b3 = eval_loss(run(trainbench, *eval_args(trained, "--batch", "3")))
    # Printed to 6 decimals: allow one unit in the last place either way.
    assert b1 == pytest.approx(b3, abs=2e-6)
    assert a == pytest.approx(b1, abs=2e-6)


def test_eval_windows_and_shorter_context(trainbench, trained):
    some = run(trainbench, *eval_args(trained, "--windows", "5"))
    eval_loss(some)
    assert "5 windows of 16+1" in some.stdout
    short = run(trainbench, "eval", "--load-weights", trained["weights"], "--data", trained["data"],
                "--seq", "8", "--batch", "5")
    assert math.isfinite(eval_loss(short))
    assert "444 windows of 8+1" in short.stdout  # ⌊4000 / 9⌋


def test_step_is_reproducible_from_the_seed(trainbench, tmp_path):
    losses = []
    for i in range(2):
        out = tmp_path / f"r{i}.json"
        proc = run(trainbench, "step", *TINY, "--batch", "2", "--steps", "2", "--warmup", "0",
                   "--eval-batches", "1", "--seed", "5", "--threads", "1", "--json", out)
        assert proc.returncode == 0, proc.stderr
        losses.append(json.loads(out.read_text())["loss"])
    assert losses[0]["train_per_step"] == losses[1]["train_per_step"]
    assert losses[0]["eval"] == losses[1]["eval"]


def test_step_from_saved_weights_on_a_token_file(trainbench, trained, tmp_path):
    out = tmp_path / "resume.json"
    proc = run(trainbench, "step", *TINY, "--batch", "2", "--steps", "1", "--warmup", "0",
               "--load-weights", trained["weights"], "--data", trained["data"], "--json", out)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    assert "4000 tokens" in r["training"]["data"]
    assert "entropy_floor" not in r["loss"]


def test_info_prints_json(trainbench):
    proc = run(trainbench, "info")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    info = json.loads(proc.stdout)
    rev = info["build"]["git_revision"]
    assert isinstance(rev, str) and rev
    assert isinstance(info["cuda"]["backend_built"], bool)
    assert isinstance(info["gpus"], list)
    assert info["command_line"].endswith("info")
    # The CPU's reduced-precision instruction sets, as /proc/cpuinfo names them, and its memory.
    isa = info["cpu"]["isa"]
    assert set(isa) >= {"avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile"}
    flags = set()
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    assert all(isa[name] == (name in flags) for name in isa)
    mem_kb = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal:"))
    assert info["cpu"]["memory_bytes"] == mem_kb * 1024
