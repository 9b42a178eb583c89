"""Load scenarios: ``loadtests/scenarios/*.yaml``, validated by ``specs/scenario.schema.yaml``.

A scenario is loaded with :func:`load_scenario` (line-aware, so every mistake reads
``file:line: field: message``), optionally changed by command-line overrides with
:meth:`Scenario.override`, then resolved into a :class:`~chatprobe.load.plan.RunPlan`.

Every shape becomes a list of :class:`Stage` (a fixed user count is one stage, a sweep one
stage per level, an open-loop run one stage with its arrival rate), so the locust shape, the
warm-up marking and the summary all read one timeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from chatprobe.durations import parse_duration, parse_timeout  # the one duration rule
from chatprobe.errors import ConfigError
from chatprobe.load.conversation import ConversationSpec, Pause
from chatprobe.load.trace import Trace, load_trace, parse_speed
from chatprobe.paths import find_named, names_in, scenario_dirs, schema_file
from chatprobe.project import current_project
from chatprobe.specs import raise_schema_error
from chatprobe.transport import Timeouts
from chatprobe.yamlfile import YamlDoc, load_yaml, parse_yaml

__all__ = [
    "OpenLoop",
    "PromptSpec",
    "Scenario",
    "Stage",
    "Target",
    "find_scenario",
    "load_scenario",
    "parse_duration",
    "parse_scenario",
]

DEFAULT_DURATION_S = 30.0
DEFAULT_MAX_DURATION_S = 600.0
DEFAULT_MAX_TOKENS = 64
DEFAULT_SETTLE_S = 1.0
DEFAULT_LAG_THRESHOLD_MS = 10.0
DEFAULT_MAX_CONCURRENCY = 1000
TRACE_TAIL_S = 30.0  # a trace run lasts its span plus this, for the last answers to arrive
SHAPE_KINDS = ("users", "stages", "sweep", "open_loop")


@dataclass(frozen=True, slots=True)
class Target:
    """One provider x model pair (names as written; resolved against profiles later)."""

    provider: str
    model: str

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True, slots=True)
class Stage:
    """A stretch of the run at one load level.

    ``users`` is the concurrency of a closed-loop stage (0 for open loop, where ``rate``
    says how many requests per second arrive). Samples sent in the first ``warmup_s`` of a
    stage are marked ``warmup`` and left out of summaries.
    """

    name: str
    duration_s: float
    users: int = 0
    ramp_s: float = 0.0
    warmup_s: float = 0.0
    rate: float | None = None


@dataclass(frozen=True, slots=True)
class OpenLoop:
    rate: float
    arrival: str = "poisson"
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    lag_threshold_ms: float = DEFAULT_LAG_THRESHOLD_MS


@dataclass(frozen=True, slots=True)
class PromptSpec:
    """Where prompts come from; :func:`chatprobe.load.prompts.build_prompts` makes the pool."""

    kind: str = "text"  # text | synthetic | file
    texts: tuple[str, ...] = ("Write one short paragraph about rivers.",)
    distribution: dict[str, Any] = field(default_factory=dict)
    count: int = 64
    file: str | None = None  # resolved path
    system: str | None = None
    order: str = "round_robin"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    targets: tuple[Target, ...]
    path: str | None = None
    description: str = ""
    mix: str = "interleave"
    prompts: PromptSpec = field(default_factory=PromptSpec)
    max_tokens: int = DEFAULT_MAX_TOKENS
    request: dict[str, Any] = field(default_factory=dict)
    shape_kind: str = "users"
    users: int = 1
    ramp_s: float = 0.0
    think_time_s: float = 0.0
    stage_specs: tuple[Stage, ...] = ()  # stages / sweep as written
    open_loop: OpenLoop | None = None
    duration_s: float | None = None
    requests: int | None = None
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    warmup_s: float = 0.0
    seed: int = 1
    slo: dict[str, float] = field(default_factory=dict)  # per-request limits, by metric
    slo_attainment: float | None = None  # share that must meet them (None: metrics' default)
    timeouts: Timeouts = field(default_factory=Timeouts)
    emulator: dict[str, Any] = field(default_factory=dict)
    conformance_share: float = 1.0  # share of streams the load checks judge
    timing_bound_ms: float = 5.0  # p99 client timing error bound that marks a run
    conversation: ConversationSpec | None = None  # sessions of turns (load/conversation.py)
    trace: Trace | None = None  # arrivals replayed from a trace file (load/trace.py)

    # ------------------------------------------------------------------ timeline
    @property
    def stages(self) -> tuple[Stage, ...]:
        """The run as stages. A request-count run is one stage of ``max_duration_s``; a
        trace replay one open-loop stage of the trace's span plus a tail for the last
        answers."""
        if self.shape_kind in ("stages", "sweep"):
            return self.stage_specs
        if self.trace is not None:
            assert self.open_loop is not None
            name = f"trace {self.trace.speed:g}x"
            span = self.trace.span_s + TRACE_TAIL_S
            return (Stage(name, span, 0, 0.0, self.warmup_s, self.open_loop.rate),)
        length = self.duration_s if self.requests is None else self.max_duration_s
        length = DEFAULT_DURATION_S if length is None else length
        if self.shape_kind == "open_loop":
            assert self.open_loop is not None
            rate = self.open_loop.rate
            return (Stage(f"{rate:g} rps", length, 0, 0.0, self.warmup_s, rate),)
        # A ramp is always warm-up: the concurrency label would be wrong during it. Without
        # a ramp, users still start at up to 100 per second (locust's advice).
        implied = self.users / 100 if self.ramp_s == 0 and self.users > 100 else 0.0
        warmup = max(self.warmup_s, self.ramp_s, implied)
        return (Stage(f"{self.users} users", length, self.users, self.ramp_s, warmup),)

    @property
    def planned_duration_s(self) -> float:
        return sum(s.duration_s for s in self.stages)

    @property
    def max_users(self) -> int:
        return max((s.users for s in self.stages), default=0)

    # ------------------------------------------------------------------ overrides
    def override(
        self,
        *,
        users: int | None = None,
        duration_s: float | None = None,
        requests: int | None = None,
        rate: float | None = None,
        targets: tuple[Target, ...] | None = None,
    ) -> Scenario:
        """The command line's ``--users/--duration/--requests/--rate/--provider/--model``.

        ``--users`` makes a fixed closed-loop shape and ``--rate`` an open-loop one (keeping
        the scenario's arrival process and cap when it already was open loop). A trace
        replay keeps its arrivals: ``--requests N`` replays its first N requests and
        ``--duration`` those due within it.
        """
        if self.trace is not None:
            return self._override_trace(self.trace, duration_s, requests, users, rate, targets)
        s = self
        if users is not None and rate is not None:
            raise ConfigError("--users and --rate exclude each other (closed vs. open loop)")
        if users is not None:
            if users < 1:
                raise ConfigError(f"--users must be at least 1, got {users}")
            s = replace(s, shape_kind="users", users=users, stage_specs=(), open_loop=None)
        if rate is not None:
            if rate <= 0:
                raise ConfigError(f"--rate must be more than 0, got {rate}")
            base = s.open_loop or OpenLoop(rate=rate)
            s = replace(s, shape_kind="open_loop", open_loop=replace(base, rate=rate))
            s = replace(s, stage_specs=())
        if (duration_s is not None or requests is not None) and s.shape_kind in (
            "stages",
            "sweep",
        ):
            raise ConfigError(
                f"--duration/--requests do not apply to a {s.shape_kind} scenario "
                "(its stages set the length); use --users or --rate to replace the shape"
            )
        if duration_s is not None:
            if duration_s <= 0:
                raise ConfigError(f"--duration must be more than 0, got {duration_s}")
            s = replace(s, duration_s=duration_s, requests=None)
            if max(s.warmup_s, s.ramp_s) > duration_s / 2:
                # A shortened run keeps most of its time measured: warm-up and ramp shrink
                # to a fifth of it rather than eating it whole.
                s = replace(
                    s,
                    warmup_s=min(s.warmup_s, duration_s / 5),
                    ramp_s=min(s.ramp_s, duration_s / 5),
                )
        if requests is not None:
            if requests < 1:
                raise ConfigError(f"--requests must be at least 1, got {requests}")
            s = replace(s, requests=requests, duration_s=None)
        if targets is not None:
            s = replace(s, targets=targets)
        return s

    def _override_trace(
        self,
        trace: Trace,
        duration_s: float | None,
        requests: int | None,
        users: int | None,
        rate: float | None,
        targets: tuple[Target, ...] | None,
    ) -> Scenario:
        if users is not None or rate is not None:
            raise ConfigError(
                "--users and --rate do not apply to a trace replay: the trace sets the arrivals"
            )
        if requests is not None:
            if requests < 1:
                raise ConfigError(f"--requests must be at least 1, got {requests}")
            trace = trace.head(count=requests)
        if duration_s is not None:
            if duration_s <= 0:
                raise ConfigError(f"--duration must be more than 0, got {duration_s}")
            trace = trace.head(until_s=duration_s)
        s = self.with_trace(trace)
        return replace(s, targets=targets) if targets is not None else s

    def with_trace(self, trace: Trace) -> Scenario:
        """This scenario replaying ``trace``: open loop at the trace's times, one request
        per trace line (the run ends when the last has answered)."""
        if self.conversation is not None:
            raise ConfigError("a scenario replays a trace or holds conversations, not both")
        if not trace.requests:
            raise ConfigError(f"no request of the trace {trace.path} is left to replay")
        base = self.open_loop or OpenLoop(rate=1.0)
        count = len(trace.requests)
        rate = count / trace.span_s if trace.span_s > 0 else float(count)
        return replace(
            self,
            trace=trace,
            shape_kind="open_loop",
            stage_specs=(),
            open_loop=replace(base, rate=rate, arrival="trace"),
            requests=count,
            duration_s=None,
            warmup_s=min(self.warmup_s, trace.span_s / 2),
        )


# ---------------------------------------------------------------------------- loading


def find_scenario(name_or_path: str) -> Path:
    """A scenario by file path, or by name: the project's ``paths.scenarios`` folders first,
    then the built-in ``loadtests/scenarios/`` (:mod:`chatprobe.paths`)."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    path = find_named(scenario_dirs(), name_or_path)
    if path is None:
        from chatprobe.errors import UnknownNameError

        raise UnknownNameError("scenario", name_or_path, names_in(scenario_dirs()))
    return path


@cache
def _validator() -> Any:
    import jsonschema

    schema = load_yaml(schema_file("scenario")).data
    return jsonschema.Draft202012Validator(schema)


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load and check a scenario file; any mistake is a ConfigError with file and line."""
    path = find_scenario(str(name_or_path))
    return _from_doc(load_yaml(path))


def parse_scenario(text: str, path: str = "<string>") -> Scenario:
    """A scenario from YAML text (tests, and scenarios built on the fly)."""
    return _from_doc(parse_yaml(text, path))


def _from_doc(doc: YamlDoc) -> Scenario:
    if not isinstance(doc.data, dict):
        raise doc.error("a scenario must be a mapping with at least `targets`")
    raise_schema_error(doc, _validator())
    data: dict[str, Any] = doc.data

    def duration(where: tuple[str | int, ...], value: Any) -> float:
        try:
            return parse_duration(value)
        except ConfigError as exc:
            raise doc.error(exc.detail, where) from None

    from chatprobe.errors import UnknownNameError
    from chatprobe.profiles import load_profile

    targets: list[Target] = []
    for i, entry in enumerate(data["targets"]):
        models = entry["model"] if isinstance(entry["model"], list) else [entry["model"]]
        try:  # unknown names are reported at the scenario's own line
            profile = load_profile(str(entry["provider"]))
        except UnknownNameError as exc:
            raise doc.error(str(exc), ("targets", i, "provider")) from None
        for m, model in enumerate(models):
            try:
                profile.model(str(model))
            except UnknownNameError as exc:
                where: tuple[str | int, ...] = (
                    ("targets", i, "model", m) if isinstance(entry["model"], list) else ()
                )
                raise doc.error(str(exc), where or ("targets", i, "model")) from None
            target = Target(str(entry["provider"]), str(model))
            if target in targets:
                raise doc.error(f"duplicate target {target.label}", ("targets", i))
            targets.append(target)

    name = data.get("name") or Path(doc.path).stem
    shape = data.get("shape") or {"users": 1}
    kinds = [k for k in SHAPE_KINDS if k in shape]
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        raise doc.error(
            f"give exactly one of users, stages, sweep, open_loop (found: {found})", ("shape",)
        )
    kind = kinds[0]
    for key in ("ramp", "think_time"):
        if key in shape and kind not in ("users", "stages", "sweep"):
            raise doc.error(f"{key} applies to closed-loop shapes only", ("shape", key))

    stage_specs: list[Stage] = []
    if kind == "stages":
        for i, st in enumerate(shape["stages"]):
            at = ("shape", "stages", i)
            stage_specs.append(
                Stage(
                    name=str(st.get("name") or f"stage {i + 1}"),
                    duration_s=duration((*at, "duration"), st["duration"]),
                    users=int(st["users"]),
                    ramp_s=duration((*at, "ramp"), st.get("ramp", 0)),
                    warmup_s=duration((*at, "warmup"), st.get("warmup", 0)),
                )
            )
            if stage_specs[-1].warmup_s >= stage_specs[-1].duration_s:
                raise doc.error("warmup must be shorter than the stage", (*at, "warmup"))
        names = [s.name for s in stage_specs]
        for i, n in enumerate(names):
            if names.index(n) != i:
                raise doc.error(f"duplicate stage name {n!r}", ("shape", "stages", i, "name"))
    elif kind == "sweep":
        sweep = shape["sweep"]
        length = duration(("shape", "sweep", "stage_duration"), sweep["stage_duration"])
        settle = duration(("shape", "sweep", "settle"), sweep.get("settle", DEFAULT_SETTLE_S))
        if settle >= length:
            raise doc.error("settle must be shorter than stage_duration", ("shape", "sweep"))
        levels = [int(u) for u in sweep["users"]]
        if len(set(levels)) != len(levels):
            raise doc.error("sweep levels must be distinct", ("shape", "sweep", "users"))
        ramp = duration(("shape", "ramp"), shape.get("ramp", 0))
        stage_specs = [Stage(f"{u} users", length, u, ramp, max(settle, ramp)) for u in levels]
    open_loop = None
    if kind == "open_loop":
        ol = shape["open_loop"]
        open_loop = OpenLoop(
            rate=float(ol["rate"]),
            arrival=str(ol.get("arrival", "poisson")),
            max_concurrency=int(ol.get("max_concurrency", DEFAULT_MAX_CONCURRENCY)),
            lag_threshold_ms=float(ol.get("lag_threshold_ms", DEFAULT_LAG_THRESHOLD_MS)),
        )

    duration_s = requests = None
    if "duration" in data:
        duration_s = duration(("duration",), data["duration"])
    if "requests" in data:
        requests = int(data["requests"])
    if duration_s is not None and requests is not None:
        raise doc.error("give duration or requests, not both", ("requests",))
    if kind in ("stages", "sweep"):
        for key in ("duration", "requests"):
            if key in data:
                raise doc.error(f"a {kind} shape sets its own length; remove {key}", (key,))
    if requests is None and duration_s is None and kind in ("users", "open_loop"):
        duration_s = DEFAULT_DURATION_S
    warmup_s = duration(("warmup",), data.get("warmup", 0))
    if duration_s is not None and warmup_s >= duration_s:
        raise doc.error("warmup must be shorter than the duration", ("warmup",))

    timeouts_raw = data.get("timeouts") or {}
    for key, value in timeouts_raw.items():  # each mistake reported at its own line
        try:
            parse_timeout(value, what=str(key))
        except ConfigError as exc:
            raise doc.error(exc.detail, ("timeouts", key)) from None
    # `read` (before first_byte and idle existed) still works: it sets both
    timeouts = Timeouts.from_mapping(timeouts_raw)
    prompts = _prompts(doc, data.get("prompts") or {})
    conversation = _conversation(doc, data["conversation"]) if "conversation" in data else None
    trace = _trace(doc, data["trace"]) if "trace" in data else None
    if trace is not None:
        if conversation is not None:
            raise doc.error("give trace or conversation, not both", ("trace",))
        for key in ("shape", "duration", "requests"):
            if key in data:
                raise doc.error(f"a trace sets the arrivals and the length; remove {key}", (key,))
    emulator = dict(data.get("emulator") or {})
    if "faults" in emulator:
        from chatprobe.emulator.faults import parse_fault_rate

        for kind_name, rate in emulator["faults"].items():
            try:
                parse_fault_rate(f"{kind_name}={rate}")
            except ConfigError as exc:
                raise doc.error(exc.detail, ("emulator", "faults", str(kind_name))) from None
    from chatprobe.emulator.config import BlockError, block_changes

    try:
        block_changes(emulator)  # capacity, schedule, dialect, prefix cache: checked here
    except BlockError as exc:
        raise doc.error(exc.detail, ("emulator", *exc.where)) from None
    output = emulator.get("output_tokens")
    if isinstance(output, list) and output[0] > output[1]:
        raise doc.error("need [min, max] with min <= max", ("emulator", "output_tokens"))

    scenario = Scenario(
        name=str(name),
        targets=tuple(targets),
        path=doc.path,
        description=str(data.get("description", "")),
        mix=str(data.get("mix", "interleave")),
        prompts=prompts,
        max_tokens=int(data.get("max_tokens", DEFAULT_MAX_TOKENS)),
        request=dict(data.get("request") or {}),
        shape_kind=kind,
        users=int(shape.get("users", 1)) if kind == "users" else 1,
        ramp_s=duration(("shape", "ramp"), shape.get("ramp", 0)) if kind == "users" else 0.0,
        think_time_s=duration(("shape", "think_time"), shape.get("think_time", 0)),
        stage_specs=tuple(stage_specs),
        open_loop=open_loop,
        duration_s=duration_s,
        requests=requests,
        max_duration_s=duration(("max_duration",), data.get("max_duration", 600)),
        warmup_s=warmup_s,
        seed=int(data.get("seed", 1)),
        slo={k: float(v) for k, v in _slo(data).items() if k != "attainment"},
        slo_attainment=_slo(data).get("attainment"),
        timeouts=timeouts,
        emulator=emulator,
        conformance_share=float(data.get("conformance_share", 1.0)),
        timing_bound_ms=float(data.get("timing_bound_ms", 5.0)),
        conversation=conversation,
    )
    return scenario.with_trace(trace) if trace is not None else scenario


def _conversation(doc: YamlDoc, raw: dict[str, Any]) -> ConversationSpec:
    def pause(key: str) -> Pause:
        try:
            return Pause.parse(raw.get(key, 0), what=key)
        except ConfigError as exc:
            raise doc.error(exc.detail, ("conversation", key)) from None

    turns = int(raw["turns"])
    tool_turns = tuple(sorted({int(t) for t in raw.get("tool_turns") or ()}))
    for k, turn in enumerate(raw.get("tool_turns") or ()):
        if not 1 <= int(turn) < turns:
            raise doc.error(
                f"turn {turn} cannot ask for a tool: its result needs a later turn "
                f"(1..{turns - 1} for {turns} turns)",
                ("conversation", "tool_turns", k),
            )
    return ConversationSpec(
        turns=turns,
        think_time=pause("think_time"),
        tool_turns=tool_turns,
        tool_latency=pause("tool_latency"),
        tool_name=str(raw.get("tool_name", "lookup")),
        tool_result_tokens=int(raw.get("tool_result_tokens", 32)),
    )


def _trace(doc: YamlDoc, raw: Any) -> Trace:
    spec = raw if isinstance(raw, dict) else {"file": raw}
    where: tuple[str, ...] = ("trace", "file") if isinstance(raw, dict) else ("trace",)
    path = (Path(doc.path).parent / str(spec["file"])).resolve()
    if not path.is_file():
        raise doc.error(f"trace file not found: {path}", where)
    try:
        speed = parse_speed(spec.get("speed", 1), what="speed")
    except ConfigError as exc:
        raise doc.error(exc.detail, ("trace", "speed")) from None
    return load_trace(
        path,
        str(spec.get("format", "auto")),
        speed=speed,
        block_tokens=spec.get("block_tokens"),
    )


def _slo(data: dict[str, Any]) -> dict[str, Any]:
    """The scenario's ``slo``; a scenario without one takes the project's (chatprobe.project)."""
    return dict(data.get("slo") or current_project().slo)


def _prompts(doc: YamlDoc, raw: dict[str, Any]) -> PromptSpec:
    kinds = [k for k in ("text", "synthetic", "file") if k in raw]
    if len(kinds) > 1:
        raise doc.error(
            f"give one of text, synthetic or file (found: {', '.join(kinds)})", ("prompts",)
        )
    system = raw.get("system")
    order = str(raw.get("order", "round_robin"))
    if not kinds:
        return PromptSpec(system=system, order=order)
    kind = kinds[0]
    if kind == "text":
        texts = raw["text"] if isinstance(raw["text"], list) else [raw["text"]]
        return PromptSpec("text", tuple(str(t) for t in texts), system=system, order=order)
    if kind == "synthetic":
        written = raw["synthetic"]["input_tokens"]
        # a number is a fixed length: input_tokens: 512
        dist = {"distribution": "fixed", "mean": written} if _is_number(written) else dict(written)
        lo, hi = dist.get("min"), dist.get("max")
        if lo is not None and hi is not None and lo > hi:
            raise doc.error("min must not exceed max", ("prompts", "synthetic", "input_tokens"))
        if dist.get("distribution") == "uniform" and (lo is None or hi is None):
            raise doc.error(
                "a uniform distribution needs min and max",
                ("prompts", "synthetic", "input_tokens"),
            )
        count = int(raw["synthetic"].get("count", 64))
        return PromptSpec(
            "synthetic", (), distribution=dist, count=count, system=system, order=order
        )
    base = Path(doc.path).parent
    path = (base / str(raw["file"])).resolve()
    if not path.is_file():
        raise doc.error(f"prompt file not found: {path}", ("prompts", "file"))
    return PromptSpec("file", (), file=str(path), system=system, order=order)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
