"""``chatprobe capacity``'s engine: one load step per level through the launcher, judged.

Each step is one ordinary load run (:func:`chatprobe.load.launcher.run_load`, the public
entry point) of one target at one request rate (open loop) or one concurrency (closed
loop), written to ``<capacity folder>/steps/<step-id>/`` like any ``chatprobe load`` run.
While it runs, :class:`StepWatcher` (the launcher's ``stop_when`` hook) reads the samples as
they land and ends the step as soon as its verdict is clear (every SLO percentile's CI on
one side of its limit, at least ``min_samples`` requests and ``min_step_s`` seconds in) or
the client fell behind its schedule. Afterwards the step's figures are computed by
:func:`chatprobe.metrics.compute_run` from its exact samples with the capacity SLO as the
goodput limits, and judged (:mod:`chatprobe.capacity.verdict`).

The search (:mod:`chatprobe.capacity.search`) runs per target; ``capacity.json`` holds every
target's answer and every step (docs/results-format.md).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from chatprobe.capacity.health import assess, timing_limit
from chatprobe.capacity.search import (
    SearchSettings,
    Step,
    StopSearch,
    as_dict,
    fmt_level,
    search,
)
from chatprobe.capacity.slo import CapacitySlo, resolve_slo
from chatprobe.capacity.verdict import Judgement, judge
from chatprobe.errors import ChatprobeError, ConfigError
from chatprobe.metrics import (
    DEFAULT_MAX_ERROR_RATE,
    SLO_METRICS,
    compute_run,
    latency_column,
    send_offsets,
)
from chatprobe.results import (
    CAPACITY,
    CAPACITY_STEPS,
    EMULATOR_TRUTH,
    PLAN,
    SAMPLES,
    SUMMARY,
    ProfileSnapshot,
)
from chatprobe.stats import design_effect, percentile, quantile_ci
from chatprobe.transport import TLSConfig

__all__ = [
    "CAPACITY_VERSION",
    "CapacityOptions",
    "CapacityOutcome",
    "StepWatcher",
    "build_document",
    "gate",
    "latency_curve",
    "measure_step",
    "run_capacity",
]

CAPACITY_VERSION = 1
CURVE_METRICS = ("ttft_ms", "itl_ms")  # drawn for every step, SLO or not
CURVE_PCTS = (50.0, 95.0, 99.0)
WATCH_EVERY_S = 0.5


@dataclass(slots=True)
class CapacityOptions:
    """Everything ``chatprobe capacity`` accepts (see ``chatprobe capacity --help``)."""

    scenario: str | None = None
    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    base_url: str | None = None
    api_key_env: str | None = None
    name: str | None = None
    by: str = "rate"  # rate (open loop) | concurrency (closed loop)
    slo: dict[str, float] | None = None  # --slo
    percentile: float | None = None
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    confidence: float = 0.95
    min_samples: int = 100
    start: float | None = None
    growth: float = 2.0
    tolerance: float = 0.05
    max_steps: int = 12
    max_level: float | None = None
    step_s: float = 30.0  # the longest a step runs
    min_step_s: float = 10.0  # the shortest a step runs before an early verdict
    warmup_s: float = 2.0
    max_cost: float | None = None  # USD over the whole search
    processes: int | None = None
    out: Path | None = None
    run_id: str | None = None
    emulator: bool | None = None
    emulator_url: str | None = None
    pin: bool = True
    progress: bool = True
    tls: TLSConfig = field(default_factory=TLSConfig)
    timeouts: dict[str, str] = field(default_factory=dict)
    fail_below: float | None = None
    command: list[str] = field(default_factory=lambda: list(sys.argv))

    def __post_init__(self) -> None:
        if self.by not in ("rate", "concurrency"):
            raise ConfigError(f"--by must be rate or concurrency, not {self.by!r}")
        if not self.step_s > 0 or self.min_step_s < 0 or self.min_step_s > self.step_s:
            raise ConfigError(
                f"--step-duration ({self.step_s:g}s) must be at least --min-step "
                f"({self.min_step_s:g}s): lengthen the step or shorten --min-step"
            )
        if self.warmup_s < 0 or self.warmup_s >= self.step_s:
            raise ConfigError(
                f"--step-warmup ({self.warmup_s:g}s) must be shorter than --step-duration "
                f"({self.step_s:g}s)"
            )
        if self.max_cost is not None and not self.max_cost > 0:
            raise ConfigError(f"--max-cost must be more than 0 USD, got {self.max_cost:g}")
        if self.min_samples < 1:
            raise ConfigError("--min-samples must be at least 1")


@dataclass(slots=True)
class CapacityOutcome:
    path: Path
    document: dict[str, Any]
    exit_code: int
    failures: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- early stop


class StepWatcher:
    """The launcher's ``stop_when`` hook for one step: reads ``samples.jsonl`` as it grows
    and says stop once the step's verdict is clear, or the client fell behind."""

    def __init__(
        self,
        slo: CapacitySlo,
        *,
        open_loop: bool,
        min_step_s: float,
        lag_threshold_ms: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slo = slo
        self.open_loop = open_loop
        self.min_step_s = min_step_s
        self.lag_threshold_ms = lag_threshold_ms
        self.clock = clock
        self.started = clock()
        self.checked = 0.0
        self.offset = 0
        self.tail = b""
        self.values: dict[str, list[float]] = {m: [] for m in slo.limits}
        self.lags: list[float] = []
        self.requests = 0
        self.errors = 0
        self.reason = ""  # why it stopped the step ("" while it did not)

    def feed(self, blob: bytes) -> None:
        """Parse complete sample lines (a partial last line waits for the next read)."""
        data = self.tail + blob
        lines = data.split(b"\n")
        self.tail = lines.pop()
        for line in lines:
            if not line.strip():
                continue
            try:
                sample = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if sample.get("warmup"):
                continue
            self.requests += 1
            lag = sample.get("lag_ms")
            if lag is not None:
                self.lags.append(float(lag))
            if sample.get("error_class"):
                self.errors += 1
                continue
            for metric, values in self.values.items():
                value = sample.get(metric)
                if value is None:
                    continue
                if self.open_loop and metric != "itl_ms" and lag is not None:
                    value = float(value) + float(lag)  # the latency origin: t_sched
                values.append(float(value))

    def judgement(self) -> Judgement:
        return judge(self.values, self.requests, self.errors, self.slo)

    def __call__(self, folder: Path) -> bool:
        now = self.clock()
        if now - self.checked < WATCH_EVERY_S:
            return False
        self.checked = now
        try:
            with open(folder / SAMPLES, "rb") as fh:
                fh.seek(self.offset)
                blob = fh.read()
        except OSError:
            return False
        self.offset += len(blob)
        self.feed(blob)
        if now - self.started < self.min_step_s:
            return False
        if self.lag_threshold_ms is not None and len(self.lags) >= self.slo.min_samples:
            p99 = percentile(sorted(self.lags), 99.0)
            if p99 > self.lag_threshold_ms:
                self.reason = f"client behind its schedule (lag p99 {p99:.1f} ms)"
                return True
        verdict = self.judgement()
        if verdict.clear:
            self.reason = f"verdict clear: {verdict.verdict}"
            return True
        return False


# ---------------------------------------------------------------------------- one step


def latency_curve(ordered: list[float], confidence: float) -> dict[str, float | int | None]:
    """p50, p95 and p99 of values in send order, each with its CI (the design effect of
    the values' own autocorrelation included, as in the verdict)."""
    data = sorted(ordered)
    out: dict[str, float | int | None] = {"n": len(data)}
    for q in CURVE_PCTS:
        key = f"p{q:g}"
        if data:
            value = percentile(data, q)
            out[key] = value
            out[f"{key}_low"], out[f"{key}_high"] = quantile_ci(
                data, q, confidence=confidence, design_effect=design_effect(ordered, value)
            )
        else:
            out[key] = out[f"{key}_low"] = out[f"{key}_high"] = None
    return out


def _jsonl(path: Path) -> list[dict[str, Any]]:
    out = []
    with open(path, "rb") as fh:
        for line in fh:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict):
                out.append(record)
    return out


def timing_error_ms(folder: Path) -> float | None:
    """The client's timing error where the server says when it sent the first token (the
    emulator's ground truth): the median over measured requests of the client's TTFT (from
    t0) minus the server's (first token written - request read), paired by the server's
    request id. None without ground truth."""
    truth_path, samples_path = folder / EMULATOR_TRUTH, folder / SAMPLES
    if not truth_path.is_file() or not samples_path.is_file():
        return None
    served = {}
    for record in _jsonl(truth_path):
        first, received = record.get("t_first_content_ns"), record.get("t_received_ns")
        if record.get("status") == 200 and first is not None and received is not None:
            served[str(record.get("request_id"))] = (first - received) / 1e6
    gaps = []
    for sample in _jsonl(samples_path):
        if sample.get("warmup") or sample.get("error_class") or sample.get("ttft_ms") is None:
            continue
        server = served.get(str(sample.get("server_request_id")))
        if server is not None:
            gaps.append(float(sample["ttft_ms"]) - server)
    return statistics.median(gaps) if gaps else None


def measure_step(folder: Path, slo: CapacitySlo, *, level: float, stopped_early: bool) -> Step:
    """A finished step folder's figures and verdict (see the module docstring)."""
    from chatprobe.load.plan import read_plan
    from chatprobe.load.summary import read_sample_table, run_spec

    plan = read_plan(folder / PLAN)
    summary = orjson.loads((folder / SUMMARY).read_bytes()) if (folder / SUMMARY).exists() else {}
    table = read_sample_table(folder / SAMPLES)
    end_s = (summary.get("timeline") or {}).get("end_s")
    spec = run_spec(plan, ProfileSnapshot.read(folder), end_s=end_s, slo=dict(slo.limits))
    figures = compute_run(table, spec)
    group = figures.groups[0] if figures.groups else None
    open_loop = plan.open_loop is not None
    keep = [
        i for i in range(len(table)) if not table.warmup[i] or figures.warmup_samples == len(table)
    ]
    ok = [i for i in keep if not table.error[i]]
    offsets = send_offsets(table) if len(table) else []
    by_send = sorted(ok, key=lambda i: offsets[i])
    values: dict[str, list[float]] = {}
    for metric in dict.fromkeys([*slo.limits, *CURVE_METRICS]):
        if metric not in SLO_METRICS:
            continue
        col = latency_column(table, metric, open_loop=open_loop) if len(table) else []
        values[metric] = [v for v in (col[i] for i in by_send) if v == v]  # send order
    requests = group.requests if group else 0
    failed = requests - (group.ok if group else 0)
    judgement = judge({m: values.get(m, []) for m in slo.limits}, requests, failed, slo)
    # successful completions inside the measured window, per second
    window = figures.window_s
    end = max((w.end_s for w in figures.timeline), default=0.0)
    done = []
    if len(table):
        offsets = table.floats["t_offset_s"]
        e2e = latency_column(table, "e2e_ms", open_loop=open_loop)
        done = [i for i in ok if offsets[i] + (e2e[i] if e2e[i] == e2e[i] else 0) / 1e3 <= end]
    throughput = len(done) / window if window > 0 else None
    # the client's health
    client_cpu = summary.get("client_cpu") or {}
    cpu = client_cpu.get("busy_fraction")
    loop = client_cpu.get("loop_lag_ms") or {}
    timing = timing_error_ms(folder)
    health = assess(
        lag_p99_ms=figures.lag_ms.p99 if open_loop else None,
        lag_threshold_ms=figures.lag_threshold_ms if open_loop else None,
        cpu_busy=cpu,
        timing_error_ms=timing,
        timing_limit_ms=timing_limit(list(slo.limits.values())),
        loop_lag_p99_ms=loop.get("p99_ms"),
        loop_lag_limit_ms=loop.get("limit_ms"),
    )
    return Step(
        level=level,
        judgement=judgement,
        health=health,
        requests=requests,
        ok=group.ok if group else 0,
        errors=dict(group.errors) if group else {},
        rate_limited=group.rate_limited.count if group else 0,
        achieved_rps=group.requests_per_s if group else None,
        throughput_rps=throughput,
        goodput_rps=group.goodput_rps if group else None,
        duration_s=float(end_s or 0.0),
        stopped_early=stopped_early,
        latency={m: latency_curve(v, slo.confidence) for m, v in values.items()},
        cost_usd=group.cost.usd_total if group else None,
        run_id=folder.name,
        path=f"{CAPACITY_STEPS}/{folder.name}",
    )


# ---------------------------------------------------------------------------- the command


def _targets(options: CapacityOptions) -> tuple[Any, tuple[str, ...]]:
    """The resolved scenario and the provider references each step passes on."""
    from chatprobe.load.launcher import LoadOptions, resolve_scenario

    providers = options.providers
    if options.base_url or options.api_key_env or options.name:
        from chatprobe.endpoints import provider_refs

        providers = tuple(
            provider_refs(
                options.providers,
                options.base_url,
                options.api_key_env,
                options.models,
                name=options.name,
            )
        )
    scenario = resolve_scenario(
        LoadOptions(scenario=options.scenario, providers=providers, models=options.models)
    )
    return scenario, providers


def _slug(text: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in text)
    return "-".join(part for part in keep.split("-") if part)[:60] or "target"


class _Budget:
    """``--max-cost``: what the steps spent at their captured prices, and the next step's
    likely cost."""

    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self.spent = 0.0
        self.per_request: float | None = None

    def add(self, step: Step) -> None:
        if step.cost_usd is not None:
            self.spent += step.cost_usd
            if step.ok:
                self.per_request = step.cost_usd / step.ok

    def check(self, expected_requests: float, first_guess: float | None, unit: str) -> None:
        if self.limit is None:
            return
        per = self.per_request if self.per_request is not None else first_guess
        if per is None:
            return
        estimate = per * expected_requests
        if self.spent + estimate > self.limit:
            raise StopSearch(
                "budget",
                f"spent {self.spent:.4f} USD; the next step (~{expected_requests:.0f} "
                f"requests, ~{estimate:.4f} USD) would pass --max-cost {self.limit:g} USD",
            )


def _price_guess(provider: str, model: str, max_tokens: int) -> float | None:
    """USD per request before any step: the profile's price, 100 prompt tokens and the
    scenario's ``max_tokens`` out."""
    from chatprobe.profiles import load_profile

    try:
        info = load_profile(provider).models.get(model)
    except ChatprobeError:
        return None
    pricing = getattr(info, "pricing", None) if info is not None else None
    return pricing.cost(100, max_tokens) if pricing is not None else None


def run_capacity(options: CapacityOptions, *, console: Any = None) -> CapacityOutcome:
    """Search every target's capacity; write the capacity folder; return the answers."""
    from rich.console import Console

    from chatprobe.load.launcher import LoadOptions, run_load
    from chatprobe.profiles import load_profile
    from chatprobe.results import (
        finish_meta,
        new_run_dir,
        results_root,
        write_json_atomic,
        write_meta,
        write_profiles,
    )

    console = console or Console(stderr=True)
    scenario, _refs = _targets(options)
    open_loop = options.by == "rate"
    slo = resolve_slo(
        flags=options.slo,
        scenario_slo=scenario.slo,
        scenario_attainment=scenario.slo_attainment,
        percentile=options.percentile,
        max_error_rate=options.max_error_rate,
        confidence=options.confidence,
        min_samples=options.min_samples,
    )
    unit = "req/s" if open_loop else "users"
    try:
        settings = SearchSettings(
            start=options.start or 1.0,
            growth=options.growth,
            tolerance=options.tolerance,
            max_steps=options.max_steps,
            max_level=options.max_level,
            min_level=0.1 if open_loop else 1.0,
            integer=not open_loop,
            unit=unit,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    lag_threshold = scenario.open_loop.lag_threshold_ms if scenario.open_loop else None
    if lag_threshold is None and open_loop:
        from chatprobe.load.scenario import DEFAULT_LAG_THRESHOLD_MS

        lag_threshold = DEFAULT_LAG_THRESHOLD_MS
    root = new_run_dir(options.out or results_root(), options.run_id)
    steps_dir = root / CAPACITY_STEPS
    steps_dir.mkdir()
    refs = list(dict.fromkeys(t.provider for t in scenario.targets))
    write_meta(
        root,
        kind="capacity",
        data_source="emulated" if options.emulator or options.emulator_url else "live",
        providers=refs,
        models=list(dict.fromkeys(t.model for t in scenario.targets)),
        command=options.command,
        scenario=scenario.name,
    )
    write_profiles(root, [load_profile(ref) for ref in refs])
    budget = _Budget(options.max_cost)
    targets_out: list[dict[str, Any]] = []
    sources: set[str] = set()
    for index, target in enumerate(scenario.targets):
        slug = _slug(f"{index + 1}-{target.provider.rsplit('/', 1)[-1]}-{target.model}")
        guess = _price_guess(target.provider, target.model, scenario.max_tokens)
        count = [0]
        last: list[Step] = []

        def step_fn(
            level: float,
            target: Any = target,
            slug: str = slug,
            guess: float | None = guess,
            count: list[int] = count,
            last: list[Step] = last,
        ) -> Step:
            expected = level * options.step_s
            if not open_loop:
                rate = (last[-1].achieved_rps or 0.0) / max(1.0, last[-1].level) if last else 0
                expected = level * rate * options.step_s if rate else level * options.step_s
            budget.check(expected, guess, unit)
            count[0] += 1
            watcher = StepWatcher(
                slo,
                open_loop=open_loop,
                min_step_s=options.warmup_s + options.min_step_s,
                lag_threshold_ms=lag_threshold,
            )
            console.print(
                f"[bold]{target.provider}/{target.model}[/] step {count[0]}: "
                f"{fmt_level(level, unit)} {unit}"
            )
            outcome = run_load(
                LoadOptions(
                    scenario=options.scenario,
                    providers=(target.provider,),
                    models=(target.model,),
                    users=int(level) if not open_loop else None,
                    rate=level if open_loop else None,
                    duration_s=options.step_s,
                    warmup_s=options.warmup_s,
                    processes=options.processes,
                    out=steps_dir,
                    run_id=f"{slug}-{count[0]:02d}",
                    emulator=options.emulator,
                    emulator_url=options.emulator_url,
                    pin=options.pin,
                    progress=options.progress,
                    max_error_rate=1.0,
                    tls=options.tls,
                    timeouts=dict(options.timeouts),
                    command=options.command,
                    stop_when=watcher,
                ),
                console=console,
            )
            if outcome.path is None:
                raise ChatprobeError("a capacity step wrote no results folder")
            if outcome.exit_code == 130 and not watcher.reason:
                raise KeyboardInterrupt
            try:
                meta = orjson.loads((outcome.path / "meta.json").read_bytes())
                sources.add(str(meta.get("data_source") or ""))
            except (OSError, orjson.JSONDecodeError):
                pass
            step = measure_step(outcome.path, slo, level=level, stopped_early=bool(watcher.reason))
            budget.add(step)
            last.append(step)
            console.print(
                f"  {step.judgement.verdict} ({step.requests} requests, "
                f"{step.duration_s:.1f}s{', stopped early' if step.stopped_early else ''}"
                f"{'; client limited: ' if not step.health.valid else ''}"
                f"{'; '.join(step.health.problems)})"
            )
            return step

        if options.start is None and not open_loop:
            settings = replace(settings, start=1.0)
        try:
            result = search(step_fn, settings, slo)
        except KeyboardInterrupt:  # keep a loadable folder: the targets finished so far
            document = _write(
                root, options, scenario.name, slo, settings, targets_out, budget, sources
            )
            document["interrupted"] = True
            write_json_atomic(root / CAPACITY, document)
            finish_meta(root, interrupted=True)
            raise
        targets_out.append({"provider": target.provider, "model": target.model, **as_dict(result)})
    document = _write(root, options, scenario.name, slo, settings, targets_out, budget, sources)
    failures = gate(document, options.fail_below)
    finish_meta(root, interrupted=False)
    return CapacityOutcome(root, document, 1 if failures else 0, failures)


def _write(
    root: Path,
    options: CapacityOptions,
    scenario: str,
    slo: CapacitySlo,
    settings: SearchSettings,
    targets: list[dict[str, Any]],
    budget: _Budget,
    sources: set[str],
) -> dict[str, Any]:
    """Write ``capacity.json`` (and meta.json's data source) for the targets so far."""
    from chatprobe.results import write_json_atomic

    document = build_document(
        run_id=root.name,
        scenario=scenario,
        by=options.by,
        slo=slo,
        settings=settings,
        step={
            "max_s": options.step_s,
            "min_s": options.min_step_s,
            "warmup_s": options.warmup_s,
            "min_samples": slo.min_samples,
        },
        targets=targets,
        max_cost=options.max_cost,
        spent=budget.spent if budget.limit is not None or budget.spent else None,
        fail_below=options.fail_below,
    )
    data_source = " + ".join(sorted(s for s in sources if s)) or "live"
    document["data_source"] = data_source
    write_json_atomic(root / CAPACITY, document)
    _fix_meta_source(root, data_source)
    return document


def _fix_meta_source(root: Path, data_source: str) -> None:
    """meta.json's data source is only known once the steps said (emulated or live)."""
    from chatprobe.results import META, write_json_atomic

    meta = orjson.loads((root / META).read_bytes())
    meta["data_source"] = "emulated" if "emulated" in data_source else "live"
    write_json_atomic(root / META, meta)


def build_document(
    *,
    run_id: str,
    scenario: str,
    by: str,
    slo: CapacitySlo,
    settings: SearchSettings,
    step: dict[str, Any],
    targets: list[dict[str, Any]],
    max_cost: float | None = None,
    spent: float | None = None,
    fail_below: float | None = None,
) -> dict[str, Any]:
    """``capacity.json`` (docs/results-format.md); ``targets`` are
    ``{"provider", "model", **as_dict(result)}``."""
    from chatprobe.metrics import jsonable

    return {
        "schema_version": CAPACITY_VERSION,
        "run_id": run_id,
        "scenario": scenario,
        "by": by,
        "unit": settings.unit,
        "slo": {**jsonable(slo), "text": slo.describe()},
        "search": jsonable(settings),
        "step": step,
        "max_cost_usd": max_cost,
        "spent_usd": spent,
        "fail_below": fail_below,
        "targets": targets,
    }


def gate(document: dict[str, Any], fail_below: float | None) -> list[str]:
    """``--fail-below RATE``: a target whose capacity is under it (or has none) fails."""
    if fail_below is None:
        return []
    unit = document.get("unit", "req/s")
    failures = []
    for t in document.get("targets") or []:
        capacity = t.get("capacity")
        if capacity is None or capacity < fail_below:
            shown = "none" if capacity is None else fmt_level(capacity, unit)
            failures.append(
                f"{t['provider']}/{t['model']}: capacity {shown} {unit} is below "
                f"--fail-below {fail_below:g} {unit}"
            )
    return failures
