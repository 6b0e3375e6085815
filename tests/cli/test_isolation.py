"""Every variant in its own process: a variant killed by a signal (as the kernel's OOM killer
does), a planted rank crash and a planted hang each become an `error` line naming the rank,
the next variant still runs, and `--resume` then completes the sweep with every variant
exactly once. Faults are planted with TB_FAULT (harness/runner/heartbeat.h)."""
import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from tbcli import TIMEOUT_S, assert_one_line_error, run
from test_run import FAST_ACCURACY, FAST_MEASURE, read_lines, validate, write_scenario

# Long enough (a few seconds) that a helper thread can kill a variant mid-run.
SLOW_ACCURACY = {**FAST_ACCURACY, "train_steps": 150}



def crashed(f):
    """The planted SIGSEGV as recorded: the signal itself, or — in the sanitizer build, where
    AddressSanitizer's handler catches it, reports and aborts (abort_on_error=1) — SIGABRT."""
    sanitized = "ASAN_OPTIONS" in os.environ
    return (f["signal"], f["signal_name"]) in ([(11, "SIGSEGV"), (6, "SIGABRT")] if sanitized
                                                else [(11, "SIGSEGV")])

def clean_env(**extra):
    """This process's environment without a stray TB_FAULT, one OpenMP thread, plus extra."""
    env = {k: v for k, v in os.environ.items() if k != "TB_FAULT"}
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def run_env(trainbench, *args, env=None):
    return subprocess.run([trainbench, *map(str, args)], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=clean_env(**(env or {})))


def four_variant_sweep(tmp_path, accuracy=None):
    """micro_batch 1..4, run in that order (the baseline is the first)."""
    return write_scenario(tmp_path / "s.json", {"micro_batch": [1, 2, 3, 4]},
                          accuracy=accuracy or FAST_ACCURACY)


IDS = [f"micro_batch={b}" for b in range(1, 5)]
FIRST_THREE = "=[123]$"


def heartbeat(out, index, rank=0):
    path = out / ".work" / str(index) / f"rank-{rank}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # not there yet, or being replaced


def kill_when(out, index, rank, min_beats, deadline_s=90):
    """A thread that SIGKILLs variant `index`'s rank once its heartbeat shows min_beats beats;
    its result: the pid it killed."""
    killed = {}

    def watch():
        end = time.time() + deadline_s
        while time.time() < end:
            h = heartbeat(out, index, rank)
            if h and h["beats"] >= min_beats:
                os.kill(h["pid"], signal.SIGKILL)
                killed["pid"] = h["pid"]
                return
            time.sleep(0.01)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t, killed


def assert_resume_completes(trainbench, sc, out, ids, recorded):
    """--resume without faults runs what is missing: every id exactly once."""
    results = out / "results.jsonl"
    before = read_lines(out) if results.exists() and results.stat().st_size else []
    resumed = run_env(trainbench, "run", sc, "--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{recorded} resumed" in resumed.stdout, resumed.stdout
    lines = read_lines(out)
    assert lines[:len(before)] == before
    assert sorted(l["variant"]["id"] for l in lines) == sorted(ids)
    for l in lines:
        validate(l)
    return lines


def assert_failed(line, rank):
    validate(line)
    assert line["status"] == "error", line.get("reason")
    f = line["failure"]
    assert f["rank"] == rank, f
    assert f"rank {rank}" in line["reason"]
    assert "\n" not in line["reason"]
    return f


def test_variant_killed_by_sigkill_is_recorded_and_the_sweep_goes_on(trainbench, tmp_path):
    sc = four_variant_sweep(tmp_path, SLOW_ACCURACY)
    out = tmp_path / "out"
    watcher, killed = kill_when(out, index=1, rank=0, min_beats=1)
    proc = run_env(trainbench, "run", sc, "--out", out, "--filter", FIRST_THREE)
    watcher.join(timeout=5)
    assert proc.returncode == 0, proc.stderr
    assert killed, "the helper never saw variant 1's heartbeat"
    lines = read_lines(out)
    assert [l["variant"]["id"] for l in lines] == IDS[:3]
    f = assert_failed(lines[1], rank=0)
    assert f["signal"] == 9 and f["signal_name"] == "SIGKILL"
    assert f["exit_code"] is None and f["watchdog"] is None and f["launcher"] is None
    assert f["last_heartbeat"]["pid"] == killed["pid"]
    assert "SIGKILL" in lines[1]["reason"] and "OOM" in lines[1]["reason"]
    assert lines[0]["status"] == "ok" and lines[2]["status"] == "ok"
    assert "vs_baseline" in lines[2]
    # The failed variant's files stay for inspection; finished ones are cleaned up.
    work = out / ".work"
    assert (work / "1" / "worker.log").exists() and (work / "1" / "rank-0.json").exists()
    assert not (work / "0").exists() and not (work / "2").exists()
    assert not (work / "environment.json").exists()
    lines = assert_resume_completes(trainbench, sc, out, IDS, recorded=3)
    assert lines[3]["status"] == "ok"


@pytest.mark.parametrize("fault,check", [
    ("crash:0", lambda f: crashed(f)),
    ("exit:0:7", lambda f: f["exit_code"] == 7 and f["signal"] is None),
])
def test_planted_crash_names_the_rank(trainbench, tmp_path, fault, check):
    sc = four_variant_sweep(tmp_path)
    out = tmp_path / "out"
    start = time.time()
    proc = run_env(trainbench, "run", sc, "--out", out, "--filter", FIRST_THREE,
                   env={"TB_FAULT": f"{fault}@^micro_batch=2$"})
    assert proc.returncode == 0, proc.stderr
    assert time.time() - start < 60
    lines = read_lines(out)
    assert [l["variant"]["id"] for l in lines] == IDS[:3]
    f = assert_failed(lines[1], rank=0)
    assert check(f), f
    assert f["last_heartbeat"]["where"] == "start"  # the fault fires at the first step
    assert lines[1]["duration_s"] < 60
    assert [l["status"] for l in (lines[0], lines[2])] == ["ok", "ok"]
    assert f"{lines[1]['variant']['id']} error: rank 0" in proc.stderr  # the progress line
    assert_resume_completes(trainbench, sc, out, IDS, recorded=3)


# The watchdog must outlast a healthy variant's longest stretch without heartbeats: after the
# timing loop each rank measures the CPU's SGEMM peak (1-3 s per rank on a loaded 2-core
# machine, longer with two ranks sharing it), so the tests leave a margin above that.
HANG_TIMEOUT_S = 8
PARALLEL_HANG_TIMEOUT_S = 15


def test_planted_hang_is_ended_by_the_watchdog(trainbench, tmp_path):
    sc = four_variant_sweep(tmp_path)
    out = tmp_path / "out"
    start = time.time()
    proc = run_env(trainbench, "run", sc, "--out", out, "--filter", FIRST_THREE,
                   "--hang-timeout", HANG_TIMEOUT_S, env={"TB_FAULT": "hang:0@^micro_batch=2$"})
    assert proc.returncode == 0, proc.stderr
    assert time.time() - start < 60
    lines = read_lines(out)
    assert [l["variant"]["id"] for l in lines] == IDS[:3]
    f = assert_failed(lines[1], rank=0)
    assert f["watchdog"] == "hang" and f["signal"] is None and f["exit_code"] is None
    assert "--hang-timeout" in lines[1]["reason"]
    assert HANG_TIMEOUT_S <= lines[1]["duration_s"] < 60
    assert [l["status"] for l in (lines[0], lines[2])] == ["ok", "ok"]
    assert_resume_completes(trainbench, sc, out, IDS, recorded=3)


def test_variant_timeout_caps_a_variant(trainbench, tmp_path):
    sc = write_scenario(tmp_path / "s.json", {"micro_batch": [1, 2]}, accuracy=FAST_ACCURACY)
    out = tmp_path / "out"
    proc = run_env(trainbench, "run", sc, "--out", out, "--hang-timeout", 0,
                   "--variant-timeout", 3, env={"TB_FAULT": "hang:0@=1$"})
    assert proc.returncode == 0, proc.stderr
    lines = read_lines(out)
    f = assert_failed(lines[0], rank=0)
    assert f["watchdog"] == "timeout" and "--variant-timeout" in lines[0]["reason"]
    assert 3 <= lines[0]["duration_s"] < 30
    assert lines[1]["status"] == "ok" and "vs_baseline" not in lines[1]


def test_killing_the_sweep_takes_its_worker_along(trainbench, tmp_path):
    sc = four_variant_sweep(tmp_path, SLOW_ACCURACY)
    out = tmp_path / "out"
    sweep = subprocess.Popen([trainbench, "run", str(sc), "--out", str(out)], env=clean_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not heartbeat(out, 0):
            time.sleep(0.01)
        h = heartbeat(out, 0)
        assert h, "no heartbeat from the first variant"
    finally:
        sweep.kill()
        sweep.wait()

    def running(pid):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.time() + 10
    while time.time() < deadline and running(h["pid"]):
        time.sleep(0.05)
    assert not running(h["pid"]), "the worker outlived its sweep"
    assert_resume_completes(trainbench, sc, out, IDS, recorded=0)


def test_bad_watchdog_flags_are_one_line(trainbench, tmp_path):
    sc = four_variant_sweep(tmp_path)
    assert_one_line_error(run(trainbench, "run", sc, "--out", tmp_path / "o", "--hang-timeout", -1),
                          "--hang-timeout", ">= 0")
    assert_one_line_error(
        run(trainbench, "run", sc, "--out", tmp_path / "o", "--variant-timeout", -2),
        "--variant-timeout", ">= 0")
    assert_one_line_error(run(trainbench, "run", sc, "--out", tmp_path / "o", "--launcher", "  "),
                          "--launcher", "{ranks}")


# ---- Parallel variants: a 2-rank (dp=2) job through mpirun. ----

def parallel_sweep(tmp_path, accuracy=None):
    """dp 1 (baseline) then dp 2, plus a third 1-rank variant that must still run."""
    doc = {"micro_batch": 2, "global_batch": 4}
    return write_scenario(tmp_path / "p.json", {"dp": [1, 2], "lr": [0.002, 0.003]},
                          base=doc, accuracy=accuracy or FAST_ACCURACY)


def parallel_supported(trainbench, tmp_path_factory):
    if shutil.which("mpirun") is None:
        return False
    sc = parallel_sweep(tmp_path_factory.mktemp("probe"))
    return run(trainbench, "validate", sc).returncode == 0


@pytest.fixture(scope="module")
def parallel(trainbench, tmp_path_factory):
    if not parallel_supported(trainbench, tmp_path_factory):
        pytest.skip("parallel variants need the `dp` configuration key and mpirun")


PAR_IDS = ["dp=1,lr=0.002", "dp=1,lr=0.003", "dp=2,lr=0.002", "dp=2,lr=0.003"]
# The planted variant is index 2 (dp=2, lr=0.002); the first run also runs the baseline before
# it and index 3 (another 2-rank job) after it; --resume then runs index 1.
PAR_FAULTED = "@^dp=2,lr=0.002$"
PAR_FIRST_RUN = "^(dp=1,lr=0.002|dp=2,.*)$"


def check_parallel_run(trainbench, sc, out, proc, rank):
    assert proc.returncode == 0, proc.stderr
    lines = read_lines(out)
    assert [l["variant"]["id"] for l in lines] == [PAR_IDS[0], PAR_IDS[2], PAR_IDS[3]]
    f = assert_failed(lines[1], rank=rank)
    assert f["ranks"] == 2 and f["launcher"].split()[0] in ("mpirun", "srun")
    assert lines[1]["duration_s"] < 60
    assert lines[0]["status"] == "ok", lines[0].get("reason")
    assert lines[2]["status"] == "ok", lines[2].get("reason")
    return f


@pytest.mark.parametrize("fault,rank,check", [
    ("crash:1", 1, lambda f: crashed(f)),
    ("crash:0", 0, lambda f: crashed(f)),
    ("exit:1:4", 1, lambda f: f["exit_code"] == 4),
])
def test_parallel_rank_crash_names_the_rank(trainbench, tmp_path, parallel, fault, rank, check):
    sc = parallel_sweep(tmp_path)
    out = tmp_path / "out"
    start = time.time()
    proc = run_env(trainbench, "run", sc, "--out", out, "--filter", PAR_FIRST_RUN,
                   env={"TB_FAULT": fault + PAR_FAULTED})
    assert time.time() - start < 90
    f = check_parallel_run(trainbench, sc, out, proc, rank)
    assert check(f), f
    lines = assert_resume_completes(trainbench, sc, out, PAR_IDS, recorded=3)
    assert lines[3]["status"] == "ok", lines[3].get("reason")


def test_parallel_rank_hang_names_the_rank(trainbench, tmp_path, parallel):
    sc = parallel_sweep(tmp_path)
    out = tmp_path / "out"
    proc = run_env(trainbench, "run", sc, "--out", out, "--filter", PAR_FIRST_RUN,
                   "--hang-timeout", PARALLEL_HANG_TIMEOUT_S, env={"TB_FAULT": "hang:1" + PAR_FAULTED})
    f = check_parallel_run(trainbench, sc, out, proc, rank=1)
    assert f["watchdog"] == "hang"
    assert {h["rank"] for h in f["heartbeats"]} == {0, 1}
    assert read_lines(out)[1]["duration_s"] >= PARALLEL_HANG_TIMEOUT_S
    assert_resume_completes(trainbench, sc, out, PAR_IDS, recorded=3)


def test_parallel_rank_killed_by_sigkill(trainbench, tmp_path, parallel):
    sc = parallel_sweep(tmp_path, SLOW_ACCURACY)
    out = tmp_path / "out"
    # Once rank 1 is in its step loop (MPI up), as the OOM killer would strike.
    watcher, killed = kill_when(out, index=2, rank=1, min_beats=2)
    proc = run_env(trainbench, "run", sc, "--out", out, "--filter", PAR_FIRST_RUN)
    watcher.join(timeout=5)
    assert killed, "the helper never saw rank 1's heartbeat"
    f = check_parallel_run(trainbench, sc, out, proc, rank=1)
    assert f["signal"] == 9 and f["signal_name"] == "SIGKILL", f


def test_missing_launcher_is_an_error_line(trainbench, tmp_path, parallel):
    sc = parallel_sweep(tmp_path)
    out = tmp_path / "out"
    proc = run_env(trainbench, "run", sc, "--out", out, "--filter", "^dp=2",
                   "--launcher", "no-such-launcher -n {ranks}")
    assert proc.returncode == 0, proc.stderr
    lines = read_lines(out)
    assert [l["variant"]["id"] for l in lines] == PAR_IDS[2:]
    for l in lines:
        validate(l)
        assert l["status"] == "error" and "no-such-launcher" in l["reason"], l["reason"]
        assert l["failure"]["rank"] is None
