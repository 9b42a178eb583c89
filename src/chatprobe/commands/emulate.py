"""``chatprobe emulate``: serve emulated providers until interrupted."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import textwrap

import click

from chatprobe.commands.options import provider_option
from chatprobe.emulator.capacity import Capacity
from chatprobe.emulator.config import DEFAULT_MAX_BODY, DEMO_KEY, EmulatorConfig
from chatprobe.emulator.dialect import KNOBS
from chatprobe.emulator.eventloop import new_event_loop
from chatprobe.emulator.faults import ALIASES, FAULT_KINDS, parse_fault_rate
from chatprobe.emulator.prefix import PrefixCacheSettings
from chatprobe.emulator.schedule import parse_schedule_file, parse_window
from chatprobe.errors import ConfigError
from chatprobe.profiles import emulated_profiles, list_profiles, load_profile

_FAULT_LIST = ", ".join(FAULT_KINDS)
_ALIAS_LIST = ", ".join(f"{a}={k}" for a, k in ALIASES.items())
_FAULT_TEXT = textwrap.fill(f"Kinds: {_FAULT_LIST}. Aliases: {_ALIAS_LIST}.", width=80)
_KNOB_TEXT = textwrap.fill(f"Knobs: {', '.join(KNOBS)}.", width=80)

_HELP = f"""Serve OpenAI-compatible chat completions that behave like the documented
providers, offline, with a seeded latency model, injected faults and ground truth.

\b
PROFILES: each --provider NAME is a known profile (the project's, then the
built-in ones) or a profile file; default: every known profile but real endpoints
(custom_endpoint: true): {", ".join(list_profiles()) or "none found"}.
Per profile: success status (201 for AI/ML API and Apilaplas), id format, model
echo, usage (OpenRouter: always, with cost; others: stream_options.include_usage),
OpenRouter ': OPENROUTER PROCESSING' comments, error envelopes, auth (401),
request validation (400 naming the field), unknown model (404), body limit (413),
max_tokens, stop, n, tools (tool_calls), image parts, OpenRouter :free rate limit.

\b
ADDRESSES AND PORTS: binds --host (default 127.0.0.1) and --port (default 0 = a
free port, printed on start). Several providers share one port by path prefix:
  http://HOST:PORT/<provider>/v1/chat/completions   and .../v1/models
  http://HOST:PORT/<provider>/api/v1/chat/completions   (OpenRouter's shape)
With a single --provider the bare /v1/... and /api/v1/... work too. Key: Bearer
{DEMO_KEY} unless --key is given (--no-auth accepts anything).
Ground truth: GET /_chatprobe/requests[?since=SEQ], GET /_chatprobe/stats,
POST /_chatprobe/reset; each answer carries X-Chatprobe-Request-Id.
--tls serves https:// instead, with a CA and certificate generated at start in a
private temporary folder (removed on exit); the CA file's path is printed: pass
it to clients with --ca-bundle PATH (or SSL_CERT_FILE=PATH).

\b
LATENCY: per model, lognormal TTFT and inter-token latency (median ms and sigma)
from the profile's emulator: block, seeded per request from (--seed, request
number). --ttft-ms/--itl-ms/--sigma override every model; --zero-latency sends
each answer at once (benchmarks). --tokens-per-chunk groups tokens per event.

\b
CAPACITY: --capacity slots=8,tokens_per_s=400,prefill_ms_per_1k=20 (any subset;
'off' switches the profiles' capacity: blocks off) serves every model as a
continuous-batching server: at most SLOTS sequences at once (more queue), the
decode budget shared by the streams decoding (ITL = max(base, n / tokens_per_s)),
prefill per 1,000 uncached prompt tokens, one prefill at a time. Ground truth
adds queue_ms, prefill_wait_ms, prefill_ms and batch_mean.

\b
SCHEDULE: --schedule KIND[:PARAMS]@START[-END][#NAME] (repeatable) or
--schedule-file FILE (YAML: {{clock: F, windows: [...]}}), times in schedule time
(90s, 10m, 2h) on a clock --clock F times faster than the wall clock (1440: a day
in a minute), from the start or POST /_chatprobe/reset:
  outage[:503|reset|refuse]@10m-20m   every request errors / is reset / refused
  latency:3@1h-2h  or  latency:ttft=2,itl=1.5@1h    base TTFT/ITL multiplied
  fault:missing_done@45m   fault:midstream_error,rate=0.2@1h-2h   contract change
Truth adds sched_s and windows; GET /_chatprobe/schedule summarises each window.

\b
PREFIX CACHE: --prefix-cache on | tokens=N,block=B: each model remembers prompt
prefixes (blocks of B tokens, an LRU of N tokens; answers too, for the next turn)
and reports usage.prompt_tokens_details.cached_tokens; a capacity model prefills
only the uncached tokens. Truth adds cached_tokens.

\b
DIALECT: --dialect KNOB[=VALUE] (repeatable) for every request, or per request the
header 'X-Chatprobe-Dialect: KNOB[=VALUE][,...]': de-facto variations of the
formats. {_KNOB_TEXT}

\b
REPLAY: --replay CASSETTES (files or folders, repeatable) serves recorded
streams instead of emulated answers, byte for byte and with the timing each
cassette recorded (every body piece at its offset from the request; cassettes
without timing are served at once); --replay-speed 2 plays twice as fast. A
chat request gets a recording of the same body, else of the same model and
stream flag in turn, else 404 naming what was recorded; any path ending in
/chat/completions or /models works, keys are not checked.

\b
FAULTS: per request with the header 'X-Chatprobe-Fault: KIND[=PARAM][,KIND...]',
or for a share of requests with --fault KIND[:PARAM]=RATE (seeded, at most one
per request).
{_FAULT_TEXT}
PARAM is seconds for slow_headers/stall/429/503 Retry-After, a status for
html_error, the rule for stream_rule (id_changes, created_changes,
two_finish_reasons, usage_not_final, missing_done, error_in_200), else the number
of content chunks sent before the fault. Rates follow a golden-ratio sequence:
any run of consecutive requests meets them within about two requests.
"""


def _range(value: str) -> tuple[int, int]:
    low, sep, high = value.partition(":")
    try:
        lo = int(low)
        hi = int(high) if sep else lo
    except ValueError:
        raise ConfigError(
            f"expected N or MIN:MAX, got {value!r}", field="--output-tokens"
        ) from None
    return lo, hi


@click.command(name="emulate", help=_HELP)
@provider_option(
    help="Profile to serve: a shipped name or a profile file; repeatable and comma-separated "
    "(default: every shipped profile)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to bind; 0 picks a free one.",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed for text, latency draws, ids and fault rates.",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY",
    help=f"Accepted API key (repeatable; default {DEMO_KEY}).",
)
@click.option("--no-auth", is_flag=True, help="Accept requests without a valid key.")
@click.option("--ttft-ms", type=float, help="Median time to first token for every model (ms).")
@click.option("--itl-ms", type=float, help="Median inter-token latency for every model (ms).")
@click.option("--sigma", type=float, help="Lognormal sigma for TTFT and ITL of every model.")
@click.option("--zero-latency", is_flag=True, help="No delays at all (throughput benchmarks).")
@click.option(
    "--tokens-per-chunk",
    type=click.IntRange(min=1),
    help="Tokens per streamed event (real gateways send several).",
)
@click.option(
    "--output-tokens",
    default="16:96",
    show_default=True,
    metavar="N|MIN:MAX",
    help="Natural completion length (seeded draw in MIN..MAX).",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND[:PARAM]=RATE",
    help="Inject a fault into a share of requests, e.g. 429=0.1, stall:3=0.01.",
)
@click.option(
    "--rate-limit-rpm",
    type=click.IntRange(min=0),
    help="Per-key requests/minute for rate-limited (:free) models; 0 disables.",
)
@click.option(
    "--max-body",
    default=DEFAULT_MAX_BODY,
    show_default=True,
    type=click.IntRange(min=1),
    help="Largest request body (bytes) before 413.",
)
@click.option(
    "--truth-cap",
    default=100_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Ground-truth records kept in memory (oldest dropped).",
)
@click.option(
    "--truth-jsonl",
    type=click.Path(dir_okay=False),
    help="Also append every finished ground-truth record to this JSON Lines file.",
)
@click.option(
    "--record-event-times",
    is_flag=True,
    help="Keep the write time of every event in the ground truth.",
)
@click.option(
    "--comment-interval",
    default=1.0,
    show_default=True,
    type=float,
    help="Seconds between OpenRouter ': OPENROUTER PROCESSING' comments.",
)
@click.option(
    "--no-quirks",
    is_flag=True,
    help="Do not reproduce documented quirks (prompt_tokens 0 for aimlapi 1.5-flash).",
)
@click.option(
    "--capacity",
    metavar="slots=N,tokens_per_s=R,prefill_ms_per_1k=MS|off",
    help="Server capacity for every model (see CAPACITY above).",
)
@click.option(
    "--schedule",
    "schedule",
    multiple=True,
    metavar="KIND[:PARAMS]@START[-END][#NAME]",
    help="A scheduled window (repeatable; see SCHEDULE above).",
)
@click.option(
    "--schedule-file",
    type=click.Path(dir_okay=False),
    help="Scheduled windows from a YAML file ({clock: F, windows: [...]}).",
)
@click.option(
    "--clock",
    type=float,
    metavar="FACTOR",
    help="Schedule seconds per real second (default 1; the file's clock if it sets one).",
)
@click.option(
    "--dialect",
    "dialect",
    multiple=True,
    metavar="KNOB[=VALUE]",
    help="A dialect knob for every request (repeatable; see DIALECT above).",
)
@click.option(
    "--prefix-cache",
    metavar="on|off|tokens=N,block=B",
    help="Track prompt prefixes per model and report cached_tokens (see PREFIX CACHE).",
)
@click.option(
    "--tls",
    is_flag=True,
    help="Serve HTTPS with a certificate generated at start; clients trust it with "
    "--ca-bundle (the CA file path is printed).",
)
@click.option(
    "--replay",
    "replay",
    multiple=True,
    metavar="CASSETTES",
    help="Serve the recorded streams of these cassette files or folders with their "
    "recorded timing (repeatable; see REPLAY above).",
)
@click.option(
    "--replay-speed",
    default=1.0,
    show_default=True,
    type=float,
    metavar="FACTOR",
    help="Play recorded timing this many times faster (2: twice as fast).",
)
@click.option("--cpu", type=click.IntRange(min=0), help="Pin the emulator to this CPU.")
def emulate(
    providers: tuple[str, ...],
    host: str,
    port: int,
    seed: int,
    keys: tuple[str, ...],
    no_auth: bool,
    ttft_ms: float | None,
    itl_ms: float | None,
    sigma: float | None,
    zero_latency: bool,
    tokens_per_chunk: int | None,
    output_tokens: str,
    faults: tuple[str, ...],
    rate_limit_rpm: int | None,
    max_body: int,
    truth_cap: int,
    truth_jsonl: str | None,
    record_event_times: bool,
    comment_interval: float,
    no_quirks: bool,
    capacity: str | None,
    schedule: tuple[str, ...],
    schedule_file: str | None,
    clock: float | None,
    dialect: tuple[str, ...],
    prefix_cache: str | None,
    tls: bool,
    replay: tuple[str, ...],
    replay_speed: float,
    cpu: int | None,
) -> None:
    for name in providers:
        load_profile(name)  # an unknown name fails here, in one line, before binding
    windows, file_clock = parse_schedule_file(schedule_file) if schedule_file else ((), None)
    windows += tuple(parse_window(text, index=len(windows) + i) for i, text in enumerate(schedule))
    if clock is not None and not clock > 0:
        raise ConfigError("must be a positive number", field="--clock")
    config = EmulatorConfig(
        providers=providers or tuple(emulated_profiles()),  # not the project's real endpoints
        host=host,
        port=port,
        seed=seed,
        keys=keys or (DEMO_KEY,),
        auth=not no_auth,
        ttft_ms=ttft_ms,
        itl_ms=itl_ms,
        sigma=sigma,
        zero_latency=zero_latency,
        tokens_per_chunk=tokens_per_chunk,
        output_tokens=_range(output_tokens),
        faults=tuple(parse_fault_rate(f) for f in faults),
        rate_limit_rpm=rate_limit_rpm,
        max_body=max_body,
        truth_cap=truth_cap,
        truth_jsonl=truth_jsonl,
        record_event_times=record_event_times,
        comment_interval_s=comment_interval,
        emulate_quirks=not no_quirks,
        capacity=None if capacity is None else Capacity.parse(capacity),
        schedule=windows,
        clock=clock or file_clock or 1.0,
        prefix_cache=None if prefix_cache is None else PrefixCacheSettings.parse(prefix_cache),
        dialect=tuple(dialect),
        tls=tls,
        replay=replay,
        replay_speed=replay_speed,
    )
    if cpu is not None:
        if not hasattr(os, "sched_setaffinity"):
            raise ConfigError("CPU pinning is not supported on this platform", field="--cpu")
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError as exc:
            raise ConfigError(f"cannot pin to CPU {cpu}: {exc.strerror}", field="--cpu") from None
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_serve(config))


async def _serve(config: EmulatorConfig) -> None:
    from chatprobe.emulator.server import EmulatorServer, root_url

    server = EmulatorServer(config)
    try:
        port = await server.start()
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror}", field="--port"
        ) from None
    # Startup's objects (modules, profiles, schemas: tens of thousands) live as long as the
    # process: out of the collector's view, a full collection no longer scans them while
    # streams wait for their next write (the load client does the same: loopwatch).
    gc.collect()
    gc.freeze()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    root = root_url(config.host, port, tls=config.tls)
    if server.ca_file:  # before the ready line: Emulator.in_subprocess reads up to it
        click.echo(f"chatprobe emulator CA certificate: {server.ca_file}")
    click.echo(f"chatprobe emulator listening on {root} (pid {os.getpid()}, seed {config.seed})")
    for name in server.provider_names:
        click.echo(f"  {name}: {server.base_url(name)}")
    if len(server.provider_names) == 1:
        click.echo(f"  (also: {server.base_url()})")
    key = DEMO_KEY if config.keys == (DEMO_KEY,) else "one of the --key values"
    replay = server.responder.stats().get("replay")
    if replay is not None:
        untimed = f", {replay['untimed']} without timing (served at once)"
        click.echo(
            f"  replaying {replay['interactions']} recorded chat completions at speed "
            f"{replay['speed']:g}{untimed if replay['untimed'] else ''}; any key"
        )
    else:
        click.echo(f"  key: {'any (auth off)' if not config.auth else key}")
    click.echo(f"  ground truth: {root}/_chatprobe/requests  (Ctrl-C stops)")
    if server.ca_file:
        click.echo(f"  TLS: a generated certificate; clients pass --ca-bundle {server.ca_file}")
    try:
        await stop.wait()
    finally:
        await server.stop()
        stats = server.truth.stats()
        click.echo(f"chatprobe emulator stopped after {stats['received']} requests")
