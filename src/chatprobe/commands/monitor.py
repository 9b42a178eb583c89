"""``chatprobe monitor``: probe providers continuously, keep the history, raise events."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from chatprobe.commands.options import (
    Duration,
    duration_option,
    provider_options,
    split_list,
    transport_options,
)
from chatprobe.transport import TransportOptions


def _sizes(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...]:
    """``100,1000`` -> (100, 1000); ``none`` -> () (no latency probes)."""
    if value is None:
        from chatprobe.monitor.probes import DEFAULT_SIZES

        return DEFAULT_SIZES
    if value.strip().lower() in ("none", "off", ""):
        return ()
    sizes = []
    for item in split_list([value]):
        try:
            size = int(item)
        except ValueError:
            raise click.BadParameter(f"{item!r} is not a number of tokens") from None
        if not 1 <= size <= 2_000_000:
            raise click.BadParameter(f"{item!r} is not between 1 and 2,000,000 tokens")
        sizes.append(size)
    return tuple(dict.fromkeys(sizes))


def _factor(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise click.BadParameter(f"must be a positive factor, got {value:g}")
    return value


@click.command(name="monitor")
@provider_options
@click.option(
    "--every",
    type=Duration(minimum_s=0.001),
    default=300.0,
    show_default="5m",
    help="Probe each target this often (monitor time), jittered by --jitter.",
)
@duration_option(help="Stop after this much monitor time. Default: run until stopped.")
@click.option(
    "--clock",
    type=float,
    default=None,
    callback=_factor,
    metavar="FACTOR",
    help="Run monitor time FACTOR times faster than the wall clock (match `chatprobe emulate "
    "--clock`): --every, --duration, --retention and the uptime windows are monitor time. "
    "Fixed when the database is created. [default: 1, or the database's]",
)
@click.option(
    "--jitter",
    type=click.FloatRange(0, 0.5),
    default=0.1,
    show_default=True,
    help="Each interval is --every times a seeded factor in 1 +- JITTER.",
)
@click.option(
    "--suite",
    "suite",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Contract cases to send each round (a suite YAML file). Default: the built-in "
    "monitor suite (plain answer, stream with usage, tool call, wrong key).",
)
@click.option(
    "--case",
    "cases",
    multiple=True,
    metavar="NAME",
    help="Send only these cases of the suite; repeatable and comma-separated.",
)
@click.option(
    "--sizes",
    default=None,
    callback=_sizes,
    metavar="N,N",
    help="Latency probes' input sizes in tokens (approximate), comma-separated; none for no "
    "latency probes. [default: 100,1000]",
)
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Requests in flight per target (1: one at a time, the polite default).",
)
@click.option(
    "--max-interval",
    type=Duration(minimum_s=0.001),
    default=None,
    help="Longest wait between rounds while a target keeps failing (back-off doubles the "
    "interval per failed round). [default: twice --every]",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="History database (SQLite). [default: <results folder>/monitor.sqlite]",
)
@click.option(
    "--retention",
    type=Duration(minimum_s=86400.0),
    default=30 * 86400.0,
    show_default="30d",
    help="Keep raw probes this long (monitor time); older ones are rolled up by hour.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus/OpenMetrics text on this port (0: any free port), path /metrics.",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind --metrics-port to (0.0.0.0 exposes it to the network).",
)
@click.option(
    "--webhook",
    default=None,
    metavar="URL",
    help="POST each event as JSON to this URL (retried with back-off; failures are logged).",
)
@click.option(
    "--emulator/--no-emulator",
    default=None,
    help="Force the built-in emulator, or require live keys. Default: the emulator for "
    "providers without a key.",
)
@click.option(
    "--emulator-url",
    metavar="URL",
    help="Probe a running emulator (http://HOST:PORT), e.g. one with scheduled faults.",
)
@click.option("--seed", type=int, default=None, help="Seed of the interval jitter.")
@click.option(
    "--quiet",
    is_flag=True,
    help="Print only the closing line (events still go "
    "to the history, the metrics and the webhook).",
)
@transport_options
def monitor(
    providers: tuple[str, ...],
    models: tuple[str, ...],
    base_url: str | None,
    api_key_env: str | None,
    name: str | None,
    every: float,
    duration: float | None,
    clock: float | None,
    jitter: float,
    suite: Path | None,
    cases: tuple[str, ...],
    sizes: tuple[int, ...],
    parallel: int,
    max_interval: float | None,
    db: Path | None,
    retention: float,
    metrics_port: int | None,
    metrics_host: str,
    webhook: str | None,
    emulator: bool | None,
    emulator_url: str | None,
    seed: int | None,
    quiet: bool,
    transport: TransportOptions,
) -> None:
    """Probe each target every --every with a small contract suite and latency probes at
    fixed input sizes (fresh prompts: a nonce per probe), keep every probe, finding and
    event in a SQLite history, and report changes: an outage starting or ending, a check
    finding appearing or disappearing, a latency shift (a Mann-Whitney test against the
    recent baseline). Uptime is computed as OpenRouter does: successful / (successful +
    errored) probes, 429 excluded, over 5m, 1h, 1d and 7d.

    Runs until Ctrl-C or SIGTERM (the probe in hand is finished, then exit 0 with a
    one-line summary) or for --duration. `chatprobe report --monitor DB` renders the
    history. Exit status: 0 when stopped or done; 2 for a usage or configuration error;
    130 on a second Ctrl-C.
    """
    from chatprobe.endpoints import provider_refs
    from chatprobe.errors import ConfigError
    from chatprobe.monitor import History, Monitor, MonitorSettings, place_targets, target_pairs
    from chatprobe.monitor.exposition import Exposition
    from chatprobe.monitor.probes import round_specs
    from chatprobe.monitor.runner import format_duration
    from chatprobe.monitor.webhook import Webhook
    from chatprobe.project import current_project
    from chatprobe.results.folder import MONITOR_DB, results_root

    project = current_project()
    tls = transport.tls()  # an unusable CA bundle fails here, in one line
    timeouts = transport.timeouts_over()
    refs = provider_refs(providers, base_url, api_key_env, models, name=name)
    if not refs and project.providers:
        refs = provider_refs(project.providers)
    pairs = target_pairs(refs, models, project_models=project.models if not base_url else ())
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        raise click.BadParameter("must be an http:// or https:// URL", param_hint="--webhook")
    if max_interval is not None and max_interval < every:
        raise click.BadParameter("must be at least --every", param_hint="--max-interval")
    names = split_list(cases)
    placement = place_targets(pairs, emulator=emulator, emulator_url=emulator_url)
    say = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    try:
        specs = {
            t.label: round_specs(
                t.ref,
                t.model,
                suite=suite,
                cases=names,
                sizes=sizes,
                emulated=t.data_source == "emulated",
            )
            for t in placement.targets
        }
        path = db if db is not None else results_root() / MONITOR_DB
        history = History(path, clock=clock)
        settings = MonitorSettings(
            every_s=every,
            jitter=jitter,
            duration_s=duration,
            sizes=sizes,
            parallel=parallel,
            max_interval_s=max_interval,
            retention_s=retention,
            seed=seed,
            timeouts=timeouts,
            tls=tls,
        )
    except ValueError as exc:
        placement.close()
        raise ConfigError(str(exc)) from None
    except BaseException:
        placement.close()
        raise
    exposition = Exposition(clock=history.clock.factor) if metrics_port is not None else None
    hook = None
    stop = threading.Event()
    try:
        for note in placement.notes or ():
            say(f"chatprobe monitor: {note}")
        metrics_url = None
        if exposition is not None:
            try:
                metrics_url = exposition.serve(metrics_host, metrics_port or 0)
            except OSError as exc:
                raise ConfigError(
                    f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc.strerror}",
                    field="--metrics-port",
                ) from None
        if webhook is not None:
            hook = Webhook(webhook, history=history, tls=tls, say=say)
        factor = history.clock.factor
        pace = f"every {format_duration(every)}" + (f" (clock x{factor:g})" if factor != 1 else "")
        labels = ", ".join(f"{t.label} [{t.data_source}]" for t in placement.targets)
        extra = f"; metrics {metrics_url}" if metrics_url else ""
        say(f"chatprobe monitor: {labels}, {pace}; history {path}{extra}")
        runner = Monitor(
            history,
            placement.targets,
            specs,
            settings,
            exposition=exposition,
            webhook=hook,
            say=say,
            argv=sys.argv[1:],
        )
        with _stop_on_signals(stop):
            summary = runner.run(stop)
    finally:
        if hook is not None:
            hook.close()
        if exposition is not None:
            exposition.close()
        history.close()
        placement.close()
    click.echo(summary.line())


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (finish the probe in hand); a second one interrupts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
