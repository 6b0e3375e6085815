"""Each plot exists as SVG and PNG and holds the expected series; variants whose status is
not ok stay out of every plot, with a note saying so."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from conftest import FIXTURES, PLOTS, run_reports

SERIES_ID = re.compile(r"^tbs--(.+)--(\d+)$")


def lines(fixture: str) -> list[dict]:
    return [json.loads(l) for l in (FIXTURES / f"{fixture}.jsonl").read_text().splitlines()]


def series(svg: Path) -> Counter:
    """SERIES → how many artists carry it, from the ids "tbs--SERIES--J" in an SVG."""
    root = ET.parse(svg).getroot()
    out: Counter = Counter()
    for el in root.iter():
        m = SERIES_ID.match(el.get("id", ""))
        if m:
            out[m.group(1)] += 1
    return out


def svg_text(svg: Path) -> str:
    return " ".join(" ".join(el.itertext()) for el in ET.parse(svg).getroot().iter()
                    if el.tag.endswith("text"))


def of_kind(found: Counter, pattern: str) -> set[str]:
    return {s for s in found if re.fullmatch(pattern, s)}


@pytest.mark.parametrize("fixture", ["single", "product", "mixed", "parallel"])
def test_every_plot_is_written_as_svg_and_png(reports_of, fixture):
    out = reports_of(fixture)
    for stem in PLOTS:
        svg, png = out / f"{stem}.svg", out / f"{stem}.png"
        assert svg.is_file() and png.is_file(), stem
        ET.parse(svg)  # well-formed
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, stem
    assert (out / "index.html").is_file() and (out / "index.md").is_file()


# fixture → (panel count, {panel: number of points}); the family of each panel is checked on
# the page (test_page.py).
SPEEDUP_PANELS = {
    "single": {0: 2},               # batch: mb=2, mb=8
    "product": {0: 1, 1: 1, 2: 1},  # batch, checkpointing, batch + checkpointing
    "mixed": {0: 2, 1: 2, 2: 2, 3: 2},  # batch, checkpointing, optimizer, precision
                                        # (device, data: not ok, no panel)
}


@pytest.mark.parametrize("fixture", sorted(SPEEDUP_PANELS))
def test_speedup_plot_has_one_panel_per_family_with_its_points(reports_of, fixture):
    found = series(reports_of(fixture) / "speedup_vs_accuracy.svg")
    expected = SPEEDUP_PANELS[fixture]
    assert of_kind(found, r"speed\.\d+\.baseline") == {f"speed.{k}.baseline" for k in expected}
    assert of_kind(found, r"speed\.\d+\.frontier") == {f"speed.{k}.frontier" for k in expected}
    for k, n in expected.items():
        assert len(of_kind(found, rf"speed\.{k}\.point\.\d+")) == n, (k, sorted(found))
    # Every point is an ok, compared variant, each drawn once.
    ok = {l["variant"]["index"] for l in lines(fixture) if l["status"] == "ok" and "vs_baseline" in l}
    drawn = [int(s.rsplit(".", 1)[1]) for s in of_kind(found, r"speed\.\d+\.point\.\d+")]
    assert sorted(drawn) == sorted(ok)


@pytest.mark.parametrize("fixture", ["single", "product", "mixed"])
def test_bar_charts_have_one_series_per_phase_category_and_measure(reports_of, fixture):
    out = reports_of(fixture)
    n_ok = sum(l["status"] == "ok" for l in lines(fixture))
    steps = series(out / "step_breakdown.svg")
    phases = ["forward", "backward", "recompute", "optimizer", "communication", "data_wait"]
    assert of_kind(steps, r"step\..+") == {f"step.{p}" for p in phases}
    assert all(steps[f"step.{p}"] == n_ok for p in phases)  # one bar per ok variant
    mem = series(out / "memory_breakdown.svg")
    cats = ["parameters", "gradients", "optimizer_state", "activations", "workspace"]
    # ...and the schema's others (communication, emulation) where some variant has them.
    cats += sorted({c for l in lines(fixture) if l["status"] == "ok"
                    for c, b in l["memory"]["peak_bytes"].items() if b > 0 and c not in cats})
    if fixture == "mixed":
        assert "emulation" in cats  # the bf16 and fp16 variants on a CPU
    assert of_kind(mem, r"mem\.(?!limit).+") == {f"mem.{c}" for c in cats}
    assert all(mem[f"mem.{c}"] == n_ok for c in cats)
    tput = series(out / "throughput.svg")
    assert of_kind(tput, r"tput\..+") == {"tput.tokens", "tput.mfu"}
    assert tput["tput.mfu"] == n_ok and tput["tput.tokens"] >= n_ok


@pytest.mark.parametrize("fixture", ["single", "product", "mixed"])
def test_loss_curves_have_one_series_per_ok_variant_and_the_entropy_floor(reports_of, fixture):
    found = series(reports_of(fixture) / "loss_curves.svg")
    ok = {l["variant"]["index"] for l in lines(fixture) if l["status"] == "ok"}
    assert of_kind(found, r"loss\.\d+") == {f"loss.{i}" for i in ok}
    # Synthetic data: one entropy floor, drawn once.
    assert of_kind(found, r"loss\.floor\.\d+") == {"loss.floor.0"}
    assert "entropy floor" in svg_text(reports_of(fixture) / "loss_curves.svg")


def test_variants_that_are_not_ok_stay_out_of_every_plot_with_a_note(reports_of):
    out = reports_of("mixed")
    bad = {l["variant"]["index"]: l["status"] for l in lines("mixed") if l["status"] != "ok"}
    assert sorted(bad.values()) == ["diverged", "error", "oom", "unsupported"]
    for stem in PLOTS:
        found = series(out / f"{stem}.svg")
        for s in found:
            index = re.search(r"\.(\d+)$", s)
            if s.startswith(("speed.", "loss.")) and index and not s.startswith("loss.floor"):
                assert int(index.group(1)) not in bad, (stem, s)
        text = " ".join(svg_text(out / f"{stem}.svg").split())
        assert "Not plotted (status not ok):" in text, stem
        for status in bad.values():
            assert f"({status})" in text, (stem, status)
    # Bars: one per ok variant, so the four others are absent (counted above); their labels
    # appear only in the note, never as a tick label.
    steps = " ".join(svg_text(out / "step_breakdown.svg").split())
    assert steps.count("mb=256") == 1


def test_plots_of_an_all_ok_sweep_carry_no_exclusion_note(reports_of):
    for stem in PLOTS:
        assert "Not plotted" not in svg_text(reports_of("single") / f"{stem}.svg"), stem


def test_the_same_results_give_the_same_files(reports_of, tmp_path):
    first = reports_of("single")
    proc = run_reports(first.parent, "--out", tmp_path / "again")
    assert proc.returncode == 0, proc.stderr
    for name in [f"{stem}.{ext}" for stem in PLOTS for ext in ("svg", "png")] + ["index.html", "index.md"]:
        assert (first / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def test_labels_of_close_points_are_spread_apart():
    """Points that sit together (the emulated precisions near 1.0×) get labels that do not
    overlap once spread; before spreading they do, so the check can fail."""
    from reports import plotstyle

    def boxes(fig, anns):
        fig.draw_without_rendering()
        return [a.get_window_extent() for a in anns]

    def overlapping(bs):
        return [(i, j) for i in range(len(bs)) for j in range(i + 1, len(bs)) if bs[i].overlaps(bs[j])]

    with plotstyle.style():
        fig = plotstyle.new_figure(5.2, 4.2)
        ax = fig.subplots()
        pts = [(0.84, -0.05), (0.86, 0.0), (0.88, -0.01), (0.93, 0.0), (2.68, -0.02)]
        ax.plot(*zip(*pts), "o")
        names = ["fp8 (emulated)", "fp16, loss scaling none (emulated)",
                 "fp16, loss scaling dynamic (emulated)", "tf32 (emulated)", "bf16"]
        anns = [ax.annotate(n, p, xytext=(6, 6), textcoords="offset points", fontsize=8)
                for n, p in zip(names, pts)]
        assert overlapping(boxes(fig, anns)), "the fixture's labels should start overlapping"
        plotstyle.spread_labels(fig, anns)
        assert overlapping(boxes(fig, anns)) == []
        # Only the vertical offset moves, and only upwards.
        assert all(a.xyann[0] == 6 and a.xyann[1] >= 6 for a in anns)
