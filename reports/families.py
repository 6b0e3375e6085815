"""Strategy families and point labels, inferred from the sweep axes (docs/reports.md).

Each sweep axis belongs to a family (`precision` → precision, `checkpoint_interval` and
`checkpoint_selective` → checkpointing, `micro_batch` and `global_batch` → batch, …; an axis
this module does not know is a family of its own). A variant's family is the family of the
axes on which it differs from the baseline; hyperparameter axes (`lr`, `weight_decay`, …)
that change together with a strategy axis go with the strategy (an optimizer swept with its
own learning rate is an optimizer variant). A variant that differs in several families
belongs to their combination ("batch + checkpointing"), which gets its own panel. Without a
baseline line, every axis whose value varies across the file counts as differing.

A point's label names what differs from the baseline, shortest first: "bf16", "k=2",
"selective", "mb=8", "lamb, lr=0.01".
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from .load import Results, Variant

FAMILY_OF_AXIS: dict[str, str] = {
    "precision": "precision",
    "loss_scaling": "precision",
    "loss_scale_init": "precision",
    "loss_scale_growth_interval": "precision",
    "fp8_amax_history": "precision",
    "fp8_margin": "precision",
    "checkpoint_interval": "checkpointing",
    "checkpoint_selective": "checkpointing",
    "optimizer": "optimizer",
    "micro_batch": "batch",
    "global_batch": "batch",
    "preset": "model size",
    "layers": "model size",
    "width_scale": "model size",
    "d_model": "model size",
    "heads": "model size",
    "seq": "sequence length",
    "vocab": "vocabulary",
    "lr": "hyperparameters",
    "lr_schedule": "hyperparameters",
    "lr_warmup_steps": "hyperparameters",
    "min_lr_ratio": "hyperparameters",
    "weight_decay": "hyperparameters",
    "grad_clip": "hyperparameters",
    "beta1": "hyperparameters",
    "beta2": "hyperparameters",
    "momentum": "hyperparameters",
    "device": "device",
    "threads": "threads",
    "data": "data",
    "data_format": "data",
    "markov_branching": "data",
    "memory_limit_bytes": "memory limit",
    # Parallel runs (docs/parallel.md): the split of the job over ranks.
    "dp": "parallelism",
    "tp": "parallelism",
    "pp": "parallelism",
    "pp_schedule": "parallelism",
    "virtual_stages": "parallelism",
    "zero": "parallelism",
    "sequence_parallel": "parallelism",
    "bucket_mb": "parallelism",
}
# Axes that qualify another one: shown in a label with it even where they equal the
# baseline's ("pp2, 1f1b" beside "pp2, gpipe").
QUALIFIERS: dict[str, tuple[str, ...]] = {"pp": ("pp_schedule", "virtual_stages")}
# Families that follow a strategy when they change together with one.
COMPANION_FAMILIES = frozenset({"hyperparameters"})
BASELINE = "baseline"

# Short names for a value on an axis: "{}" is the compact value.
_SHORT: dict[str, str] = {
    "micro_batch": "mb={}", "global_batch": "gb={}", "checkpoint_interval": "k={}",
    "layers": "L={}", "width_scale": "width×{}", "d_model": "d={}", "heads": "heads={}",
    "seq": "T={}", "vocab": "V={}", "weight_decay": "wd={}", "lr_warmup_steps": "warmup={}",
    "threads": "threads={}", "markov_branching": "branching={}",
    "loss_scaling": "loss scaling {}", "loss_scale_init": "scale₀={}",
    "loss_scale_growth_interval": "growth={}", "fp8_amax_history": "amax history={}",
    "fp8_margin": "margin={}",
    "dp": "dp{}", "tp": "tp{}", "pp": "pp{}", "virtual_stages": "v={}",
    "bucket_mb": "bucket {} MiB",
}


def axis_family(axis: str) -> str:
    return FAMILY_OF_AXIS.get(axis, axis)


def compact(value: Any) -> str:
    """A value as the variant id prints it: strings bare, numbers and null as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def human_bytes(n: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def short_label(axis: str, value: Any) -> str:
    """One axis value as a point label: "bf16", "k=2", "selective", "mb=8", "lr=0.01"."""
    if axis in ("precision", "optimizer", "device", "preset", "lr_schedule", "data_format"):
        return compact(value)
    if axis == "checkpoint_selective":
        return "selective" if value is True else "not selective" if value is False else compact(value)
    if axis == "checkpoint_interval" and value == 0:
        return "no checkpointing"
    if axis == "memory_limit_bytes":
        return "no limit" if value == 0 else f"limit {human_bytes(value)}" if isinstance(
            value, (int, float)) else compact(value)
    if axis == "data" and isinstance(value, str):
        return value if value == "synthetic" else PurePath(value).name
    if axis == "lr" and value is None:
        return "preset lr"
    if axis == "pp_schedule" and isinstance(value, str):
        return value
    if axis == "zero" and value in (0, 1):
        return "ZeRO-1" if value == 1 else "no ZeRO"
    if axis == "sequence_parallel" and isinstance(value, bool):
        return "SP" if value else "no SP"
    return _SHORT.get(axis, axis + "={}").format(compact(value))


@dataclass
class Classified:
    """Each variant's family and label, and the families in order of first appearance."""

    family: dict[str, str] = field(default_factory=dict)  # variant id → family
    label: dict[str, str] = field(default_factory=dict)   # variant id → point label
    differing: dict[str, list[str]] = field(default_factory=dict)  # id → axes differing
    families: list[str] = field(default_factory=list)     # without the baseline's; single
                                                          # families first, then combinations

    def members(self, results: Results, family: str) -> list[Variant]:
        return [v for v in results.variants if self.family[v.id] == family]


def _reference(results: Results) -> dict[str, Any] | None:
    b = results.baseline
    return b.keys if b is not None else None


def _varying_axes(results: Results) -> list[str]:
    out = []
    for axis in results.axes:
        values = {json.dumps(v.keys.get(axis), sort_keys=True) for v in results.variants}
        if len(values) > 1:
            out.append(axis)
    return out


def family_of_axes(axes: list[str]) -> str:
    """The family of a set of differing axes (in axis order)."""
    fams: list[str] = []
    for a in axes:
        f = axis_family(a)
        if f not in fams:
            fams.append(f)
    primary = [f for f in fams if f not in COMPANION_FAMILIES]
    chosen = primary or fams
    return " + ".join(chosen) if chosen else BASELINE


def classify(results: Results) -> Classified:
    c = Classified()
    ref = _reference(results)
    varying = _varying_axes(results)
    for v in results.variants:
        keys = v.keys
        if ref is None:
            diff = [a for a in varying if a in keys]
        else:
            diff = [a for a in results.axes
                    if json.dumps(keys.get(a), sort_keys=True) != json.dumps(ref.get(a), sort_keys=True)]
        c.differing[v.id] = diff
        if v.is_baseline:
            c.family[v.id] = BASELINE
            shown = [short_label(a, keys[a]) for a in results.axes if a in keys]
            c.label[v.id] = "baseline" + (f" ({', '.join(shown)})" if shown and len(shown) <= 2 else "")
            continue
        fam = family_of_axes(diff) if diff else (family_of_axes(list(keys)) if keys else BASELINE)
        c.family[v.id] = fam
        # Strategy axes first, then their companions: "lamb, lr=0.01, wd=0.01".
        ordered = sorted(diff, key=lambda a: axis_family(a) in COMPANION_FAMILIES)
        for a in list(ordered):
            for q in QUALIFIERS.get(a, ()):
                if q in keys and q not in ordered and not (q == "virtual_stages" and keys[q] == 1):
                    ordered.insert(ordered.index(a) + 1, q)
        c.label[v.id] = ", ".join(short_label(a, keys[a]) for a in ordered) or v.id
        if fam not in c.families:
            c.families.append(fam)
    # Single families first, combinations after, each in order of first appearance.
    first_seen = list(c.families)
    c.families.sort(key=lambda f: (f.count(" + "), first_seen.index(f)))
    _dedupe_labels(results, c)
    return c


def _dedupe_labels(results: Results, c: Classified) -> None:
    """Two variants must not share a label (e.g. without a baseline); fall back to ids."""
    count: dict[str, int] = {}
    for v in results.variants:
        count[c.label[v.id]] = count.get(c.label[v.id], 0) + 1
    for v in results.variants:
        if count[c.label[v.id]] > 1:
            c.label[v.id] = v.id
