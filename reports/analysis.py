"""Everything a report is drawn from, computed once: the results, each variant's family,
label and numbers, the display order, and which variants stay out of the plots and why."""
from __future__ import annotations

from dataclasses import dataclass, field

from .families import BASELINE, Classified, classify
from .load import Results, Variant
from .metrics import Metrics, all_metrics
from .parallel import Parallel, parallel_of


@dataclass
class Analysis:
    results: Results
    classes: Classified
    metrics: dict[str, Metrics]
    order: list[Variant]  # baseline first, then family by family, each in file order
    parallel: dict[str, Parallel | None] = field(default_factory=dict)  # id → parallel object

    @property
    def has_parallel(self) -> bool:
        """Some line (of any status) is a parallel run (world size > 1): the parallel views."""
        return any(p is not None and p.is_parallel for p in self.parallel.values())

    def grid(self, v: Variant) -> Parallel | None:
        """The variant's parallel object when it ran on more than one rank, else None."""
        p = self.parallel.get(v.id)
        return p if p is not None and p.is_parallel else None

    def family(self, v: Variant) -> str:
        return self.classes.family[v.id]

    def label(self, v: Variant) -> str:
        return self.classes.label[v.id]

    def emulated(self, v: Variant) -> bool:
        """The variant's number formats were emulated (precision.execution): its accuracy
        effect is real, its speed is not what hardware with the formats would give."""
        return v.get("precision.execution") == "emulated"

    def shown_label(self, v: Variant) -> str:
        """The label where speed is shown: marked when the precision was emulated."""
        return self.label(v) + (" (emulated)" if self.emulated(v) else "")

    def emulated_note(self, variants: list[Variant]) -> str:
        emu = [self.label(v) for v in variants if self.emulated(v)]
        if not emu:
            return ""
        return ("Emulated precision (the device lacks the arithmetic; operands rounded, "
                "multiplied in fp32): " + ", ".join(emu) + ". Their loss is real, their speed and "
                "memory are not what native hardware would give.")

    @property
    def baseline(self) -> Variant | None:
        return self.results.baseline

    @property
    def ok(self) -> list[Variant]:
        """Variants the plots draw: status ok, in display order."""
        return [v for v in self.order if v.ok]

    @property
    def not_ok(self) -> list[Variant]:
        return [v for v in self.order if not v.ok]

    def members(self, family: str) -> list[Variant]:
        return [v for v in self.order if self.family(v) == family]

    def not_plotted_note(self) -> str:
        """One sentence naming the variants left out of every plot, or ""."""
        if not self.not_ok:
            return ""
        parts = [f"{self.label(v)} ({v.status})" for v in self.not_ok]
        return "Not plotted (status not ok): " + ", ".join(parts) + "."


def analyse(results: Results) -> Analysis:
    classes = classify(results)
    rank = {f: i for i, f in enumerate(classes.families)}
    def key(v: Variant) -> tuple[int, int, int]:
        fam = classes.family[v.id]
        return (0 if fam == BASELINE else 1, rank.get(fam, len(rank)), results.variants.index(v))
    order = sorted(results.variants, key=key)
    return Analysis(results=results, classes=classes, metrics=all_metrics(results), order=order,
                    parallel={v.id: parallel_of(v) for v in results.variants})
