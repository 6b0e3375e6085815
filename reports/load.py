"""Reads and checks a results file (docs/results-schema.md, schema version 1).

Every problem is a ReportError whose text is one line naming the file and, where there is
one, the 1-based line: "PATH:LINE: what". The rules follow the C++ reader
(harness/results/results_file.cpp), so `trainbench compare` and the report agree on what a
valid file is:

- a missing, unreadable or empty file is an error;
- every line is one JSON object ending in "\\n"; a blank line, a line that is not valid JSON
  and a final line without its "\\n" (what a crash in the middle of a write leaves; `trainbench
  run --resume` cuts it away) are errors;
- `schema_version` must be 1; `variant` (`index`, `id`, `keys`, `baseline`), `status` and
  `scenario.name` must be present with their types; the sections a report draws from
  (`timing`, `throughput`, `memory`, `accuracy`, `vs_baseline`) are checked where present,
  and an `ok` line must have `timing`, `throughput` and `memory`;
- one scenario per file, each variant id once, at most one baseline.

Keys the report does not know (newer, additive fields) are kept and shown as they are.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

SCHEMA_VERSION = 1
STATUSES = ("ok", "oom", "diverged", "unsupported", "error")


class ReportError(Exception):
    """A one-line, user-facing error: "FILE:LINE: what" or "FILE: what"."""


def _shown(value: Any) -> str:
    """A JSON value in a message: compact, one line, cut to a readable length."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class Variant:
    """One result line."""

    line_no: int
    data: dict[str, Any]

    @property
    def index(self) -> int:
        return int(self.data["variant"]["index"])

    @property
    def id(self) -> str:
        return str(self.data["variant"]["id"])

    @property
    def keys(self) -> dict[str, Any]:
        return dict(self.data["variant"]["keys"])

    @property
    def is_baseline(self) -> bool:
        return bool(self.data["variant"]["baseline"])

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def reason(self) -> str:
        return str(self.data.get("reason", ""))

    def get(self, dotted: str, default: Any = None) -> Any:
        """The value at a dotted path ("timing.step_s.median"), or default when absent."""
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node


@dataclass
class Results:
    """A whole results file: its variants in file order and what they share."""

    path: Path
    variants: list[Variant]
    axes: list[str] = field(default_factory=list)  # sweep axes in the scenario file's order

    @property
    def scenario(self) -> dict[str, Any]:
        return dict(self.variants[0].data["scenario"])

    @property
    def baseline(self) -> Variant | None:
        for v in self.variants:
            if v.is_baseline:
                return v
        return None

    @property
    def baseline_id(self) -> str | None:
        """The baseline's id: its own line's, else what other lines compared with."""
        b = self.baseline
        if b is not None:
            return b.id
        for v in self.variants:
            bid = v.get("vs_baseline.baseline_id")
            if isinstance(bid, str):
                return bid
        return None


# ---- type checks ----------------------------------------------------------------------------

def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _number(x: Any) -> bool:
    return _is_number(x)


def _number_or_null(x: Any) -> bool:
    return x is None or _is_number(x)


def _pair(x: Any) -> bool:
    """[lo, hi]; an end may be null (a NaN the writer could not store as JSON)."""
    return isinstance(x, list) and len(x) == 2 and all(_number_or_null(e) for e in x)


def _pair_or_null(x: Any) -> bool:
    return x is None or _pair(x)


def _numbers(x: Any) -> bool:
    return isinstance(x, list) and all(_number_or_null(e) for e in x)


def _object(x: Any) -> bool:
    return isinstance(x, dict)


def _objects(x: Any) -> bool:
    return isinstance(x, list) and all(isinstance(e, dict) for e in x)


def _curve(x: Any) -> bool:
    return isinstance(x, list) and all(
        isinstance(p, dict) and _is_number(p.get("step")) and _numbers(p.get("eval_loss"))
        for p in x)


_EXPECTED = {_number: "a number", _number_or_null: "a number or null", _pair: "[lo, hi]",
             _pair_or_null: "[lo, hi] or null",
             _numbers: "an array of numbers", _object: "an object", _objects: "an array of objects",
             _curve: "an array of {step, eval_loss: [numbers]}"}

Check = tuple[str, Callable[[Any], bool]]

# Fields an ok line must have (the schema's required set for ok, as far as the report reads).
_OK_REQUIRED: list[Check] = [
    ("timing", _object), ("timing.step_s", _object), ("timing.step_s.median", _number),
    ("timing.phases_s", _object), ("throughput", _object), ("throughput.tokens_per_s", _number),
    ("memory", _object), ("memory.peak_bytes", _object), ("memory.peak_total_bytes", _number),
]
# Fields checked only when present.
_OPTIONAL: list[Check] = [
    ("timing.step_s.p10", _number), ("timing.step_s.p90", _number),
    ("timing.samples_s", _numbers), ("throughput.mfu", _number_or_null),
    ("throughput.tokens_per_step", _number), ("memory.limit_bytes", _number),
    ("accuracy", _object), ("accuracy.eval_loss", _numbers),
    ("accuracy.eval_loss_mean", _number), ("accuracy.eval_loss_ci95", _pair),
    ("accuracy.entropy_floor", _number_or_null), ("accuracy.curve", _curve),
    ("vs_baseline", _object), ("vs_baseline.speedup", _number),
    ("vs_baseline.speedup_ci95", _pair), ("vs_baseline.step_time_ratio", _number),
    ("vs_baseline.step_time_ratio_ci95", _pair), ("vs_baseline.loss_delta", _number),
    ("vs_baseline.loss_delta_ci95", _pair), ("vs_baseline.loss_delta_rel", _number),
    ("throughput.tokens_per_s_per_rank", _number),
    # Time to target (docs/results-schema.md).
    ("accuracy.target", _object), ("accuracy.time_to_target", _object),
    ("accuracy.time_to_target.per_seed", _objects),
    ("accuracy.time_to_target.seeds_run", _number),
    ("accuracy.time_to_target.seeds_reached", _number),
    ("vs_baseline.time_to_target_speedup", _number_or_null),
    ("vs_baseline.time_to_target_speedup_ci95", _pair_or_null),
    ("vs_baseline.steps_to_target_ratio", _number_or_null),
    ("vs_baseline.steps_to_target_ratio_ci95", _pair_or_null),
    # Parallel runs (docs/parallel.md).
    ("parallel", _object), ("parallel.dp", _number), ("parallel.tp", _number),
    ("parallel.pp", _number), ("parallel.world_size", _number),
    ("parallel.micro_batches", _number), ("parallel.communication", _object),
    ("parallel.bubble", _object), ("parallel.bubble.measured_fraction", _number_or_null),
    ("parallel.bubble.analytic_fraction", _number_or_null), ("parallel.ranks", _objects),
]

_MISSING = object()


def _lookup(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _check_line(path: str, n: int, j: Any) -> None:
    def fail(what: str) -> ReportError:
        return ReportError(f"{path}:{n}: {what}")

    if not isinstance(j, dict):
        kind = {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
            type(j), "number")
        raise fail(f"expected a JSON object (one result per line), got {kind}")
    if "schema_version" not in j:
        raise fail(f"missing schema_version (this report reads version {SCHEMA_VERSION})")
    version = j["schema_version"]
    if not _is_int(version) or version != SCHEMA_VERSION:
        raise fail(f"unsupported schema_version {_shown(version)} "
                   f"(this report reads version {SCHEMA_VERSION})")
    variant = j.get("variant")
    if not isinstance(variant, dict):
        raise fail('missing variant (an object with "index", "id", "keys" and "baseline")')
    for key, ok, expected in (("id", lambda x: isinstance(x, str) and x != "", "a non-empty string"),
                              ("index", lambda x: _is_int(x) and x >= 0, "an integer >= 0"),
                              ("keys", _object, "an object"),
                              ("baseline", lambda x: isinstance(x, bool), "true or false")):
        if key not in variant:
            raise fail(f"missing variant.{key} ({expected})")
        if not ok(variant[key]):
            raise fail(f"variant.{key} is {_shown(variant[key])} (expected {expected})")
    status = j.get("status")
    if not isinstance(status, str) or not status:
        raise fail("missing status (a string: " + ", ".join(STATUSES) + ")"
                   if status is None else f"status is {_shown(status)} (expected a string)")
    scenario = j.get("scenario")
    if not isinstance(scenario, dict) or not isinstance(scenario.get("name"), str):
        raise fail('missing scenario.name (a string)')
    if "reason" in j and not isinstance(j["reason"], str):
        raise fail(f"reason is {_shown(j['reason'])} (expected a string)")
    required = _OK_REQUIRED if status == "ok" else []
    for dotted, ok in required:
        value = _lookup(j, dotted)
        if value is _MISSING:
            raise fail(f"status ok but {dotted} is missing (expected {_EXPECTED[ok]})")
        if not ok(value):
            raise fail(f"{dotted} is {_shown(value)} (expected {_EXPECTED[ok]})")
    for dotted, ok in _OPTIONAL:
        value = _lookup(j, dotted)
        if value is not _MISSING and not ok(value):
            raise fail(f"{dotted} is {_shown(value)} (expected {_EXPECTED[ok]})")


def _parse_constant(name: str) -> float:
    # The writer stores NaN as null; accept the bare tokens Python's own json would write.
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]


def _split_lines(path: str, raw: bytes) -> Iterable[tuple[int, bytes]]:
    """(1-based line number, line without its newline); errors on a blank or unfinished line."""
    if not raw:
        raise ReportError(f"{path}:1: empty results file (no results)")
    lines = raw.split(b"\n")
    last = lines.pop()  # after the final "\n": b"" for a complete file
    for i, text in enumerate(lines, start=1):
        yield i, text
    if last:
        raise ReportError(
            f"{path}:{len(lines) + 1}: truncated mid-line (no final newline; a run that crashed "
            "while writing? `trainbench run --resume` cuts it away)")


def _axis_order(keys: dict[str, Any], vid: str) -> list[str]:
    """The sweep axes in the scenario file's order: the order of their `key=` in the id
    (`variant.keys` is an object, whose key order the writer does not keep)."""
    def position(k: str) -> int:
        m = re.search(r"(?:^|,)" + re.escape(k) + "=", vid)
        return m.start() if m else len(vid) + 1
    return sorted(keys, key=lambda k: (position(k), k))


def read_results(path: str | Path) -> Results:
    """Reads and checks every line of `path`; raises ReportError (one line) on any problem."""
    p = Path(path)
    shown = str(path)
    try:
        if p.is_dir():
            raise ReportError(f"{shown}: cannot open results file: is a directory "
                              "(expected DIR/results.jsonl)")
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ReportError(f"{shown}: cannot open results file: No such file or directory") from None
    except OSError as e:
        raise ReportError(f"{shown}: cannot open results file: {e.strerror or e}") from None

    variants: list[Variant] = []
    seen: dict[str, int] = {}
    baseline_line = 0
    scenario_name: str | None = None
    for n, text in _split_lines(shown, raw):
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ReportError(f"{shown}:{n}: not valid UTF-8 at byte {e.start + 1}") from None
        if not decoded.strip(" \t\r"):
            raise ReportError(f"{shown}:{n}: blank line (expected one JSON object per line)")
        try:
            j = json.loads(decoded, parse_constant=_parse_constant)
        except json.JSONDecodeError as e:
            raise ReportError(f"{shown}:{n}: not valid JSON: {e.msg} at column {e.colno}") from None
        except RecursionError:
            raise ReportError(f"{shown}:{n}: not valid JSON: nested too deeply") from None
        _check_line(shown, n, j)
        v = Variant(n, j)
        name = j["scenario"]["name"]
        if scenario_name is None:
            scenario_name = name
        elif name != scenario_name:
            raise ReportError(f"{shown}:{n}: scenario {_shown(name)} (expected {_shown(scenario_name)} "
                              "as on line 1: one scenario per results file)")
        if v.id in seen:
            raise ReportError(f"{shown}:{n}: variant {_shown(v.id)} again (first on line "
                              f"{seen[v.id]}; expected each variant once)")
        seen[v.id] = n
        if v.is_baseline:
            if baseline_line:
                raise ReportError(f"{shown}:{n}: a second baseline, {_shown(v.id)} (the first is "
                                  f"on line {baseline_line}; expected one)")
            baseline_line = n
        variants.append(v)

    axes: list[str] = []
    for v in variants:
        for k in _axis_order(v.keys, v.id):
            if k not in axes:
                axes.append(k)
    return Results(path=p, variants=variants, axes=axes)
