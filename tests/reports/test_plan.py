"""The report of a capacity plan (docs/reports.md, *Plan report*): `python3 -m reports
PLAN.json` (or a directory holding plan.json) writes PLAN's directory/plan-report/.

fixtures/plan.json is made by hand to the trainbench.plan/1 contract (docs/planner.md; its
numbers from a rough analytical model so that they hang together, not from the planner): a
175B GPT on 1024 H100s from datasheet peaks, twelve feasible configurations ranked by time to
train with failures and checkpoints, and a scaling list from 64 to 4096 GPUs in which nothing
fits at 64. The tests check the fixture against the contract, the page (the basis stated
first, the inputs, the configurations in rank order, the scaling list), the plots' files and
series, that no two texts of a plot overlap or leave the figure, one-line errors for
malformed plans through both entry points, and that run directories still get the run
report."""
from __future__ import annotations

import copy
import html
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, run_dir, run_reports, run_trainbench
from test_errors import CRASH_MARKERS, one_line_error
from test_page import Page
from test_plots import of_kind, series, svg_text

STEMS = ["plan_memory", "plan_step_time", "plan_scaling"]
DAY = 86400.0
GIB = float(1 << 30)


def fixture_plan() -> dict:
    return json.loads((FIXTURES / "plan.json").read_text())


def write_plan(d: Path, plan: dict, name: str = "plan.json") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_text(json.dumps(plan, indent=1) + "\n")
    return p


class Tables(HTMLParser):
    """Every table of a page: (headers, rows of cell texts, row classes), in page order."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: list[tuple[list[str], list[list[str]], list[str]]] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append(([], [], []))
        elif tag == "tr":
            self.tables[-1][1].append([])
            self.tables[-1][2].append(dict(attrs).get("class") or "")
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            cell = " ".join("".join(self._cell).split())
            headers, rows, _ = self.tables[-1]
            if tag == "th":
                headers.append(cell)
            else:
                rows[-1].append(cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def kv(self, i: int) -> dict[str, str]:
        return {r[0]: r[1] for r in self.tables[i][1] if len(r) == 2}

    def with_header(self, header: str) -> list[tuple[list[str], list[list[str]], list[str]]]:
        return [(h, [r for r in rows if r], [c for r, c in zip(rows, cls) if r])
                for h, rows, cls in self.tables if header in h]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("plan")
    plan = write_plan(d, fixture_plan())
    proc = run_reports(plan)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    assert proc.stdout.strip() == f"report: {d / 'plan-report' / 'index.html'}"
    return d / "plan-report"


@pytest.fixture(scope="module")
def page(report) -> tuple[str, Tables, str]:
    text = (report / "index.html").read_text()
    return text, Tables(text), (report / "index.md").read_text()


# ---- the fixture ----------------------------------------------------------------------------

def test_the_fixture_follows_the_contract():
    p = fixture_plan()
    assert p["schema"] == "trainbench.plan/1"
    i = p["inputs"]
    assert (i["model"]["name"], i["gpu"], i["gpus"], i["gpus_per_node"]) == ("gpt3-175b", "h100-sxm", 1024, 8)
    configs = p["configurations"]
    assert [c["rank"] for c in configs] == list(range(1, 13))
    good = [c["goodput"]["time_to_train_s"] for c in configs]
    assert good == sorted(good)  # ranked by time to train with failures
    tokens_per_iteration = i["global_batch"] * i["model"]["seq"]
    for c in configs:
        assert c["fits"] is True and c["dp"] * c["tp"] * c["pp"] == i["gpus"]
        assert c["dp"] * c["micro_batch"] * c["micro_batches"] == i["global_batch"]
        assert c["memory_bytes"]["total"] <= c["memory_usable_bytes"] == pytest.approx(
            i["memory_headroom"] * c["memory_capacity_bytes"])
        assert c["memory_bytes"]["total"] == pytest.approx(
            sum(v for k, v in c["memory_bytes"].items() if k != "total"), rel=1e-3)
        assert sum(c["time_breakdown_s"].values()) == pytest.approx(c["iteration_s"], rel=1e-3)
        assert c["tokens_per_s"] * c["iteration_s"] == pytest.approx(tokens_per_iteration, rel=1e-3)
        assert c["time_to_train_s"] == pytest.approx(i["tokens"] / c["tokens_per_s"], rel=1e-3)
        assert c["gpu_hours"] == pytest.approx(i["gpus"] * c["time_to_train_s"] / 3600, rel=1e-3)
        assert c["cost"] == pytest.approx(c["gpu_hours"] * i["price_per_gpu_hour"], rel=1e-3)
        assert c["goodput"]["time_to_train_s"] > c["time_to_train_s"]
    scaling = p["scaling"]
    assert [s["gpus"] for s in scaling] == [64, 128, 256, 512, 1024, 2048, 4096]
    assert [s["gpus"] for s in scaling if s["best"] is None] == [64]
    assert next(s for s in scaling if s["gpus"] == 1024)["best"] == configs[0]


# ---- the page -------------------------------------------------------------------------------

def test_the_page_states_the_basis_first_and_the_inputs(page):
    text, tables, md = page
    plain = html.unescape(text)
    assert "<script" not in text.lower() and not re.search(r"https?://", text)
    # The basis, before anything else: a datasheet estimate, not a measurement.
    assert plain.index('<div class="basis estimate" id="basis">') < plain.index("<h2>")
    assert "Estimate from datasheet peaks — not measured" in plain
    assert "default efficiencies (gemm 75%, memory 90%, attention 50%)" in plain
    assert "Calibrated from measurements" not in plain
    inputs = tables.kv(0)
    assert inputs["model"] == ("gpt3-175b: 96 layers, d_model 12,288, 96 heads, vocabulary 50,257, "
                               "sequence 2,048, 175 B parameters")
    assert inputs["GPU"] == "h100-sxm (H100 SXM, 80 GiB)"
    assert inputs["GPUs"] == "1,024 (128 nodes of 8)"
    assert inputs["GPUs per node"] == "8"
    assert inputs["tokens to train"] == "300 B (3e+11)"
    assert inputs["global batch"] == "1,536 sequences = 3,145,728 tokens per iteration"
    assert inputs["price"] == "$2.50 per GPU-hour"
    assert inputs["MTBF"] == "50,000 hours per GPU (the job of 1,024 GPUs: 48.8 hours)"
    assert inputs["memory headroom"] == "90% of 80 GiB usable = 72 GiB"
    assert inputs["pinned"] == "precision = bf16"
    assert inputs["searched"] == "18,432 configurations evaluated, 2,764 fit"
    calibration = tables.kv(1)
    assert calibration["source"] == "datasheet peaks with default efficiencies (not measured)"
    assert calibration["device"] == "H100 SXM"
    assert calibration["efficiencies"] == "gemm 75%, memory 90%, attention 50%"
    hardware = tables.kv(len(tables.tables) - 1)
    assert hardware["peak FLOP/s"].startswith("fp32 66.9 TFLOP/s, tf32 495 TFLOP/s, bf16 989 TFLOP/s")
    assert hardware["memory bandwidth"] == "3.35 TB/s"
    assert hardware["within a node"] == "450 GB/s, latency 3 µs"
    assert hardware["between nodes"] == "50 GB/s, latency 10 µs"
    # The Markdown says the same, first.
    assert md.splitlines()[2].startswith("> **Estimate from datasheet peaks — not measured.**")
    assert "| **pinned** | precision = bf16 |" in md


def test_the_headline_is_the_best_configuration(page):
    text, _, md = page
    heads = Page(text).headlines
    assert heads[0] == ("Best of 12 listed (2,764 of 18,432 evaluated fit): dp16 × tp8 × pp8 (v2), "
                        "micro-batch 1 × 96, selective recompute, sequence parallel, ZeRO-1, bf16, "
                        "interleaved schedule.")
    best = fixture_plan()["configurations"][0]
    assert heads[1].startswith(f"{best['iteration_s']:.3g} s per iteration, {best['tokens_per_s']:,.0f} "
                               f"tokens/s, MFU {100 * best['mfu']:.3g}%: "
                               f"{best['time_to_train_s'] / DAY:.3g} days to train 300 B tokens "
                               f"({best['goodput']['time_to_train_s'] / DAY:.3g} with failures")
    assert heads[1].endswith(f"{best['gpu_hours']:,.0f} GPU-hours, ${best['cost'] / 1e3:.4g}k.")
    assert heads[2] == (f"Memory per GPU {best['memory_bytes']['total'] / GIB:.1f} GiB of 72 GiB "
                        "usable (80 GiB capacity).")
    for h in heads:
        assert f"- {h}" in md


def test_the_table_lists_the_configurations_in_rank_order(page):
    _, tables, md = page
    [(headers, rows, _)] = tables.with_header("virtual stages")
    assert headers == ["rank", "dp", "tp", "pp", "virtual stages", "micro-batch", "micro-batches",
                       "recompute", "sequence parallel", "ZeRO", "precision", "schedule",
                       "iteration (s)", "tokens/s", "MFU", "memory per GPU, GiB (% of usable)",
                       "time to train (days)", "GPU-hours", "cost", "with failures (days, overhead)"]
    configs = fixture_plan()["configurations"]
    assert [r[0] for r in rows] == [str(c["rank"]) for c in configs] == [str(k) for k in range(1, 13)]
    for r, c in zip(rows, configs):
        assert r[1:4] == [str(c["dp"]), str(c["tp"]), str(c["pp"])]
        assert r[4:7] == [str(c["virtual_stages"]), str(c["micro_batch"]), str(c["micro_batches"])]
        assert r[7] == c["recompute"] and r[8] == ("yes" if c["sequence_parallel"] else "no")
        assert r[9:12] == [str(c["zero"]), c["precision"], c["schedule"]]
        assert float(r[12]) == pytest.approx(c["iteration_s"], rel=5e-3)
        assert r[13] == f"{c['tokens_per_s']:,.0f}"
        assert r[14] == f"{100 * c['mfu']:#.3g}%"
        total = c["memory_bytes"]["total"]
        assert r[15] == f"{total / GIB:.1f} ({100 * total / c['memory_usable_bytes']:.0f}%)"
        assert float(r[16]) == pytest.approx(c["time_to_train_s"] / DAY, rel=5e-3)
        assert r[17] == f"{c['gpu_hours']:,.0f}"
        assert r[18].startswith("$") and r[18].endswith("k")
        assert float(r[18][1:-1]) == pytest.approx(c["cost"] / 1e3, rel=1e-3)
        days, over = re.fullmatch(r"([\d.]+) \(\+([\d.]+)%\)", r[19]).groups()
        assert float(days) == pytest.approx(c["goodput"]["time_to_train_s"] / DAY, rel=5e-3)
        assert float(over) == pytest.approx(100 * c["goodput"]["expected_overhead_fraction"], rel=0.05)
    # Twelve: no collapsed table of all of them.
    assert "<details>" not in page[0]
    md_ranks = [l.split("|")[1].strip() for l in md.splitlines() if re.match(r"\| \d+ \| \d+ \| \d+ \|", l)]
    assert md_ranks == [str(k) for k in range(1, 13)]


def test_rank_order_does_not_depend_on_the_file_order(tmp_path):
    plan = fixture_plan()
    plan["configurations"].reverse()
    proc = run_reports(write_plan(tmp_path, plan))
    assert proc.returncode == 0, proc.stderr
    [(_, rows, _)] = Tables((tmp_path / "plan-report" / "index.html").read_text()).with_header("virtual stages")
    assert [r[0] for r in rows] == [str(k) for k in range(1, 13)]


def test_more_than_fifteen_shows_the_top_fifteen_and_all_collapsed(tmp_path):
    plan = fixture_plan()
    extra = copy.deepcopy(plan["configurations"][:8])
    for k, c in enumerate(extra):
        c["rank"] = 13 + k
    plan["configurations"] += extra
    proc = run_reports(write_plan(tmp_path, plan))
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "plan-report" / "index.html").read_text()
    top, everything = Tables(text).with_header("virtual stages")
    assert [r[0] for r in top[1]] == [str(k) for k in range(1, 16)]
    assert [r[0] for r in everything[1]] == [str(k) for k in range(1, 21)]
    assert "<details><summary>All 20 configurations</summary>" in text
    assert "The 15 best of 20 configurations by rank" in text
    assert "## All 20 configurations" in (tmp_path / "plan-report" / "index.md").read_text()


def test_the_scaling_table_marks_the_requested_count(page):
    _, tables, md = page
    [(headers, rows, classes)] = tables.with_header("best configuration")
    assert headers[:2] == ["GPUs", "best configuration"]
    assert [r[0] for r in rows] == ["64", "128", "256", "512", "1,024 (requested)", "2,048", "4,096"]
    assert rows[0][1] == "no configuration fits" and set(rows[0][2:]) == {"—"}
    assert classes[4] == "requested" and classes.count("requested") == 1
    assert rows[4][1].startswith("dp16 × tp8 × pp8 (v2), micro-batch 1 × 96")
    assert "| 1,024 (requested) |" in md


def test_a_calibrated_plan_says_so(tmp_path):
    plan = fixture_plan()
    plan["calibration"] = {"source": "file", "path": "calibrations/h100-node17.json",
                           "device": "NVIDIA H100 80GB HBM3 (node17)",
                           "note": "trainbench run of scenarios/calibrate.json",
                           "efficiencies": {"gemm": 0.68, "memory": 0.84, "attention": 0.41}}
    proc = run_reports(write_plan(tmp_path, plan))
    assert proc.returncode == 0, proc.stderr
    plain = html.unescape((tmp_path / "plan-report" / "index.html").read_text())
    assert '<div class="basis measured" id="basis">' in plain
    assert "Calibrated from measurements" in plain and "not measured" not in plain
    assert ("Efficiencies measured on NVIDIA H100 80GB HBM3 (node17), read from the calibration "
            "file calibrations/h100-node17.json: gemm 68%, memory 84%, attention 41%.") in plain
    calibration = Tables(plain).kv(1)
    assert calibration["source"] == "calibration file (measured)"
    assert calibration["calibration file"] == "calibrations/h100-node17.json"
    assert calibration["note"] == "trainbench run of scenarios/calibrate.json"
    assert "> **Calibrated from measurements.**" in (tmp_path / "plan-report" / "index.md").read_text()


# ---- the plots ------------------------------------------------------------------------------

def test_every_plot_is_written_and_holds_its_series(report, page):
    text = page[0]
    for stem in STEMS:
        svg, png = report / f"{stem}.svg", report / f"{stem}.png"
        assert svg.is_file() and png.is_file(), stem
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, stem
        assert svg.stat().st_size > 10_000
        assert f'id="{stem}"' in text and f'href="{stem}.svg"' in text
    mem = series(report / "plan_memory.svg")
    cats = ["parameters", "gradients", "optimizer_state", "activations", "workspace", "communication"]
    assert of_kind(mem, r"plan\.mem\.(?!capacity|usable).+") == {f"plan.mem.{c}" for c in cats}
    assert all(mem[f"plan.mem.{c}"] == 10 for c in cats)  # the top ten
    assert mem["plan.mem.capacity"] == 1 and mem["plan.mem.usable"] == 1
    words = " ".join(svg_text(report / "plan_memory.svg").split())
    assert "capacity 80 GiB" in words and "usable 72 GiB (90% of capacity)" in words
    assert "memory per GPU (GiB)" in words and "Every configuration shown: bf16." in words
    steps = series(report / "plan_step_time.svg")
    comps = ["forward", "backward", "recompute", "tensor_parallel_comm", "pipeline_comm",
             "pipeline_bubble", "data_parallel_comm", "optimizer"]
    assert of_kind(steps, r"plan\.step\..+") == {f"plan.step.{c}" for c in comps}
    assert all(steps[f"plan.step.{c}"] == 10 for c in comps)
    assert "time per iteration (s)" in " ".join(svg_text(report / "plan_step_time.svg").split())
    scale = series(report / "plan_scaling.svg")
    assert {"plan.scale.days", "plan.scale.days_goodput", "plan.scale.cost",
            "plan.scale.requested", "plan.scale.none"} <= set(scale)
    assert "plan.scale.gpu_hours" not in scale
    words = " ".join(svg_text(report / "plan_scaling.svg").split())
    for w in ("requested: 1,024 GPUs", "GPUs (log₂ scale)", "time to train (days, log scale)",
              "cost ($)", "No configuration fits at 64 GPUs", "4,096"):
        assert w in words, w


def test_without_a_price_the_scaling_plot_shows_gpu_hours(tmp_path):
    plan = fixture_plan()
    plan["inputs"]["price_per_gpu_hour"] = None
    plan["inputs"]["mtbf_hours"] = None
    for c in plan["configurations"] + [s["best"] for s in plan["scaling"] if s["best"]]:
        c["cost"] = None
        c["goodput"] = None
    proc = run_reports(write_plan(tmp_path, plan))
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "plan-report"
    scale = series(out / "plan_scaling.svg")
    assert "plan.scale.gpu_hours" in scale
    assert "plan.scale.cost" not in scale and "plan.scale.days_goodput" not in scale
    tables = Tables((out / "index.html").read_text())
    assert tables.kv(0)["price"] == "— (not given: no cost)"
    assert tables.kv(0)["MTBF"] == "— (not given: no goodput adjustment)"
    [(_, rows, _)] = tables.with_header("virtual stages")
    assert {r[18] for r in rows} == {"—"} and {r[19] for r in rows} == {"—"}


def test_the_same_plan_gives_the_same_files(report, tmp_path):
    plan = report.parent / "plan.json"
    proc = run_reports(plan, "--out", tmp_path / "again")
    assert proc.returncode == 0, proc.stderr
    for name in [f"{s}.{e}" for s in STEMS for e in ("svg", "png")] + ["index.html", "index.md"]:
        a, b = (report / name).read_bytes(), (tmp_path / "again" / name).read_bytes()
        if name.startswith("index"):  # they name the plan file, the same in both
            a, b = a.replace(str(report).encode(), b""), b.replace(str(tmp_path / "again").encode(), b"")
        assert a == b, name


# No two texts of a plot overlap and none leaves the figure: checked on the figures
# themselves, for the fixture and for variations that lengthen the labels.
def _plot_module():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from reports import plot_plan, plotstyle
    from reports.plan import read_plan
    return plot_plan, plotstyle, read_plan


def drawn_texts(fig):
    """(text, its box in pixels) of every non-empty text the figure draws; tick labels only
    for ticks inside the view."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ticks, out = set(), []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            slack = 1e-9 * max(abs(lo), abs(hi), 1.0)
            for locs, found in ((axis.get_majorticklocs(), axis.get_major_ticks()),
                                (axis.get_minorticklocs(), axis.get_minor_ticks())):
                for k, tick in enumerate(found):
                    for label in (tick.label1, tick.label2):
                        ticks.add(id(label))
                        if (k < len(locs) and lo - slack <= locs[k] <= hi + slack
                                and label.get_visible() and label.get_text().strip()):
                            out.append(label)
    for t in fig.findobj(Text):
        if id(t) not in ticks and t.get_visible() and t.get_text().strip():
            out.append(t)
    return [(t, t.get_window_extent(renderer)) for t in out], fig.bbox


def text_problems(fig) -> list[str]:
    boxes, frame = drawn_texts(fig)
    problems = []
    for i, (t, b) in enumerate(boxes):
        if b.x0 < frame.x0 - 1 or b.y0 < frame.y0 - 1 or b.x1 > frame.x1 + 1 or b.y1 > frame.y1 + 1:
            problems.append(f"outside the figure: {t.get_text()!r}")
        for u, c in boxes[i + 1:]:
            if b.padded(-0.5).overlaps(c.padded(-0.5)):
                problems.append(f"overlap: {t.get_text()!r} and {u.get_text()!r}")
    return problems


def _varied(plan: dict) -> dict:
    """Ten configurations that differ in every labelled field, and many GPU counts."""
    plan = copy.deepcopy(plan)
    configs = plan["configurations"][:10]
    for k, c in enumerate(configs):
        c.update(virtual_stages=1 + k % 3, micro_batch=1 + k % 4, recompute=["none", "selective", "full"][k % 3],
                 sequence_parallel=k % 2 == 0, zero=k % 4, precision=["bf16", "fp8", "fp16"][k % 3],
                 schedule=["1f1b", "interleaved", "gpipe", "zero-bubble-v"][k % 4])
    plan["configurations"] = configs
    best = plan["scaling"][4]["best"]
    plan["scaling"] = [{"gpus": 2 ** k, "best": None if k < 7 else best} for k in range(3, 17)]
    return plan


@pytest.mark.parametrize("variant", ["fixture", "varied", "no price", "one configuration"])
def test_no_text_of_a_plot_overlaps_or_leaves_the_figure(tmp_path, variant):
    plot_plan, plotstyle, read_plan = _plot_module()
    plan = fixture_plan()
    if variant == "varied":
        plan = _varied(plan)
    elif variant == "no price":
        for c in plan["configurations"] + [s["best"] for s in plan["scaling"] if s["best"]]:
            c["cost"] = None
    elif variant == "one configuration":
        plan["configurations"] = plan["configurations"][:1]
    loaded = read_plan(write_plan(tmp_path, plan))
    with plotstyle.style():
        for draw in (plot_plan.draw_memory, plot_plan.draw_step_time, plot_plan.draw_scaling):
            assert text_problems(draw(loaded)) == [], draw.__name__


def test_the_overlap_check_catches_overlapping_text():
    _, plotstyle, _ = _plot_module()
    fig = plotstyle.new_figure(4, 3)
    ax = fig.subplots()
    ax.text(0.5, 0.5, "planted label")
    ax.text(0.52, 0.5, "another label")
    ax.text(1.5, 0.5, "far outside", transform=ax.transAxes)
    problems = text_problems(fig)
    assert "overlap: 'planted label' and 'another label'" in problems
    assert "outside the figure: 'far outside'" in problems


def test_no_feasible_configuration_is_a_page_that_says_so(tmp_path):
    plan = fixture_plan()
    plan["configurations"] = []
    plan["feasible"] = 0
    proc = run_reports(write_plan(tmp_path, plan))
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "plan-report"
    plain = html.unescape((out / "index.html").read_text())
    assert "No configuration fits 1,024 × H100 SXM (0 of 18,432 evaluated fit)" in plain
    for stem in STEMS:
        assert (out / f"{stem}.png").stat().st_size > 0
    assert "nothing to plot" in svg_text(out / "plan_memory.svg")
    assert "plan.scale.days" in series(out / "plan_scaling.svg")  # other GPU counts still fit


# ---- targets and errors ---------------------------------------------------------------------

def test_a_directory_holding_plan_json_and_out(tmp_path):
    write_plan(tmp_path / "p", fixture_plan())
    proc = run_reports(tmp_path / "p")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "p" / "plan-report" / "index.html").is_file()
    proc = run_reports(tmp_path / "p" / "plan.json", "--out", tmp_path / "elsewhere")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"report: {tmp_path / 'elsewhere' / 'index.html'}"
    for stem in STEMS:
        assert (tmp_path / "elsewhere" / f"{stem}.svg").is_file()


def test_a_run_directory_still_gets_the_run_report(tmp_path):
    run = run_dir(tmp_path, "single")
    write_plan(run, fixture_plan())  # a plan.json beside results.jsonl does not change that
    proc = run_reports(run)
    assert proc.returncode == 0, proc.stderr
    assert (run / "report" / "index.html").is_file() and not (run / "plan-report").exists()


def _without(key: str):
    def change(p: dict) -> None:
        p.pop(key)
    return change


def _set(path: str, value):
    def change(p: dict) -> None:
        node = p
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is _DROP:
            node.pop(last)
        else:
            node[last] = value
    return change


_DROP = object()

# name → (change to the fixture, the message after "PATH: ")
BAD = {
    "no configurations": (_without("configurations"),
                          "missing configurations (expected an array of the feasible configurations, best first)"),
    "wrong schema": (_set("schema", "trainbench.plan/2"),
                     'unsupported schema "trainbench.plan/2" (expected "trainbench.plan/1")'),
    "no schema": (_without("schema"),
                  'missing schema (expected "trainbench.plan/1": a capacity plan from `trainbench plan --json`)'),
    "configurations not an array": (_set("configurations", {"rank": 1}),
                                    'configurations is {"rank":1} (expected an array)'),
    "a configuration without rank": (_set("configurations.3.rank", _DROP),
                                     "missing configurations[3].rank (expected an integer >= 1)"),
    "a wrong type": (_set("configurations.2.iteration_s", "fast"),
                     'configurations[2].iteration_s is "fast" (expected a number > 0)'),
    "no memory total": (_set("configurations.0.memory_bytes.total", _DROP),
                        "missing configurations[0].memory_bytes.total (expected a number)"),
    "a rank twice": (_set("configurations.1.rank", 1),
                     "configurations[1].rank is 1 again (first at configurations[0]; expected each rank once)"),
    "unknown calibration source": (_set("calibration.source", "guess"),
                                   'calibration.source is "guess" (expected "datasheet" or "file")'),
    "no inputs": (_without("inputs"), "missing inputs (expected an object)"),
    "a scaling entry without best": (_set("scaling.2.best", _DROP),
                                     "missing scaling[2].best (expected a configuration, or null when none fits)"),
    "a bad scaling configuration": (_set("scaling.3.best.tokens_per_s", None),
                                    "scaling[3].best.tokens_per_s is null (expected a number > 0)"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_malformed_plan_is_one_line_naming_the_file(tmp_path, name):
    change, message = BAD[name]
    plan = fixture_plan()
    change(plan)
    path = write_plan(tmp_path, plan)
    assert one_line_error(run_reports(path)) == f"{path}: {message}"
    assert not (tmp_path / "plan-report").exists()


@pytest.mark.parametrize("content, message", [
    ("", "empty plan file (expected one JSON object, trainbench.plan/1)"),
    ('{"schema": "trainbench.plan/1",\n "inputs": [}\n',
     "2: not valid JSON: Expecting value at column 13 (expected one JSON object, trainbench.plan/1)"),
    ("[1, 2]\n", "expected a JSON object (a capacity plan, trainbench.plan/1), got an array"),
])
def test_a_plan_that_is_not_a_json_object_is_one_line(tmp_path, content, message):
    path = tmp_path / "plan.json"
    path.write_text(content)
    sep = ":" if message[0].isdigit() else ": "  # invalid JSON names the line
    assert one_line_error(run_reports(path)) == f"{path}{sep}{message}"


def test_trainbench_report_of_a_plan(tmp_path):
    plan = write_plan(tmp_path / "p", fixture_plan())
    proc = run_trainbench("report", plan)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"report: {tmp_path / 'p' / 'plan-report' / 'index.html'}"
    for stem in STEMS:
        assert (tmp_path / "p" / "plan-report" / f"{stem}.png").is_file()
    proc = run_trainbench("report", tmp_path / "p", "--out", tmp_path / "r")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r" / "index.html").is_file()


@pytest.mark.parametrize("name", ["no configurations", "wrong schema"])
def test_trainbench_report_gives_the_same_line_for_a_malformed_plan(tmp_path, name):
    change, message = BAD[name]
    plan = fixture_plan()
    change(plan)
    path = write_plan(tmp_path, plan)
    via_cli = one_line_error(run_trainbench("report", path), prefix="trainbench")
    assert via_cli == f"{path}: {message}"
    for marker in CRASH_MARKERS:
        assert marker not in via_cli
