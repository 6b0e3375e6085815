"""Speedup is throughput (docs/results-schema.md, change of 2026-12-01): lines that carry
vs_baseline.step_time_ratio hold the tokens/s ratio in vs_baseline.speedup, which the report
shows as it is; older lines hold the step-time ratio there, which the report converts with
the two lines' tokens per step. Both give the same page for the same measurements."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from conftest import FIXTURES, run_dir, run_reports
from test_page import Page


def old_lines() -> list[dict]:
    return [json.loads(l) for l in (FIXTURES / "single.jsonl").read_text().splitlines()]


def to_new_schema(j: dict, tokens_base: float) -> dict:
    """A line of the old schema as the runner now writes it: the same measurements, speedup
    the throughput ratio and the step-time ratio under its own name."""
    vs = j.get("vs_baseline")
    if vs:
        ratio = j["throughput"]["tokens_per_step"] / tokens_base
        vs["step_time_ratio"], vs["step_time_ratio_ci95"] = vs["speedup"], list(vs["speedup_ci95"])
        vs["speedup"] = vs["step_time_ratio"] * ratio
        vs["speedup_ci95"] = [x * ratio for x in vs["step_time_ratio_ci95"]]
    return j


def write(run: Path, lines: list[dict]) -> None:
    (run / "results.jsonl").write_text("".join(json.dumps(j) + "\n" for j in lines))


def variant_rows(report: Path) -> dict[str, list[str]]:
    page = Page((report / "index.html").read_text())
    rows = [r for r, c in zip(page.rows, page.row_classes) if c.startswith("status-")]
    return {r[1].split()[-1]: r for r in rows}


SPEEDUP_COL, NOTE_COL = 9, -1


def test_old_lines_are_converted_with_the_tokens_per_step(reports_of):
    rows = variant_rows(reports_of("single"))
    by_id = {l["variant"]["id"]: l for l in old_lines()}
    base_tokens = next(l for l in old_lines() if l["variant"]["baseline"])["throughput"]["tokens_per_step"]
    for vid in ("micro_batch=2", "micro_batch=8"):
        l = by_id[vid]
        ratio = l["throughput"]["tokens_per_step"] / base_tokens
        vs = l["vs_baseline"]
        assert "step_time_ratio" not in vs
        assert rows[vid][SPEEDUP_COL] == (f"{vs['speedup'] * ratio:.2f}x [{vs['speedup_ci95'][0] * ratio:.2f}, "
                                          f"{vs['speedup_ci95'][1] * ratio:.2f}]")
        assert f"step-time speedup {vs['speedup']:.2f}x" in rows[vid][NOTE_COL]


def test_new_lines_give_the_same_page_as_old_lines_of_the_same_measurements(reports_of, tmp_path):
    old = reports_of("single")
    run = run_dir(tmp_path, "single")
    lines = old_lines()
    base_tokens = next(l for l in lines if l["variant"]["baseline"])["throughput"]["tokens_per_step"]
    write(run, [to_new_schema(j, base_tokens) for j in lines])
    proc = run_reports(run)
    assert proc.returncode == 0, proc.stderr
    assert variant_rows(run / "report") == variant_rows(old)
    strip = lambda p: re.sub(r"results file.*?\n|from \S+results\.jsonl", "", p.read_text())
    assert strip(run / "report" / "index.md") == strip(old / "index.md")
    for stem in ("speedup_vs_accuracy", "step_breakdown", "memory_breakdown", "loss_curves",
                 "throughput"):
        # The runner multiplies as the report did, so the figures are the same files.
        assert (run / "report" / f"{stem}.svg").read_bytes() == (old / f"{stem}.svg").read_bytes(), stem


def test_new_lines_are_read_not_recomputed(tmp_path):
    """With step_time_ratio present the report shows vs_baseline.speedup as recorded — a
    planted value that no step-time ratio × tokens ratio would give."""
    run = run_dir(tmp_path, "single")
    lines = old_lines()
    for j in lines:
        vs = j.get("vs_baseline")
        if vs:
            vs["step_time_ratio"], vs["step_time_ratio_ci95"] = vs["speedup"], vs["speedup_ci95"]
            vs["speedup"], vs["speedup_ci95"] = 1.234, [1.2, 1.27]
    write(run, lines)
    proc = run_reports(run)
    assert proc.returncode == 0, proc.stderr
    rows = variant_rows(run / "report")
    for vid in ("micro_batch=2", "micro_batch=8"):
        assert rows[vid][SPEEDUP_COL] == "1.23x [1.20, 1.27]"
        step = next(l for l in old_lines() if l["variant"]["id"] == vid)["vs_baseline"]["speedup"]
        assert f"step-time speedup {step:.2f}x" in rows[vid][NOTE_COL]
    text = html.unescape((run / "report" / "index.html").read_text())
    assert "mb=2: 1.23x speed" in text


def test_metrics_follow_the_line():
    from reports.load import Results, Variant
    from reports.metrics import all_metrics

    def line(i, tokens, vs=None):
        d = {"schema_version": 1, "scenario": {"name": "t"}, "status": "ok",
             "variant": {"index": i, "id": f"v{i}", "keys": {"micro_batch": i}, "baseline": i == 0},
             "throughput": {"tokens_per_step": tokens}}
        if vs:
            d["vs_baseline"] = vs
        return Variant(i + 1, d)

    r = Results(path=Path("r.jsonl"), variants=[
        line(0, 2048),
        # The case: half the tokens per step at 0.532× the step time.
        line(1, 1024, {"speedup": 0.9398, "speedup_ci95": [0.93, 0.95],
                       "step_time_ratio": 1.8797, "step_time_ratio_ci95": [1.86, 1.90]}),
        line(2, 1024, {"speedup": 1.8797, "speedup_ci95": [1.86, 1.90]}),  # an old line
    ], axes=["micro_batch"])
    m = all_metrics(r)
    assert (m["v1"].speedup, m["v1"].speedup_ci95, m["v1"].step_speedup) == (0.9398, (0.93, 0.95), 1.8797)
    assert m["v1"].tokens_ratio == 0.5
    assert m["v2"].speedup == pytest.approx(0.93985)
    assert m["v2"].speedup_ci95 == pytest.approx((0.93, 0.95))
    assert m["v2"].step_speedup == 1.8797
