"""``chatprobe load``'s parent process: plan, emulator, locust child, progress, signals.

locust runs in a child process (``python -m locust -f <chatprobe>/_data/loadtests/locustfile.py
--headless``, the locustfile shipped in the package: :func:`chatprobe.paths.locustfile`)
because gevent's monkey-patching must never enter the CLI or a pytest process. The parent:

1. loads the scenario, applies command-line overrides, decides live vs. emulated (no key
   for a target's provider -> the emulator, for every target so the comparison is like
   for like), and writes ``meta.json`` and ``plan.json`` into ``results/<run-id>/``;
2. starts the emulator when needed (``chatprobe emulate`` in a subprocess, pinned to the
   last CPU while locust gets the others, where the machine has two or more) with its
   ground truth written to ``emulator_truth.jsonl``;
3. starts locust in its own session and shows a live line fed by the child's
   ``status.json`` (elapsed, requests, errors, TTFT p50);
4. on SIGINT/SIGTERM sends the child SIGUSR1 (end now, keep the samples, write the summary
   marked ``interrupted``); a second signal, or a child that does not finish in time, gets
   SIGTERM then SIGKILL; if the child left no ``summary.json`` the parent builds it from
   ``samples.jsonl``;
5. stamps ``meta.json`` finished and returns the summary and the verdict (the command
   prints them: :mod:`chatprobe.output.load`): the exit status is 1 when the error rate
   passed ``--max-error-rate`` or a scenario SLO was missed (:func:`chatprobe.metrics.verdict`).

``meta.json``, ``plan.json`` and ``profiles.json`` (the provider profiles as they are at run
time: prices, deviations) are written before locust starts, so the folder describes itself.

A custom endpoint (``base_url``/``api_key_env`` with ``models``) is materialised as a profile
file (:func:`chatprobe.endpoints.materialise_endpoint`) whose path becomes the targets'
provider, so the locust children resolve it from ``plan.json`` like any profile; it is always
loaded live (its key variable must be set), never emulated, and its profile is copied into
the results folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from chatprobe.errors import ChatprobeError, ConfigError
from chatprobe.load.plan import (
    PLAN_ENV,
    EmulatorTarget,
    RunPlan,
    build_plan,
    missing_keys,
)
from chatprobe.load.scenario import Scenario, Target, load_scenario
from chatprobe.load.summary import build_summary, read_sample_table, summary_verdict
from chatprobe.metrics import DEFAULT_MAX_ERROR_RATE
from chatprobe.paths import locustfile as shipped_locustfile
from chatprobe.preflight import preflight
from chatprobe.project import child_env, current_project
from chatprobe.results import (
    EMULATOR_TRUTH,
    LOCUST_CSV_PREFIX,
    LOCUST_LOG,
    PLAN,
    SAMPLES,
    STATUS,
    SUMMARY,
    ProfileSnapshot,
)
from chatprobe.transport import Timeouts, TLSConfig

__all__ = ["LoadOptions", "LoadOutcome", "run_load"]

DEFAULT_SCENARIO = "smoke"
STARTUP_ALLOWANCE_S = 60.0  # locust import, worker connection, emulator start
GRACEFUL_WAIT_S = 45.0  # after SIGUSR1: stop grace + final batches + summary
TERM_WAIT_S = 10.0


@dataclass(slots=True)
class LoadOptions:
    """Everything ``chatprobe load`` accepts (see ``chatprobe load --help``)."""

    scenario: str | None = None
    providers: tuple[str, ...] = ()  # profile names or profile files
    models: tuple[str, ...] = ()
    base_url: str | None = None  # a custom endpoint instead of providers (needs models)
    api_key_env: str | None = None
    name: str | None = None  # --name: what the --base-url endpoint is called
    users: int | None = None
    duration_s: float | None = None
    requests: int | None = None
    rate: float | None = None
    processes: Any = None  # a count ("auto" is settled by chatprobe.calibrate.calibrate_for)
    conformance_share: float | None = None  # over the scenario's
    master: bool = False
    worker: bool = False
    master_host: str = "127.0.0.1"
    master_port: int = 5557
    expect_workers: int = 1
    out: Path | None = None  # results root
    run_id: str | None = None
    emulator: bool | None = None  # None: only when keys are missing
    emulator_url: str | None = None
    pin: bool = True
    progress: bool = True
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    tls: TLSConfig = field(default_factory=TLSConfig)  # what the locust children trust
    timeouts: dict[str, str] = field(default_factory=dict)  # given ones, over the scenario's
    trace: str | None = None  # --trace FILE: replay it (replaces the scenario's shape)
    trace_format: str = "auto"
    speed: float | None = None  # --speed: a trace's time scale (None: the scenario's, else 1x)
    command: list[str] = field(default_factory=lambda: list(sys.argv))
    warmup_s: float | None = None  # replaces the scenario's warm-up (chatprobe capacity)
    calibration: dict[str, Any] | None = None  # --calibrate / --processes auto, for meta.json
    # Early-stop hook: polled with the results folder while locust runs (about every 0.2 s);
    # True ends the run as a first Ctrl-C does (samples kept, summary written).
    stop_when: Callable[[Path], bool] | None = None


@dataclass(slots=True)
class LoadOutcome:
    path: Path | None
    summary: dict[str, Any] | None
    exit_code: int
    interrupted: bool = False
    failures: list[str] = field(default_factory=list)  # why the run failed (exit 1)


# ---------------------------------------------------------------------------- scenario


def resolve_scenario(options: LoadOptions) -> Scenario:
    """The scenario with the command line's overrides applied."""
    scenario = load_scenario(options.scenario or DEFAULT_SCENARIO)
    scenario = _with_trace(scenario, options)
    targets = _targets(scenario, options.providers, options.models)
    if options.timeouts:
        timeouts = Timeouts.from_mapping(options.timeouts, base=scenario.timeouts)
        scenario = replace(scenario, timeouts=timeouts)
    if options.warmup_s is not None:
        scenario = replace(scenario, warmup_s=options.warmup_s, ramp_s=0.0)
    if options.conformance_share is not None:
        scenario = replace(scenario, conformance_share=options.conformance_share)
    return scenario.override(
        users=options.users,
        duration_s=options.duration_s,
        requests=options.requests,
        rate=options.rate,
        targets=targets,
    )


def _with_trace(scenario: Scenario, options: LoadOptions) -> Scenario:
    """``--trace FILE [--trace-format F] [--speed S]``: the scenario replaying that trace
    (its targets, request fields and emulator settings kept); ``--speed`` alone rescales
    the scenario's own trace."""
    from chatprobe.load.trace import load_trace

    if options.trace is None:
        if options.speed is None and options.trace_format == "auto":
            return scenario
        if scenario.trace is None:
            raise ConfigError("--speed and --trace-format need a trace: --trace FILE")
        trace = scenario.trace
        if options.trace_format not in ("auto", trace.format):
            trace = load_trace(
                trace.path, options.trace_format, speed=trace.speed, block_tokens=trace.block_tokens
            )
        if options.speed is not None:
            trace = replace(trace, speed=options.speed)
        return scenario.with_trace(trace)
    if scenario.conversation is not None:
        raise ConfigError("a scenario with a conversation cannot replay a trace (--trace)")
    block = scenario.trace.block_tokens if scenario.trace is not None else None
    trace = load_trace(
        options.trace, options.trace_format, speed=options.speed or 1.0, block_tokens=block
    )
    return scenario.with_trace(trace)


def _targets(
    scenario: Scenario, providers: tuple[str, ...], models: tuple[str, ...]
) -> tuple[Target, ...] | None:
    """``--provider``/``--model``: filter the scenario's targets, or build new pairs.

    ``--provider P --model M`` loads exactly P x M. ``--provider P`` alone keeps P's targets
    from the scenario, else P's first model. ``--model M`` alone keeps the scenario's
    targets with that model, else every scenario provider with M.
    """
    if not providers and not models:
        return None
    from chatprobe.profiles import load_profile

    if providers and models:
        return tuple(Target(p, m) for p in providers for m in models)
    if providers:
        out: list[Target] = []
        for p in providers:
            kept = [t for t in scenario.targets if t.provider == p]
            out.extend(kept or [Target(p, load_profile(p).default_model)])
        return tuple(out)
    kept = [t for t in scenario.targets if t.model in models]
    if kept:
        return tuple(kept)
    names = dict.fromkeys(t.provider for t in scenario.targets)
    return tuple(Target(p, m) for p in names for m in models)


# ---------------------------------------------------------------------------- emulator


def emulator_config(scenario: Scenario, truth_path: Path | None) -> Any:
    """An EmulatorConfig from the scenario's ``emulator:`` block."""
    from chatprobe.emulator import EmulatorConfig, parse_fault_rate
    from chatprobe.emulator.config import block_changes

    block = scenario.emulator
    output = block.get("output_tokens")
    faults = tuple(
        parse_fault_rate(f"{kind}={rate}") for kind, rate in (block.get("faults") or {}).items()
    )
    # shipped profiles by name, profile files by path (the emulator serves either)
    providers = tuple(dict.fromkeys(t.provider for t in scenario.targets))
    changes: dict[str, Any] = {
        "providers": providers,
        "seed": int(block.get("seed", scenario.seed)),
        "ttft_ms": block.get("ttft_ms"),
        "itl_ms": block.get("itl_ms"),
        "sigma": block.get("sigma"),
        "tokens_per_chunk": block.get("tokens_per_chunk"),
        "faults": faults,
        "truth_jsonl": str(truth_path) if truth_path else None,
    }
    if output is not None:
        changes["output_tokens"] = (output, output) if isinstance(output, int) else tuple(output)
    elif scenario.trace is not None and scenario.trace.requests:
        # A trace says how long each answer was: let every answer run to its max_tokens
        # (the trace's output length), as a server honouring ignore_eos would.
        longest = max(r.output_tokens for r in scenario.trace.requests)
        changes["output_tokens"] = (longest, longest)
    changes.update(block_changes(block))  # capacity, schedule, dialect, prefix cache
    return EmulatorConfig(**{k: v for k, v in changes.items() if v is not None or k == "faults"})


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []


# ---------------------------------------------------------------------------- the run


def run_load(options: LoadOptions, *, console: Any = None) -> LoadOutcome:
    """Run one load test; returns where the results are and the summary."""
    from rich.console import Console

    console = console or Console(stderr=True)
    if options.base_url or options.api_key_env or options.name:
        from chatprobe.endpoints import provider_refs

        if options.emulator or options.emulator_url:
            raise ChatprobeError(
                "a --base-url endpoint is always loaded live; drop --emulator/--emulator-url"
            )
        refs = provider_refs(
            options.providers,
            options.base_url,
            options.api_key_env,
            options.models,
            name=options.name,
        )
        options = replace(
            options, providers=tuple(refs), base_url=None, api_key_env=None, name=None
        )
    scenario = resolve_scenario(options)
    if isinstance(options.processes, str):  # "auto" left to the caller: one process
        options = replace(options, processes=None)
    if options.master and options.worker:
        raise ChatprobeError("--master and --worker exclude each other")
    if options.processes is not None and (options.master or options.worker):
        raise ChatprobeError("--processes runs master and workers itself; drop --master/--worker")
    if options.processes is not None and options.processes < 1:
        raise ChatprobeError(f"--processes must be at least 1, got {options.processes}")

    use_emulator, notes = decide_source(scenario, options)
    _check_targets(scenario, live=not use_emulator)
    if options.worker:
        return _run_worker(scenario, options, use_emulator, console)

    from chatprobe.results import new_run_dir, results_root, write_meta

    out = new_run_dir(options.out or results_root(), options.run_id)
    try:
        return _run_in(out, scenario, options, use_emulator, notes, console, write_meta)
    except BaseException:
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # nothing was written: leave no empty folder behind
        raise


def _check_targets(scenario: Scenario, *, live: bool) -> None:
    """Fail on an unknown provider or model, or a missing key, before anything starts."""
    from chatprobe.load.plan import resolve_target
    from chatprobe.load.prompts import build_prompts

    for target in scenario.targets:
        resolve_target(target, None if live else EmulatorTarget("http://127.0.0.1:1"))
    build_prompts(scenario.prompts, scenario.seed)  # a bad prompt file fails here
    if live:
        missing = missing_keys(list(scenario.targets))
        if missing:
            from chatprobe.errors import MissingKeyError

            provider, variable = missing[0]
            raise MissingKeyError(variable, provider, "Or run against the emulator: --emulator.")


def _run_in(
    out: Path,
    scenario: Scenario,
    options: LoadOptions,
    use_emulator: bool,
    notes: list[str],
    console: Any,
    write_meta: Callable[..., Any],
) -> LoadOutcome:
    drivers = options.processes or (options.expect_workers if options.master else 1)
    emulator = None
    cpus = _cpus()
    try:
        if use_emulator and not options.emulator_url:
            from chatprobe.emulator import Emulator

            cpu = cpus[-1] if options.pin and len(cpus) >= 2 else None
            config = emulator_config(scenario, out / EMULATOR_TRUTH)
            emulator = Emulator.in_subprocess(config, cpu=cpu)
            target = EmulatorTarget(emulator.url())
        elif use_emulator:
            target = EmulatorTarget(str(options.emulator_url))
        else:
            target = None
        plan = build_plan(scenario, out_dir=out, emulator=target, drivers=drivers, tls=options.tls)
        if emulator is None:  # live targets, or an emulator elsewhere: reachable, or one line
            preflight([t.url for t in plan.targets], tls=options.tls)
        plan_path = plan.write(out / PLAN)
        write_meta(
            out,
            kind="load",
            data_source=plan.data_source,
            providers=list(dict.fromkeys(t.provider for t in plan.targets)),
            models=list(dict.fromkeys(t.model for t in plan.targets)),
            command=options.command,
            notes=notes,
            scenario=plan.scenario,
            scenario_path=plan.scenario_path,
            emulator=(
                {"url": target.root, "started_by_run": emulator is not None} if target else None
            ),
            processes=drivers,
            calibration=options.calibration,
        )
        from chatprobe.endpoints import record_profiles
        from chatprobe.profiles import load_profile
        from chatprobe.results import write_profiles

        refs = list(dict.fromkeys(t.provider for t in scenario.targets))
        write_profiles(out, [load_profile(ref) for ref in refs])
        record_profiles(out, refs)
        child_cpus = cpus[:-1] if emulator is not None and options.pin and len(cpus) >= 2 else []
        if (options.processes or 1) > 1:
            child_cpus = []  # several locust processes: let the kernel spread them
        args = _locust_args(plan, options, out)
        code, interrupted = _supervise(args, plan_path, plan, out, child_cpus, options, console)
        summary = _ensure_summary(plan, out, code, interrupted)
        emulator_stats = _emulator_stats(emulator)
    finally:
        if emulator is not None:
            emulator.close()
    from chatprobe.results import finish_meta

    finish_meta(
        out,
        interrupted=bool(summary.get("interrupted")),
        locust_exit_code=code,
        emulator_stats=emulator_stats,
    )
    failures = summary_verdict(summary, max_error_rate=options.max_error_rate)
    if code not in (0, None) and not interrupted:
        failures.insert(0, f"locust exited with status {code}; see {out / LOCUST_LOG}")
    exit_code = 130 if interrupted else (1 if failures else 0)
    return LoadOutcome(out, summary, exit_code, interrupted, failures)


def decide_source(scenario: Scenario, options: LoadOptions) -> tuple[bool, list[str]]:
    """Emulator or live, and a note saying why."""
    from chatprobe.profiles import load_profile

    custom = [
        load_profile(t.provider).name
        for t in scenario.targets
        if load_profile(t.provider).custom_endpoint
    ]
    if custom:  # an endpoint given with --base-url is real by definition
        if options.emulator or options.emulator_url:
            raise ChatprobeError(
                f"{', '.join(dict.fromkeys(custom))} is a custom endpoint, always loaded live; "
                "drop --emulator/--emulator-url"
            )
        return False, []
    if options.emulator_url:
        if options.emulator is False:
            raise ChatprobeError("--emulator-url and --no-emulator exclude each other")
        return True, [f"emulator at {options.emulator_url}"]
    if options.emulator is True:
        return True, ["--emulator: every target served by the emulator"]
    if options.emulator is False:
        return False, []
    missing = missing_keys(list(scenario.targets))
    if not missing:
        return False, []
    names = ", ".join(f"{p} (${v})" for p, v in missing)
    providers = {t.provider for t in scenario.targets}
    if len(missing) < len(providers):
        return True, [
            f"no key for {names}: every target runs against the emulator so the comparison "
            "stays like for like (use --no-emulator to require keys)"
        ]
    return True, [f"no key for {names}: emulated"]


def _run_worker(
    scenario: Scenario, options: LoadOptions, use_emulator: bool, console: Any
) -> LoadOutcome:
    """``--worker``: serve a master elsewhere with the same scenario; writes no results."""
    import tempfile

    if use_emulator and not options.emulator_url:
        raise ChatprobeError(
            "a --worker cannot start its own emulator: pass --emulator-url URL "
            "(the master's emulator) or set the providers' keys"
        )
    target = EmulatorTarget(str(options.emulator_url)) if use_emulator else None
    with tempfile.TemporaryDirectory(prefix="chatprobe-worker-") as tmp:
        plan = build_plan(scenario, out_dir=Path(tmp), emulator=target, drivers=1, tls=options.tls)
        preflight([t.url for t in plan.targets], tls=options.tls)
        plan_path = plan.write(Path(tmp) / PLAN)
        args = _locust_args(plan, options, Path(tmp))
        code, interrupted = _supervise(args, plan_path, plan, Path(tmp), [], options, console)
    return LoadOutcome(None, None, 130 if interrupted else (0 if code == 0 else 1), interrupted)


def _locust_args(plan: RunPlan, options: LoadOptions, out: Path) -> list[str]:
    locustfile = shipped_locustfile()
    if not locustfile.is_file():
        raise ConfigError("locustfile not found (reinstall chatprobe)", path=str(locustfile))
    args = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--headless",
        "--only-summary",
        "--stop-timeout",
        f"{plan.stop_timeout_s:g}",
        "--exit-code-on-error",
        "0",
    ]
    if options.worker:
        return [
            *args,
            "--worker",
            "--master-host",
            options.master_host,
            "--master-port",
            str(options.master_port),
        ]
    args += ["--csv", str(out / LOCUST_CSV_PREFIX)]
    if options.processes and options.processes > 1:
        # The forked workers connect over loopback: bind the master there (locust binds every
        # interface) on a free port (on locust's fixed 5557, the workers of two runs on one
        # machine join whichever master holds it, mixing their samples).
        port = str(_free_port())
        args += ["--processes", str(options.processes), "--master-bind-host", "127.0.0.1"]
        args += ["--master-bind-port", port, "--master-port", port]
    elif options.master:
        args += [
            "--master",
            "--expect-workers",
            str(options.expect_workers),
            "--master-bind-host",
            options.master_host if options.master_host != "127.0.0.1" else "*",
            "--master-bind-port",
            str(options.master_port),
        ]
    return args


# ---------------------------------------------------------------------------- supervision


@contextmanager
def _signals(handler: Callable[[int], None]) -> Iterator[None]:
    """Route SIGINT/SIGTERM to ``handler`` for the duration (main thread only)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda signum, _frame: handler(signum))
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _supervise(
    args: list[str],
    plan_path: Path,
    plan: RunPlan,
    out: Path,
    cpus: list[int],
    options: LoadOptions,
    console: Any,
) -> tuple[int | None, bool]:
    """Run the locust child to its end; returns (exit code, interrupted by a signal)."""
    env = {**child_env(), PLAN_ENV: str(plan_path), "PYTHONUNBUFFERED": "1"}
    log = open(out / LOCUST_LOG, "ab")  # noqa: SIM115 (closed below)

    def pin() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    child = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=str(current_project().root),
        start_new_session=True,  # a terminal's Ctrl-C reaches us, not the child directly
        preexec_fn=pin if cpus else None,
    )
    signals: list[int] = []
    escalation: list[tuple[float, int]] = []

    def on_signal(signum: int) -> None:
        signals.append(signum)
        now = time.monotonic()
        if len(signals) == 1:
            _send(child, signal.SIGUSR1)
            escalation.append((now + GRACEFUL_WAIT_S, signal.SIGTERM))
        elif len(signals) == 2:
            _send(child, signal.SIGTERM)
            escalation.append((now + TERM_WAIT_S, signal.SIGKILL))
        else:
            _send(child, signal.SIGKILL)

    limit = time.monotonic() + plan.duration_s + STARTUP_ALLOWANCE_S + GRACEFUL_WAIT_S
    if not plan.manage_end or options.worker:
        limit = float("inf")
    display = _Progress(console, out, plan) if options.progress and not options.worker else None
    stop_when = options.stop_when if not options.worker else None
    try:
        with _signals(on_signal), display or nullcontext():
            while child.poll() is None:
                now = time.monotonic()
                if stop_when is not None and not escalation and stop_when(out):
                    stop_when = None  # asked once; the child ends as after a first Ctrl-C
                    _send(child, signal.SIGUSR1)
                    escalation.append((now + GRACEFUL_WAIT_S, signal.SIGTERM))
                if now > limit and not escalation:
                    console.print("[yellow]the run overran its plan; stopping it[/]")
                    _send(child, signal.SIGUSR1)
                    escalation.append((now + GRACEFUL_WAIT_S, signal.SIGTERM))
                for due, sig in list(escalation):
                    if now >= due:
                        escalation.remove((due, sig))
                        _send(child, sig)
                        if sig == signal.SIGTERM:
                            escalation.append((now + TERM_WAIT_S, signal.SIGKILL))
                if display is not None:
                    display.update()
                time.sleep(0.2)
            if display is not None:
                display.update()
    finally:
        if child.poll() is None:
            _send(child, signal.SIGKILL)
            child.wait()
        _reap_group(child.pid)
        log.close()
    return child.returncode, bool(signals)


def _reap_group(pgid: int, wait_s: float = 5.0) -> None:
    """Forked locust workers may outlive their master by a moment; never by more than this."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.1)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _send(child: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the locust master; SIGKILL goes to its whole session (forked workers too)."""
    try:
        if sig == signal.SIGKILL:
            os.killpg(child.pid, sig)
        else:
            child.send_signal(sig)
    except (ProcessLookupError, PermissionError):
        pass


class _Progress:
    """Progress on stderr (fed by the child's status.json): elapsed, requests, errors, TTFT
    p50. On a terminal one live line; elsewhere (a CI log, a pipe) a plain line every
    :data:`LOG_EVERY_S` seconds and one at the end, never redrawn or wrapped."""

    LOG_EVERY_S = 10.0

    def __init__(self, console: Any, out: Path, plan: RunPlan) -> None:
        from rich.live import Live

        self.console = console
        self.path = out / STATUS
        self.plan = plan
        self.live = (
            Live("starting locust...", console=console, refresh_per_second=4)
            if console.is_terminal
            else None
        )
        self.line = ""
        self.logged_at = time.monotonic()

    def __enter__(self) -> _Progress:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)
        elif self.line:
            self._log()

    def _log(self) -> None:
        self.console.file.write(self.line + "\n")
        self.console.file.flush()
        self.logged_at = time.monotonic()

    def update(self) -> None:
        try:
            status = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return
        ttft = status.get("ttft_p50_ms")
        planned = status.get("planned_s")
        elapsed = f"{status.get('elapsed_s', 0):6.1f}s" + (f"/{planned:g}s" if planned else "")
        self.line = (
            f"{self.plan.scenario} {elapsed}  stage {status.get('stage') or '-'}  "
            f"users {status.get('users', 0)}  requests {status.get('requests', 0)}  "
            f"errors {status.get('errors', 0)}  "
            f"TTFT p50 {'-' if ttft is None else f'{ttft:.1f} ms'}"
        )
        if self.live is not None:
            from rich.text import Text

            self.live.update(Text(self.line))
        elif time.monotonic() - self.logged_at >= self.LOG_EVERY_S:
            self._log()


# ---------------------------------------------------------------------------- after the run


def _ensure_summary(
    plan: RunPlan, out: Path, code: int | None, interrupted: bool
) -> dict[str, Any]:
    """The child's summary.json, or one built here from samples.jsonl if it left none."""
    from chatprobe.results import write_json_atomic

    path = out / SUMMARY
    summary: dict[str, Any] | None = None
    if path.exists():
        try:
            summary = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            summary = None
    if summary is None:
        summary = build_summary(
            plan,
            read_sample_table(out / SAMPLES),
            run_id=out.name,
            profiles=ProfileSnapshot.read(out),
            interrupted=True,
            end_reason=f"locust child ended with status {code} before writing a summary",
            notes=["summary built by the parent from samples.jsonl"],
        )
        write_json_atomic(path, summary)
    elif interrupted and not summary.get("interrupted"):
        summary["interrupted"] = True
        write_json_atomic(path, summary)
    return summary


def _emulator_stats(emulator: Any) -> dict[str, Any] | None:
    if emulator is None:
        return None
    try:
        stats = emulator.stats()
    except Exception:  # the run's results do not depend on it
        return None
    return stats if isinstance(stats, dict) else None
