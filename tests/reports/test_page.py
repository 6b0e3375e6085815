"""index.html and index.md: self-contained, the scenario and environment tables, every
variant with its status and reason, one headline sentence per strategy family, the plots."""
from __future__ import annotations

import base64
import html
import json
import re
from html.parser import HTMLParser

import pytest

from conftest import FIXTURES, PLOTS, run_dir, run_reports


class Page(HTMLParser):
    """The parts of a page the tests look at."""

    def __init__(self, text: str):
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.tags: list[str] = []
        self.rows: list[list[str]] = []
        self.row_classes: list[str] = []
        self.headlines: list[str] = []
        self.headers: list[str] = []  # of every table, in order
        self._cell: list[str] | None = None
        self._th: list[str] | None = None
        self._li: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href", "action", "data", "poster") or (k == "style" and "url(" in (v or "")):
                self.urls.append((tag, k, v or ""))
        if tag == "tr":
            self.rows.append([])
            self.row_classes.append(dict(attrs).get("class") or "")
        elif tag == "td":
            self._cell = []
        elif tag == "th":
            self._th = []
        elif tag == "li":
            self._li = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "th" and self._th is not None:
            self.headers.append(" ".join("".join(self._th).split()))
            self._th = None
        elif tag == "li" and self._li is not None:
            self.headlines.append(" ".join("".join(self._li).split()))
            self._li = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data + " ")
        if self._li is not None:
            self._li.append(data)
        if self._th is not None:
            self._th.append(data)


def lines(fixture: str) -> list[dict]:
    return [json.loads(l) for l in (FIXTURES / f"{fixture}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def mixed(reports_of):
    out = reports_of("mixed")
    return out, Page((out / "index.html").read_text()), (out / "index.md").read_text()


def test_page_is_self_contained(mixed):
    out, page, _ = mixed
    text = (out / "index.html").read_text()
    assert "<script" not in text.lower()
    assert not re.search(r"https?://", text), "the page must not reach the network"
    imgs = [v for t, k, v in page.urls if t == "img"]
    assert len(imgs) == len(PLOTS)
    for src in imgs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for tag, attr, value in page.urls:
        if tag == "img":
            continue
        # Only the favicon placeholder and links to the SVG files beside the page.
        assert value == "data:," or re.fullmatch(r"[a-z_]+\.svg", value), (tag, attr, value)
        if value.endswith(".svg"):
            assert (out / value).is_file()


def test_every_variant_is_in_the_table_with_its_status_and_reason(mixed):
    out, page, md = mixed
    variant_rows = [(r, c) for r, c in zip(page.rows, page.row_classes) if c.startswith("status-")]
    recorded = lines("mixed")
    assert len(variant_rows) == len(recorded)
    for l in recorded:
        row, cls = next((r, c) for r, c in variant_rows if r[0] == str(l["variant"]["index"]))
        assert l["variant"]["id"] in row[1]
        assert row[3] == l["status"] and cls == f"status-{l['status']}"
        if l["status"] != "ok":
            assert l["reason"] in row[-1], (row, l["reason"])
            # ...and in the Markdown, with the status.
            md_row = next(x for x in md.splitlines() if x.startswith(f"| {l['variant']['index']} |"))
            assert f"**{l['status']}**" in md_row and l["reason"].replace("|", "\\|") in md_row
    assert "Not plotted (status not ok): mb=256 (oom), sgd, lr=10000.0 (diverged), cuda " \
           "(unsupported), tokens.bin (error)." in html.unescape((out / "index.html").read_text())


def test_one_headline_sentence_per_family_computed_from_the_data(mixed):
    _, page, md = mixed
    families = ["batch", "checkpointing", "optimizer", "device", "data", "precision"]
    assert [h.split(" — ")[0] for h in page.headlines] == families
    by_family = {h.split(" — ")[0]: h.split(" — ", 1)[1] for h in page.headlines}
    number = r"[+−]\d+\.\d+% loss ± \d+\.\d+%"
    assert re.fullmatch(rf"mb=2: \d+\.\d\dx speed, {number}; mb=8: \d+\.\d\dx speed, {number}; "
                        r"mb=256: oom\.", by_family["batch"]), by_family["batch"]
    assert re.fullmatch(rf"k=1: \d+\.\d\dx speed, {number}; selective: \d+\.\d\dx speed, {number}\.",
                        by_family["checkpointing"])
    assert by_family["optimizer"].endswith("sgd, lr=10000.0: diverged.")
    assert by_family["device"] == "cuda: unsupported."
    assert by_family["data"] == "tokens.bin: error."
    # On a CPU the 16-bit formats are emulated, and the headline says so.
    assert re.fullmatch(rf"bf16 \(emulated\): \d+\.\d\dx speed, {number}; "
                        rf"fp16 \(emulated\): \d+\.\d\dx speed, {number}\.", by_family["precision"])
    # The numbers are the data's: the checkpointing variants train bit-identically.
    recorded = {l["variant"]["id"]: l for l in lines("mixed")}
    k1 = next(l for l in recorded.values() if l["variant"]["keys"]["checkpoint_interval"] == 1)
    assert k1["vs_baseline"]["loss_delta"] == 0.0
    assert by_family["checkpointing"].startswith(f"k=1: {k1['vs_baseline']['speedup']:.2f}x speed, +0.0")
    for h in page.headlines:
        assert f"- **{h.split(' — ')[0]}** — {h.split(' — ', 1)[1]}" in md


def test_scenario_and_environment_tables(mixed):
    _, page, md = mixed
    kv: dict[str, str] = {}
    for r in page.rows:
        if len(r) == 2:
            kv.setdefault(r[0], r[1])  # the scenario table comes first
    first = lines("mixed")[0]
    assert kv["scenario"] == "fixture-mixed"
    assert kv["sweep: optimizer"] == "adamw, lamb, sgd"
    assert kv["baseline"] == first["variant"]["id"]
    assert kv["variants"] == "13 (9 ok, 1 oom, 1 diverged, 1 unsupported, 1 error)"
    assert kv["strategy families"] == "batch, checkpointing, optimizer, device, data, precision"
    assert kv["cpu.model"] == first["environment"]["cpu"]["model"]
    assert kv["blas"] == first["environment"]["blas"]
    assert kv["build.compiler"] == first["environment"]["build"]["compiler"]
    for key in ("scenario", "sweep: optimizer", "cpu.model", "blas", "hostname"):
        assert f"| **{key}** |" in md


def test_plots_are_on_the_page_and_linked_from_the_markdown(mixed):
    out, page, md = mixed
    for stem in PLOTS:
        assert f"]({stem}.png)" in md
    assert page.tags.count("figure") == len(PLOTS)


def test_fields_a_newer_writer_adds_are_shown(tmp_path):
    """Additive fields the report does not know (a new top-level object, a new environment
    key) appear as they are, in their own column or row."""
    run = run_dir(tmp_path, "single")
    out = []
    for line in (run / "results.jsonl").read_text().splitlines():
        j = json.loads(line)
        j["zero"] = {"stage": 3, "shards": 8}
        j["environment"]["accelerator_clock_mhz"] = 1410
        out.append(json.dumps(j))
    (run / "results.jsonl").write_text("\n".join(out) + "\n")
    proc = run_reports(run)
    assert proc.returncode == 0, proc.stderr
    text = html.unescape((run / "report" / "index.html").read_text())
    assert "<th>zero</th>" in text and "stage=3, shards=8" in text
    assert "accelerator_clock_mhz" in text and "1410" in text
    md = (run / "report" / "index.md").read_text()
    assert "| zero |" in md or " zero |" in md


def test_the_precision_object_is_summed_up_and_shown_whole(mixed):
    out, page, md = mixed
    rows = {r[0]: r for r, c in zip(page.rows, page.row_classes) if c.startswith("status-")}
    recorded = {l["variant"]["index"]: l for l in lines("mixed")}
    bf16 = next(i for i, l in recorded.items() if l["config"]["precision"] == "bf16")
    fp16 = next(i for i, l in recorded.items() if l["config"]["precision"] == "fp16")
    base = next(i for i, l in recorded.items() if l["variant"]["baseline"])
    header = (out / "index.html").read_text()
    assert "<th>precision</th>" in header and "<h2>Precision</h2>" in header
    col = page.headers.index("precision")
    assert rows[str(bf16)][col].startswith("bf16, emulated"), rows[str(bf16)]
    assert rows[str(fp16)][col].startswith("fp16, emulated")
    assert "dynamic loss scaling" in rows[str(fp16)][col]  # loss_scaling auto: dynamic for fp16
    assert rows[str(base)][col] == "fp32"
    assert "## Precision" in md


def test_a_sweep_without_an_ok_baseline_still_gets_a_page(tmp_path):
    """The baseline itself failed: no comparison, but the table, the other plots and a
    headline that says why."""
    run = run_dir(tmp_path, "single")
    out = []
    for line in (run / "results.jsonl").read_text().splitlines():
        j = json.loads(line)
        j.pop("vs_baseline", None)
        if j["variant"]["baseline"]:
            for k in ("timing", "throughput", "memory", "accuracy", "model", "device"):
                j.pop(k, None)
            j.update(status="oom", reason="out of memory (planted)",
                     oom={"required_bytes": 2, "available_bytes": 1})
        out.append(json.dumps(j))
    (run / "results.jsonl").write_text("\n".join(out) + "\n")
    proc = run_reports(run)
    assert proc.returncode == 0, proc.stderr
    text = html.unescape((run / "report" / "index.html").read_text())
    assert "baseline (mb=4) is oom: out of memory (planted); nothing to compare against." in text
    assert "not compared with the baseline" in text
    assert "Speedup against accuracy: nothing to plot" in (run / "report" / "speedup_vs_accuracy.svg").read_text()


def test_a_sweep_without_accuracy_runs_and_a_baseline_alone(tmp_path):
    """No accuracy run: no loss change to plot, and the figures say so; only a baseline:
    the page says there is nothing to compare."""
    run = run_dir(tmp_path, "single")
    out = []
    for line in (run / "results.jsonl").read_text().splitlines():
        j = json.loads(line)
        j.pop("accuracy", None)
        for k in ("loss_delta", "loss_delta_ci95", "loss_delta_rel"):
            j.get("vs_baseline", {}).pop(k, None)
        out.append(json.dumps(j))
    (run / "results.jsonl").write_text("\n".join(out) + "\n")
    proc = run_reports(run)
    assert proc.returncode == 0, proc.stderr
    report = run / "report"
    assert "nothing to plot" in (report / "speedup_vs_accuracy.svg").read_text()
    assert "nothing to plot" in (report / "loss_curves.svg").read_text()
    text = html.unescape((report / "index.html").read_text())
    assert re.search(r"mb=2: \d+\.\d\dx speed, loss not measured", text)

    alone = tmp_path / "alone"
    alone.mkdir()
    base = next(l for l in out if json.loads(l)["variant"]["baseline"])
    (alone / "results.jsonl").write_text(base + "\n")
    proc = run_reports(alone)
    assert proc.returncode == 0, proc.stderr
    assert "Only the baseline ran: nothing to compare." in (alone / "report" / "index.html").read_text()
