"""Turn one parsed HTTP request into a timed list of writes (a :class:`Reply`).

The server (:mod:`chatprobe.emulator.server`) only parses requests and plays replies: each
reply is a list of *steps* ``(due_ns, bytes, marks, tokens)`` on the ``perf_counter_ns``
clock plus what to do at the end (keep the connection, close it, or reset it). All provider
behaviour, latency draws and faults are decided here, before the first byte is written, from
``(seed, request sequence)``: a run is reproducible, and the truth records what was actually
written and when.

With a capacity model (:mod:`chatprobe.emulator.capacity`) the times of content steps are
not known up front: they depend on the requests that arrive later. Such a reply is built
exactly like the others, but with *virtual* due times (content step ``j`` at
``_VIRTUAL + j * _STRIDE``, plus any offset a fault adds), and carries a :class:`Pacer` that
replaces each virtual time by the model's real one as soon as the engine knows it.

Order of decisions for ``POST .../chat/completions``: unknown fault header (400), body too
large (413), auth (401), plan: JSON, model (404), schema and field checks (400), the per-key
rate limit of rate-limited models (429), status faults, then the answer with its body faults.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs

import orjson

from chatprobe.emulator.capacity import CapacityEngine, Job, base_draws
from chatprobe.emulator.config import EmulatorConfig
from chatprobe.emulator.dialect import NO_KNOBS, Knobs, parse_knob_header, parse_knobs
from chatprobe.emulator.faults import (
    FAULT_KINDS,
    STATUS_FAULTS,
    STREAM_ONLY,
    Fault,
    parse_fault_header,
)
from chatprobe.emulator.plan import Plan, Reject, build_plan, warm_validator
from chatprobe.emulator.prefix import PrefixCache, block_hashes, prompt_stream
from chatprobe.emulator.render import CACHED_BYTES, Dialect, html_error_page, status_line
from chatprobe.emulator.schedule import Schedule, Window
from chatprobe.emulator.truth import (
    ANSWER,
    CONTENT,
    END,
    EVENT,
    HEADERS,
    REASONING,
    TruthLog,
    TruthRecord,
)
from chatprobe.profiles import LatencyModel, ProviderProfile

if TYPE_CHECKING:
    from chatprobe.emulator.render import StreamRender

__all__ = [
    "ABORT",
    "CLOSE",
    "FIN",
    "KEEP",
    "Pacer",
    "Reply",
    "Request",
    "Responder",
    "internal_error",
]

# end actions
KEEP, CLOSE, FIN, ABORT = 0, 1, 2, 3

_DONE_FRAME = b"e\r\ndata: [DONE]\n\n\r\n"
_EVENT = b"%x\r\ndata: %s%s\n\n\r\n"  # length, head, rest: one SSE event as one chunk
_SEPARATORS = {"lf": b"\n\n", "crlf": b"\r\n\r\n", "cr": b"\r\r"}
_TERMINATOR = b"0\r\n\r\n"
_PLAN_CACHE_MAX = 4096
_PLAN_CACHE_BODY_MAX = 64 * 1024
_JSON = b"application/json"
_SSE = b"text/event-stream"
_HTML = b"text/html; charset=utf-8"
# Virtual due times of paced replies: content step j is due at _VIRTUAL + j * _STRIDE (+ an
# offset below _STRIDE, e.g. a stall); real perf_counter_ns times are never negative.
_VIRTUAL = -(1 << 62)
_STRIDE = 1 << 40
_MAX_OFFSET = _STRIDE - 1


class Request:
    """A parsed request, as the protocol hands it over."""

    __slots__ = (
        "body",
        "headers",
        "keep_alive",
        "method",
        "path",
        "query",
        "t_parsed_ns",
        "t_received_ns",
        "too_large",
    )

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[bytes, bytes],
        body: bytes,
        keep_alive: bool,
        t_received_ns: int,
        too_large: bool = False,
        t_parsed_ns: int | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers  # lower-case names
        self.body = body
        self.keep_alive = keep_alive
        self.t_received_ns = t_received_ns  # arrival (the kernel's stamp where there is one)
        self.t_parsed_ns = t_received_ns if t_parsed_ns is None else t_parsed_ns
        self.too_large = too_large


@dataclass(slots=True)
class Reply:
    steps: list[tuple[int, bytes, int, int]]
    end: int
    truth: TruthRecord | None = None
    end_at_ns: int | None = None  # ABORT/FIN not before this time (a stall before a reset)
    pacer: Pacer | None = None  # content times from a capacity engine (None: all known)


class Waker(Protocol):
    def wake(self) -> None: ...


class Pacer:
    """Resolves a paced reply's virtual due times from its capacity :class:`Job`.

    The server calls :meth:`resolve` before each write (it advances the engine to the
    server's clock), :meth:`park` when the next step's time is not known yet (the job waits
    for a slot; the engine wakes the exchange when it is admitted), and :meth:`close` when
    the exchange ends (the slot is freed, the truth gets the queue/prefill/ITL figures).
    While a job waits, a dialect with keep-alive comments (OpenRouter) sends one every
    ``interval``, as it does before any first token.
    """

    __slots__ = (
        "comment",
        "engine",
        "interval",
        "job",
        "keepalive",
        "last_comment",
        "record",
        "reply",
        "resolved",
        "step_totals",
    )

    def __init__(
        self,
        engine: CapacityEngine,
        job: Job,
        reply: Reply,
        record: TruthRecord,
        step_totals: list[int],
        comment: bytes | None,
        interval: int,
        t0: int,
    ) -> None:
        self.engine = engine
        self.job = job
        self.reply = reply
        self.record = record
        self.step_totals = step_totals  # tokens (all choices) per content step
        self.comment = comment
        self.interval = interval
        self.last_comment = t0
        self.keepalive: tuple[int, int] | None = None  # (step index, last_comment before it)
        self.resolved = 0

    def resolve(self, now: int, played: int) -> int:
        """Advance the engine to ``now``; return how many leading steps have real times."""
        self.engine.advance(now)
        steps = self.reply.steps
        job = self.job
        keepalive = self.keepalive
        if keepalive is not None and job.next_t is not None and keepalive[0] >= played:
            del steps[keepalive[0]]  # admitted before the keep-alive went out: drop it
            self.last_comment = keepalive[1]
            self.resolved = keepalive[0]
            self.keepalive = None
        k = self.resolved
        times, next_t = job.times, job.next_t
        done = len(times)
        known = done + (next_t is not None)  # steps whose time the engine knows
        while k < len(steps):
            due, data, marks, tokens = steps[k]
            if due < 0:
                j, offset = divmod(due - _VIRTUAL, _STRIDE)
                if j >= known:
                    break
                t = times[j] if j < done else next_t
                assert t is not None
                if j == 0 and self.comment is not None:
                    k = self._comments_before(k, t)
                steps[k] = (t + offset, data, marks, tokens)
            k += 1
        self.resolved = k
        end_at = self.reply.end_at_ns
        if end_at is not None and end_at < 0 and k == len(steps):
            j, offset = divmod(end_at - _VIRTUAL, _STRIDE)
            t = job.step_time(j)
            self.reply.end_at_ns = (t if t is not None else now) + offset
        return k

    def _comments_before(self, k: int, t_first: int) -> int:
        """Keep-alive comments every interval from the last one until the first token."""
        assert self.comment is not None
        t = self.last_comment + self.interval
        steps = self.reply.steps
        while t < t_first:
            steps.insert(k, (t, self.comment, 0, 0))
            k += 1
            self.last_comment = t
            t += self.interval
        return k

    def park(self, exchange: Waker, index: int) -> int | None:
        """The step at ``index`` waits for the engine: when to run again (None: when woken).

        A job in progress is due again at its next event (the step written next may be a
        later one, e.g. a plain body after the last token); a queued job is woken by the
        engine when admitted, after a keep-alive comment if the dialect sends them.
        """
        job = self.job
        if job.next_t is not None:
            return job.next_t
        if not job.queued:
            return None  # released: the exchange is ending
        job.wake = exchange.wake
        if self.comment is None:
            return None
        due = self.last_comment + self.interval
        self.reply.steps.insert(index, (due, self.comment, 0, 0))
        self.keepalive = (index, self.last_comment)
        self.last_comment = due
        self.resolved = index + 1
        return due

    def close(self, t: int, complete: bool) -> None:
        """The exchange ended at ``t``: free the slot and record what the model did.

        ``complete``: every step was written, the last one perhaps a little before the
        engine's clock reached it (writes due within the server's slack go out together).
        """
        job, record = self.job, self.record
        pending = job.next_t
        self.engine.release(job, t)
        figures = job.figures()
        record.queue_ms = figures["queue_ms"]
        record.prefill_wait_ms = figures["prefill_wait_ms"]
        record.prefill_ms = figures["prefill_ms"]
        record.batch_mean = figures["batch_mean"]
        times = job.times
        if complete and pending is not None:
            times = [*times, pending]
        if times:
            record.ttft_ms_intended = (times[0] - record.t_received_ns) / 1e6
            tokens = sum(self.step_totals[: len(times)])
            record.itl_ms_intended = (
                (times[-1] - times[0]) / 1e6 / (tokens - 1) if tokens > 1 else None
            )


@dataclass(slots=True)
class ModelState:
    """How one model of one provider is served, set up on its first request."""

    latency: LatencyModel  # the profile's, with the configuration's overrides
    knobs: Knobs  # the model's dialect knobs
    engine: CapacityEngine | None  # its capacity model (None: unlimited)
    prefix: PrefixCache | None  # its prefix cache (None: off)


@dataclass(slots=True)
class Served:
    """One provider profile as served, with its routes' answers prepared."""

    name: str
    profile: ProviderProfile
    dialect: Dialect
    models_body: bytes


def frame(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class RateLimiter:
    """Sliding one-minute window of request times per (key, model)."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], deque[float]] = {}

    def check(self, key: str, model: str, limit: int, now: float) -> float | None:
        """None if allowed (and counted), else seconds until a slot frees up."""
        window = self._windows.setdefault((key, model), deque())
        while window and window[0] <= now - 60.0:
            window.popleft()
        if len(window) >= limit:
            return max(0.001, window[0] + 60.0 - now)
        window.append(now)
        return None

    def reset(self) -> None:
        self._windows.clear()


class Responder:
    """Everything the emulator decides, for every provider it serves."""

    def __init__(
        self, config: EmulatorConfig, profiles: list[ProviderProfile], truth: TruthLog
    ) -> None:
        self.config = config
        self.truth = truth
        self.served: dict[str, Served] = {}
        for profile in profiles:
            self.served[profile.name] = Served(
                profile.name, profile, Dialect(profile), _models_body(profile)
            )
        self.routes: dict[str, tuple[Served, str]] = {}
        for served in self.served.values():
            prefixes = [f"/{served.name}"] + ([""] if len(self.served) == 1 else [])
            for prefix in prefixes:
                for api in ("/v1", "/api/v1"):
                    self.routes[f"{prefix}{api}/chat/completions"] = (served, "chat")
                    self.routes[f"{prefix}{api}/models"] = (served, "models")
        for profile in profiles:  # compile schemas now, not on the first (timed) request
            warm_validator(profile)
        self.keys = frozenset(config.keys)
        self.plans: dict[tuple[str, int | None, int | None, bytes], Plan | Reject] = {}
        self.knobs = parse_knobs(config.dialect)
        self.limiter = RateLimiter()
        self.models: dict[tuple[str, str], ModelState] = {}
        self.fault_rates = [(f.fault, f.rate) for f in config.faults if f.rate > 0]
        self.fault_offset = random.Random(config.seed).random()
        self.schedule = Schedule(config.schedule, config.clock) if config.schedule else None
        if self.schedule is not None:
            truth.on_close = self._count_in_windows
            self.schedule.start()  # the server restarts it when it starts listening

    # ------------------------------------------------------------------ entry point
    def respond(self, req: Request) -> Reply:
        path = req.path.rstrip("/") or "/"
        route = self.routes.get(path)
        if route is None:
            if path.startswith("/_chatprobe/"):
                return self._control(req, path)
            return _plain_reply(req, 404, _JSON, _no_route(req.method, path))
        served, kind = route
        if kind == "models":
            if req.method not in ("GET", "HEAD"):
                return _plain_reply(req, 405, _JSON, b'{"error":"method not allowed"}')
            if self._header_knobs(req)[0].over(self.knobs).no_models:  # no such endpoint
                return _plain_reply(req, 404, _JSON, _no_route(req.method, path))
            return _plain_reply(req, 200, _JSON, served.models_body)
        if req.method != "POST":
            return _plain_reply(req, 405, _JSON, b'{"error":"method not allowed"}')
        return self._chat(req, served, path)

    # ------------------------------------------------------------------ chat
    def _chat(self, req: Request, served: Served, path: str) -> Reply:
        config = self.config
        dialect = served.dialect
        record = self.truth.open(req.t_received_ns, path, served.name, req.t_parsed_ns)
        rng = random.Random(config.seed * 1_000_003 + record.seq)
        faults, unknown = parse_fault_header(
            req.headers.get(b"x-chatprobe-fault", b"").decode("latin-1")
        )
        header_knobs = NO_KNOBS
        knob_problems: tuple[str, ...] = ()
        if b"x-chatprobe-dialect" in req.headers:
            header_knobs, knob_problems = self._header_knobs(req)
        window_knobs = NO_KNOBS
        if self.fault_rates:
            draw, acc = _spread(self.fault_offset, record.seq), 0.0
            for fault, rate in self.fault_rates:
                acc += rate
                if draw < acc:
                    faults.append(fault)
                    break
        scale = (1.0, 1.0)
        outage: Window | None = None
        if self.schedule is not None:
            record.sched_s, active = self.schedule.active(req.t_received_ns)
            record.windows = [w.name for w in active]
            for window in active:
                if window.kind == "outage":
                    outage = outage or window
                elif window.kind == "latency":
                    scale = (scale[0] * window.ttft_x, scale[1] * window.itl_x)
                elif window.kind == "dialect":
                    window_knobs = window.knobs.over(window_knobs)
                elif window.rate >= 1.0 or _window_draw(config.seed, record.seq, window):
                    faults.extend(window.faults)
        # the model's knobs, then the configuration's, the windows', the header's
        request_knobs = self.knobs
        if header_knobs is not NO_KNOBS or window_knobs is not NO_KNOBS:
            request_knobs = header_knobs.over(window_knobs.over(self.knobs))
        knobs = request_knobs
        slow = next((f for f in faults if f.kind == "slow_headers"), None)
        t0 = req.t_received_ns
        if slow is not None:
            record.faults.append(str(slow))
            t0 += int((1.0 if slow.param is None else slow.param) * 1e9)

        def error(
            status: int,
            message: str,
            param: str | None = None,
            code: str | None = None,
            retry_after: float | None = None,
            details: list[str] | None = None,
        ) -> Reply:
            record.status = status
            record.error = message
            body = dialect.error_body(
                status,
                message,
                param=param,
                code=code,
                path=path,
                rng=rng,
                details=details,
                envelope=knobs.envelope,
                code_as_string=bool(knobs.error_code_as_string),
            )
            extra = b"Retry-After: %d\r\n" % math.ceil(retry_after) if retry_after else b""
            keep = req.keep_alive and not knobs.close_after_error
            head = _head(status, _JSON, len(body), record.request_id, keep, extra)
            return Reply([(t0, head + body, HEADERS | END, 0)], KEEP if keep else CLOSE, record)

        if outage is not None:
            return self._outage(req, outage, error, record)
        if knob_problems:
            return error(
                400, f"X-Chatprobe-Dialect: {knob_problems[0]}", param="X-Chatprobe-Dialect"
            )
        if unknown:
            known = ", ".join(FAULT_KINDS)
            return error(
                400,
                f"X-Chatprobe-Fault: unknown fault {', '.join(unknown)!r} (known: {known})",
                param="X-Chatprobe-Fault",
            )
        if req.too_large:
            return error(413, f"Request body larger than {config.max_body} bytes")
        if config.auth:
            key = _bearer(req.headers.get(b"authorization"))
            if key is None:
                return error(401, "No API key provided: send Authorization: Bearer <key>")
            if key not in self.keys:
                return error(401, "Invalid API key")
        else:  # no auth: rate limits still count per presented key
            key = _bearer(req.headers.get(b"authorization")) or "anonymous"
        try:
            plan = self._plan(served.profile, req)
        except Reject as reject:
            return error(
                reject.status, reject.message, reject.param, reject.code, details=reject.details
            )
        record.model = plan.model.name
        record.model_id = plan.model_sent
        record.stream = plan.stream
        model = plan.rendered.get("model") or self._model(served.name, plan)
        if model.knobs is not NO_KNOBS:
            knobs = request_knobs.over(model.knobs)
        if knobs is not NO_KNOBS:
            record.dialect = str(knobs) or None
        limit = self._rate_limit(plan)
        if limit:
            wait = self.limiter.check(key, plan.model.id, limit, time.monotonic())
            if wait is not None:
                return error(
                    429,
                    f"Rate limit exceeded: {limit} requests per minute for {plan.model.id} per key",
                    code="rate_limit_exceeded",
                    retry_after=wait,
                )
        for fault in faults:
            if fault.kind in STATUS_FAULTS:
                record.faults.append(str(fault))
                return self._status_fault(req, fault, error, t0, record, dialect, knobs)
        body_faults = [
            f for f in faults if f.kind not in STATUS_FAULTS and f.kind != "slow_headers"
        ]
        latency = model.latency
        if scale != (1.0, 1.0):  # a scheduled latency step
            latency = replace(
                latency, ttft_ms=latency.ttft_ms * scale[0], itl_ms=latency.itl_ms * scale[1]
            )
        if knobs.tokens_per_chunk:
            latency = replace(latency, tokens_per_chunk=knobs.tokens_per_chunk)
        record.prompt_tokens = plan.prompt_tokens
        record.completion_tokens = plan.completion_tokens
        record.finish_reasons = [c.finish_reason for c in plan.choices]
        record.reasoning_tokens = plan.reasoning_tokens if plan.reasons else None
        cached = None if model.prefix is None else self._cached_tokens(model.prefix, plan)
        record.cached_tokens = None if cached is None else min(cached, plan.prompt_tokens)
        args = (req, served, plan, latency, rng, t0, record, body_faults, knobs, cached, model)
        return self._stream(*args) if plan.stream else self._plain(*args)

    def _cached_tokens(self, cache: PrefixCache, plan: Plan) -> int:
        """Look the prompt up in the model's prefix cache, then store it with its answer.

        Returns the cached prompt tokens found (of the real prompt; usage never reports
        more than its own prompt_tokens).
        """
        settings = self.config.prefix_cache
        assert settings is not None
        found = plan.rendered.get(("prefix", settings.block))
        if found is None:
            stream = prompt_stream(plan.messages)
            full = block_hashes(stream + prompt_stream([plan.answer_message()]), settings.block)
            found = plan.rendered[("prefix", settings.block)] = (
                full[: len(stream) // settings.block],
                full,
            )
        prompt, full = found
        cached = cache.lookup(prompt, plan.input_tokens)
        cache.store(full)
        return cached

    def _plan(self, profile: ProviderProfile, req: Request) -> Plan:
        tokens = _count_header(req, b"x-chatprobe-output-tokens", "X-Chatprobe-Output-Tokens")
        thinking = _count_header(
            req, b"x-chatprobe-reasoning-tokens", "X-Chatprobe-Reasoning-Tokens"
        )
        key = (profile.name, tokens, thinking, req.body)
        found = self.plans.get(key)
        if found is None:
            try:
                found = build_plan(
                    profile,
                    req.body,
                    seed=self.config.seed,
                    output_tokens=(tokens, tokens) if tokens else self.config.output_tokens,
                    quirks=self.config.emulate_quirks,
                    reasoning_tokens=thinking,
                )
            except Reject as reject:
                found = reject
            if len(req.body) <= _PLAN_CACHE_BODY_MAX:
                if len(self.plans) >= _PLAN_CACHE_MAX:
                    self.plans.clear()
                self.plans[key] = found
        if isinstance(found, Reject):
            raise found
        return found

    def _rate_limit(self, plan: Plan) -> int | None:
        documented = plan.model.rate_limit_rpm
        override = self.config.rate_limit_rpm
        if not documented or override == 0:
            return None
        return override or documented

    def _model(self, provider: str, plan: Plan) -> ModelState:
        """The model's serving state: latency, knobs, capacity engine, prefix cache.

        Kept on the plan too (a plan belongs to one provider), so a cached plan finds it
        without building a key.
        """
        key = (provider, plan.model.name)
        found = self.models.get(key)
        if found is None:
            config, info = self.config, plan.model.latency
            capacity = config.capacity_for(info)
            found = self.models[key] = ModelState(
                latency=config.latency(info),
                knobs=parse_knobs(info.dialect),
                engine=CapacityEngine(capacity) if capacity else None,
                prefix=PrefixCache(config.prefix_cache) if config.prefix_cache else None,
            )
        plan.rendered["model"] = found
        return found

    def _outage(self, req: Request, window: Window, error: Any, record: TruthRecord) -> Reply:
        """A scheduled outage: an error status, or a reset without an answer."""
        if window.mode != "status":  # reset, or refuse (new connections are refused meanwhile)
            record.error = f"scheduled outage ({window.mode})"
            return Reply([], ABORT, record)
        assert self.schedule is not None
        wait = self.schedule.remaining_real_s(window, req.t_received_ns)
        retry = None
        if window.status in (429, 503):
            retry = max(1.0, wait) if wait is not None else 60.0
        return error(window.status, "Service unavailable (scheduled outage)", retry_after=retry)

    def _count_in_windows(self, record: TruthRecord) -> None:
        assert self.schedule is not None
        self.schedule.count(record.windows, record.status, record.outcome, bool(record.faults))

    @staticmethod
    def _header_knobs(req: Request) -> tuple[Knobs, tuple[str, ...]]:
        """The ``X-Chatprobe-Dialect`` knobs, and what the header got wrong."""
        value = req.headers.get(b"x-chatprobe-dialect")
        if value is None:
            return NO_KNOBS, ()
        return parse_knob_header(value.decode("latin-1"))

    def _paced(
        self,
        engine: CapacityEngine,
        plan: Plan,
        step_tokens: list[float],
        step_totals: list[int],
        ttft: int,
        gaps: list[int],
        t0: int,
        uncached: int,
    ) -> tuple[Job, int, list[int]]:
        """A job for ``engine``, and the virtual TTFT and gaps to build the reply with."""
        job = Job(
            step_tokens=step_tokens,
            base_ttft_ns=ttft,
            base_gaps_ns=gaps,
            uncached_tokens=uncached,
            weight=len(plan.choices),
        )
        return job, _VIRTUAL - t0, [_STRIDE] * len(gaps)

    def _status_fault(
        self,
        req: Request,
        fault: Fault,
        error: Any,
        t0: int,
        record: TruthRecord,
        dialect: Dialect,
        knobs: Knobs,
    ) -> Reply:
        kind, param = fault.kind, fault.param
        if kind == "rate_limit_429":
            return error(
                429,
                "Rate limit exceeded (emulated fault), retry later",
                code="rate_limit_exceeded",
                retry_after=param or 1.0,
            )
        if kind == "unavailable_503":
            return error(
                503, "Service temporarily unavailable (emulated fault)", retry_after=param or 1.0
            )
        if kind == "server_500":
            return error(500, "Internal server error (emulated fault)")
        if kind == "bad_gateway_502":
            return error(502, "Upstream provider returned an error (emulated fault)")
        if kind == "no_credits":
            return error(
                dialect.no_credits_status(),
                "Insufficient credits: add credits to continue (emulated fault)",
                code="insufficient_quota",
            )
        status = int(param or 502)
        if not 400 <= status <= 599:
            status = 502
        record.status = status
        record.error = "html error page (emulated fault)"
        body = html_error_page(status)
        keep = req.keep_alive and not knobs.close_after_error
        head = _head(status, _HTML, len(body), record.request_id, keep)
        return Reply([(t0, head + body, HEADERS | END, 0)], KEEP if keep else CLOSE, record)

    # ------------------------------------------------------------------ timing
    @staticmethod
    def _schedule(
        plan_steps: int,
        tokens: int,
        latency: LatencyModel,
        rng: random.Random,
        record: TruthRecord,
        weights: list[float] | None = None,
    ) -> tuple[int, list[int]]:
        """TTFT (ns) and the gap (ns) before each later content step."""
        ttft, gaps_ms = base_draws(latency, plan_steps, rng, weights)
        record.ttft_ms_intended = ttft
        record.itl_ms_intended = sum(gaps_ms) / (tokens - 1) if tokens > 1 else None
        return int(ttft * 1e6), [int(g * 1e6) for g in gaps_ms]

    # ------------------------------------------------------------------ plain
    def _plain(
        self,
        req: Request,
        served: Served,
        plan: Plan,
        latency: LatencyModel,
        rng: random.Random,
        t0: int,
        record: TruthRecord,
        faults: list[Fault],
        knobs: Knobs,
        cached: int | None,
        model: ModelState,
    ) -> Reply:
        dialect = served.dialect
        k = latency.tokens_per_chunk
        steps_count = math.ceil(max(1, plan.completion_tokens) / k)
        ttft, gaps = self._schedule(steps_count, plan.completion_tokens, latency, rng, record)
        engine = model.engine
        job = None
        if engine is not None:
            totals = [k] * steps_count
            totals[-1] = max(1, plan.completion_tokens) - k * (steps_count - 1)
            per_sequence = [t / len(plan.choices) for t in totals]
            uncached = plan.input_tokens - (cached or 0)
            job, ttft, gaps = self._paced(
                engine, plan, per_sequence, totals, ttft, gaps, t0, uncached
            )
        t_done = t0 + ttft + sum(gaps)
        now = time.time()
        head_json = Dialect.head(dialect.new_id(rng, now), int(now))
        status = dialect.success
        by_kind = {f.kind: f for f in faults if f.kind not in STREAM_ONLY}
        record.faults.extend(str(f) for f in by_kind.values())
        if "midstream_error" in by_kind:
            body = head_json + dialect.error_in_body_rest()
        elif "empty_200" in by_kind:
            body = b""
        else:
            body = head_json + dialect.plain_rest(plan, knobs, cached is not None)
            if cached is not None:
                body = body.replace(CACHED_BYTES, b"%d" % (record.cached_tokens or 0))
        if "malformed_json_chunk" in by_kind:
            body = body[: len(body) // 2]
        record.status = status
        head = _head(status, _JSON, len(body), record.request_id, req.keep_alive)
        tokens = plan.completion_tokens if "midstream_error" not in by_kind else 0
        content_marks = CONTENT | EVENT | ANSWER
        if plan.reasoning_tokens and dialect.reasoning_of(plan, knobs) != "hidden":
            content_marks |= REASONING
        half = len(body) // 2
        pause = _pause(by_kind, job is not None) if "stall" in by_kind else 0
        reply: Reply
        for kind, end in (("reset_midstream", ABORT), ("truncated_body", FIN)):
            if kind in by_kind:
                end_at = t_done + pause if pause else None  # a stall, then the cut
                reply = Reply([(t_done, head + body[:half], HEADERS, 0)], end, record, end_at)
                break
        else:
            if pause:
                marks = content_marks | END if tokens else END
                reply = Reply(
                    [
                        (t_done, head + body[:half], HEADERS, 0),
                        (t_done + pause, body[half:], marks, tokens),
                    ],
                    _end(req),
                    record,
                )
            else:
                marks = HEADERS | END | (content_marks if tokens else 0)
                reply = Reply([(t_done, head + body, marks, tokens)], _end(req), record)
        if engine is not None and job is not None:
            self._start(engine, job, reply, record, totals, None, req)
        return reply

    # ------------------------------------------------------------------ stream
    def _stream(
        self,
        req: Request,
        served: Served,
        plan: Plan,
        latency: LatencyModel,
        rng: random.Random,
        t0: int,
        record: TruthRecord,
        faults: list[Fault],
        knobs: Knobs,
        cached: int | None,
        model: ModelState,
    ) -> Reply:
        dialect = served.dialect
        render = dialect.stream(plan, latency.tokens_per_chunk, knobs, cached is not None)
        ttft, gaps = self._schedule(
            render.steps, plan.completion_tokens, latency, rng, record, render.weights
        )
        engine = model.engine
        job = None
        if engine is not None:
            per_sequence, totals = _step_tokens(render)
            uncached = plan.input_tokens - (cached or 0)
            job, ttft, gaps = self._paced(
                engine, plan, per_sequence, totals, ttft, gaps, t0, uncached
            )
        now = time.time()
        response_id = dialect.new_id(rng, now)
        head_json = Dialect.head(response_id, int(now))
        # one SSE event: "data: " + head + rest + the blank line, framed as one HTTP chunk
        sep = _SEPARATORS[knobs.line_ends or "lf"]
        event = _EVENT if sep == b"\n\n" else b"%x\r\ndata: %s%s" + sep + b"\r\n"
        length = len(head_json) + 6 + len(sep)
        done = _DONE_FRAME if sep == b"\n\n" else frame(b"data: [DONE]" + sep)
        record.status = dialect.success
        steps: list[tuple[int, bytes, int, int]] = [
            (t0, _stream_head(dialect.success, record.request_id, req.keep_alive), HEADERS, 0)
        ]
        t_first = t0 + ttft
        if dialect.comment is not None:
            comment = frame(b": " + dialect.comment + sep)
            interval = max(1, int(self.config.comment_interval_s * 1e9))
            t = t0
            while True:
                steps.append((t, comment, 0, 0))
                t += interval
                if t >= t_first:
                    break
        if render.first is not None:  # Azure's prompt filter results, before any content
            steps.append((t0, frame(b"data: " + render.first + sep), EVENT, 0))
        # Content events, choice by choice within a step.
        content: list[tuple[int, bytes, int, int]] = []
        append = content.append
        t = t_first
        current = 0
        figure = b"" if cached is None else b"%d" % (record.cached_tokens or 0)
        every_usage = cached is not None and knobs.usage_every_chunk
        ping = frame(b": keep-alive" + sep) if knobs.sse_comments else b""
        every, events = knobs.sse_comments or 0, 0
        if not (every or every_usage or render.silent):  # the usual stream, the hot path
            for step, rest, tokens, marks in render.content:
                if step != current:  # steps are consecutive: 0, 1, 2, ...
                    t += gaps[step - 1]
                    current = step
                data = event % (length + len(rest), head_json, rest)  # type: ignore[arg-type]
                append((t, data, marks, tokens))
        else:
            for step, rest, tokens, marks in render.content:
                if step != current:
                    t += gaps[step - 1]
                    current = step
                if rest is None:  # hidden reasoning: the time passes, nothing is written
                    append((t, b"", 0, tokens))
                    continue
                if every_usage:
                    rest = rest.replace(CACHED_BYTES, figure)
                if every:
                    events += 1
                    if events % every == 0:
                        append((t, ping, 0, 0))
                append((t, event % (length + len(rest), head_json, rest), marks, tokens))
        rests = render.tail
        if cached is not None:
            rests = [rest.replace(CACHED_BYTES, figure) for rest in rests]
        tail = [(t, event % (length + len(rest), head_json, rest), EVENT, 0) for rest in rests]
        tail.append((t, done, EVENT, 0))
        tail.append((t, _TERMINATOR, END, 0))
        end = _end(req)
        by_kind = {f.kind: f for f in faults}
        record.faults.extend(str(f) for f in by_kind.values())
        cut = _cut_point(by_kind, len(content))
        rule = by_kind["stream_rule"].rule if "stream_rule" in by_kind else None
        if rule is not None:
            record.stream_rule = rule
            if rule == "missing_done":
                by_kind["missing_done"] = Fault("missing_done")
            elif rule == "error_in_200":
                by_kind["midstream_error"] = Fault("midstream_error")
            else:
                usage = dialect.usage_rest(plan)
                usage_event = event % (length + len(usage), head_json, usage)
                content, tail = _break_rule(rule, content, tail, cut, head_json, usage_event)
        if "malformed_json_chunk" in by_kind:
            while cut < len(content) and not content[cut][1]:
                cut += 1  # a silent step has no JSON to break
            target = content if cut < len(content) else tail
            index = cut if target is content else 0
            due, data, _, _ = target[index]
            body = data[data.index(b"\r\n") + 2 : -2]
            broken = body[: max(8, len(body) // 2)] + b"\n\n"
            target[index] = (due, frame(broken), EVENT, 0)
        if "missing_done" in by_kind:
            tail = [s for s in tail if s[1] is not done]
        if "empty_200" in by_kind:
            content, tail = [], [(t0, _TERMINATOR, END, 0)]
        elif "midstream_error" in by_kind:
            at = content[cut][0] if cut < len(content) else t
            rest = dialect.midstream_error_rest(plan)
            error_frame = event % (length + len(rest), head_json, rest)
            record.finish_reasons = ["error"]
            content = content[:cut]
            tail = [
                (at, error_frame, EVENT, 0),
                (at, done, EVENT, 0),
                (at, _TERMINATOR, END, 0),
            ]
        elif "truncated_stream" in by_kind:
            at = content[cut][0] if cut < len(content) else t
            content, tail = content[:cut], [(at, _TERMINATOR, END, 0)]
        elif "truncated_body" in by_kind or "reset_midstream" in by_kind:
            content, tail = content[:cut], []
            end = ABORT if "reset_midstream" in by_kind else FIN
        pause = _pause(by_kind, job is not None) if "stall" in by_kind else 0
        if pause:
            later = [
                (due + pause, data, marks, tokens)
                for due, data, marks, tokens in content[cut:] + tail
            ]
            content = content[:cut]
            tail = later
        steps += content
        steps += tail
        end_at = None
        if pause and end in (ABORT, FIN) and not tail:
            end_at = steps[-1][0] + pause
        reply = Reply(steps, end, record, end_at)
        if engine is not None and job is not None:
            keepalive = frame(b": " + dialect.comment + sep) if dialect.comment else None
            self._start(engine, job, reply, record, totals, keepalive, req)
        return reply

    def _start(
        self,
        engine: CapacityEngine,
        job: Job,
        reply: Reply,
        record: TruthRecord,
        totals: list[int],
        comment: bytes | None,
        req: Request,
    ) -> None:
        """Submit ``job`` to its engine and attach the pacer that resolves ``reply``'s times."""
        interval = max(1, int(self.config.comment_interval_s * 1e9))
        t0 = reply.steps[0][0] if reply.steps and reply.steps[0][0] >= 0 else req.t_received_ns
        reply.pacer = Pacer(engine, job, reply, record, totals, comment, interval, t0)
        # the scheduler learns of a request when the server has read it, as a real one does
        # (the wait before that is in the truth's TTFT, counted from arrival)
        engine.submit(job, req.t_parsed_ns)

    # ------------------------------------------------------------------ control
    def stats(self) -> dict[str, Any]:
        """Truth counters, the providers served, the seed, and each capacity engine's state."""
        stats = self.truth.stats()
        stats["providers"] = sorted(self.served)
        stats["seed"] = self.config.seed
        engines = {
            f"{provider}/{name}": model.engine.snapshot()
            for (provider, name), model in self.models.items()
            if model.engine is not None
        }
        if engines:
            stats["capacity"] = engines
        caches = {
            f"{provider}/{name}": model.prefix.snapshot()
            for (provider, name), model in self.models.items()
            if model.prefix is not None
        }
        if caches:
            stats["prefix_cache"] = caches
        return stats

    def reset(self) -> None:
        """Forget truth, counters and rate-limit windows, and restart the schedule's clock
        (capacity engines keep their jobs in flight)."""
        self.truth.reset()
        self.limiter.reset()
        for model in self.models.values():
            if model.prefix is not None:
                model.prefix.clear()
        if self.schedule is not None:
            self.schedule.start()

    def schedule_summary(self) -> dict[str, Any]:
        """The schedule's windows with their real times and what their requests got."""
        if self.schedule is None:
            return {"clock": self.config.clock, "windows": [], "t0_ns": None, "now_s": None}
        return self.schedule.summary()

    def _control(self, req: Request, path: str) -> Reply:
        if path == "/_chatprobe/requests" and req.method == "GET":
            since = parse_qs(req.query).get("since", ["0"])[0]
            try:
                seq = int(since)
            except ValueError:
                return _plain_reply(req, 400, _JSON, b'{"error":"since must be an integer"}')
            return _plain_reply(req, 200, _JSON, orjson.dumps(self.truth.since(seq)))
        if path == "/_chatprobe/stats" and req.method == "GET":
            return _plain_reply(req, 200, _JSON, orjson.dumps(self.stats()))
        if path == "/_chatprobe/schedule" and req.method == "GET":
            return _plain_reply(req, 200, _JSON, orjson.dumps(self.schedule_summary()))
        if path == "/_chatprobe/reset" and req.method == "POST":
            self.reset()
            return _plain_reply(req, 200, _JSON, b'{"reset":true}')
        return _plain_reply(req, 404, _JSON, b'{"error":"unknown control endpoint"}')


_GOLDEN = 0.6180339887498949


def _spread(offset: float, seq: int) -> float:
    """Request ``seq``'s draw in [0, 1) for fault rates: a golden-ratio (Weyl) sequence.

    Unlike independent draws, any run of consecutive requests (or every k-th of them, as
    when targets interleave) meets each rate within about two requests, so "10 % of the
    streams" is 10 % +- 2 % already at 100 streams; ``offset`` comes from the seed.
    """
    return (offset + seq * _GOLDEN) % 1.0


def _window_draw(seed: int, seq: int, window: Window) -> bool:
    """Whether a fault window with a rate applies to request ``seq`` (spread like rates)."""
    return _spread(random.Random(f"{seed}:{window.name}").random(), seq) < window.rate


def _break_rule(
    rule: str,
    content: list[tuple[int, bytes, int, int]],
    tail: list[tuple[int, bytes, int, int]],
    cut: int,
    head_json: bytes,
    usage_event: bytes,
) -> tuple[list[tuple[int, bytes, int, int]], list[tuple[int, bytes, int, int]]]:
    """Content and tail of a stream that breaks ``rule`` from step ``cut`` on.

    Byte swaps keep every length, so the chunked framing stays right.
    """
    if rule in ("id_changes", "created_changes"):
        changed = _changed_head(rule, head_json)
        late = [(d, data.replace(head_json, changed), m, k) for d, data, m, k in content[cut:]]
        tail = [(d, data.replace(head_json, changed), m, k) for d, data, m, k in tail]
        return content[:cut] + late, tail
    due = content[cut - 1][0] if cut > 0 else (content[0][0] if content else tail[0][0])
    extra = tail[0][1] if rule == "two_finish_reasons" else usage_event  # choice 0's finish
    return [*content[:cut], (due, extra, EVENT, 0), *content[cut:]], tail


def _changed_head(rule: str, head_json: bytes) -> bytes:
    """``{"id":"...","created":N,`` with the id or the created time changed, same length."""
    prefix, _, created = head_json.rpartition(b'"created":')
    if rule == "created_changes":
        number = int(created.rstrip(b","))
        other = b"%d" % (number + 1)
        if len(other) != len(created) - 1:
            other = b"%d" % (number - 1)
        return prefix + b'"created":' + other + b","
    last = prefix[-3:-2]  # the id's last character, before '",'
    swapped = b"y" if last == b"x" else b"x"
    return prefix[:-3] + swapped + prefix[-2:] + b'"created":' + created


def _pause(by_kind: dict[str, Fault], paced: bool) -> int:
    """A stall's pause (ns), 0 without one; a paced reply's offsets stay below _STRIDE."""
    fault = by_kind.get("stall")
    if fault is None:
        return 0
    pause = int((fault.param or 2.0) * 1e9)
    return min(pause, _MAX_OFFSET) if paced else pause


def _step_tokens(render: StreamRender) -> tuple[list[float], list[int]]:
    """Per content step: decode work per sequence (the largest chunk), and tokens in total."""
    per_sequence = [0.0] * render.steps
    totals = [0] * render.steps
    for step, _, tokens, _ in render.content:
        totals[step] += tokens
        if tokens > per_sequence[step]:
            per_sequence[step] = float(tokens)
    if render.weights is not None:  # parts of tokens (one character per event)
        per_sequence = list(render.weights)
    return per_sequence, totals


def _cut_point(by_kind: dict[str, Fault], content_count: int) -> int:
    """How many content events go out before a mid-body fault (default: half, at least 1)."""
    for kind in (
        "reset_midstream",
        "truncated_body",
        "truncated_stream",
        "midstream_error",
        "malformed_json_chunk",
        "stall",
    ):
        fault = by_kind.get(kind)
        if fault is not None and fault.param is not None and kind != "stall":
            return min(content_count, int(fault.param))
    if content_count == 0:
        return 0
    return min(content_count, max(1, content_count // 2))


def _count_header(req: Request, name: bytes, title: str) -> int | None:
    """A positive integer from a control header (``X-Chatprobe-Output-Tokens``), or None."""
    value = req.headers.get(name)
    if value is None:
        return None
    try:
        return max(1, int(value))
    except ValueError:
        raise Reject(400, f"{title} must be an integer", param=title) from None


def _no_route(method: str, path: str) -> bytes:
    return orjson.dumps(
        {
            "error": {
                "message": f"no route for {method} {path}",
                "type": "invalid_request_error",
                "param": None,
                "code": "not_found",
            }
        }
    )


def _bearer(value: bytes | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _end(req: Request) -> int:
    return KEEP if req.keep_alive else CLOSE


def _head(
    status: int,
    content_type: bytes,
    length: int,
    request_id: str,
    keep_alive: bool,
    extra: bytes = b"",
) -> bytes:
    return b"".join(
        (
            status_line(status),
            b"Content-Type: ",
            content_type,
            b"\r\nContent-Length: %d\r\n" % length,
            b"X-Chatprobe-Request-Id: ",
            request_id.encode(),
            b"\r\n",
            extra,
            b"" if keep_alive else b"Connection: close\r\n",
            b"\r\n",
        )
    )


def _stream_head(status: int, request_id: str, keep_alive: bool) -> bytes:
    return b"".join(
        (
            status_line(status),
            b"Content-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\nX-Chatprobe-Request-Id: ",
            request_id.encode(),
            b"\r\n",
            b"" if keep_alive else b"Connection: close\r\n",
            b"\r\n",
        )
    )


def internal_error(req: Request, exc: Exception) -> Reply:
    """A 500 naming an exception raised inside the emulator (then the connection closes)."""
    message = f"chatprobe emulator error: {type(exc).__name__}: {exc}"
    body = orjson.dumps({"error": {"message": message, "type": "emulator_error", "code": 500}})
    head = _head(500, _JSON, len(body), "-", False)
    return Reply([(req.t_received_ns, head + body, HEADERS | END, 0)], CLOSE)


def _plain_reply(req: Request, status: int, content_type: bytes, body: bytes) -> Reply:
    head = _head(status, content_type, len(body), "-", req.keep_alive)
    payload = head if req.method == "HEAD" else head + body
    return Reply([(req.t_received_ns, payload, HEADERS | END, 0)], _end(req))


def _models_body(profile: ProviderProfile) -> bytes:
    created = 1_733_000_000
    data: list[dict[str, Any]] = []
    for model in profile.models.values():
        if profile.error_envelope == "openrouter":
            price = model.pricing
            data.append(
                {
                    "id": model.id,
                    "name": model.name,
                    "created": created,
                    "context_length": model.context_window,
                    "pricing": {
                        "prompt": f"{(price.input_per_mtok if price else 0) / 1e6:.10f}",
                        "completion": f"{(price.output_per_mtok if price else 0) / 1e6:.10f}",
                    },
                }
            )
        else:
            data.append(
                {
                    "id": model.id,
                    "object": "model",
                    "created": created,
                    "owned_by": model.echo.split("/", 1)[0] if "/" in model.echo else profile.name,
                }
            )
    return orjson.dumps({"object": "list", "data": data})
