"""The headline finding: one sentence per strategy family, computed from the data.

Up to MAX_LISTED ok variants of a family are each given as "LABEL: S.SSx speed, ±D% loss ±
H%" (speedup over the baseline's median step time; eval-loss change in percent of the
baseline's mean with the half-width of its 95% interval). A larger family is summed up by
its fastest variant whose loss is not significantly worse (the interval reaches zero or
below) and its lowest-loss variant. Variants whose status is not ok are named with it.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import text
from .analysis import Analysis
from .load import Variant

MAX_LISTED = 4


@dataclass
class Headline:
    family: str
    sentence: str  # without the family name, ends with "."

    def plain(self) -> str:
        return f"{self.family} — {self.sentence}"


def _describe(a: Analysis, v: Variant) -> str:
    m = a.metrics[v.id]
    speed = f"{text.speedup(m.speedup)} speed"
    if m.loss_delta_pct is None:
        return f"{a.shown_label(v)}: {speed}, loss not measured"
    return (f"{a.shown_label(v)}: {speed}, "
            f"{text.loss_change(m.loss_delta_pct, m.loss_delta_pct_halfwidth, 'loss')}")


def _not_worse(a: Analysis, v: Variant) -> bool:
    ci = a.metrics[v.id].loss_delta_pct_ci95
    return ci is None or ci[0] <= 0


def family_headline(a: Analysis, family: str) -> Headline:
    members = a.members(family)
    ok = [v for v in members if v.ok]
    compared = [v for v in ok if a.metrics[v.id].speedup is not None]
    parts: list[str] = []
    base = a.baseline
    if ok and not compared:
        if base is None:
            why = f"the baseline {a.results.baseline_id or ''} is not in this file".replace("  ", " ")
        elif not base.ok:
            why = f"the baseline is {base.status}"
        else:
            why = "no comparison recorded"
        parts.append(f"{len(ok)} ok, not compared with the baseline ({why})")
    elif len(compared) <= MAX_LISTED:
        parts += [_describe(a, v) for v in compared]
    else:
        by_speed = sorted(compared, key=lambda v: -(a.metrics[v.id].speedup or 0))
        fast = next((v for v in by_speed if _not_worse(a, v)), by_speed[0])
        qualifier = ("fastest without a significant loss increase" if _not_worse(a, fast)
                     else "fastest (every variant's loss is significantly worse)")
        parts.append(f"{qualifier}, {_describe(a, fast)}")
        with_loss = [v for v in compared if a.metrics[v.id].loss_delta_pct is not None]
        if with_loss:
            best = min(with_loss, key=lambda v: a.metrics[v.id].loss_delta_pct or 0.0)
            if best is not fast:
                parts.append(f"lowest loss, {_describe(a, best)}")
        parts.append(f"{len(compared) - len(parts)} more in the table")
    for v in members:
        if not v.ok:
            parts.append(f"{a.label(v)}: {v.status}")
    return Headline(family, "; ".join(parts) + ".")


def headlines(a: Analysis) -> list[Headline]:
    out = [family_headline(a, f) for f in a.classes.families]
    base = a.baseline
    if base is not None and not base.ok:
        out.insert(0, Headline("baseline", f"{a.label(base)} is {base.status}: {base.reason}"
                               .rstrip(": ") + "; nothing to compare against."))
    return out
