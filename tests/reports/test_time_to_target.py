"""The time-to-quality view (docs/reports.md, docs/results-schema.md *Time to target*): over a
small results file made by hand from fixtures/single.jsonl — the same three variants, with a
target of 3.5 nats, training seconds on their curves, and a time to target per seed (the
baseline and mb=8 reach it on both seeds, mb=2 on one) — the page gets a "Time to target"
table with the recorded numbers and the plot time_to_quality with one loss-against-seconds
line per variant and one speedup point per variant whose seeds all reached the target.
Results without a time to target get none of it."""
from __future__ import annotations

import copy
import html
import json
from pathlib import Path

import pytest

from conftest import FIXTURES, PLOTS, run_reports
from test_page import Page
from test_plots import of_kind, series, svg_text
from test_speedup import to_new_schema

TARGET = 3.5
# Training seconds at steps 10, 20, 30 per seed, and tokens per step (the fixture's).
TRAIN_S = {"micro_batch=4": ([1.0, 2.0, 3.0], [1.1, 2.1, 3.2]),
           "micro_batch=2": ([0.6, 1.2, 1.8], [0.6, 1.3, 1.9]),
           "micro_batch=8": ([2.0, 4.0, 6.0], [2.0, 4.2, 6.2])}


def crossing(seed: int, target: float, curve: list[dict], secs: list[float], tokens: float,
             k: int) -> dict:
    """Seed k's per_seed entry, worked out by hand from the curve: the first evaluation at or
    below the target, interpolated from the previous one (every crossing here is after 10)."""
    losses = [p["eval_loss"][k] for p in curve]
    steps = [p["step"] for p in curve]
    out = {"seed": seed, "target": target, "best_eval_loss": min(losses)}
    i = next((i for i, l in enumerate(losses) if l <= target), None)
    if i is None:
        return {**out, "reached": False, **{key: None for key in (
            "step", "tokens", "train_s", "step_interp", "tokens_interp", "train_s_interp",
            "interp_from")}}
    assert i > 0
    f = (losses[i - 1] - target) / (losses[i - 1] - losses[i])
    return {**out, "reached": True, "step": steps[i], "tokens": steps[i] * tokens,
            "train_s": secs[i], "step_interp": steps[i - 1] + f * (steps[i] - steps[i - 1]),
            "tokens_interp": (steps[i - 1] + f * (steps[i] - steps[i - 1])) * tokens,
            "train_s_interp": secs[i - 1] + f * (secs[i] - secs[i - 1]), "interp_from": "eval"}


# Means and Student-t intervals over the seeds that reached (t(1) = 12.706), by hand.
BASE_S = {"mean": 3.1, "ci95": [3.1 - 12.706 * 0.1, 3.1 + 12.706 * 0.1]}     # 3.0, 3.2 s
MB8_S = {"mean": 4.1, "ci95": [4.1 - 12.706 * 0.1, 4.1 + 12.706 * 0.1]}      # 4.0, 4.2 s
VS = {
    # mb=8: 3.1 s ÷ 4.1 s, paired delta-method interval; 30 ÷ 20 steps.
    "micro_batch=8": {"time_to_target_speedup": 0.7561, "time_to_target_speedup_ci95": [0.6842, 0.8356],
                      "time_to_target_speedup_interp": 0.79, "time_to_target_speedup_interp_ci95": [0.7, 0.9],
                      "steps_to_target_ratio": 1.5, "steps_to_target_ratio_ci95": [1.5, 1.5],
                      "time_to_target_method": "paired"},
    "micro_batch=2": {key: None for key in (
        "time_to_target_speedup", "time_to_target_speedup_ci95", "time_to_target_speedup_interp",
        "time_to_target_speedup_interp_ci95", "steps_to_target_ratio", "steps_to_target_ratio_ci95")}
    | {"time_to_target_reason": "not every seed reached the target: the baseline in 2 of 2, "
                                "this variant in 1 of 2"},
}


def made_lines() -> list[dict]:
    raw = [json.loads(l) for l in (FIXTURES / "single.jsonl").read_text().splitlines()]
    base_tokens = next(l for l in raw if l["variant"]["baseline"])["throughput"]["tokens_per_step"]
    out = []
    for j in raw:
        j = to_new_schema(copy.deepcopy(j), base_tokens)
        vid, acc = j["variant"]["id"], j["accuracy"]
        tokens = j["throughput"]["tokens_per_step"]
        for n, p in enumerate(acc["curve"]):
            p["train_s"] = [TRAIN_S[vid][k][n] for k in range(2)]
            p["tokens"] = p["step"] * tokens
        per_seed = [crossing(s, TARGET, acc["curve"], TRAIN_S[vid][k], tokens, k)
                    for k, s in enumerate(acc["seeds"])]
        reached = [r for r in per_seed if r["reached"]]
        stat = lambda key: ({"mean": sum(r[key] for r in reached) / len(reached),
                             "ci95": [min(r[key] for r in reached), max(r[key] for r in reached)]}
                            if reached else None)
        ttt = {"per_seed": per_seed, "seeds_run": 2, "seeds_reached": len(reached),
               **{key: stat(key) for key in ("step", "tokens", "train_s", "step_interp",
                                             "tokens_interp", "train_s_interp")}}
        if vid == "micro_batch=4":
            ttt["train_s"] = BASE_S
        if vid == "micro_batch=8":
            ttt["train_s"] = MB8_S
        acc["target"] = {"spec": TARGET, "loss": [TARGET, TARGET]}
        acc["time_to_target"] = ttt
        if vid in VS:
            j["vs_baseline"].update(VS[vid])
        out.append(j)
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ttt")
    (run / "results.jsonl").write_text("".join(json.dumps(j) + "\n" for j in made_lines()))
    proc = run_reports(run)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return run / "report"


def test_the_hand_made_lines_follow_the_schema_and_the_rule():
    lines = made_lines()
    reached = {l["variant"]["id"]: [r["reached"] for r in l["accuracy"]["time_to_target"]["per_seed"]]
               for l in lines}
    assert reached == {"micro_batch=4": [True, True], "micro_batch=2": [True, False],
                       "micro_batch=8": [True, True]}
    mb8 = next(l for l in lines if l["variant"]["id"] == "micro_batch=8")["accuracy"]["time_to_target"]
    assert [r["step"] for r in mb8["per_seed"]] == [20, 20]
    assert [r["train_s"] for r in mb8["per_seed"]] == [4.0, 4.2]
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((FIXTURES.parents[2] / "docs" / "results.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for l in lines:
        validator.validate(l)


def ttt_rows(report: Path) -> dict[str, list[str]]:
    page = Page((report / "index.html").read_text())
    at = page.headers.index("seeds reached")
    assert page.headers[at - 3: at + 9] == [
        "#", "variant", "target", "seeds reached", "steps to target [95% CI]",
        "tokens to target [95% CI]", "seconds to target [95% CI]", "seconds, interpolated [95% CI]",
        "time-to-target speedup [95% CI]", "steps-to-target ratio [95% CI]",
        "speedup (tokens/s) [95% CI]", "note"]
    return {r[1].split()[-1]: r for r in page.rows if len(r) == 12 and "nats" in r[2]}


def test_the_table_shows_the_recorded_numbers(report):
    rows = ttt_rows(report)
    assert list(rows) == ["micro_batch=4", "micro_batch=2", "micro_batch=8"]
    base, mb2, mb8 = rows["micro_batch=4"], rows["micro_batch=2"], rows["micro_batch=8"]
    assert base[2] == "3.5 nats" and base[3] == "2 of 2"
    assert base[4] == "30.0"                              # both seeds at step 30: no spread
    assert base[5] == "3,840"                             # 30 steps × 128 tokens
    assert base[6] == "3.10 s [1.83, 4.37]"
    assert base[8] == base[9] == base[10] == "1 (baseline)"
    assert mb8[3] == "2 of 2" and mb8[4] == "20.0" and mb8[5] == "5,120"
    assert mb8[6] == "4.10 s [2.83, 5.37]"
    assert mb8[8] == "0.76x [0.68, 0.84]"
    assert mb8[9] == "1.50x [1.50, 1.50]"
    vs8 = next(l for l in made_lines() if l["variant"]["id"] == "micro_batch=8")["vs_baseline"]
    assert mb8[10] == f"{vs8['speedup']:.2f}x [{vs8['speedup_ci95'][0]:.2f}, {vs8['speedup_ci95'][1]:.2f}]"
    assert mb2[3] == "1 of 2" and mb2[8] == "—" and mb2[9] == "—"
    assert mb2[11] == "not every seed reached the target: the baseline in 2 of 2, this variant in 1 of 2"
    md = (report / "index.md").read_text()
    assert "## Time to target" in md and "| 3.10 s [1.83, 4.37] |" in md


def test_the_plot_has_a_line_per_variant_and_a_point_per_comparable_variant(report):
    svg, png = report / "time_to_quality.svg", report / "time_to_quality.png"
    assert svg.is_file() and png.is_file()
    found = series(svg)
    indices = {l["variant"]["id"]: l["variant"]["index"] for l in made_lines()}
    assert of_kind(found, r"ttq\.loss\.\d+") == {f"ttq.loss.{i}" for i in indices.values()}
    assert of_kind(found, r"ttq\.target\.\d+") == {"ttq.target.0"}
    # Only mb=8 has a time-to-target speedup: mb=2 did not reach the target on every seed.
    assert of_kind(found, r"ttq\.speed\.point\.\d+") == {f"ttq.speed.point.{indices['micro_batch=8']}"}
    assert {"ttq.speed.baseline", "ttq.speed.diagonal"} <= set(found)
    words = " ".join(svg_text(svg).split())
    assert "target 3.500" in words
    assert "Not on the right panel: mb=2 (not every seed reached the target" in words
    page = Page((report / "index.html").read_text())
    imgs = [v for t, k, v in page.urls if t == "img"]
    assert len(imgs) == len(PLOTS) + 1
    text = html.unescape((report / "index.html").read_text())
    # Right after the speedup-against-accuracy figure.
    assert text.index('id="speedup_vs_accuracy"') < text.index('id="time_to_quality"') \
        < text.index('id="step_breakdown"')


def test_loss_against_seconds_is_the_mean_over_seeds():
    from reports.load import Variant
    from reports.time_to_target import loss_by_seconds
    line = next(l for l in made_lines() if l["variant"]["id"] == "micro_batch=8")
    x, y = loss_by_seconds(Variant(1, line))
    assert list(x) == pytest.approx([2.0, 4.1, 6.1])
    curve = line["accuracy"]["curve"]
    assert list(y) == pytest.approx([sum(p["eval_loss"]) / 2 for p in curve])


def test_no_time_to_target_no_view(reports_of):
    out = reports_of("single")
    assert not (out / "time_to_quality.svg").exists()
    text = (out / "index.html").read_text()
    assert "Time to target" not in text and "time_to_quality" not in text
    assert "Time to target" not in (out / "index.md").read_text()


def test_a_bad_time_to_target_is_one_line(tmp_path):
    lines = made_lines()
    lines[1]["vs_baseline"]["time_to_target_speedup"] = "fast"
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(j) + "\n" for j in lines))
    proc = run_reports(tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith(
        "results.jsonl:2: vs_baseline.time_to_target_speedup is \"fast\" (expected a number or null)")
    assert proc.stderr.count("\n") == 1
