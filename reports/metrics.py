"""The numbers a report shows per variant, derived once from a result line."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .load import Results, Variant


def _finite(x: object) -> float | None:
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


def _pair(x: object) -> tuple[float, float] | None:
    if isinstance(x, list) and len(x) == 2:
        lo, hi = _finite(x[0]), _finite(x[1])
        if lo is not None and hi is not None:
            return (lo, hi)
    return None


@dataclass
class Metrics:
    step_median_s: float | None = None
    step_p10_s: float | None = None
    step_p90_s: float | None = None
    tokens_per_step: float | None = None
    tokens_per_s: float | None = None
    mfu: float | None = None
    peak_total_bytes: float | None = None
    eval_loss_mean: float | None = None
    eval_loss_ci95: tuple[float, float] | None = None
    entropy_floor: float | None = None
    seeds: int = 0
    # Speedup in tokens/s (this variant's ÷ the baseline's). Lines written since 2026-12-01
    # carry it as vs_baseline.speedup, with the step-time ratio beside it as
    # vs_baseline.step_time_ratio. Older lines lack step_time_ratio: their speedup is the
    # step-time ratio, converted here by (this variant's tokens per step ÷ the baseline's).
    # A micro-batch sweep without a fixed global batch, or a parallel split, changes the
    # tokens per step, and a slower step of twice the tokens is still faster per token.
    speedup: float | None = None
    speedup_ci95: tuple[float, float] | None = None
    step_speedup: float | None = None          # baseline median step time ÷ this one
    tokens_ratio: float = 1.0                  # tokens per step ÷ the baseline's
    loss_delta: float | None = None
    loss_delta_ci95: tuple[float, float] | None = None
    loss_delta_pct: float | None = None                    # ÷ baseline mean, in percent
    loss_delta_pct_ci95: tuple[float, float] | None = None

    @property
    def loss_delta_pct_halfwidth(self) -> float | None:
        if self.loss_delta_pct_ci95 is None:
            return None
        lo, hi = self.loss_delta_pct_ci95
        return (hi - lo) / 2

    @property
    def comparable(self) -> bool:
        """Has both a speedup and a loss delta: a point on the speedup-accuracy plot."""
        return self.speedup is not None and self.loss_delta_pct is not None


def baseline_loss_mean(results: Results) -> float | None:
    """The baseline's mean eval loss: its own line's, else derived from a delta and its ratio."""
    b = results.baseline
    if b is not None:
        m = _finite(b.get("accuracy.eval_loss_mean"))
        if m is not None:
            return m
    for v in results.variants:
        d, r = _finite(v.get("vs_baseline.loss_delta")), _finite(v.get("vs_baseline.loss_delta_rel"))
        if d is not None and r:
            return d / r
    return None


def baseline_tokens_per_step(results: Results) -> float | None:
    b = results.baseline
    return _finite(b.get("throughput.tokens_per_step")) if b is not None else None


def metrics(v: Variant, base_loss: float | None, base_tokens: float | None = None) -> Metrics:
    m = Metrics()
    m.step_median_s = _finite(v.get("timing.step_s.median"))
    m.step_p10_s = _finite(v.get("timing.step_s.p10"))
    m.step_p90_s = _finite(v.get("timing.step_s.p90"))
    m.tokens_per_step = _finite(v.get("throughput.tokens_per_step"))
    m.tokens_per_s = _finite(v.get("throughput.tokens_per_s"))
    m.mfu = _finite(v.get("throughput.mfu"))
    m.peak_total_bytes = _finite(v.get("memory.peak_total_bytes"))
    m.eval_loss_mean = _finite(v.get("accuracy.eval_loss_mean"))
    m.eval_loss_ci95 = _pair(v.get("accuracy.eval_loss_ci95"))
    m.entropy_floor = _finite(v.get("accuracy.entropy_floor"))
    losses = v.get("accuracy.eval_loss")
    m.seeds = len(losses) if isinstance(losses, list) else 0
    if v.is_baseline and v.ok:
        m.speedup, m.speedup_ci95, m.step_speedup = 1.0, (1.0, 1.0), 1.0
        if m.eval_loss_mean is not None:
            m.loss_delta, m.loss_delta_ci95 = 0.0, (0.0, 0.0)
            m.loss_delta_pct, m.loss_delta_pct_ci95 = 0.0, (0.0, 0.0)
        return m
    if m.tokens_per_step and base_tokens:
        m.tokens_ratio = m.tokens_per_step / base_tokens
    if v.get("vs_baseline.step_time_ratio") is not None:
        # Schema of 2026-12-01: speedup is already the throughput ratio.
        m.speedup = _finite(v.get("vs_baseline.speedup"))
        m.speedup_ci95 = _pair(v.get("vs_baseline.speedup_ci95"))
        m.step_speedup = _finite(v.get("vs_baseline.step_time_ratio"))
    else:
        # Older lines: speedup is the step-time ratio.
        m.step_speedup = _finite(v.get("vs_baseline.speedup"))
        ci = _pair(v.get("vs_baseline.speedup_ci95"))
        if m.step_speedup is not None:
            m.speedup = m.step_speedup * m.tokens_ratio
            m.speedup_ci95 = (ci[0] * m.tokens_ratio, ci[1] * m.tokens_ratio) if ci else None
    m.loss_delta = _finite(v.get("vs_baseline.loss_delta"))
    m.loss_delta_ci95 = _pair(v.get("vs_baseline.loss_delta_ci95"))
    rel = _finite(v.get("vs_baseline.loss_delta_rel"))
    if rel is not None:
        m.loss_delta_pct = 100.0 * rel
    elif m.loss_delta is not None and base_loss:
        m.loss_delta_pct = 100.0 * m.loss_delta / base_loss
    if m.loss_delta_ci95 is not None and base_loss:
        lo, hi = m.loss_delta_ci95
        m.loss_delta_pct_ci95 = (100.0 * lo / base_loss, 100.0 * hi / base_loss)
    return m


def all_metrics(results: Results) -> dict[str, Metrics]:
    base, tokens = baseline_loss_mean(results), baseline_tokens_per_step(results)
    return {v.id: metrics(v, base, tokens) for v in results.variants}
