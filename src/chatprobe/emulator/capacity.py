"""A continuous-batching server in miniature, and the true SLO edge it implies.

Per model, optional :class:`Capacity` settings turn the emulator from "every request gets its
own latency draw" into a server whose latency grows with load:

* ``slots``: sequences that may hold a slot at once (prefill + decode, vLLM's
  ``max_num_seqs``); more wait in a FIFO queue. A request with ``n`` choices is ``n``
  sequences.
* ``tokens_per_s``: the decode budget shared by the sequences decoding at that moment. Each
  gap is fixed when it starts: ``gap = max(base_gap, tokens_in_step * n_decoding /
  tokens_per_s)``, so the per-stream ITL is ``max(base_itl, n_decoding / tokens_per_s)``
  and grows as streams are added, while the total never exceeds the budget.
* ``prefill_ms_per_1k``: prefill cost per 1,000 *uncached* prompt tokens. Prefills run one at
  a time in admission order (one prefill lane), so TTFT grows with prompt length and with the
  prefills ahead in the lane.

A request's life (all times on the ``perf_counter_ns`` clock)::

    arrival -> [queue for a slot] -> admitted -> [wait for the prefill lane] -> prefill
            -> base TTFT draw -> first token -> gaps ... -> last token (slot freed)

The base draws (TTFT and per-step gaps, lognormal from the profile's ``emulator:`` block) are
what the model would do alone; the capacity model only adds to them. With no capacity set the
engine is not used at all and the emulator behaves exactly as before.

:class:`CapacityEngine` is the one implementation: the server drives it in real time (each
arrival is submitted when its request has been read, events are processed when the server's
clock reaches them) and :func:`simulate` drives the same engine with Poisson arrivals on a
virtual clock. :func:`slo_edge` bisects the arrival rate with the simulator to find the
highest rate at which the SLO percentiles hold: the known answer a capacity search is tested
against.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from chatprobe.errors import ConfigError
from chatprobe.profiles import LatencyModel
from chatprobe.stats import percentile

__all__ = [
    "SLO",
    "Capacity",
    "CapacityEngine",
    "Job",
    "SimResult",
    "SloEdge",
    "Workload",
    "base_draws",
    "lognormal",
    "replay",
    "simulate",
    "slo_edge",
]

_QUEUED, _PREFILL, _DECODING, _DONE = 0, 1, 2, 3
_NEVER = 1 << 62


# ---------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class Capacity:
    """Capacity of one model's server; every field None (or 0) means "no limit" (off)."""

    slots: int | None = None
    tokens_per_s: float | None = None
    prefill_ms_per_1k: float = 0.0

    def __post_init__(self) -> None:
        if self.slots is not None and self.slots < 1:
            raise ConfigError("slots must be at least 1", field="capacity")
        if self.tokens_per_s is not None and not self.tokens_per_s > 0:
            raise ConfigError("tokens_per_s must be more than 0", field="capacity")
        if not self.prefill_ms_per_1k >= 0:
            raise ConfigError("prefill_ms_per_1k must not be negative", field="capacity")

    @property
    def enabled(self) -> bool:
        return bool(self.slots or self.tokens_per_s or self.prefill_ms_per_1k)

    def __str__(self) -> str:
        if not self.enabled:
            return "off"
        parts = []
        if self.slots:
            parts.append(f"slots={self.slots}")
        if self.tokens_per_s:
            parts.append(f"tokens_per_s={self.tokens_per_s:g}")
        if self.prefill_ms_per_1k:
            parts.append(f"prefill_ms_per_1k={self.prefill_ms_per_1k:g}")
        return ",".join(parts)

    @classmethod
    def parse(cls, text: str, *, source: str = "--capacity") -> Capacity:
        """``slots=8,tokens_per_s=400,prefill_ms_per_1k=20`` (any subset), or ``off``."""
        text = text.strip()
        if text.lower() in ("off", "none", ""):
            return cls()
        values: dict[str, str] = {}
        for item in text.split(","):
            name, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(
                    f"expected NAME=VALUE items (slots, tokens_per_s, prefill_ms_per_1k), "
                    f"got {item.strip()!r}",
                    field=source,
                )
            values[name.strip()] = value.strip()
        return cls.from_mapping(values, source=source)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "capacity") -> Capacity:
        """From a profile's or a scenario's ``capacity:`` mapping (or parsed CLI items)."""
        known = ("slots", "tokens_per_s", "prefill_ms_per_1k")
        unknown = [k for k in data if k not in known]
        if unknown:
            raise ConfigError(
                f"unknown capacity setting {unknown[0]!r} (known: {', '.join(known)})",
                field=source,
            )
        try:
            slots = data.get("slots")
            tps = data.get("tokens_per_s")
            return cls(
                slots=None if slots is None else _int(slots),
                tokens_per_s=None if tps is None else float(tps),
                prefill_ms_per_1k=float(data.get("prefill_ms_per_1k") or 0.0),
            )
        except ConfigError as exc:
            raise ConfigError(exc.detail, field=source) from None
        except (TypeError, ValueError):
            raise ConfigError(
                f"bad capacity {dict(data)!r}: numbers expected", field=source
            ) from None


def _int(value: Any) -> int:
    number = float(value)
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


# ---------------------------------------------------------------------------- base draws


def lognormal(rng: random.Random, median_ms: float, sigma: float) -> float:
    """One lognormal draw with the given median (ms); the median itself when sigma is 0."""
    if median_ms <= 0:
        return 0.0
    if sigma <= 0:
        return median_ms
    return median_ms * math.exp(sigma * rng.gauss(0.0, 1.0))


def base_draws(
    latency: LatencyModel,
    steps: int,
    rng: random.Random,
    weights: Sequence[float] | None = None,
) -> tuple[float, list[float]]:
    """The model's base TTFT (ms) and the base gap (ms) before each later content step.

    A step's gap has median ``itl_ms * tokens_per_chunk`` (``weights``: ``itl_ms * weight``
    of that step, for steps carrying fewer or fractional tokens). Used by the server and the
    simulator alike.
    """
    ttft = lognormal(rng, latency.ttft_ms, latency.ttft_sigma)
    count = max(0, steps - 1)
    if weights is None:
        median = latency.itl_ms * latency.tokens_per_chunk
        if median <= 0:
            return ttft, [0.0] * count
        if latency.itl_sigma <= 0:
            return ttft, [median] * count
        gauss, sigma = rng.gauss, latency.itl_sigma
        return ttft, [median * math.exp(sigma * gauss(0.0, 1.0)) for _ in range(count)]
    itl = latency.itl_ms
    sigma = latency.itl_sigma
    gaps = []
    for weight in weights[1:steps]:
        median = itl * weight
        gaps.append(0.0 if median <= 0 else lognormal(rng, median, sigma))
    return ttft, gaps


# ---------------------------------------------------------------------------- engine


class Job:
    """One request inside a :class:`CapacityEngine`.

    ``step_tokens[j]`` is the decode work of content step ``j`` per sequence (tokens; a
    fraction for a step holding part of a token); ``base_gaps_ns[j]`` the base gap before
    step ``j + 1``. The engine fills ``times`` (each step's time) as it goes.
    """

    __slots__ = (
        "base_gaps_ns",
        "base_ttft_ns",
        "batch_sum",
        "gaps",
        "next_t",
        "state",
        "step_tokens",
        "t_admitted",
        "t_arrival",
        "t_prefill_end",
        "t_prefill_start",
        "times",
        "uncached_tokens",
        "wake",
        "weight",
    )

    def __init__(
        self,
        *,
        step_tokens: Sequence[float],
        base_ttft_ns: int,
        base_gaps_ns: Sequence[int],
        uncached_tokens: int = 0,
        weight: int = 1,
    ) -> None:
        self.step_tokens = step_tokens if step_tokens else (1.0,)
        self.base_ttft_ns = base_ttft_ns
        self.base_gaps_ns = base_gaps_ns
        self.uncached_tokens = uncached_tokens
        self.weight = max(1, weight)
        self.state = _QUEUED
        self.t_arrival = 0
        self.t_admitted: int | None = None
        self.t_prefill_start: int | None = None
        self.t_prefill_end: int | None = None
        self.next_t: int | None = None  # time of the next step, once the engine knows it
        self.times: list[int] = []
        self.batch_sum = 0  # sum of the decoding sequences counted at each gap
        self.gaps = 0  # gaps started (the last one may end after the job is released)
        self.wake: Callable[[], None] | None = None  # called once when next_t becomes known

    @property
    def done(self) -> bool:
        return self.state == _DONE

    @property
    def queued(self) -> bool:
        return self.state == _QUEUED

    def step_time(self, j: int) -> int | None:
        """When content step ``j`` is (or will be) produced; None while not yet known."""
        times = self.times
        if j < len(times):
            return times[j]
        if j == len(times) and self.next_t is not None:
            return self.next_t
        return None

    def known_steps(self) -> int:
        """How many leading steps have a known time."""
        return len(self.times) + (1 if self.next_t is not None else 0)

    def figures(self) -> dict[str, float | None]:
        """Queue, prefill and batch figures (ms) for the ground truth."""
        admitted = self.t_admitted
        start, end = self.t_prefill_start, self.t_prefill_end
        gaps = self.gaps
        return {
            "queue_ms": None if admitted is None else (admitted - self.t_arrival) / 1e6,
            "prefill_wait_ms": None
            if start is None or admitted is None
            else (start - admitted) / 1e6,
            "prefill_ms": None if start is None or end is None else (end - start) / 1e6,
            "batch_mean": self.batch_sum / gaps if gaps else None,
        }


class CapacityEngine:
    """The scheduler of one model's server (see the module docstring for the rules).

    Time only moves forward: :meth:`advance` processes every event due up to ``t`` in time
    order, :meth:`submit` advances to the arrival first, :meth:`release` frees a job the
    server stopped serving (a fault cut it, the client went away).
    """

    def __init__(self, capacity: Capacity) -> None:
        self.capacity = capacity
        self.slots = capacity.slots or 0
        self.ns_per_token = 1e9 / capacity.tokens_per_s if capacity.tokens_per_s else 0.0
        self.prefill_ns_per_token = capacity.prefill_ms_per_1k * 1e3  # ms/1k tokens = 1e3 ns/token
        self.now = 0
        self.busy = 0  # sequences holding a slot
        self.decoding = 0  # sequences between their first and last token
        self.queue: deque[Job] = deque()
        self.prefill_free = 0
        self._heap: list[tuple[int, int, Job]] = []
        self._order = 0
        self.admitted = 0
        self.queued_total = 0

    # ------------------------------------------------------------------ driving
    def submit(self, job: Job, t: int) -> None:
        """``job`` arrives at ``t`` (clamped to the engine's clock)."""
        if t < self.now:
            t = self.now
        else:
            self.advance(t)
        job.t_arrival = t
        if not self.queue and self._fits(job):
            self._admit(job, t)
        else:
            job.state = _QUEUED
            self.queue.append(job)
            self.queued_total += 1

    def advance(self, t: int) -> None:
        """Process every event due at or before ``t``.

        Events due at the same instant are one batch: every stream joining or leaving the
        decode batch then counts before any of them fixes its next gap, so streams that start
        together share the budget from their first gap.
        """
        heap = self._heap
        pop = heapq.heappop
        while heap and heap[0][0] <= t:
            due = heap[0][0]
            batch = []
            while heap and heap[0][0] == due:
                job = pop(heap)[2]
                if job.state != _DONE and job.next_t == due:  # else released meanwhile
                    batch.append(job)
            if batch:
                self.now = due
                self._steps(batch, due)
        if t > self.now:
            self.now = t

    def release(self, job: Job, t: int) -> None:
        """Stop serving ``job`` at ``t``: free its slot (a no-op once it finished)."""
        if t > self.now:
            self.advance(t)
        if job.state == _DONE:
            return
        t = max(t, self.now)
        state = job.state
        job.state = _DONE
        job.next_t = None
        job.wake = None
        if state == _QUEUED:
            with contextlib.suppress(ValueError):
                self.queue.remove(job)
            return
        if state == _DECODING:
            self.decoding -= job.weight
        self.busy -= job.weight
        self._admit_queued(t)

    def snapshot(self) -> dict[str, Any]:
        """Current occupancy, for the stats endpoint."""
        return {
            "capacity": str(self.capacity),
            "busy": self.busy,
            "decoding": self.decoding,
            "queued": sum(j.weight for j in self.queue),
            "admitted_total": self.admitted,
            "queued_total": self.queued_total,
        }

    # ------------------------------------------------------------------ rules
    def _fits(self, job: Job) -> bool:
        return not self.slots or self.busy == 0 or self.busy + job.weight <= self.slots

    def _admit(self, job: Job, t: int) -> None:
        job.state = _PREFILL
        job.t_admitted = t
        self.busy += job.weight
        self.admitted += 1
        start = t if t > self.prefill_free else self.prefill_free
        end = start
        if self.prefill_ns_per_token and job.uncached_tokens > 0:
            end = start + int(job.uncached_tokens * self.prefill_ns_per_token)
            self.prefill_free = end
        job.t_prefill_start, job.t_prefill_end = start, end
        self._schedule(job, end + job.base_ttft_ns)

    def _admit_queued(self, t: int) -> None:
        queue = self.queue
        while queue and self._fits(queue[0]):
            self._admit(queue.popleft(), t)

    def _schedule(self, job: Job, due: int) -> None:
        job.next_t = due
        self._order += 1
        heapq.heappush(self._heap, (due, self._order, job))
        wake = job.wake
        if wake is not None:
            job.wake = None
            wake()

    def _steps(self, batch: list[Job], t: int) -> None:
        going = []
        finished = False
        for job in batch:
            j = len(job.times)
            if j == 0:
                job.state = _DECODING
                self.decoding += job.weight
            job.times.append(t)
            if j + 1 >= len(job.step_tokens):  # the last step: the slot frees now
                job.next_t = None
                job.state = _DONE
                self.decoding -= job.weight
                self.busy -= job.weight
                finished = True
            else:
                going.append(job)
        if finished:
            self._admit_queued(t)
        decoding = self.decoding
        per_token = decoding * self.ns_per_token
        for job in going:
            j = len(job.times) - 1
            base = job.base_gaps_ns[j] if j < len(job.base_gaps_ns) else 0
            floor = int(job.step_tokens[j + 1] * per_token)
            job.batch_sum += decoding
            job.gaps += 1
            self._schedule(job, t + (base if base > floor else floor))


# ---------------------------------------------------------------------------- simulation


@dataclass(frozen=True, slots=True)
class Workload:
    """The requests of a simulated run: every request alike, as a benchmark sends them."""

    prompt_tokens: int = 100
    output_tokens: int = 64
    tokens_per_chunk: int = 1
    cached_tokens: int = 0
    choices: int = 1

    def step_tokens(self) -> list[float]:
        k = max(1, self.tokens_per_chunk)
        full, rest = divmod(max(1, self.output_tokens), k)
        return [float(k)] * full + ([float(rest)] if rest else [])


@dataclass(frozen=True, slots=True)
class SLO:
    """Latency targets at one percentile (ms); None means no target on that figure."""

    ttft_ms: float | None = None
    itl_ms: float | None = None
    percentile: float = 95.0

    def holds(self, ttft: float, itl: float) -> bool:
        ok_ttft = self.ttft_ms is None or ttft <= self.ttft_ms
        ok_itl = self.itl_ms is None or (math.isnan(itl) or itl <= self.itl_ms)
        return ok_ttft and ok_itl


@dataclass(slots=True)
class SimResult:
    """Per-request figures of one simulated run (after the warm-up), in arrival order."""

    rate: float
    ttft_ms: list[float]
    itl_ms: list[float]
    queue_ms: list[float]
    duration_s: float
    completed: int

    def pct(self, name: str, q: float) -> float:
        return percentile(sorted(getattr(self, name)), q)

    @property
    def throughput(self) -> float:
        """Completed requests per second over the simulated span."""
        return self.completed / self.duration_s if self.duration_s > 0 else math.nan


def simulate(
    latency: LatencyModel,
    capacity: Capacity,
    workload: Workload,
    rate: float,
    *,
    requests: int = 2000,
    warmup: float = 0.1,
    seed: int = 0,
    _arrivals: Sequence[float] | None = None,
    _draws: Sequence[tuple[int, list[int]]] | None = None,
) -> SimResult:
    """Poisson arrivals at ``rate`` per second through the capacity model; pure, seeded.

    The first ``warmup`` share of requests (an empty server at the start) is left out of the
    figures. TTFT = first token - arrival; ITL = (last - first) / (output tokens - 1), the
    same formula the client and the ground truth use. The base draws use the server's per
    request seeding, ``random.Random(seed * 1_000_003 + n)`` for request ``n`` = 1, 2, ...
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    arrivals = _arrivals if _arrivals is not None else _unit_arrivals(requests, seed)
    draws = _draws if _draws is not None else _draws_for(latency, workload, requests, seed)
    scale = 1e9 / rate
    jobs = _run(capacity, workload, [int(u * scale) for u in arrivals], draws)
    return _result(rate, jobs[int(len(jobs) * warmup) :], workload)


def replay(
    latency: LatencyModel,
    capacity: Capacity,
    workload: Workload,
    arrivals_ns: Sequence[int],
    *,
    seed: int = 0,
    first_seq: int = 1,
) -> list[Job]:
    """The engine's decisions for requests arriving at ``arrivals_ns`` (ascending).

    Request ``i`` gets the base draws the server gives request number ``first_seq + i``
    under ``seed`` (no fault rates configured), so a fresh emulator that received exactly
    these requests at these times made exactly these decisions: a test of "same model".
    """
    draws = _draws_for(latency, workload, len(arrivals_ns), seed, first_seq)
    return _run(capacity, workload, list(arrivals_ns), draws)


def _run(
    capacity: Capacity,
    workload: Workload,
    arrivals_ns: Sequence[int],
    draws: Sequence[tuple[int, list[int]]],
) -> list[Job]:
    steps = workload.step_tokens()
    engine = CapacityEngine(capacity)
    uncached = max(0, workload.prompt_tokens - workload.cached_tokens)
    jobs: list[Job] = []
    for t, (ttft_ns, gaps_ns) in zip(arrivals_ns, draws, strict=True):
        job = Job(
            step_tokens=steps,
            base_ttft_ns=ttft_ns,
            base_gaps_ns=gaps_ns,
            uncached_tokens=uncached,
            weight=workload.choices,
        )
        engine.submit(job, t)
        jobs.append(job)
    engine.advance(_NEVER)
    return jobs


def _result(rate: float, kept: list[Job], workload: Workload) -> SimResult:
    tokens = max(1, workload.output_tokens)
    ttft = [(j.times[0] - j.t_arrival) / 1e6 for j in kept]
    itl = [(j.times[-1] - j.times[0]) / 1e6 / (tokens - 1) for j in kept] if tokens > 1 else []
    queue = [((j.t_admitted or j.t_arrival) - j.t_arrival) / 1e6 for j in kept]
    start = kept[0].t_arrival if kept else 0
    end = max((j.times[-1] for j in kept), default=start)
    return SimResult(rate, ttft, itl, queue, (end - start) / 1e9, len(kept))


def _unit_arrivals(requests: int, seed: int) -> list[float]:
    """Arrival times of a unit-rate Poisson process (scaled by 1/rate per run)."""
    rng = random.Random(seed * 7_919 + 17)
    t, out = 0.0, []
    for _ in range(requests):
        t += rng.expovariate(1.0)
        out.append(t)
    return out


def _draws_for(
    latency: LatencyModel, workload: Workload, requests: int, seed: int, first_seq: int = 1
) -> list[tuple[int, list[int]]]:
    steps = len(workload.step_tokens())
    lat = replace(latency, tokens_per_chunk=max(1, workload.tokens_per_chunk))
    out = []
    for n in range(first_seq, first_seq + requests):  # as the server draws them
        rng = random.Random(seed * 1_000_003 + n)
        ttft, gaps = base_draws(lat, steps, rng)
        out.append((int(ttft * 1e6), [int(g * 1e6) for g in gaps]))
    return out


@dataclass(slots=True)
class SloEdge:
    """The highest arrival rate (requests/s) at which the SLO holds, and how it was found."""

    rate: float  # the edge (0 when the SLO fails even at the lightest load)
    slo: SLO
    ttft_ms: float  # the SLO percentile of TTFT at ``rate``
    itl_ms: float
    limit: str  # which target binds first above the edge: "ttft", "itl" or "none"
    bound: float  # throughput bound of the capacity (requests/s the server can finish)
    evaluations: int
    curve: list[tuple[float, float, float]] = field(default_factory=list)  # rate, ttft, itl

    def holds_at(self, rate: float) -> bool:
        """Whether ``rate`` is at or below the edge."""
        return rate <= self.rate


def throughput_bound(latency: LatencyModel, capacity: Capacity, workload: Workload) -> float:
    """Requests/s the capacity can finish at most (its slots, decode budget and prefill lane).

    A steady arrival rate above this grows the queue without end; below it the queue is
    finite, though its percentiles may already break an SLO.
    """
    bounds = []
    w = max(1, workload.choices)
    tokens = max(1, workload.output_tokens)
    if capacity.tokens_per_s:
        bounds.append(capacity.tokens_per_s / (w * max(1, tokens - 1)))
    uncached = max(0, workload.prompt_tokens - workload.cached_tokens)
    prefill_s = uncached * capacity.prefill_ms_per_1k / 1e6
    if prefill_s > 0:
        bounds.append(1.0 / prefill_s)
    if capacity.slots:
        steps = workload.step_tokens()
        base_service = (
            prefill_s + latency.ttft_ms / 1e3 + sum(latency.itl_ms * t for t in steps[1:]) / 1e3
        )
        if capacity.tokens_per_s:
            # with every slot decoding, each gap is at least slots / tokens_per_s per token
            decode_floor = sum(t * capacity.slots / capacity.tokens_per_s for t in steps[1:])
            base_service = max(
                base_service,
                prefill_s + latency.ttft_ms / 1e3 + decode_floor,
            )
        if base_service > 0:
            bounds.append(capacity.slots / w / base_service)
    return min(bounds) if bounds else math.inf


def slo_edge(
    latency: LatencyModel,
    capacity: Capacity,
    slo: SLO,
    workload: Workload | None = None,
    *,
    requests: int = 2000,
    warmup: float = 0.1,
    seed: int = 0,
    tolerance: float = 0.005,
    max_evaluations: int = 40,
) -> SloEdge:
    """The highest Poisson arrival rate at which ``slo`` holds, by bisection on the simulator.

    Every evaluation reuses the same arrivals (scaled by the rate) and the same base draws,
    so the percentiles are a smooth function of the rate and the answer is deterministic for
    a seed. ``tolerance`` is relative to the edge. Pure: no I/O, no wall clock.
    """
    workload = workload or Workload()
    if slo.ttft_ms is None and slo.itl_ms is None:
        raise ValueError("an SLO needs a TTFT or an ITL target")
    arrivals = _unit_arrivals(requests, seed)
    draws = _draws_for(latency, workload, requests, seed)
    curve: list[tuple[float, float, float]] = []

    def measure(rate: float) -> tuple[bool, float, float]:
        result = simulate(
            latency,
            capacity,
            workload,
            rate,
            requests=requests,
            warmup=warmup,
            seed=seed,
            _arrivals=arrivals,
            _draws=draws,
        )
        ttft = result.pct("ttft_ms", slo.percentile)
        itl = result.pct("itl_ms", slo.percentile) if result.itl_ms else math.nan
        curve.append((rate, ttft, itl))
        return slo.holds(ttft, itl), ttft, itl

    bound = throughput_bound(latency, capacity, workload)
    if not math.isfinite(bound):
        raise ValueError("an unlimited capacity has no SLO edge: set slots or tokens_per_s")
    lo = bound / 1000
    ok, ttft_lo, itl_lo = measure(lo)
    if not ok:
        return SloEdge(0.0, slo, ttft_lo, itl_lo, _limit(slo, ttft_lo, itl_lo), bound, 1, curve)
    hi = bound * 1.5
    ok_hi, ttft_hi, itl_hi = measure(hi)
    while ok_hi and len(curve) < max_evaluations:  # a loose SLO can hold past the bound
        lo, ttft_lo, itl_lo = hi, ttft_hi, itl_hi
        hi *= 2
        ok_hi, ttft_hi, itl_hi = measure(hi)
    while hi - lo > tolerance * lo and len(curve) < max_evaluations:
        mid = (lo + hi) / 2
        ok, ttft, itl = measure(mid)
        if ok:
            lo, ttft_lo, itl_lo = mid, ttft, itl
        else:
            hi, ttft_hi, itl_hi = mid, ttft, itl
    return SloEdge(
        lo,
        slo,
        ttft_lo,
        itl_lo,
        _limit(slo, ttft_hi, itl_hi),
        bound,
        len(curve),
        sorted(curve),
    )


def _limit(slo: SLO, ttft: float, itl: float) -> str:
    if slo.ttft_ms is not None and ttft > slo.ttft_ms:
        return "ttft"
    if slo.itl_ms is not None and not math.isnan(itl) and itl > slo.itl_ms:
        return "itl"
    return "none"
