"""Reads and checks a capacity plan: the JSON `trainbench plan --json FILE` writes, schema
"trainbench.plan/1" (docs/planner.md; the report: docs/reports.md, *Plan report*).

Every problem is a ReportError whose text is one line naming the file: "PATH: what
(expected …)", fields named by their path in the document ("configurations[3].iteration_s").
The checks cover what the report draws from: the schema, `inputs`, `hardware`,
`calibration` (source "datasheet" or "file"), `configurations` (each with its rank, split,
iteration time, tokens/s, memory total and time to train; the other fields are checked
where present) and, when present, `scaling`. Numbers are SI (seconds, bytes, dollars).
Fields the report does not know are kept and ignored.

`is_plan(TARGET)` tells `python3 -m reports TARGET` whether TARGET is a plan (a .json file,
or a directory holding plan.json and no results.jsonl) or a run.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .load import ReportError, _parse_constant, _shown

SCHEMA = "trainbench.plan/1"
PLAN_FILE = "plan.json"
CALIBRATION_SOURCES = ("datasheet", "file")


@dataclass
class Plan:
    """A checked plan: the document as read, with its configurations in rank order."""

    path: Path
    data: dict[str, Any]

    @property
    def inputs(self) -> dict[str, Any]:
        return self.data["inputs"]

    @property
    def model(self) -> dict[str, Any]:
        return self.inputs["model"]

    @property
    def hardware(self) -> dict[str, Any]:
        return self.data["hardware"]

    @property
    def calibration(self) -> dict[str, Any]:
        return self.data["calibration"]

    @property
    def measured(self) -> bool:
        """The efficiencies come from a calibration file (measurements), not the datasheet."""
        return self.calibration["source"] == "file"

    @property
    def configurations(self) -> list[dict[str, Any]]:
        return sorted(self.data["configurations"], key=lambda c: c["rank"])

    @property
    def scaling(self) -> list[dict[str, Any]]:
        return sorted(self.data.get("scaling") or [], key=lambda s: s["gpus"])

    @property
    def gpus(self) -> int:
        return int(self.inputs["gpus"])

    @property
    def gpu_name(self) -> str:
        return str(self.hardware.get("name") or self.inputs["gpu"])

    def capacity(self, c: dict[str, Any] | None = None) -> float:
        """Device memory in bytes: the configuration's, else the hardware's."""
        if c is not None and _finite(c.get("memory_capacity_bytes")):
            return float(c["memory_capacity_bytes"])
        return float(self.hardware["memory_bytes"])

    def usable(self, c: dict[str, Any] | None = None) -> float:
        """Memory a configuration may use: the configuration's, else capacity × headroom."""
        if c is not None and _finite(c.get("memory_usable_bytes")):
            return float(c["memory_usable_bytes"])
        headroom = self.inputs.get("memory_headroom")
        return self.capacity(c) * (float(headroom) if _finite(headroom) else 1.0)


# ---- type checks ----------------------------------------------------------------------------

def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _number(x: Any) -> bool:
    return _finite(x)


def _positive(x: Any) -> bool:
    return _finite(x) and x > 0


def _number_or_null(x: Any) -> bool:
    return x is None or _finite(x)


def _count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 1


def _count0(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _string(x: Any) -> bool:
    return isinstance(x, str) and x != ""


def _string_or_null(x: Any) -> bool:
    return x is None or isinstance(x, str)


def _bool(x: Any) -> bool:
    return isinstance(x, bool)


def _object(x: Any) -> bool:
    return isinstance(x, dict)


def _object_or_null(x: Any) -> bool:
    return x is None or isinstance(x, dict)


def _numbers_object(x: Any) -> bool:
    return isinstance(x, dict) and all(_finite(v) for v in x.values())


def _array(x: Any) -> bool:
    return isinstance(x, list)


def _source(x: Any) -> bool:
    return x in CALIBRATION_SOURCES


_EXPECTED: dict[Callable[[Any], bool], str] = {
    _number: "a number", _positive: "a number > 0", _number_or_null: "a number or null",
    _count: "an integer >= 1", _count0: "an integer >= 0", _string: "a non-empty string",
    _string_or_null: "a string or null", _bool: "true or false", _object: "an object",
    _object_or_null: "an object or null", _numbers_object: "an object of numbers",
    _array: "an array", _source: " or ".join(f'"{s}"' for s in CALIBRATION_SOURCES)}

Check = tuple[str, Callable[[Any], bool]]

_TOP_REQUIRED: list[Check] = [
    ("inputs", _object), ("inputs.model", _object), ("inputs.model.name", _string),
    ("inputs.gpu", _string), ("inputs.gpus", _count), ("inputs.tokens", _positive),
    ("inputs.global_batch", _positive),
    ("hardware", _object), ("hardware.memory_bytes", _positive),
    ("calibration", _object), ("calibration.source", _source),
    ("configurations", _array),
]
_TOP_OPTIONAL: list[Check] = [
    ("inputs.model.layers", _count), ("inputs.model.d_model", _count),
    ("inputs.model.heads", _count), ("inputs.model.vocab", _count), ("inputs.model.seq", _count),
    ("inputs.model.parameters", _positive), ("inputs.model.experts", _count0),
    ("inputs.model.top_k", _count0), ("inputs.gpus_per_node", _count),
    ("inputs.price_per_gpu_hour", _number_or_null), ("inputs.mtbf_hours", _number_or_null),
    ("inputs.memory_headroom", _positive), ("inputs.pinned", _object),
    ("hardware.name", _string), ("hardware.peak_flops", _numbers_object),
    ("hardware.memory_bytes_per_s", _number_or_null), ("hardware.intra_node", _object),
    ("hardware.intra_node.bytes_per_s", _number_or_null),
    ("hardware.intra_node.latency_s", _number_or_null), ("hardware.inter_node", _object),
    ("hardware.inter_node.bytes_per_s", _number_or_null),
    ("hardware.inter_node.latency_s", _number_or_null), ("hardware.source", _string_or_null),
    ("calibration.path", _string_or_null), ("calibration.device", _string_or_null),
    ("calibration.note", _string_or_null), ("calibration.efficiencies", _numbers_object),
    ("evaluated", _count0), ("feasible", _count0), ("scaling", _array),
]
# A configuration (in `configurations`, and a scaling entry's `best`).
_CONFIG_REQUIRED: list[Check] = [
    ("dp", _count), ("tp", _count), ("pp", _count), ("iteration_s", _positive),
    ("tokens_per_s", _positive), ("memory_bytes", _object), ("memory_bytes.total", _number),
    ("time_to_train_s", _positive),
]
_CONFIG_OPTIONAL: list[Check] = [
    ("virtual_stages", _count), ("micro_batch", _count), ("micro_batches", _count),
    ("recompute", _string), ("sequence_parallel", _bool), ("zero", _count0),
    ("precision", _string), ("schedule", _string), ("fits", _bool),
    ("memory_bytes", _numbers_object), ("memory_capacity_bytes", _positive),
    ("memory_usable_bytes", _positive), ("time_breakdown_s", _numbers_object),
    ("mfu", _number_or_null), ("hfu", _number_or_null), ("gpu_hours", _number_or_null),
    ("cost", _number_or_null), ("goodput", _object_or_null),
    ("goodput.time_to_train_s", _positive), ("goodput.expected_overhead_fraction", _number),
    ("goodput.checkpoint_bytes", _number_or_null), ("goodput.checkpoint_write_s", _number_or_null),
    ("goodput.interval_s", _number_or_null), ("goodput.mtbf_s", _number_or_null),
    ("goodput.restart_s", _number_or_null),
]

_MISSING = object()


def _lookup(data: Any, dotted: str) -> Any:
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _kind(x: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            dict: "an object"}.get(type(x), "a number")


class _Checker:
    def __init__(self, path: str):
        self.path = path

    def fail(self, what: str) -> ReportError:
        return ReportError(f"{self.path}: {what}")

    def check(self, data: Any, required: list[Check], optional: list[Check], prefix: str = "") -> None:
        for dotted, ok in required:
            value = _lookup(data, dotted)
            if value is _MISSING:
                raise self.fail(f"missing {prefix}{dotted} (expected {_EXPECTED[ok]})")
            if not ok(value):
                raise self.fail(f"{prefix}{dotted} is {_shown(value)} (expected {_EXPECTED[ok]})")
        for dotted, ok in optional:
            value = _lookup(data, dotted)
            if value is not _MISSING and not ok(value):
                raise self.fail(f"{prefix}{dotted} is {_shown(value)} (expected {_EXPECTED[ok]})")

    def configuration(self, c: Any, where: str, ranked: bool) -> None:
        if not isinstance(c, dict):
            raise self.fail(f"{where} is {_kind(c)} (expected an object: one configuration)")
        required = ([("rank", _count)] if ranked else []) + _CONFIG_REQUIRED
        self.check(c, required, _CONFIG_OPTIONAL, f"{where}.")


def _check(path: str, j: Any) -> None:
    chk = _Checker(path)
    if not isinstance(j, dict):
        raise chk.fail(f"expected a JSON object (a capacity plan, {SCHEMA}), got {_kind(j)}")
    if "schema" not in j:
        raise chk.fail(f'missing schema (expected "{SCHEMA}": a capacity plan from '
                       "`trainbench plan --json`)")
    if j["schema"] != SCHEMA:
        raise chk.fail(f'unsupported schema {_shown(j["schema"])} (expected "{SCHEMA}")')
    if "configurations" not in j:
        raise chk.fail("missing configurations (expected an array of the feasible "
                       "configurations, best first)")
    chk.check(j, _TOP_REQUIRED, _TOP_OPTIONAL)
    ranks: dict[int, int] = {}
    for i, c in enumerate(j["configurations"]):
        chk.configuration(c, f"configurations[{i}]", ranked=True)
        if c["rank"] in ranks:
            raise chk.fail(f"configurations[{i}].rank is {c['rank']} again (first at "
                           f"configurations[{ranks[c['rank']]}]; expected each rank once)")
        ranks[c["rank"]] = i
    seen: dict[int, int] = {}
    for i, s in enumerate(j.get("scaling") or []):
        where = f"scaling[{i}]"
        if not isinstance(s, dict):
            raise chk.fail(f"{where} is {_kind(s)} (expected an object with gpus and best)")
        chk.check(s, [("gpus", _count)], [], f"{where}.")
        if "best" not in s:
            raise chk.fail(f"missing {where}.best (expected a configuration, or null when none fits)")
        if s["best"] is not None:
            chk.configuration(s["best"], f"{where}.best", ranked=False)
        if s["gpus"] in seen:
            raise chk.fail(f"{where}.gpus is {s['gpus']} again (first at scaling[{seen[s['gpus']]}]; "
                           "expected each GPU count once)")
        seen[s["gpus"]] = i


# ---- which target is a plan -----------------------------------------------------------------

def _looks_like_results(text: str) -> bool:
    """The first line is a results line (schema_version, no schema): a run's results file."""
    first = text.lstrip().split("\n", 1)[0]
    try:
        j = json.loads(first)
    except (ValueError, RecursionError):
        return False
    return isinstance(j, dict) and "schema_version" in j and "schema" not in j


def is_plan(target: Path) -> bool:
    """TARGET is a capacity plan: a file named *.json (not a results file), a file holding one
    JSON object with a "schema", or a directory holding plan.json and no results.jsonl."""
    try:
        if target.is_dir():
            return (target / PLAN_FILE).is_file() and not (target / "results.jsonl").exists()
        if not target.is_file() or target.suffix == ".jsonl":
            return False
        text = target.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    if _looks_like_results(text):
        return False
    if target.suffix == ".json":
        return True
    try:
        j = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(j, dict) and "schema" in j


def plan_path(target: Path) -> Path:
    """DIR → DIR/plan.json; a file is the plan itself."""
    return target / PLAN_FILE if target.is_dir() else target


def read_plan(path: str | Path) -> Plan:
    """Reads and checks the plan at `path`; raises ReportError (one line) on any problem."""
    p = Path(path)
    shown = str(path)
    try:
        if p.is_dir():
            raise ReportError(f"{shown}: cannot open plan file: is a directory (expected "
                              f"DIR/{PLAN_FILE} or the plan's JSON file)")
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ReportError(f"{shown}: cannot open plan file: No such file or directory") from None
    except OSError as e:
        raise ReportError(f"{shown}: cannot open plan file: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ReportError(f"{shown}: not valid UTF-8 at byte {e.start + 1} (expected a JSON "
                          f"capacity plan, {SCHEMA})") from None
    if not text.strip():
        raise ReportError(f"{shown}: empty plan file (expected one JSON object, {SCHEMA})")
    try:
        j = json.loads(text, parse_constant=_parse_constant)
    except json.JSONDecodeError as e:
        raise ReportError(f"{shown}:{e.lineno}: not valid JSON: {e.msg} at column {e.colno} "
                          f"(expected one JSON object, {SCHEMA})") from None
    except RecursionError:
        raise ReportError(f"{shown}: not valid JSON: nested too deeply") from None
    _check(shown, j)
    return Plan(path=p, data=j)


# ---- describing a configuration -------------------------------------------------------------

DAY_S = 86400.0
RECOMPUTE_WORDS = {"none": "no recompute", "selective": "sel. recompute", "full": "full recompute"}


def split_text(c: dict[str, Any]) -> str:
    """"dp16 × tp8 × pp8" (with "(v2)" for interleaved virtual stages)."""
    v = c.get("virtual_stages", 1)
    return f"dp{c['dp']} × tp{c['tp']} × pp{c['pp']}" + (f" (v{v})" if isinstance(v, int) and v > 1 else "")


def words(c: dict[str, Any], skip: frozenset[str] = frozenset()) -> list[str]:
    """A configuration as short tokens, each kept on one line when labels wrap: "dp16",
    "tp8", "pp8", "v2", "mb1", "sel. recompute", "SP", "ZeRO-1", "bf16", "1f1b". Fields
    named in `skip` (shared by every configuration shown) are left out; dp, tp and pp never."""
    out = [f"dp{c['dp']}", f"tp{c['tp']}", f"pp{c['pp']}"]
    v = c.get("virtual_stages")
    if "virtual_stages" not in skip and isinstance(v, int) and v > 1:
        out.append(f"v{v}")
    if "micro_batch" not in skip and c.get("micro_batch") is not None:
        out.append(f"mb{c['micro_batch']}")
    if "recompute" not in skip and c.get("recompute") is not None:
        out.append(RECOMPUTE_WORDS.get(str(c["recompute"]), f"recompute {c['recompute']}"))
    if "sequence_parallel" not in skip and isinstance(c.get("sequence_parallel"), bool):
        out.append("SP" if c["sequence_parallel"] else "no SP")
    if "zero" not in skip and c.get("zero") is not None:
        out.append(f"ZeRO-{c['zero']}" if c["zero"] else "no ZeRO")
    if "precision" not in skip and c.get("precision") is not None:
        out.append(str(c["precision"]))
    if "schedule" not in skip and c.get("schedule") is not None:
        out.append(str(c["schedule"]))
    return out


LABEL_FIELDS = ("virtual_stages", "micro_batch", "recompute", "sequence_parallel", "zero",
                "precision", "schedule")


def shared_fields(configs: list[dict[str, Any]]) -> frozenset[str]:
    """The label fields on which every configuration agrees (named once, in a note)."""
    if len(configs) < 2:
        return frozenset()
    return frozenset(f for f in LABEL_FIELDS
                     if len({json.dumps(c.get(f)) for c in configs}) == 1 and f in configs[0])


def shared_text(configs: list[dict[str, Any]], fields: frozenset[str]) -> str:
    """The shared fields in words ("bf16, 1f1b"), in the labels' order."""
    if not configs or not fields:
        return ""
    keep = frozenset(LABEL_FIELDS) - fields
    return ", ".join(words(configs[0], keep)[3:])


def pack(tokens: list[str], width: int) -> str:
    """Tokens joined by spaces on lines of at most `width` characters, never splitting a
    token (so "sel. recompute" stays whole)."""
    lines: list[str] = []
    for t in tokens:
        if lines and len(lines[-1]) + 1 + len(t) <= width:
            lines[-1] += " " + t
        else:
            lines.append(t)
    return "\n".join(lines)


def days(seconds: float | None) -> str:
    if not _finite(seconds):
        return "—"
    d = float(seconds) / DAY_S  # type: ignore[arg-type]
    return f"{d:,.0f}" if d >= 99.95 else f"{d:#.3g}"


def money(x: float | None) -> str:
    """"$459.7k", "$1.234M", "$512"."""
    if not _finite(x):
        return "—"
    x = float(x)  # type: ignore[arg-type]
    if abs(x) >= 1e9:
        return f"${x / 1e9:#.4g}B"
    if abs(x) >= 1e6:
        return f"${x / 1e6:#.4g}M"
    if abs(x) >= 1e4:
        return f"${x / 1e3:#.4g}k"
    return f"${x:,.0f}"


def count_words(x: Any) -> str:
    """1.75e11 → "175 B", 3e11 → "300 B", 1.3e9 → "1.3 B", 350e6 → "350 M"."""
    if not _finite(x):
        return "—"
    v = float(x)
    for size, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if abs(v) >= size:
            return f"{v / size:.4g} {unit}"
    return f"{v:,.0f}"


def gib(n: float) -> float:
    return n / float(1 << 30)
