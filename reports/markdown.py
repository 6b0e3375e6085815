"""index.md: the page's headline and tables as GitHub-flavoured Markdown, for pasting into an
issue or a wiki; the plots are linked as the PNG files beside it."""
from __future__ import annotations

from .analysis import Analysis
from .headlines import Headline
from .html import PARALLEL_NOTE, TTT_NOTE, Plot
from .tables import Table


def _cell(text: str) -> str:
    lines = text.replace("|", "\\|").split("\n")
    return lines[0] + "".join(f"<br>`{x}`" for x in lines[1:])


def render_table(t: Table, kv: bool = False, status_col: int | None = None) -> str:
    headers = ["", ""] if kv else t.headers
    align = ["---:" if i in t.numeric else "---" for i in range(len(headers))]
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    for row in t.rows:
        cells = [f"**{_cell(c)}**" if (i == status_col and c != "ok") or (kv and i == 0) else _cell(c)
                 for i, c in enumerate(row)]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def render(a: Analysis, heads: list[Headline], scenario: Table, environment: Table,
           variants: Table, plots: list[Plot], generated: str,
           precision: Table | None = None, parallel: Table | None = None,
           time_to_target: Table | None = None) -> str:
    name = str(a.results.scenario.get("name", ""))
    desc = str(a.results.scenario.get("description", ""))
    out = [f"# trainbench report: {name}", ""]
    if desc:
        out += [desc, ""]
    out += ["## Headline", ""]
    out += [f"- **{h.family}** — {h.sentence}" for h in heads] or ["Only the baseline ran: nothing to compare."]
    out += ["", "## Variants", "", render_table(variants, status_col=3), ""]
    note = a.not_plotted_note()
    if note:
        out += [f"> {note} Their reasons are in the table above.", ""]
    if parallel is not None:
        out += ["## Parallel runs", "", PARALLEL_NOTE, "", render_table(parallel, status_col=2), ""]
    if time_to_target is not None:
        out += ["## Time to target", "", TTT_NOTE, "", render_table(time_to_target), "",
                "The plot: [time to quality](time_to_quality.png).", ""]
    out += ["## Plots", ""]
    for p in plots:
        out += [f"![{p.title}]({p.stem}.png)", "", f"*{p.title}.* {p.caption}", ""]
    out += ["## Scenario", "", render_table(scenario, kv=True), "",
            "## Environment", "", render_table(environment, kv=True), ""]
    if precision is not None:
        out += ["## Precision", "", render_table(precision, kv=True), ""]
    out += [f"_{generated}_", ""]
    return "\n".join(out)
