"""Number and value formatting shared by headlines, tables and plots."""
from __future__ import annotations

import json
import math
from typing import Any

from .families import human_bytes

__all__ = ["human_bytes", "speedup", "speedup_with_ci", "pct_decimals", "loss_change",
           "ms", "rate", "mfu", "loss", "loss_with_ci", "value"]


def speedup(s: float | None) -> str:
    return "—" if s is None else f"{s:.2f}x"


def speedup_with_ci(s: float | None, ci: tuple[float, float] | None) -> str:
    if s is None:
        return "—"
    return speedup(s) + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def pct_decimals(value: float | None, half: float | None = None) -> int:
    """Decimals for a percentage: two significant digits of its uncertainty (the half-width)
    when there is one, else of the value; at least 1, at most 3."""
    for x in (half, value):
        if x is not None and x != 0 and math.isfinite(x):
            m = abs(x)
            return 1 if m >= 0.95 else 2 if m >= 0.095 else 3
    return 1


def loss_change(pct: float | None, half: float | None, word: str = "") -> str:
    """"+0.30% ± 0.20%" (with word="loss": "+0.30% loss ± 0.20%"): the eval-loss change
    against the baseline with the half-width of its 95% interval."""
    if pct is None:
        return "—"
    d = pct_decimals(pct, half)
    text = f"{pct:+.{d}f}%".replace("-", "−") + (f" {word}" if word else "")
    return text + (f" ± {half:.{d}f}%" if half is not None else " ± n/a")


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    v = seconds * 1e3
    return f"{v:#.3g}" if v < 99.95 else f"{v:,.0f}"


def rate(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def mfu(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:#.3g}%" if x < 0.9995 else f"{100 * x:.0f}%"


def loss(x: float | None) -> str:
    return "—" if x is None else f"{x:.4f}"


def loss_with_ci(x: float | None, ci: tuple[float, float] | None) -> str:
    if x is None:
        return "—"
    return loss(x) + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")


def value(v: Any, limit: int = 160, _nested: bool = False) -> str:
    """Any JSON value on one line for a table cell: objects as "k=v, …" (nested ones in
    braces), arrays as "[a, b]", scalars as JSON prints them (strings bare). Long text is
    cut with "…"."""
    if isinstance(v, dict):
        text = ", ".join(f"{k}={value(x, limit, True)}" for k, x in v.items())
        text = "{" + text + "}" if _nested else text
    elif isinstance(v, list):
        text = "[" + ", ".join(value(x, limit, True) for x in v) + "]"
    elif isinstance(v, str):
        text = v
    elif isinstance(v, float) and math.isfinite(v):
        text = f"{v:.6g}"
    else:
        text = json.dumps(v, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
