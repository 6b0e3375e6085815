"""index.html: one self-contained page (styles inline, plots embedded as base64 PNG, no
script, no external URL), readable offline."""
from __future__ import annotations

import base64
from dataclasses import dataclass
from html import escape
from pathlib import Path

from .analysis import Analysis
from .headlines import Headline
from .tables import Table
from .time_to_target import NOTE as TTT_NOTE

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 color:#1d1d1f;margin:0 auto;padding:1.5em 2em 3em;max-width:1400px;background:#fff}
h1{font-size:1.6em;margin:.2em 0 .1em}h2{font-size:1.2em;margin:1.6em 0 .5em;
 border-bottom:1px solid #ddd;padding-bottom:.2em}
p.lead{color:#555;margin:.2em 0 1em}
ul.headlines{padding-left:1.2em}ul.headlines li{margin:.25em 0}
table{border-collapse:collapse;margin:.4em 0 1em;font-size:13px}
th,td{border:1px solid #ddd;padding:.3em .55em;vertical-align:top;text-align:left}
th{background:#f4f5f7}td.num{text-align:right;white-space:nowrap}
table.kv td:first-child{font-weight:600;background:#fafafa;white-space:nowrap}
div.scroll{overflow-x:auto}
code,.id{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.85em;color:#555}
td .id{word-break:break-all}table.variants td:nth-child(2){min-width:13em;max-width:24em}
td.wide{min-width:16em;max-width:32em}
.status{display:inline-block;padding:0 .45em;border-radius:3px;font-weight:600;font-size:.9em}
tr.status-ok .status{background:#e3f4e8;color:#1b6e35}
tr.status-oom .status{background:#fde8d8;color:#9a3b00}
tr.status-diverged .status{background:#fbe0e6;color:#9b1237}
tr.status-unsupported .status{background:#eceef1;color:#4b5563}
tr.status-error .status,tr.status-other .status{background:#fde2e2;color:#a11}
tr.status-oom,tr.status-diverged,tr.status-unsupported,tr.status-error,tr.status-other{background:#fffaf5}
p.note{color:#7a4b00;background:#fff8e6;border-left:3px solid #e6a100;padding:.4em .7em}
figure{margin:1em 0 2em}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#444;font-size:13px;margin-top:.3em}
footer{margin-top:3em;color:#777;font-size:12px}
"""


@dataclass
class Plot:
    stem: str
    title: str
    caption: str
    png: Path


def _cell(text: str) -> str:
    lines = text.split("\n")
    head = escape(lines[0])
    rest = "".join(f'<br><span class="id">{escape(x)}</span>' for x in lines[1:])
    return head + rest


def render_table(t: Table, kv: bool = False, status_col: int | None = None) -> str:
    table_class = ' class="kv"' if kv else ' class="variants"' if status_col is not None else ""
    out = [f'<div class="scroll"><table{table_class}>']
    if not kv:
        out.append("<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in t.headers) + "</tr></thead>")
    out.append("<tbody>")
    for row, cls in zip(t.rows, t.row_classes):
        cells = []
        for i, c in enumerate(row):
            attr = ' class="num"' if i in t.numeric else ' class="wide"' if i in t.wide else ""
            body = f'<span class="status">{escape(c)}</span>' if i == status_col else _cell(c)
            cells.append(f"<td{attr}>{body}</td>")
        row_class = f' class="{cls}"' if cls else ""
        out.append(f"<tr{row_class}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _figure(p: Plot) -> str:
    data = base64.b64encode(p.png.read_bytes()).decode("ascii")
    return (f'<figure id="{escape(p.stem)}"><img src="data:image/png;base64,{data}" '
            f'alt="{escape(p.title)}">'
            f"<figcaption><b>{escape(p.title)}.</b> {escape(p.caption)} "
            f'Vector version: <a href="{escape(p.stem)}.svg">{escape(p.stem)}.svg</a>.</figcaption></figure>')


PARALLEL_NOTE = ("Parallel runs (docs/parallel.md) and the single-rank baseline. Communication "
                 "per optimizer step and dimension: bytes, seconds and calls (medians over the "
                 "timed steps); for data, the part exposed on the step and the part overlapped "
                 "with compute. Bubble: the pipeline's measured idle fraction against the "
                 "analytic (p − 1)/(m + p − 1) of p stages and m micro-batches. Peak memory: the "
                 "largest rank's measured peak total (memory.peak_total_bytes) and that rank, "
                 "the one whose category peaks sum highest.")


def render(a: Analysis, heads: list[Headline], scenario: Table, environment: Table,
           variants: Table, plots: list[Plot], generated: str,
           precision: Table | None = None, parallel: Table | None = None,
           time_to_target: Table | None = None) -> str:
    name = str(a.results.scenario.get("name", ""))
    desc = str(a.results.scenario.get("description", ""))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>trainbench report: {escape(name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>trainbench report: {escape(name)}</h1>",
        f'<p class="lead">{escape(desc)}</p>' if desc else "",
        "<h2>Headline</h2>",
        '<ul class="headlines">' + "".join(
            f"<li><b>{escape(h.family)}</b> — {escape(h.sentence)}</li>" for h in heads) + "</ul>"
        if heads else "<p>Only the baseline ran: nothing to compare.</p>",
        "<h2>Variants</h2>",
        render_table(variants, status_col=3),
    ]
    note = a.not_plotted_note()
    if note:
        parts.append(f'<p class="note">{escape(note)} Their reasons are in the table above.</p>')
    if parallel is not None:
        parts += ['<h2 id="parallel">Parallel runs</h2>', f"<p>{escape(PARALLEL_NOTE)}</p>",
                  render_table(parallel, status_col=2)]
    if time_to_target is not None:
        parts += ['<h2 id="time-to-target">Time to target</h2>', f"<p>{escape(TTT_NOTE)}</p>",
                  render_table(time_to_target), '<p>The plot: <a href="#time_to_quality">time '
                  "to quality</a>.</p>"]
    parts.append("<h2>Plots</h2>")
    parts += [_figure(p) for p in plots]
    parts += ["<h2>Scenario</h2>", render_table(scenario, kv=True),
              "<h2>Environment</h2>", render_table(environment, kv=True)]
    if precision is not None:
        parts += ["<h2>Precision</h2>", render_table(precision, kv=True)]
    parts += [f"<footer>{escape(generated)}</footer>", "</body></html>"]
    return "\n".join(x for x in parts if x) + "\n"
