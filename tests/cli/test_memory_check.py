"""The memory check before allocating (harness/plan/memory_check.h, docs/planner.md): a
configuration whose predicted peak cannot fit in what the machine has is refused at once —
`step` with one line naming the predicted and the available bytes (exit 3), `run` with an `oom`
result line — instead of allocating until the kernel's OOM killer ends the process."""
import json
import re
import time
from pathlib import Path

import jsonschema

from tbcli import assert_one_line_error, run

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "results.schema.json").read_text())
LINE_RE = re.compile(r"predicted peak memory (\d+) bytes .* exceeds the available (\d+) bytes")


def test_step_that_cannot_fit_is_one_line_not_a_kill(trainbench):
    # 100000 blocks of width 64 at context 2048: ~9 TiB of activations.
    t0 = time.monotonic()
    proc = run(trainbench, "step", "--layers", "100000", "--width-scale", "0.01")
    elapsed = time.monotonic() - t0
    line = assert_one_line_error(proc, "predicted peak memory", "exceeds the available")
    assert proc.returncode == 3, proc.returncode  # out of memory, not a signal
    m = LINE_RE.search(line)
    assert m, line
    predicted, available = int(m.group(1)), int(m.group(2))
    assert predicted > available > 0
    assert elapsed < 30, f"took {elapsed:.1f} s: it allocated before checking?"
    assert proc.stdout == ""


def test_run_records_oom_for_a_scenario_that_cannot_fit(trainbench, tmp_path):
    # GPT-3 175B unreduced: ~2.8 TB of weights, gradients and Adam state per replica. dp = 2
    # runs as an MPI job whose ranks agree on the check.
    doc = {"name": "too-big", "description": "cannot fit",
           "base": {"preset": "gpt3-175b", "micro_batch": 1, "threads": 1},
           "sweep": {"dp": [1, 2]},
           "measure": {"warmup_steps": 1, "min_steps": 1, "max_steps": 1, "time_budget_s": 5},
           "accuracy": {"train_steps": 0}}
    sc = tmp_path / "s.json"
    sc.write_text(json.dumps(doc))
    out = tmp_path / "out"
    proc = run(trainbench, "run", sc, "--out", out)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(l) for l in (out / "results.jsonl").read_text().splitlines()]
    assert [l["variant"]["id"] for l in lines] == ["dp=1", "dp=2"]
    for l in lines:
        jsonschema.Draft202012Validator(SCHEMA).validate(l)
        assert l["status"] == "oom", (l["status"], l.get("reason"))
        assert "predicted peak memory" in l["reason"], l["reason"]
        assert l["oom"]["required_bytes"] > l["oom"]["available_bytes"] > 0
        assert l["duration_s"] < 60
