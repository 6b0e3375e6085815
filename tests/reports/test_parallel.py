"""The parallel views (docs/parallel.md, docs/reports.md): over fixtures/parallel.jsonl — a
single-rank baseline, dp2, tp2, pp2 with GPipe and with 1F1B, dp2 × tp2 and a dp2 × pp2 run
whose rank crashed — the step breakdown splits communication by dimension and shows the
pipeline bubble, the per-rank memory and scaling plots have one series per category and per
split family, and the page carries the parallel table. Results without parallel runs get
none of it."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from conftest import FIXTURES, PLOTS, run_dir, run_reports
from test_page import Page
from test_plots import of_kind, series, svg_text

PARALLEL_PLOTS = ["scaling", "rank_memory"]
DIMS = ["data", "tensor", "pipeline"]


def lines() -> list[dict]:
    return [json.loads(l) for l in (FIXTURES / "parallel.jsonl").read_text().splitlines()]


def ok_parallel() -> list[dict]:
    return [l for l in lines() if l["status"] == "ok" and l["parallel"]["world_size"] > 1]


@pytest.fixture(scope="module")
def report(reports_of) -> Path:
    return reports_of("parallel")


def test_the_fixture_follows_the_schema_and_the_contract():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((FIXTURES.parents[2] / "docs" / "results.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    recorded = lines()
    for l in recorded:
        validator.validate(l)
    splits = {(l["parallel"]["dp"], l["parallel"]["tp"], l["parallel"]["pp"],
               l["parallel"]["pp_schedule"] if l["parallel"]["pp"] > 1 else None, l["status"])
              for l in recorded}
    assert splits == {(1, 1, 1, None, "ok"), (2, 1, 1, None, "ok"), (1, 2, 1, None, "ok"),
                      (1, 1, 2, "gpipe", "ok"), (1, 1, 2, "1f1b", "ok"), (2, 2, 1, None, "ok"),
                      (2, 1, 2, "1f1b", "error")}
    for l in recorded:
        p = l["parallel"]
        assert p["world_size"] == p["dp"] * p["tp"] * p["pp"]
        if l["status"] != "ok":
            continue
        assert len(p["ranks"]) == p["world_size"]
        assert l["throughput"]["tokens_per_s_per_rank"] == pytest.approx(
            l["throughput"]["tokens_per_s"] / p["world_size"])
        m = p["micro_batches"]
        assert p["bubble"]["analytic_fraction"] == pytest.approx((p["pp"] - 1) / (m + p["pp"] - 1))
        for r in p["ranks"]:  # Megatron's rank order, tensor innermost
            assert r["rank"] == r["tp_rank"] + p["tp"] * (r["dp_rank"] + p["dp"] * r["pp_rank"])
        vs = l.get("vs_baseline")
        if vs:  # all steps hold the same tokens here: speedup = step-time ratio
            assert vs["speedup"] == pytest.approx(vs["step_time_ratio"])


def test_every_plot_and_the_parallel_ones_are_written(report):
    for stem in PLOTS + PARALLEL_PLOTS:
        svg, png = report / f"{stem}.svg", report / f"{stem}.png"
        assert svg.is_file() and png.is_file(), stem
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000, stem
    page = Page((report / "index.html").read_text())
    assert page.tags.count("figure") == len(PLOTS) + len(PARALLEL_PLOTS)
    md = (report / "index.md").read_text()
    for stem in PARALLEL_PLOTS:
        assert f"]({stem}.png)" in md


def test_step_breakdown_splits_communication_and_shows_the_bubble(report):
    found = series(report / "step_breakdown.svg")
    n_ok = sum(l["status"] == "ok" for l in lines())
    phases = ["forward", "backward", "recompute", "optimizer", "communication", "data_wait"]
    split = [f"communication.{d}" for d in DIMS]
    expected = {f"step.{p}" for p in phases + split + ["bubble", "communication.data.overlapped"]}
    assert of_kind(found, r"step\..+") == expected
    for s in expected:  # one bar (or overlay) per ok variant, zero-width where it has none
        assert found[s] == n_ok, (s, found[s])
    text = " ".join(svg_text(report / "step_breakdown.svg").split())
    for word in ("data comm (exposed)", "tensor comm", "pipeline comm", "other comm",
                 "pipeline bubble", "data comm (overlapped)"):
        assert word in text, word
    assert "Not plotted (status not ok): dp2, pp2, 1f1b (error)." in text
    # The bubble is carved out of the pipeline's communication, not added: each bar still
    # adds up to the phases' means.
    for l in lines():
        if l["status"] == "ok":
            total = 1e3 * sum(s["mean"] for s in l["timing"]["phases_s"].values())
            assert f" {total:.3g} ms" in text, (l["variant"]["id"], total)


def _bar_widths(svg: Path, series_name: str) -> list[float]:
    """The drawn widths (in SVG units) of a bar series' patches, in row order."""
    import xml.etree.ElementTree as ET
    out = []
    for el in ET.parse(svg).getroot().iter():
        if re.fullmatch(rf"tbs--{re.escape(series_name)}--\d+", el.get("id", "")):
            path = next((c for c in el.iter() if c.tag.endswith("path")), None)
            xs = [float(x) for x in re.findall(r"[ML] ?(-?[\d.]+) ", (path.get("d") or "") + " ")] if path is not None else []
            out.append(max(xs) - min(xs) if xs else 0.0)
    return out


def test_bubble_and_dimension_segments_are_the_recorded_seconds(report):
    """Widths in the SVG are proportional to milliseconds. The runtime times a stage's waits
    for its neighbours as pipeline communication, so the bubble (measured fraction × median
    step) is taken out of the pipeline's seconds: bubble ÷ (bubble + what is left of the
    pipeline) is the recorded bubble ÷ pipeline seconds. Rows without a pipeline have none."""
    recorded = [l for l in lines() if l["status"] == "ok"]
    bubble = _bar_widths(report / "step_breakdown.svg", "step.bubble")
    pipe = _bar_widths(report / "step_breakdown.svg", "step.communication.pipeline")
    tensor = _bar_widths(report / "step_breakdown.svg", "step.communication.tensor")
    assert len(bubble) == len(pipe) == len(recorded)
    # Rows follow the report's order, which here is the file's (one family).
    for l, b, p, t in zip(recorded, bubble, pipe, tensor):
        par = l["parallel"]
        if par["pp"] == 1:
            assert b == pytest.approx(0, abs=1e-6) and p == pytest.approx(0, abs=1e-6), l["variant"]["id"]
        else:
            want = (par["bubble"]["measured_fraction"] * l["timing"]["step_s"]["median"]
                    / par["communication"]["pipeline"]["seconds_per_step"])
            assert b / (b + p) == pytest.approx(want, rel=1e-3), l["variant"]["id"]
        if par["tp"] == 1:
            assert t == pytest.approx(0, abs=1e-6)
        else:
            assert t > 0


def test_rank_memory_has_one_bar_per_rank_and_category(report):
    found = series(report / "rank_memory.svg")
    groups = ok_parallel()
    n_ranks = sum(len(l["parallel"]["ranks"]) for l in groups)
    assert n_ranks == 12  # dp2, tp2, pp2 ×2, dp2 × tp2
    cats = ["parameters", "gradients", "optimizer_state", "activations", "workspace"]
    cats += sorted({c for l in groups for r in l["parallel"]["ranks"]
                    for c, b in r["memory_peak_bytes"].items() if b > 0 and c not in cats})
    assert "communication" in cats and "emulation" not in cats
    assert of_kind(found, r"rankmem\.(?!baseline).+") == {f"rankmem.{c}" for c in cats}
    assert all(found[f"rankmem.{c}"] == n_ranks for c in cats)
    assert found["rankmem.baseline"] == 1  # the single-rank baseline's peak, dashed
    text = " ".join(svg_text(report / "rank_memory.svg").split())
    for l in groups:
        for r in l["parallel"]["ranks"]:
            assert f"rank {r['rank']} (dp{r['dp_rank']} tp{r['tp_rank']} pp{r['pp_rank']})" in text
    # GPipe keeps every micro-batch's activations; 1F1B at most p in flight.
    gpipe, ofob = (next(l for l in groups if l["parallel"]["pp"] == 2 and l["parallel"]["pp_schedule"] == s)
                   for s in ("gpipe", "1f1b"))
    assert (max(r["memory_peak_bytes"]["activations"] for r in gpipe["parallel"]["ranks"])
            > max(r["memory_peak_bytes"]["activations"] for r in ofob["parallel"]["ranks"]))


def test_scaling_has_one_line_per_split_family_from_the_baseline(report):
    found = series(report / "scaling.svg")
    families = of_kind(found, r"scale\.family\.\d+")
    # dp only, tp only, pp only (gpipe), pp only (1f1b), dp × tp; the crashed dp × pp is out.
    assert families == {f"scale.family.{k}" for k in range(5)}
    for s in families:
        assert found[s] == 2  # the line and the label of its one parallel point
    assert found["scale.baseline"] == 1 and found["scale.ideal"] == 1
    text = " ".join(svg_text(report / "scaling.svg").split())
    for name in ("dp only", "tp only", "pp only (gpipe)", "pp only (1f1b)", "dp × tp"):
        assert name in text, name
    assert "dp × pp" not in text.replace("Not plotted", "")  # only in the note, as its label
    assert "dp2, pp2, 1f1b (error)" in text


def test_scaling_points_are_the_recorded_tokens_per_s():
    """The plotted data, read back from the figure: each family's line runs from the
    baseline's tokens/s at 1 rank to its variants' at their world sizes."""
    from reports.analysis import analyse
    from reports.load import read_results
    from reports.plot_parallel import draw_scaling, scaling_families

    a = analyse(read_results(FIXTURES / "parallel.jsonl"))
    fams = scaling_families(a)
    recorded = {l["variant"]["id"]: l for l in lines()}
    base = next(l for l in lines() if l["variant"]["baseline"])
    fig = draw_scaling(a)
    lines_by_gid = {ln.get_gid(): ln for ax in fig.axes for ln in ax.get_lines() if ln.get_gid()}
    for k, (name, members) in enumerate(fams):
        ln = lines_by_gid[f"tbs--scale.family.{k}--0"]
        assert ln.get_label() == name
        want_x = [1] + [recorded[v.id]["parallel"]["world_size"] for v, _ in members]
        want_y = [base["throughput"]["tokens_per_s"]] + [recorded[v.id]["throughput"]["tokens_per_s"]
                                                         for v, _ in members]
        assert list(ln.get_xdata()) == want_x
        assert list(ln.get_ydata()) == pytest.approx(want_y)


def _parallel_rows(page_text: str) -> tuple[list[str], list[list[str]]]:
    section = page_text.split('<h2 id="parallel">Parallel runs</h2>', 1)[1].split("<h2>", 1)[0]
    p = Page(section)
    return p.headers, [r for r in p.rows if r]


def test_the_parallel_table(report):
    headers, rows = _parallel_rows((report / "index.html").read_text())
    assert headers[:9] == ["#", "variant", "status", "split", "ranks", "step ms (median)", "tokens/s",
                           "tokens/s per rank", "speedup (tokens/s)"]
    assert headers[9:12] == [f"{d} comm per step" for d in DIMS]
    assert headers[12].startswith("bubble measured / analytic")
    assert headers[13] == "peak memory (largest rank)"
    recorded = lines()
    assert len(rows) == len(recorded)  # the baseline, five ok splits, the crashed one
    for l, full in zip(recorded, rows):
        assert full[0] == str(l["variant"]["index"])
        row = full[1:]
        p, vid = l["parallel"], l["variant"]["id"]
        assert vid in row[0] and row[1] == l["status"]
        assert row[3] == str(p["world_size"])
        if l["status"] != "ok":
            assert row[2] == "dp2 × pp2 (1f1b, m=2)" and set(row[4:]) == {"—"}
            continue
        assert row[5] == f"{l['throughput']['tokens_per_s']:,.0f}"
        if p["world_size"] == 1:
            assert row[2] == "single process" and row[7] == "1 (baseline)"
            continue
        assert row[6] == f"{l['throughput']['tokens_per_s_per_rank']:,.0f}"
        vs = l["vs_baseline"]
        assert row[7].startswith(f"{vs['speedup']:.2f}x [{vs['speedup_ci95'][0]:.2f}, ")
        for d, cell in zip(DIMS, row[8:11]):
            c = p["communication"][d]
            if c["bytes_per_step"] == 0:
                assert cell == "none"
            else:
                calls = c["calls_per_step"]
                assert f"({calls:.0f} call{'' if calls == 1 else 's'})" in cell
                assert f"{c['seconds_per_step'] * 1e3:#.3g} ms" in cell, cell
                if d == "data":
                    assert "exposed" in cell and "overlapped" in cell
        if p["pp"] > 1:
            b = p["bubble"]
            assert row[11] == f"{100 * b['measured_fraction']:.1f}% / {100 * b['analytic_fraction']:.1f}%"
        else:
            assert row[11] == "— (no pipeline)"
        big = max(p["ranks"], key=lambda r: sum(r["memory_peak_bytes"].values()))
        mib = l["memory"]["peak_total_bytes"] / 2**20
        assert row[12] == f"{mib:.3g} MiB (rank {big['rank']})"
    splits = [r[3] for r in rows]
    assert splits[:6] == ["single process", "dp2 (m=2)", "tp2 (m=4)", "pp2 (gpipe, m=4)",
                          "pp2 (1f1b, m=4)", "dp2 × tp2 (m=2)"]
    md = (report / "index.md").read_text()
    assert "## Parallel runs" in md and "| pp2 (gpipe, m=4) |" in md
    assert "23.1% / 20.0%" in md


def test_labels_and_family_of_the_parallel_axes(report):
    page = Page((report / "index.html").read_text())
    assert [h.split(" — ")[0] for h in page.headlines] == ["parallelism"]
    text = html.unescape((report / "index.html").read_text())
    for label in ("dp2", "tp2", "pp2, gpipe", "pp2, 1f1b", "dp2, tp2"):
        assert f"{label}\n" in text or f"{label}<br>" in text, label


@pytest.mark.parametrize("fixture", ["single", "mixed"])
def test_results_without_parallel_runs_have_no_parallel_views(reports_of, fixture):
    out = reports_of(fixture)
    for stem in PARALLEL_PLOTS:
        assert not (out / f"{stem}.svg").exists()
    assert "Parallel runs" not in (out / "index.html").read_text()
    assert "## Parallel runs" not in (out / "index.md").read_text()
    found = series(out / "step_breakdown.svg")
    assert not of_kind(found, r"step\.(bubble|communication\..+)")


def test_single_process_lines_with_a_parallel_object_are_not_parallel_runs(tmp_path):
    """A newer writer puts `parallel` (world size 1) on every line: no parallel views, and the
    object is not dumped as an unknown column."""
    run = run_dir(tmp_path, "single")
    out = []
    for line in (run / "results.jsonl").read_text().splitlines():
        j = json.loads(line)
        j["parallel"] = {"dp": 1, "tp": 1, "pp": 1, "world_size": 1, "pp_schedule": "1f1b",
                         "virtual_stages": 1, "zero": 0, "sequence_parallel": False, "bucket_mb": 25,
                         "micro_batches": 1, "comm_backend": "none", "launcher": None}
        out.append(json.dumps(j))
    (run / "results.jsonl").write_text("\n".join(out) + "\n")
    proc = run_reports(run)
    assert proc.returncode == 0, proc.stderr
    text = (run / "report" / "index.html").read_text()
    assert "Parallel runs" not in text and "<th>parallel</th>" not in text
    assert not (run / "report" / "scaling.svg").exists()


def test_a_wrongly_typed_parallel_field_is_a_one_line_error(tmp_path):
    run = run_dir(tmp_path, "parallel")
    out = (run / "results.jsonl").read_text().splitlines()
    j = json.loads(out[2])
    j["parallel"]["ranks"] = "four"
    out[2] = json.dumps(j)
    (run / "results.jsonl").write_text("\n".join(out) + "\n")
    proc = run_reports(run)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"reports: error: {run / 'results.jsonl'}:3: parallel.ranks is "
                                   '"four" (expected an array of objects)')
