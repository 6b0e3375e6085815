"""`trainbench compare BASE NEW`: a planted slowdown or loss regression exits 1 and is named,
noise alone exits 0, and malformed input is one error line naming FILE:LINE (exit 2).

The results files are synthetic: schema-conforming lines (checked against
docs/results.schema.json) whose step times and losses are drawn from seeded distributions.
"""
import json
import re
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from tbcli import CRASH_MARKERS, assert_one_line_error, run

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "results.schema.json").read_text())

MS = 1e-3
VARIANTS = ["micro_batch=1", "micro_batch=2", "micro_batch=4"]


def summary(xs):
    xs = np.asarray(xs, dtype=float)
    mean = float(xs.mean())
    sd = float(xs.std(ddof=1)) if len(xs) > 1 else 0.0
    return {"n": len(xs), "median": float(np.median(xs)), "p10": float(np.percentile(xs, 10)),
            "p90": float(np.percentile(xs, 90)), "mean": mean, "stddev": sd,
            "cv": sd / mean if mean else 0.0, "min": float(xs.min()), "max": float(xs.max())}


def result_line(index, vid, samples=None, losses=None, status="ok"):
    """One result line as `trainbench run` writes it (docs/results-schema.md)."""
    key, value = vid.split("=")
    line = {
        "schema_version": 1,
        "scenario": {"name": "synthetic", "path": "synthetic.json", "description": "test"},
        "variant": {"index": index, "id": vid, "keys": {key: int(value)}, "baseline": index == 0},
        "config": {"preset": "gpt3-125m", "micro_batch": int(value), "precision": "fp32",
                   "checkpoint_interval": 0, "optimizer": "adamw", "device": "cpu"},
        "status": status,
        "started_utc": "2024-01-01T00:00:00Z", "duration_s": 1.0,
        "environment": {"cpu": {"model": "x", "logical_cores": 2, "threads": 2}, "gpus": [],
                        "cuda": {"backend_built": False}, "blas": "openblas",
                        "build": {"version": "0.1.0", "git_revision": "0", "build_type": "Release",
                                  "compiler": "gcc", "cxx_flags": ""},
                        "command_line": "trainbench run", "hostname": "h", "date_utc": "2024-01-01"},
    }
    if status != "ok":
        line["reason"] = "needs more memory than the limit"
        line["oom"] = {"required_bytes": 2 << 30, "available_bytes": 1 << 30}
        return line
    model = {"name": "gpt3-125m", "n_layer": 1, "d_model": 32, "n_head": 2, "d_head": 16,
             "seq_len": 16, "vocab": 64, "parameters": 1000, "model_flops_per_token": 6000,
             "note": ""}
    step = summary(samples)
    step["rel_noise"] = 0.01
    tokens = 16 * int(value)
    line.update({
        "model": {"full": model, "proxy": model},
        "device": {"kind": "cpu", "name": "cpu", "note": ""},
        "timing": {"step_s": step, "samples_s": [float(s) for s in samples],
                   "phases_s": {p: summary(samples) for p in (
                       "forward", "backward", "recompute", "optimizer", "communication",
                       "data_wait")},
                   "warmup_steps": 2, "stopped_by": "max_steps"},
        "throughput": {"tokens_per_step": tokens, "tokens_per_s": tokens / step["median"],
                       "model_flops_per_s": 6000 * tokens / step["median"], "mfu": None,
                       "peak": {"device": "cpu", "flops_per_s": None, "source": "unknown"}},
        "memory": {"peak_bytes": {c: 1024 for c in ("parameters", "gradients", "optimizer_state",
                                                    "activations", "workspace", "communication",
                                                    "emulation")},
                   "peak_total_bytes": 7168, "limit_bytes": 0},
    })
    if losses is not None:
        mean = float(np.mean(losses))
        line["accuracy"] = {"train_steps": 20, "eval_batches": 2, "seeds": list(range(len(losses))),
                            "eval_loss": [float(l) for l in losses], "eval_loss_mean": mean,
                            "eval_loss_ci95": [mean, mean], "entropy_floor": None, "curve": []}
    return line


def write_results(path, lines):
    path.write_text("".join(json.dumps(l) + "\n" for l in lines))
    return path


def draw(seed, slowdown=None, loss_shift=None, n=30, seeds=3):
    """A results file's lines: per variant, n step times ~ N(100 ms, 2 ms) and `seeds` final
    losses ~ N(3.2, 0.01), from generator `seed`. slowdown / loss_shift: {variant: factor}."""
    rng = np.random.default_rng(seed)
    lines = []
    for i, vid in enumerate(VARIANTS):
        samples = rng.normal(100 * MS, 2 * MS, n) * (slowdown or {}).get(vid, 1.0)
        losses = rng.normal(3.2, 0.01, seeds) * (loss_shift or {}).get(vid, 1.0)
        lines.append(result_line(i, vid, samples, losses))
    return lines


def rows(stdout):
    """The table's rows by variant id: the eight value columns and the verdict."""
    lines = stdout.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("variant "))
    out = {}
    for text in lines[start + 1:]:
        if not text.strip():
            break  # the table ends at the first blank line
        parts = text.split()
        out[parts[0]] = {"cols": parts[1:9], "verdict": " ".join(parts[9:])}
    return out


def p_value(shown):
    return 0.0 if shown == "<0.0001" else float(shown)


def compare(trainbench, base, new, *flags):
    proc = run(trainbench, "compare", base, new, *flags)
    for marker in CRASH_MARKERS:
        assert marker not in proc.stderr, proc.stderr
    return proc


def test_synthetic_lines_follow_the_schema():
    # Without the relative "$id", which jsonschema 4.10 would try to resolve "#/$defs" against.
    schema = {k: v for k, v in SCHEMA.items() if k != "$id"}
    validator = jsonschema.Draft202012Validator(schema)
    for line in draw(0) + [result_line(3, "micro_batch=8", status="oom")]:
        validator.validate(line)


# ---- (a) a planted slowdown ----

def test_planted_slowdown_is_slower_and_exits_1(trainbench, tmp_path):
    base = write_results(tmp_path / "base.jsonl", draw(1))
    new = write_results(tmp_path / "new.jsonl", draw(2, slowdown={"micro_batch=2": 1.15}))
    proc = compare(trainbench, base, new)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr == "", proc.stderr
    r = rows(proc.stdout)
    assert r["micro_batch=2"]["verdict"] == "slower", proc.stdout
    change = float(r["micro_batch=2"]["cols"][2].rstrip("%"))
    assert 10 < change < 20, proc.stdout
    assert r["micro_batch=1"]["verdict"] == "same", proc.stdout
    assert r["micro_batch=4"]["verdict"] == "same", proc.stdout
    assert "REGRESSED: 1 of 3" in proc.stdout
    # The same files the other way round: a speed-up, not a regression.
    proc = compare(trainbench, new, base)
    assert proc.returncode == 0, proc.stdout
    assert rows(proc.stdout)["micro_batch=2"]["verdict"] == "faster"
    # A threshold above the slowdown forgives it.
    assert compare(trainbench, base, new, "--threshold", "20").returncode == 0


def test_p_value_agrees_with_scipy(trainbench, tmp_path):
    stats = pytest.importorskip("scipy.stats")
    base_lines, new_lines = draw(3), draw(4, slowdown={"micro_batch=1": 1.02})
    base = write_results(tmp_path / "base.jsonl", base_lines)
    new = write_results(tmp_path / "new.jsonl", new_lines)
    r = rows(compare(trainbench, base, new).stdout)
    for b, n in zip(base_lines, new_lines):
        expected = stats.mannwhitneyu(n["timing"]["samples_s"], b["timing"]["samples_s"],
                                      alternative="two-sided").pvalue
        shown = r[b["variant"]["id"]]["cols"][3]
        if shown == "<0.0001":
            assert expected < 1e-4
        else:
            assert abs(float(shown) - expected) <= 0.6e-4, (shown, expected)


# ---- (b) noise alone ----

@pytest.mark.parametrize("seed", [10, 20, 30, 40, 50])
def test_noise_alone_exits_0(trainbench, tmp_path, seed):
    base = write_results(tmp_path / "base.jsonl", draw(seed))
    new = write_results(tmp_path / "new.jsonl", draw(seed + 1))
    proc = compare(trainbench, base, new)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "result: no regression among 3 compared variants" in proc.stdout
    for vid, row in rows(proc.stdout).items():
        assert row["verdict"] == "same", (vid, proc.stdout)


# ---- (c) a loss regression ----

def test_loss_regression_over_three_seeds_exits_1(trainbench, tmp_path):
    base = write_results(tmp_path / "base.jsonl", draw(5))
    new = write_results(tmp_path / "new.jsonl", draw(6, loss_shift={"micro_batch=4": 1.08}))
    proc = compare(trainbench, base, new)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    r = rows(proc.stdout)
    assert r["micro_batch=4"]["verdict"] == "worse loss", proc.stdout
    assert float(r["micro_batch=4"]["cols"][6].rstrip("%")) > 5
    assert p_value(r["micro_batch=4"]["cols"][7]) < 0.05
    assert r["micro_batch=1"]["verdict"] == "same"


def test_one_seed_has_no_loss_p_value(trainbench, tmp_path):
    base = write_results(tmp_path / "base.jsonl", draw(7, seeds=1))
    new = write_results(tmp_path / "new.jsonl", draw(8, seeds=1, loss_shift={"micro_batch=4": 1.5}))
    proc = compare(trainbench, base, new)
    assert proc.returncode == 0, proc.stdout  # a 50% change, but no evidence from one seed
    assert rows(proc.stdout)["micro_batch=4"]["cols"][7] == "n/a"


# ---- statuses, variants in one file only, small samples ----

def test_statuses_and_unmatched_variants(trainbench, tmp_path):
    base_lines = draw(9)
    new_lines = draw(10)
    new_lines[1] = result_line(1, "micro_batch=2", status="oom")
    base_lines.append(result_line(3, "micro_batch=8", base_lines[0]["timing"]["samples_s"], [3.2]))
    new_lines.append(result_line(3, "micro_batch=16", new_lines[0]["timing"]["samples_s"], [3.2]))
    base = write_results(tmp_path / "base.jsonl", base_lines)
    new = write_results(tmp_path / "new.jsonl", new_lines)
    proc = compare(trainbench, base, new)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert rows(proc.stdout)["micro_batch=2"]["verdict"] == "n/a (base ok, new oom)"
    assert "only in base: micro_batch=8" in proc.stdout
    assert "only in new: micro_batch=16" in proc.stdout
    assert "micro_batch=2 (new): oom - needs more memory than the limit" in proc.stdout
    assert "no regression among 2 compared variants" in proc.stdout


def test_fewer_than_nine_samples_warns_on_one_line(trainbench, tmp_path):
    base = write_results(tmp_path / "base.jsonl", draw(11, n=5))
    new = write_results(tmp_path / "new.jsonl", draw(12, n=5))
    proc = compare(trainbench, base, new)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("trainbench: warning: fewer than 9 step time samples in 3 variants")


# ---- (d) malformed input: one line naming FILE:LINE, exit 2 ----

GOOD = json.dumps(result_line(0, "micro_batch=1", [0.1, 0.11, 0.12], [3.2, 3.3]))


@pytest.mark.parametrize("content, line, fragment", [
    ("", 1, "empty results file"),
    (GOOD + "\n" + GOOD[:40], 2, "truncated mid-line"),
    (GOOD + "\n" + "{not json\n", 2, "not valid JSON"),
    (GOOD + "\n" + GOOD + "\n" + GOOD.replace('"schema_version": 1', '"schema_version": 7') + "\n",
     3, "unsupported schema_version 7"),
    ("[1, 2, 3]\n", 1, "expected a JSON object"),
    (GOOD.replace('"status": "ok"', '"state": "ok"') + "\n", 1, "missing status"),
    (GOOD.replace('"samples_s": [', '"samples_s": ["x", ') + "\n", 1,
     "timing.samples_s must be an array of numbers"),
    (GOOD + "\n" + GOOD + "\n", 2, 'variant "micro_batch=1" already has a result on line 1'),
], ids=["empty", "truncated", "invalid-json", "schema-version", "not-object", "no-status",
        "bad-samples", "duplicate"])
@pytest.mark.parametrize("side", ["base", "new"])
def test_malformed_input_names_file_and_line(trainbench, tmp_path, content, line, fragment, side):
    good = tmp_path / "good.jsonl"
    good.write_text(GOOD + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    args = (bad, good) if side == "base" else (good, bad)
    proc = compare(trainbench, *args)
    assert_one_line_error(proc, f"{bad}:{line}: ", fragment)
    assert proc.returncode == 2
    assert proc.stdout == ""


def test_missing_file(trainbench, tmp_path):
    good = write_results(tmp_path / "good.jsonl", draw(13))
    proc = compare(trainbench, good, tmp_path / "nope.jsonl")
    assert_one_line_error(proc, f"{tmp_path / 'nope.jsonl'}: cannot open results file")
    assert proc.returncode == 2


@pytest.mark.parametrize("flags", [["--alpha", "0"], ["--alpha", "1.5"], ["--threshold", "-1"]])
def test_bad_options(trainbench, tmp_path, flags):
    good = write_results(tmp_path / "good.jsonl", draw(14))
    proc = compare(trainbench, good, good, *flags)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert re.search(r"alpha|threshold|NonNegative|non-negative", proc.stderr), proc.stderr
