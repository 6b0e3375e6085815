"""Shared plotting setup: matplotlib's Agg backend, colours, series tags and saving.

Every drawn series carries SVG ids "tbs--SERIES--J" (J counts the series' artists), so a
test, or anyone, can count a plot's series in its SVG file: the distinct SERIES values.
Text stays text in the SVG (svg.fonttype none), and the SVG carries no date, so the same
results give the same files.
"""
from __future__ import annotations

import contextlib
import re
import textwrap
from pathlib import Path
from typing import Iterable

import matplotlib

matplotlib.use("Agg")
from matplotlib.artist import Artist  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "trainbench-report",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "0.9",
    "grid.linewidth": 0.6,
    "legend.fontsize": 8,
    "legend.frameon": False,
}
PNG_DPI = 110
BASELINE_COLOR = "#222222"
# Colour-blind-friendly (Okabe–Ito) then tab10 for longer sweeps.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF", "#9467BD"]
PHASE_COLORS = {"forward": "#0072B2", "backward": "#56B4E9", "recompute": "#CC79A7",
                "optimizer": "#009E73", "communication": "#E69F00", "data_wait": "#7F7F7F"}
# Communication by parallel dimension (the phase itself stays PHASE_COLORS' orange), and the
# pipeline bubble.
COMM_COLORS = {"data": "#D55E00", "tensor": "#F0E442", "pipeline": "#8C564B"}
BUBBLE_COLOR = "#C8C8C8"
MEMORY_COLORS = {"parameters": "#0072B2", "gradients": "#56B4E9", "optimizer_state": "#009E73",
                 "activations": "#D55E00", "workspace": "#E69F00", "communication": "#CC79A7",
                 "emulation": "#AAAAAA"}


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def slug(name: str) -> str:
    """A series name usable inside an SVG id."""
    s = re.sub(r"[^A-Za-z0-9_.]+", "_", name).strip("_")
    return s or "series"


def tag(series: str, artists: Iterable[Artist | None]) -> None:
    """Marks each artist as part of `series` in the SVG (id "tbs--SERIES--J")."""
    j = 0
    for art in artists:
        if art is None:
            continue
        art.set_gid(f"tbs--{slug(series)}--{j}")
        j += 1


def new_figure(width_in: float, height_in: float, notes: list[str] | None = None) -> Figure:
    """A figure with constrained layout; `notes` (e.g. "Not plotted: …") are printed in small
    type under the axes, wrapped to the width."""
    lines: list[str] = []
    wrap = max(40, int(width_in * 16))
    for note in notes or []:
        if note:
            lines += textwrap.wrap(note, wrap)
    note_h = 0.17 * len(lines) + (0.1 if lines else 0)
    fig = Figure(figsize=(width_in, height_in + note_h), layout="constrained")
    if lines:
        frac = note_h / (height_in + note_h)
        fig.get_layout_engine().set(rect=(0, frac, 1, 1 - frac))
        t = fig.text(0.01, frac - 0.02 / (height_in + note_h), "\n".join(lines), fontsize=7.5,
                     va="top", ha="left", color="0.3")
        t.set_gid("tb-notes")
    return fig


def message_figure(title: str, message: str) -> Figure:
    """A small figure saying why there is nothing to draw (the file still exists)."""
    fig = Figure(figsize=(6.4, 1.6))
    fig.text(0.5, 0.62, title, ha="center", va="center", fontsize=10, weight="bold")
    fig.text(0.5, 0.35, "\n".join(textwrap.wrap(message, 90)), ha="center", va="center",
             fontsize=8.5, color="0.3").set_gid("tb-empty")
    return fig


def spread_labels(fig: Figure, labels: list) -> None:
    """Moves text annotations placed in offset points (`textcoords="offset points"`) upwards,
    lowest first, until no two of them overlap on the drawn figure: points that sit close
    together (emulated modes near 1.0×, say) keep readable labels. Lays the figure out once
    to measure the text; call it after the figure is complete."""
    fig.draw_without_rendering()
    px_to_pt = 72.0 / fig.dpi
    placed: list = []
    for ann in sorted(labels, key=lambda t: t.get_window_extent().y0):
        box = ann.get_window_extent()
        # Each move puts the label above the box it hit; moving only upwards, it hits each
        # placed box at most once.
        for _ in range(len(placed)):
            hit = next((p for p in placed if box.overlaps(p)), None)
            if hit is None:
                break
            dx, dy = ann.xyann
            ann.xyann = (dx, dy + (hit.y1 - box.y0 + 1.0) * px_to_pt)
            box = ann.get_window_extent()
        placed.append(box)


def style() -> "contextlib.AbstractContextManager[None]":
    """The report's matplotlib settings: draw and save inside `with style():`."""
    return matplotlib.rc_context(RC)


def save(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    """Writes STEM.svg and STEM.png; returns their paths."""
    svg, png = out_dir / f"{stem}.svg", out_dir / f"{stem}.png"
    with style():
        fig.savefig(svg, format="svg", metadata={"Date": None})
        fig.savefig(png, format="png", dpi=PNG_DPI, metadata={"Software": None})
    return [svg, png]
