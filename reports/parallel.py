"""The `parallel` object of a result line (docs/parallel.md), read once per variant: the
process grid, its split family, communication per dimension, the pipeline bubble and each
rank's memory. Lines without the object, or with world size 1, are single processes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .load import Results, Variant

DIMS = ("data", "tensor", "pipeline")


def _num(x: Any) -> float | None:
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


def _int(x: Any, default: int) -> int:
    n = _num(x)
    return int(n) if n is not None else default


@dataclass
class Comm:
    """One dimension's communication per optimizer step (medians over the timed steps)."""

    bytes_per_step: float = 0.0
    seconds_per_step: float = 0.0
    calls_per_step: float = 0.0
    exposed_s: float | None = None
    overlapped_s: float | None = None

    @staticmethod
    def of(d: Any) -> "Comm | None":
        if not isinstance(d, dict):
            return None
        return Comm(bytes_per_step=_num(d.get("bytes_per_step")) or 0.0,
                    seconds_per_step=_num(d.get("seconds_per_step")) or 0.0,
                    calls_per_step=_num(d.get("calls_per_step")) or 0.0,
                    exposed_s=_num(d.get("exposed_s")), overlapped_s=_num(d.get("overlapped_s")))


@dataclass
class Rank:
    rank: int
    dp_rank: int
    tp_rank: int
    pp_rank: int
    step_s: float | None
    memory: dict[str, float] = field(default_factory=dict)  # category → peak bytes

    @property
    def coords(self) -> str:
        return f"dp{self.dp_rank} tp{self.tp_rank} pp{self.pp_rank}"

    @property
    def memory_sum(self) -> float:
        return sum(self.memory.values())


@dataclass
class Parallel:
    dp: int = 1
    tp: int = 1
    pp: int = 1
    world_size: int = 1
    pp_schedule: str | None = None
    virtual_stages: int = 1
    zero: int = 0
    sequence_parallel: bool = False
    micro_batches: int | None = None
    comm_backend: str | None = None
    communication: dict[str, Comm] = field(default_factory=dict)  # dimensions recorded
    bubble_measured: float | None = None
    bubble_recorded_analytic: float | None = None
    ranks: list[Rank] = field(default_factory=list)

    @property
    def is_parallel(self) -> bool:
        return self.world_size > 1

    @property
    def bubble_analytic(self) -> float | None:
        """(p − 1)/(m + p − 1): the line's value, else computed from pp and micro-batches."""
        if self.bubble_recorded_analytic is not None:
            return self.bubble_recorded_analytic
        if self.micro_batches:
            return (self.pp - 1) / (self.micro_batches + self.pp - 1)
        return None

    def _options(self) -> list[str]:
        out = []
        if self.zero:
            out.append(f"ZeRO-{self.zero}")
        if self.sequence_parallel:
            out.append("SP")
        return out

    def _schedule(self) -> str:
        s = self.pp_schedule or "pipeline"
        return f"interleaved {s}, v={self.virtual_stages}" if self.virtual_stages > 1 else s

    @property
    def family(self) -> str:
        """The split family of the scaling plot: "dp only", "tp only", "pp only (1f1b)",
        "dp × tp", "dp × pp (gpipe)", …, with ZeRO-1 / SP; "single process" for one rank."""
        dims = [n for n, k in (("dp", self.dp), ("tp", self.tp), ("pp", self.pp)) if k > 1]
        if not dims:
            return "single process"
        name = f"{dims[0]} only" if len(dims) == 1 else " × ".join(dims)
        extras = ([self._schedule()] if self.pp > 1 else []) + self._options()
        return name + (f" ({', '.join(extras)})" if extras else "")

    @property
    def split(self) -> str:
        """The grid in a few words: "dp2 × tp2", "pp2 (1f1b, m=4)", "single process"."""
        dims = [f"{n}{k}" for n, k in (("dp", self.dp), ("tp", self.tp), ("pp", self.pp)) if k > 1]
        if not dims:
            return "single process"
        extras = []
        if self.pp > 1:
            extras.append(self._schedule())
        if self.micro_batches:
            extras.append(f"m={self.micro_batches}")
        extras += self._options()
        return " × ".join(dims) + (f" ({', '.join(extras)})" if extras else "")

    def comm_seconds(self, dim: str) -> float:
        c = self.communication.get(dim)
        return c.seconds_per_step if c else 0.0

    @property
    def largest_rank(self) -> Rank | None:
        """The rank whose category peaks sum highest (the one that sets the memory need)."""
        with_memory = [r for r in self.ranks if r.memory]
        return max(with_memory, key=lambda r: (r.memory_sum, -r.rank)) if with_memory else None


def parallel_of(v: Variant) -> Parallel | None:
    """The line's parallel object, read; None when the line has none."""
    p = v.get("parallel")
    if not isinstance(p, dict):
        return None
    dp, tp, pp = _int(p.get("dp"), 1), _int(p.get("tp"), 1), _int(p.get("pp"), 1)
    out = Parallel(dp=dp, tp=tp, pp=pp, world_size=_int(p.get("world_size"), dp * tp * pp),
                   pp_schedule=p.get("pp_schedule") if isinstance(p.get("pp_schedule"), str) else None,
                   virtual_stages=_int(p.get("virtual_stages"), 1), zero=_int(p.get("zero"), 0),
                   sequence_parallel=p.get("sequence_parallel") is True,
                   micro_batches=_int(p.get("micro_batches"), 0) or None,
                   comm_backend=p.get("comm_backend") if isinstance(p.get("comm_backend"), str) else None)
    comm = p.get("communication")
    if isinstance(comm, dict):
        for dim, d in comm.items():
            c = Comm.of(d)
            if c is not None:
                out.communication[str(dim)] = c
    bubble = p.get("bubble")
    if isinstance(bubble, dict):
        out.bubble_measured = _num(bubble.get("measured_fraction"))
        out.bubble_recorded_analytic = _num(bubble.get("analytic_fraction"))
    for r in p.get("ranks") or []:
        if not isinstance(r, dict):
            continue
        mem = r.get("memory_peak_bytes")
        out.ranks.append(Rank(rank=_int(r.get("rank"), len(out.ranks)), dp_rank=_int(r.get("dp_rank"), 0),
                              tp_rank=_int(r.get("tp_rank"), 0), pp_rank=_int(r.get("pp_rank"), 0),
                              step_s=_num(r.get("step_s")),
                              memory={str(k): _num(b) or 0.0 for k, b in mem.items()}
                              if isinstance(mem, dict) else {}))
    out.ranks.sort(key=lambda r: r.rank)
    return out


def world_size(v: Variant) -> int:
    p = parallel_of(v)
    return p.world_size if p is not None else 1


def is_parallel(v: Variant) -> bool:
    return world_size(v) > 1


def has_parallel(results: Results) -> bool:
    """Whether any line (of any status) is a parallel run: the report's parallel views."""
    return any(is_parallel(v) for v in results.variants)
