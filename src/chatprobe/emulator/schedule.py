"""Faults scheduled over time, on a clock that can run faster than the wall clock.

A schedule is a list of :class:`Window` s, each active from ``start_s`` to ``end_s`` (or to
the end) in *schedule time*: seconds since the server started (or since
``POST /_chatprobe/reset``), multiplied by the compression factor ``clock`` (1440 runs a day
in a minute). A request belongs to the windows active when it was read. Kinds:

==========  ================================================================  ===============
kind        what every request in the window gets                             params
==========  ================================================================  ===============
outage      an error before anything else (auth, validation): an HTTP         ``503`` (any
            status in the provider's envelope (``Retry-After`` = the          4xx/5xx),
            outage's remaining real seconds on 429/503), ``reset`` (TCP RST,  ``reset``,
            no answer) or ``refuse`` (the listening socket is closed: new     ``refuse``
            connections are refused; requests on open ones are reset)
latency     base TTFT and inter-token gaps multiplied (the capacity model's   ``F`` or
            floor is not)                                                     ``ttft=F,itl=F``
fault       fault kinds as ``X-Chatprobe-Fault`` names them (a contract       ``KIND[=P],...``
            change: ``missing_done``, ``stream_rule=...``), to every request  ``[,rate=R]``
            or a seeded share ``rate``
dialect     dialect knobs as ``X-Chatprobe-Dialect`` names them (a contract   ``KNOB[=V],...``
            change: ``envelope=openai``, ``usage_every_chunk``)
==========  ================================================================  ===============

On the command line (``--schedule``, repeatable) a window is ``KIND[:PARAMS]@START[-END]
[#NAME]``, times as durations (``90s``, ``10m``, ``2h``): ``outage:503@10m-20m``,
``latency:3@1h-2h#slow hour``, ``fault:missing_done@45m``. In YAML (a scenario's
``emulator.schedule``, ``--schedule-file``) either that string or a mapping
``{kind, start, end, name, status | mode | ttft_x, itl_x | faults, rate | dialect}``.

The ground truth records, per request, the schedule time at arrival (``sched_s``) and the
names of its windows (``windows``); ``GET /_chatprobe/schedule`` adds each window's real
start/end (``perf_counter_ns``) and what its requests got.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatprobe.durations import parse_duration
from chatprobe.emulator.dialect import NO_KNOBS, Knobs, parse_knobs
from chatprobe.emulator.faults import Fault, parse_fault_header
from chatprobe.errors import ConfigError

__all__ = ["KINDS", "Schedule", "Window", "parse_schedule_file", "parse_window", "window_from"]

KINDS = ("outage", "latency", "fault", "dialect")
OUTAGE_MODES = ("status", "reset", "refuse")


@dataclass(frozen=True, slots=True)
class Window:
    """One scheduled window; times in schedule seconds, ``end_s`` None = until the end."""

    kind: str
    start_s: float
    end_s: float | None = None
    name: str = ""
    status: int = 503  # outage
    mode: str = "status"  # outage: status | reset | refuse
    ttft_x: float = 1.0  # latency
    itl_x: float = 1.0
    faults: tuple[Fault, ...] = ()  # fault
    rate: float = 1.0
    knobs: Knobs = NO_KNOBS  # dialect

    def covers(self, sched_s: float) -> bool:
        return self.start_s <= sched_s and (self.end_s is None or sched_s < self.end_s)

    def params(self) -> str:
        if self.kind == "outage":
            return str(self.status) if self.mode == "status" else self.mode
        if self.kind == "latency":
            if self.ttft_x == self.itl_x:
                return f"{self.ttft_x:g}"
            return f"ttft={self.ttft_x:g},itl={self.itl_x:g}"
        if self.kind == "dialect":
            return str(self.knobs)
        rate = [] if self.rate == 1.0 else [f"rate={self.rate:g}"]
        return ",".join([*(str(f) for f in self.faults), *rate])

    def __str__(self) -> str:
        end = "" if self.end_s is None else f"-{self.end_s:g}s"
        return f"{self.kind}:{self.params()}@{self.start_s:g}s{end}#{self.name}"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "params": self.params(),
            "start_s": self.start_s,
            "end_s": self.end_s,
        }


# ---------------------------------------------------------------------------- parsing


def _duration(value: Any, what: str) -> float:
    return parse_duration(value, what=what)


def _number(text: str, what: str, source: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{what}: expected a number, got {text!r}", field=source) from None
    if not value > 0 or math.isinf(value):
        raise ConfigError(f"{what}: must be a positive number, got {text!r}", field=source)
    return value


def _build(
    kind: str,
    start: Any,
    end: Any,
    name: str,
    params: Mapping[str, Any],
    source: str,
    index: int,
) -> Window:
    if kind not in KINDS:
        raise ConfigError(f"unknown window kind {kind!r} (known: {', '.join(KINDS)})", field=source)
    start_s = _duration(start, f"{kind} start")
    end_s = None if end in (None, "") else _duration(end, f"{kind} end")
    if end_s is not None and end_s <= start_s:
        raise ConfigError(f"{kind}: end must be after start", field=source)
    window = Window(kind, start_s, end_s, name or f"{kind}#{index}")
    extra: dict[str, Any] = {}
    if kind == "outage":
        mode = str(params.get("mode", "status"))
        if mode not in OUTAGE_MODES:
            raise ConfigError(
                f"outage mode must be one of {', '.join(OUTAGE_MODES)}, got {mode!r}",
                field=source,
            )
        status = params.get("status", 503)
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise ConfigError(f"outage status must be 400..599, got {status!r}", field=source)
        extra = {"mode": mode, "status": status}
    elif kind == "latency":
        both = params.get("x")
        ttft = params.get("ttft_x", both if both is not None else 1.0)
        itl = params.get("itl_x", both if both is not None else 1.0)
        extra = {
            "ttft_x": _number(str(ttft), "latency ttft", source),
            "itl_x": _number(str(itl), "latency itl", source),
        }
    elif kind == "fault":
        faults = params.get("faults") or ()
        if isinstance(faults, str):
            faults = [faults]
        parsed, unknown = parse_fault_header(",".join(str(f) for f in faults))
        if unknown or not parsed:
            bad = ", ".join(unknown) or "nothing"
            raise ConfigError(f"fault window: unknown fault {bad!r}", field=source)
        rate = params.get("rate", 1.0)
        if not isinstance(rate, int | float) or not 0 < rate <= 1:
            raise ConfigError(f"fault window rate must be in (0, 1], got {rate!r}", field=source)
        extra = {"faults": tuple(parsed), "rate": float(rate)}
    elif kind == "dialect":
        knobs = params.get("dialect") or ()
        extra = {"knobs": parse_knobs(knobs, source=source)}
        if extra["knobs"] == NO_KNOBS:
            raise ConfigError("dialect window: no knob given", field=source)
    from dataclasses import replace

    return replace(window, **extra)


def parse_window(text: str, *, index: int = 0, source: str = "--schedule") -> Window:
    """``KIND[:PARAMS]@START[-END][#NAME]`` (see the module docstring)."""
    spec, _, name = text.partition("#")
    head, at, times = spec.partition("@")
    if not at:
        raise ConfigError(f"expected KIND[:PARAMS]@START[-END][#NAME], got {text!r}", field=source)
    kind, _, raw = head.strip().partition(":")
    start, _, end = times.strip().partition("-")
    params: dict[str, Any] = {}
    raw = raw.strip()
    kind = kind.strip().lower()
    if kind == "outage" and raw:
        if raw in OUTAGE_MODES:
            params["mode"] = raw
        elif raw.isdigit():
            params["status"] = int(raw)
        else:
            raise ConfigError(
                f"outage: expected a status, 'reset' or 'refuse', got {raw!r}", field=source
            )
    elif kind == "latency" and raw:
        for item in raw.split(","):
            key, sep, value = item.partition("=")
            if not sep:
                params["x"] = key.strip()
            elif key.strip() in ("ttft", "itl"):
                params[f"{key.strip()}_x"] = value.strip()
            else:
                raise ConfigError(f"latency: unknown parameter {key.strip()!r}", field=source)
    elif kind == "fault":
        faults = []
        for item in raw.split(","):
            key, _, value = item.partition("=")
            if key.strip() == "rate":
                try:
                    params["rate"] = float(value)
                except ValueError:
                    raise ConfigError(f"fault: bad rate {value!r}", field=source) from None
            elif item.strip():
                faults.append(item.strip())
        params["faults"] = faults
    elif kind == "dialect":
        params["dialect"] = raw
    return _build(kind, start.strip() or 0, end.strip(), name.strip(), params, source, index)


def window_from(item: Any, *, index: int, source: str) -> Window:
    """A window from a YAML item: the command-line string or a mapping."""
    if isinstance(item, str):
        return parse_window(item, index=index, source=source)
    if not isinstance(item, Mapping):
        raise ConfigError("expected a window string or mapping", field=source)
    known = {
        "kind",
        "start",
        "end",
        "name",
        "status",
        "mode",
        "ttft_x",
        "itl_x",
        "x",
        "faults",
        "rate",
        "dialect",
    }
    unknown = sorted(set(item) - known)
    if unknown:
        raise ConfigError(f"unknown window field {unknown[0]!r}", field=source)
    if "kind" not in item or "start" not in item:
        raise ConfigError("a window needs kind and start", field=source)
    return _build(
        str(item["kind"]),
        item["start"],
        item.get("end"),
        str(item.get("name") or ""),
        item,
        source,
        index,
    )


def parse_schedule_file(path: str) -> tuple[tuple[Window, ...], float | None]:
    """Windows (and the clock, if set) from a YAML file: ``{clock: F, windows: [...]}``."""
    from chatprobe.yamlfile import load_yaml

    doc = load_yaml(path)
    data = doc.data
    if isinstance(data, list):
        data = {"windows": data}
    if not isinstance(data, dict) or not isinstance(data.get("windows"), list):
        raise doc.error("expected {clock: FACTOR, windows: [...]} or a list of windows")
    unknown = sorted(set(data) - {"clock", "windows"})
    if unknown:
        raise doc.error(f"unknown field {unknown[0]!r}", (unknown[0],))
    windows = []
    for i, item in enumerate(data["windows"]):
        try:
            windows.append(window_from(item, index=i, source=f"windows[{i}]"))
        except ConfigError as exc:
            raise doc.error(exc.detail, ("windows", i)) from None
    clock = data.get("clock")
    if clock is not None and (not isinstance(clock, int | float) or clock <= 0):
        raise doc.error("clock must be a positive number", ("clock",))
    return tuple(windows), None if clock is None else float(clock)


def check_names(windows: Sequence[Window]) -> None:
    seen: set[str] = set()
    for window in windows:
        if window.name in seen:
            raise ConfigError(f"two windows are named {window.name!r}", field="--schedule")
        seen.add(window.name)


# ---------------------------------------------------------------------------- at run time


@dataclass(slots=True)
class Schedule:
    """The windows on the server's clock: which apply to a request, and what they did."""

    windows: tuple[Window, ...]
    clock: float = 1.0
    t0_ns: int = 0
    counts: dict[str, dict[str, Any]] = field(default_factory=dict)
    on_restart: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_names(self.windows)
        self._reset_counts()

    def _reset_counts(self) -> None:
        self.counts = {w.name: _empty() for w in self.windows}
        self.counts[""] = _empty()  # requests outside every window

    def start(self, t_ns: int | None = None) -> None:
        """Schedule time 0 is now (server start, or a reset)."""
        self.t0_ns = time.perf_counter_ns() if t_ns is None else t_ns
        self._reset_counts()
        for callback in self.on_restart:
            callback()

    def sched_s(self, t_ns: int) -> float:
        return (t_ns - self.t0_ns) / 1e9 * self.clock

    def real_ns(self, sched_s: float) -> int:
        return self.t0_ns + int(sched_s / self.clock * 1e9)

    def active(self, t_ns: int) -> tuple[float, list[Window]]:
        at = self.sched_s(t_ns)
        return at, [w for w in self.windows if w.covers(at)]

    def remaining_real_s(self, window: Window, t_ns: int) -> float | None:
        if window.end_s is None:
            return None
        return max(0.0, (self.real_ns(window.end_s) - t_ns) / 1e9)

    def refusals(self) -> list[tuple[int, int | None]]:
        """Real (start, end) times of the ``refuse`` outages, for the listening socket."""
        return [
            (self.real_ns(w.start_s), None if w.end_s is None else self.real_ns(w.end_s))
            for w in self.windows
            if w.kind == "outage" and w.mode == "refuse"
        ]

    def count(self, names: Sequence[str], status: int | None, outcome: str, faulted: bool) -> None:
        """One finished request, counted in each of its windows (or outside all)."""
        for name in names or ("",):
            entry = self.counts.get(name)
            if entry is None:
                continue
            entry["requests"] += 1
            key = "none" if status is None else str(status)
            entry["by_status"][key] = entry["by_status"].get(key, 0) + 1
            entry["by_outcome"][outcome] = entry["by_outcome"].get(outcome, 0) + 1
            if faulted:
                entry["faulted"] += 1

    def summary(self, now_ns: int | None = None) -> dict[str, Any]:
        now = time.perf_counter_ns() if now_ns is None else now_ns
        windows = []
        for w in self.windows:
            windows.append(
                {
                    **w.describe(),
                    "start_ns": self.real_ns(w.start_s),
                    "end_ns": None if w.end_s is None else self.real_ns(w.end_s),
                    **self.counts[w.name],
                }
            )
        return {
            "clock": self.clock,
            "t0_ns": self.t0_ns,
            "now_s": self.sched_s(now),
            "windows": windows,
            "outside": self.counts[""],
        }


def _empty() -> dict[str, Any]:
    return {"requests": 0, "by_status": {}, "by_outcome": {}, "faulted": 0}
