"""Run-level figures from samples: the one place they are defined and computed.

``summary.json``, the table ``chatprobe load`` prints, ``report.json`` and the HTML and
Markdown reports all show what :func:`compute_run` returns for a run's samples (read as
typed columns, :class:`~chatprobe.results.samples.SampleTable`). Per-request metrics (TTFB,
TTFT, ITL, E2E, output tokens) are defined once in :mod:`chatprobe.record`; percentiles and
confidence intervals in :mod:`chatprobe.stats`. The rules, each written once:

Measured requests
    Requests sent outside the warm-up (their ``warmup`` flag, set at send time from the
    plan's stage timeline). Every figure below counts only them. A run shorter than its
    warm-up has none: its figures then use every request, and a note says so.

Latency origin
    Closed loop: from t0, the moment the request was written. Open loop: TTFB, TTFT, E2E and
    the exchange's total count from the scheduled time ``t_sched`` (the sample's value +
    ``lag_ms``): a client that falls behind its schedule makes requests late, and that wait
    is what a user of the service would see (``ttft_ms_from_t0`` keeps the other view).

Window (the measured timeline)
    For each stage of the plan, from the end of its warm-up to its end, cut at the run's end.
    The run's end: a request-count run ends when its last request completes (its last
    completion, or earlier if it was interrupted); any other run ends when it stopped
    sending: the planned end, or the moment it was interrupted or stopped (recorded in
    ``summary.json`` as ``timeline.end_s``; when nothing recorded it, the last completion,
    capped at the planned end). Requests/s, output tokens/s and goodput divide counts of
    measured requests (sent inside the timeline) by its length, so both cover one span; a
    sweep's rows use each stage's own part. Folders without ``plan.json`` (older versions)
    get each stage's span from its first measured send to its last completion.

Throughput
    ``requests_per_s``: measured requests, any outcome / window. ``output_tokens_per_s``:
    output tokens of successful measured requests / window.

SLO, attainment and goodput
    A request meets the SLO when it succeeded and each limit given holds for it
    (``ttfb_ms``, ``ttft_ms``, ``itl_ms``, ``e2e_ms``; value <= limit). The one rule for a
    missing metric: a metric the request cannot have does not count against it. ITL is
    undefined for an answer of fewer than 2 output tokens (there is no gap between tokens),
    so a one-token answer meets any ITL limit. TTFB, TTFT and E2E exist for every successful
    request; should one be absent, the request misses (it cannot prove it met the limit).
    ``attainment`` = met / measured requests (errors count against it);
    ``goodput_rps`` = met / window. Without a scenario SLO, :data:`DEFAULT_SLO` applies.

Errors, availability, rate limits
    ``success_rate`` = successful / measured; ``error_rate`` = 1 - success_rate (every error
    class, 429 included). ``availability`` is computed as OpenRouter computes uptime:
    successful / (successful + errored), where rate-limited requests (class
    ``rate_limited``, HTTP 429: the provider asked the client to slow down) count in neither.
    Rate-limited requests are also counted and timed on their own: how many, their share
    of the measured requests, the time they took (sum of their durations) and when the
    first and last arrived (seconds from the run start).

Holding back (polite load, :mod:`chatprobe.load.polite`)
    ``held.retry_after``: measured requests answered 429 or 503 with a ``Retry-After``;
    ``held.retry_after_s``: the wall time their target's users held back for it (the union
    of the spans from each such answer's completion to completion + Retry-After, cut at the
    run's end; summed over targets at run level). ``held.backoffs``: measured requests
    after which their user backed off (connection failures, 429/503 without Retry-After);
    ``held.backoff_s``: the sum of those backoffs (user-seconds), each cut at the run's end.

Reasoning and the prompt cache
    ``ttfa_ms`` (time to first answer token, reasoning excluded) has percentiles like TTFT.
    ``reasoning``: over successful measured requests, how many reasoned (a reasoning token
    count above 0), the total and percentiles of their reasoning tokens, and how many had
    encrypted reasoning with no count. ``cache.hit_rate`` = cached prompt tokens / prompt
    tokens, summed over the successful measured requests that report both
    (``usage.prompt_tokens_details.cached_tokens``); requests reporting no cached count are
    counted in ``requests_unreported`` and left out of the rate.

Conversations and sessions
    Over the samples that carry a session (a scenario's ``conversation``, or a trace's
    session ids). Per turn position k (from 1; a tool result is a turn of its own): measured
    requests, successes, TTFT percentiles, chatprobe's count of the input sent, and the cache
    hit rate by the rule above, so a growing history's effect on TTFT and on the prefix cache
    reads turn by turn (the first :data:`MAX_TURN_ROWS` positions; later ones are counted in
    ``turns_beyond``). Per session, over the sessions whose first turn was measured (started
    outside the warm-up): how many, how many *complete* (every planned turn sent and
    successful; null when the turns were not planned, as in a trace), measured requests per
    session, and its duration: the first turn's send (scheduled time in open loop) to the
    last turn's completion, think time and tool latency included.

Requested against delivered lengths
    Over successful measured requests. Input: ``prompt_tokens`` (the provider's count) /
    ``input_tokens`` (chatprobe's tokenizer's count of what was sent), per request with both
    known and above 0. Output: ``output_tokens`` / ``max_tokens`` per request that set a cap
    and whose count came from usage (an estimate is no evidence), and the share that reached
    the cap (hosted APIs do not honour ``ignore_eos``: a model that stops early shows a
    ratio below 1). Rates per output token, per request: ``ms_per_output_token`` = E2E /
    output tokens, ``stream_tokens_per_s`` = (output tokens - 1) / (last token - first
    token), the decode speed one stream saw (1000 / ITL).

Cost
    Rows: successful measured requests (a failed request's spend is mostly unknown: few
    report usage). Price: the one captured in the results folder at run time
    (``profiles.json``), never today's profile. USD = prompt tokens x input price + output
    tokens x output price (:meth:`chatprobe.profiles.Pricing.cost`); a request without
    reported prompt tokens counts 0 of them (``prompt_tokens_missing``), and one that
    reports 0 prompt tokens for its non-empty prompt is counted in ``prompt_tokens_zero``
    (a documented provider quirk that makes the cost read low). Per request and per 1,000
    requests = total / successful requests. The provider's own ``usage.cost`` is summed
    beside it when reported.

Open loop
    ``requested_rate`` is the plan's; ``achieved_rate`` = measured requests / window;
    ``lag_ms`` percentiles over measured requests; ``client_saturated`` when lag p99 exceeds
    the scenario's ``lag_threshold_ms``: the client could not keep its own schedule.

Client timing error bound
    How far the latency figures can be off by the client's own lateness (each sample's
    ``ttft_bound_ms``: the request's write time plus how late the stamp of the read that
    carried the first token can be; ``read_bound_ms``: the worst read of the exchange; both
    defined in :mod:`chatprobe.record`, measured in :mod:`chatprobe.load.receive`).
    Percentiles over the successful measured requests that have one; ``unbounded`` counts
    those without (no kernel receive time on that platform). ``exceeded`` when the p99 of
    ``ttft_bound_ms`` is above ``threshold_ms`` (:data:`DEFAULT_TIMING_BOUND_MS` unless the
    scenario says): the run is marked, its TTFT figures include the client's own queueing.
    ``stamps`` counts which clock the samples' stamps came from (``kernel``: the kernel's
    receive time, over plain TCP and TLS alike; ``user``: right after the read returned,
    where a kernel stamp was missing or out of order).
    :func:`timing_bound` computes it over any set of samples (a run, a target, a stage).

Conformance under load
    Per target: streams checked (measured requests whose ``checks_broken`` is a list) and,
    per check, how many broke it and their share of the checked streams.

Contract tallies (``contract.json``, :func:`contract_figures`)
    A case *conforms* to its provider's documented contract when its outcome is ``passed``
    or ``deviation`` (every failing check is one the profile documents). Per check x
    provider x verdict (``fail``, ``deviation``, ``warn``: the check's status in a case) the
    number of cases and of findings, with the first case as the example; nothing is cut:
    every finding in ``contract.json`` is counted. A failed case whose failure no check
    names (an unmet ``expect.fails``, a crashed check, a case that could not run) counts
    under ``(expectations)``. ``expected`` statuses (faults a case injected on purpose)
    count nowhere.

Verdict (exit status of ``chatprobe load``)
    A run fails when its error rate is above the allowed maximum (``--max-error-rate``,
    default :data:`DEFAULT_MAX_ERROR_RATE`), or when the scenario declares an SLO and a
    target's attainment is below the scenario's ``slo.attainment``
    (default :data:`DEFAULT_SLO_ATTAINMENT`): that is what "the SLO was missed" means.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import operator
import zlib
from array import array
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chatprobe.profiles import Pricing
from chatprobe.results.samples import SampleTable
from chatprobe.stats import describe_counts, describe_sorted, median_ci

__all__ = [
    "DEFAULT_MAX_ERROR_RATE",
    "DEFAULT_SLO",
    "DEFAULT_SLO_ATTAINMENT",
    "DEFAULT_TIMING_BOUND_MS",
    "RATE_LIMITED",
    "SLO_METRICS",
    "CacheFigures",
    "CheckTally",
    "ConformanceUnderLoad",
    "ContractFigures",
    "Cost",
    "Dist",
    "ErrorClassFigures",
    "GroupFigures",
    "HeldBack",
    "LengthFigures",
    "RateLimited",
    "ReasoningFigures",
    "RunFigures",
    "RunSpec",
    "SampleIndex",
    "SessionFigures",
    "Slo",
    "StageFigures",
    "StageWindow",
    "TimingBound",
    "TurnFigures",
    "availability",
    "compute_run",
    "contract_figures",
    "jsonable",
    "latency_column",
    "measured_timeline",
    "send_offsets",
    "timing_bound",
    "timing_bounds_by_stage",
    "verdict",
]

DEFAULT_SLO: dict[str, float] = {"ttft_ms": 1000.0, "itl_ms": 100.0}
"""Per-request limits used when a scenario declares none."""
SLO_METRICS = ("ttfb_ms", "ttft_ms", "itl_ms", "e2e_ms")
DEFAULT_SLO_ATTAINMENT = 0.95
DEFAULT_MAX_ERROR_RATE = 0.05
DEFAULT_TIMING_BOUND_MS = 5.0
"""A run whose client timing error bound (p99 of ``ttft_bound_ms``) is above this is marked."""
RATE_LIMITED = "rate_limited"
ERROR_MESSAGES_KEPT = 8  # most frequent (class, message) pairs kept per group
MAX_TURN_ROWS = 64  # turn positions reported one by one


# ----------------------------------------------------------------------------- figures


@dataclass
class Dist:
    """Percentiles of one metric from exact values, with the 95% CI of the median when
    asked for (:func:`chatprobe.stats.median_ci`)."""

    n: int = 0
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    p999: float | None = None
    max: float | None = None
    p50_low: float | None = None
    p50_high: float | None = None

    @classmethod
    def of_sorted(cls, data: Sequence[float], *, ci_seed: int | None = None) -> Dist:
        """From sorted, NaN-free values; the median CI when ``ci_seed`` is given."""
        values: dict[str, Any] = describe_sorted(data)
        dist = cls(**values)
        if ci_seed is not None and data:
            dist.p50_low, dist.p50_high = median_ci(data, seed=ci_seed)
        return dist

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Dist:
        values: dict[str, Any] = {k: v for k, v in (data or {}).items() if k in _DIST_FIELDS}
        return cls(**values)


_DIST_FIELDS = frozenset(Dist.__dataclass_fields__)


@dataclass
class Slo:
    """The limits applied, and how many measured requests met all of them."""

    limits: dict[str, float] = field(default_factory=dict)
    source: str = "default"  # scenario | default | report (--slo)
    met: int = 0
    attainment: float | None = None


@dataclass
class RateLimited:
    """Requests the provider refused with 429, counted and timed apart from other errors."""

    count: int = 0
    share: float | None = None  # of measured requests
    time_s: float = 0.0  # sum of their durations
    first_s: float | None = None  # from the run start
    last_s: float | None = None


@dataclass
class HeldBack:
    """How long the run held back, honouring Retry-After and backing off (module docstring)."""

    retry_after: int = 0  # answers with a Retry-After the run honoured
    retry_after_s: float = 0.0  # wall time the target's users were held (union, cut at end)
    backoffs: int = 0  # requests after which their user backed off
    backoff_s: float = 0.0  # sum of the backoffs taken, each cut at the run's end


@dataclass
class Cost:
    """Cost of successful measured requests at the price captured at run time."""

    price_input_per_mtok: float | None = None
    price_output_per_mtok: float | None = None
    price_source: str = "none"  # documented | assumed | none
    price_note: str = ""
    requests: int = 0  # the rows counted: successful measured requests
    usd_total: float | None = None
    per_request: float | None = None
    per_1k_requests: float | None = None
    mean_prompt_tokens: float | None = None
    mean_output_tokens: float | None = None
    prompt_tokens_missing: int = 0  # no usage.prompt_tokens: counted as 0
    prompt_tokens_zero: int = 0  # 0 reported for a non-empty prompt (flagged)
    reported_usd_total: float | None = None  # the provider's usage.cost, where reported
    reported_per_request: float | None = None
    reported_requests: int = 0


@dataclass
class ReasoningFigures:
    """Reasoning tokens of successful measured requests (module docstring)."""

    requests: int = 0  # successful measured requests
    reasoned: int = 0  # of them, with a reasoning token count above 0
    tokens_total: int = 0  # reasoning tokens of the requests with a count
    tokens: Dist = field(default_factory=Dist)  # per request that reasoned
    unknown: int = 0  # encrypted reasoning and no count reported


@dataclass
class CacheFigures:
    """Prompt-cache hits as the provider reported them (module docstring)."""

    requests: int = 0  # successful measured requests reporting prompt and cached tokens
    requests_unreported: int = 0  # successful measured requests with no cached count
    prompt_tokens: int = 0
    cached_tokens: int = 0
    hit_rate: float | None = None  # cached / prompt tokens


@dataclass
class TurnFigures:
    """One turn position of the sessions (module docstring, Conversations and sessions)."""

    turn: int
    requests: int = 0  # measured requests at this position, any outcome
    ok: int = 0
    ttft_ms: Dist = field(default_factory=Dist)
    input_tokens: Dist = field(default_factory=Dist)  # chatprobe's count of what was sent
    cache: CacheFigures = field(default_factory=CacheFigures)


@dataclass
class SessionFigures:
    """Sessions of one target (module docstring, Conversations and sessions)."""

    sessions: int = 0  # sessions whose first turn was measured
    planned_turns: int | None = None  # turns per session, when the scenario plans them
    complete: int | None = None  # sessions with every planned turn successful
    turns: Dist = field(default_factory=Dist)  # measured requests per session
    duration_s: Dist = field(default_factory=Dist)  # first send to last completion
    by_turn: list[TurnFigures] = field(default_factory=list)
    turns_beyond: int = 0  # measured requests past MAX_TURN_ROWS


@dataclass
class LengthFigures:
    """Requested against delivered input and output lengths (module docstring)."""

    input_requested: Dist = field(default_factory=Dist)  # input_tokens (chatprobe's count)
    input_ratio: Dist = field(default_factory=Dist)  # prompt_tokens / input_tokens
    output_requested: Dist = field(default_factory=Dist)  # max_tokens
    output_ratio: Dist = field(default_factory=Dist)  # output_tokens / max_tokens (usage)
    output_at_cap: float | None = None  # share of output_ratio's requests reaching the cap
    ms_per_output_token: Dist = field(default_factory=Dist)  # E2E / output tokens
    stream_tokens_per_s: Dist = field(default_factory=Dist)  # (n - 1) / (last - first token)


@dataclass
class TimingBound:
    """The client's timing error bound over a set of samples (module docstring)."""

    samples: int = 0  # successful requests with a bound
    unbounded: int = 0  # successful requests without one
    stamps: dict[str, int] = field(default_factory=dict)  # kernel | user -> requests
    ttft_ms: Dist = field(default_factory=Dist)
    read_ms: Dist = field(default_factory=Dist)
    threshold_ms: float | None = None
    exceeded: bool = False
    message: str = ""  # one line for people: the bound, or the warning


@dataclass
class ConformanceUnderLoad:
    """Stream checks run on the streams of a load run (module docstring)."""

    checked: int = 0
    broken: dict[str, int] = field(default_factory=dict)  # check -> streams that broke it
    share: dict[str, float] = field(default_factory=dict)  # check -> broken / checked


@dataclass
class ErrorClassFigures:
    """One error class: its count and its most frequent message."""

    error_class: str
    count: int
    message: str
    message_count: int


@dataclass
class GroupFigures:
    """One provider x model of a run."""

    provider: str
    model: str
    samples: int = 0  # every sample, warm-up included
    requests: int = 0  # measured requests, any outcome
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    error_statuses: dict[str, int] = field(default_factory=dict)
    error_messages: list[tuple[str, str, int]] = field(default_factory=list)
    success_rate: float | None = None
    error_rate: float | None = None
    availability: float | None = None
    rate_limited: RateLimited = field(default_factory=RateLimited)
    held: HeldBack = field(default_factory=HeldBack)
    anomalies: dict[str, int] = field(default_factory=dict)
    ttfb_ms: Dist = field(default_factory=Dist)
    ttft_ms: Dist = field(default_factory=Dist)
    ttfa_ms: Dist = field(default_factory=Dist)
    itl_ms: Dist = field(default_factory=Dist)
    e2e_ms: Dist = field(default_factory=Dist)
    ttft_ms_from_t0: Dist | None = None  # open loop only
    output_tokens: Dist = field(default_factory=Dist)
    token_source: dict[str, int] = field(default_factory=dict)
    reasoning: ReasoningFigures = field(default_factory=ReasoningFigures)
    cache: CacheFigures = field(default_factory=CacheFigures)
    lengths: LengthFigures = field(default_factory=LengthFigures)
    sessions: SessionFigures | None = None  # samples in sessions only
    window_s: float | None = None
    requests_per_s: float | None = None
    output_tokens_per_s: float | None = None
    goodput_rps: float | None = None
    slo: Slo = field(default_factory=Slo)
    cost: Cost = field(default_factory=Cost)
    timing_bound: TimingBound = field(default_factory=TimingBound)
    conformance: ConformanceUnderLoad = field(default_factory=ConformanceUnderLoad)
    # Sorted successful TTFTs, for the report's CDF and ratios; never serialized.
    ttft_sorted: list[float] = field(default_factory=list, repr=False, metadata={"json": False})

    @property
    def label(self) -> str:
        return f"{self.provider} · {self.model}"


@dataclass
class StageFigures:
    """One stage x provider x model (sweeps and multi-stage runs)."""

    stage: str
    users: int
    provider: str
    model: str
    window_s: float
    requests: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    requests_per_s: float | None = None
    output_tokens_per_s: float | None = None
    goodput_rps: float | None = None
    ttft_ms: Dist = field(default_factory=Dist)
    itl_ms: Dist = field(default_factory=Dist)


@dataclass(frozen=True, slots=True)
class StageWindow:
    """The measured part of one stage, in seconds from the run start."""

    stage: str
    start_s: float
    end_s: float
    users: int = 0

    @property
    def seconds(self) -> float:
        return max(0.0, self.end_s - self.start_s)


@dataclass
class RunFigures:
    """Everything run-level; ``groups`` and ``sweep`` hold the per-target figures."""

    latency_origin: str = "t0"  # t0 | t_sched
    end_s: float | None = None
    timeline: list[StageWindow] = field(default_factory=list)
    window_s: float = 0.0
    samples: int = 0
    measured: int = 0
    warmup_samples: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    error_classes: list[ErrorClassFigures] = field(default_factory=list)
    error_rate: float | None = None
    availability: float | None = None
    rate_limited: RateLimited = field(default_factory=RateLimited)
    held: HeldBack = field(default_factory=HeldBack)
    slo: Slo = field(default_factory=Slo)
    requested_rate: float | None = None
    achieved_rate: float | None = None
    lag_ms: Dist = field(default_factory=Dist)
    lag_threshold_ms: float | None = None
    client_saturated: bool = False
    timing_bound: TimingBound = field(default_factory=TimingBound)
    groups: list[GroupFigures] = field(default_factory=list)
    sweep: list[StageFigures] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- inputs


class StageLike(Protocol):
    """What figures need of a plan stage (:class:`chatprobe.load.scenario.Stage` fits)."""

    @property
    def name(self) -> str: ...
    @property
    def duration_s(self) -> float: ...
    @property
    def warmup_s(self) -> float: ...
    @property
    def users(self) -> int: ...


@dataclass
class RunSpec:
    """What a run's figures need besides its samples (from ``plan.json`` and the folder).

    ``stages`` None means the plan is unknown (an older folder): see the window rule.
    ``prices`` maps ``(provider, model)`` to the price captured at run time (None: none).
    """

    stages: Sequence[StageLike] | None = None
    end_s: float | None = None  # when the run stopped, if recorded
    request_count: bool = False  # the run sends a fixed number of requests
    open_loop_rate: float | None = None
    lag_threshold_ms: float | None = None
    slo: Mapping[str, float] | None = None  # None or empty: DEFAULT_SLO
    slo_source: str = "scenario"
    prices: Mapping[tuple[str, str], Pricing | None] = field(default_factory=dict)
    targets: Sequence[tuple[str, str]] = ()  # group order; others follow in sample order
    session_turns: int | None = None  # turns each session plans (a conversation scenario)
    timing_bound_ms: float | None = DEFAULT_TIMING_BOUND_MS  # None: never mark the run

    @property
    def planned_s(self) -> float | None:
        return sum(s.duration_s for s in self.stages) if self.stages is not None else None


def measured_timeline(stages: Sequence[StageLike], end_s: float | None) -> list[StageWindow]:
    """Each stage from the end of its warm-up to its end, cut at ``end_s`` (None: the
    planned end)."""
    out = []
    start = 0.0
    for stage in stages:
        lo = start + stage.warmup_s
        hi = start + stage.duration_s
        if end_s is not None:
            hi = min(hi, end_s)
        out.append(StageWindow(stage.name, lo, max(lo, hi), int(stage.users)))
        start += stage.duration_s
    return out


# ----------------------------------------------------------------------------- computing


def _seed(*parts: str) -> int:
    """A stable seed per figure, so a summary and a report resample alike."""
    return zlib.crc32("/".join(parts).encode())


def _take(col: Any, idx: list[int]) -> list[float]:
    """``col[i]`` for ``i`` in ``idx``, NaNs (missing values) dropped."""
    values = list(map(col.__getitem__, idx))
    total = sum(values)
    if total == total:  # no NaN (a NaN or inf - inf would make the sum NaN): keep them all
        return values
    return [v for v in values if v == v]


class SampleIndex:
    """Sample indices by (group, stage, failed, warm-up), built in one pass over the table.

    Figures per group concatenate a group's stage cells; a sweep's rows use the cells as they
    are; sorted values of the cells merge into the group's sorted values almost for free
    (timsort finds the sorted runs), which keeps a million-sample report fast.
    """

    def __init__(self, t: SampleTable) -> None:
        self.n_stages = n = max(1, len(t.stages))
        self.n_groups = len(t.groups)
        keys = [
            ((g * n + s) << 2) | (2 if e else 0) | w
            for g, s, e, w in zip(t.group, t.stage, t.error, t.warmup, strict=True)
        ]
        self._cells: list[list[int]] = [[] for _ in range(4 * n * self.n_groups)]
        appenders = [c.append for c in self._cells]
        for i, k in enumerate(keys):
            appenders[k](i)

    def cell(self, g: int, s: int, *, failed: bool, warm: bool) -> list[int]:
        return self._cells[((g * self.n_stages + s) << 2) | (2 if failed else 0) | warm]

    def cells(self, g: int, *, failed: bool, warm_too: bool) -> list[list[int]]:
        """Per stage: the group's measured (or, with ``warm_too``, all) indices."""
        out = []
        for s in range(self.n_stages):
            cell = self.cell(g, s, failed=failed, warm=False)
            out.append(cell + self.cell(g, s, failed=failed, warm=True) if warm_too else cell)
        return out

    def group(self, g: int, *, failed: bool, warm: bool) -> list[int]:
        return list(
            itertools.chain.from_iterable(
                self.cell(g, s, failed=failed, warm=warm) for s in range(self.n_stages)
            )
        )

    def count(self, g: int) -> int:
        """Every sample of group ``g``, warm-up included."""
        start = 4 * self.n_stages * g
        return sum(map(len, self._cells[start : start + 4 * self.n_stages]))


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def availability(ok: int, failed: int, rate_limited: int = 0) -> float | None:
    """Availability as OpenRouter computes uptime: successful / (successful + errored), where
    ``failed`` counts every failed request and the ``rate_limited`` ones among them (429)
    count in neither; None when nothing is left to count. Run figures and the monitor's
    uptime windows (:mod:`chatprobe.monitor`) both use this one formula."""
    return _share(ok, ok + failed - rate_limited)


def _per_s(count: float, window: float) -> float | None:
    return count / window if window > 0 else None


_FROM_T0 = ("ttfb_ms", "ttft_ms", "ttfa_ms", "e2e_ms", "total_ms")


def send_offsets(t: SampleTable) -> array:
    """Seconds from the run start to each send (``t_offset_s``; derived from the wall
    clock for samples that lack it)."""
    offsets = t.floats["t_offset_s"]
    if len(offsets) and all(v != v for v in offsets[:100]):
        walls = t.floats["t_wall"]
        start = min((w for w in walls if w == w), default=0.0)
        offsets = array("d", [w - start for w in walls])
    return offsets


def latency_column(
    t: SampleTable, name: str, *, open_loop: bool, lag: array | None = None
) -> array:
    """A latency column counted from the latency origin (module docstring): as sampled
    (from t0), or in open loop from ``t_sched`` (value + ``lag_ms``)."""
    col = t.floats[name]
    if not open_loop or name not in _FROM_T0:
        return col
    if lag is None:
        lag = array("d", [v if v == v else 0.0 for v in t.floats["lag_ms"]])
    return array("d", map(operator.add, col, lag))


class _Columns:
    """The columns figures read, with open-loop latencies moved to ``t_sched``."""

    def __init__(self, t: SampleTable, open_loop: bool) -> None:
        self.t = t
        floats = t.floats
        self.offsets = send_offsets(t)
        self.raw = {name: floats[name] for name in _FROM_T0}
        self.itl = floats["itl_ms"]
        self.lag = floats["lag_ms"]
        lag = array("d", [v if v == v else 0.0 for v in self.lag]) if open_loop else None
        self.lat = {
            name: latency_column(t, name, open_loop=open_loop, lag=lag) for name in _FROM_T0
        }
        self.tokens = t.ints["output_tokens"]
        self._done: array | None = None

    def column(self, name: str) -> Any:
        return self.itl if name == "itl_ms" else self.lat[name]

    @property
    def done(self) -> array:
        """Completion offsets in seconds: send + the exchange's total (else E2E)."""
        if self._done is None:
            total, e2e = self.lat["total_ms"], self.lat["e2e_ms"]
            self._done = array(
                "d",
                [
                    o + (d if d == d else (e if e == e else 0.0)) / 1000.0
                    for o, d, e in zip(self.offsets, total, e2e, strict=True)
                ],
            )
        return self._done


def _meets(cols: _Columns, ok: list[int], limits: Mapping[str, float]) -> int:
    """How many of ``ok`` meet every limit (the missing-metric rule: module docstring)."""
    passing = ok
    for name, limit in limits.items():
        if name not in SLO_METRICS:
            continue
        col = cols.column(name)
        if name == "itl_ms":
            tokens = cols.tokens
            # No ITL below 2 output tokens: such an answer cannot violate an ITL limit.
            passing = [
                i for i in passing if col[i] <= limit or (col[i] != col[i] and tokens[i] < 2)
            ]
        else:
            passing = [i for i in passing if col[i] <= limit]  # NaN <= x is False
    return len(passing)


def _dist(col: Any, idx: list[int], seed: int | None) -> tuple[Dist, list[float]]:
    data = sorted(_take(col, idx))
    return Dist.of_sorted(data, ci_seed=seed), data


def _rate_limited(
    t: SampleTable, cols: _Columns, failed: list[int], code: int | None, measured: int
) -> RateLimited:
    if code is None:
        return RateLimited(count=0, share=_share(0, measured))
    idx = [i for i in failed if t.error[i] == code]
    times = _take(cols.raw["total_ms"], idx)
    offsets = _take(cols.offsets, idx)
    return RateLimited(
        count=len(idx),
        share=_share(len(idx), measured),
        time_s=math.fsum(times) / 1000.0,
        first_s=min(offsets) if offsets else None,
        last_s=max(offsets) if offsets else None,
    )


def _held(cols: _Columns, failed: list[int], end_s: float | None) -> HeldBack:
    """Retry-After holds and backoffs of the ``failed`` requests (module docstring)."""
    retry, backoff = cols.t.floats["retry_after_s"], cols.t.floats["backoff_s"]
    done = cols.done
    cut = math.inf if end_s is None else end_s
    spans = sorted((done[i], min(cut, done[i] + retry[i])) for i in failed if retry[i] == retry[i])
    held = 0.0
    reach = -math.inf
    for start, stop in spans:  # the union of the holds
        start = max(start, reach)
        if stop > start:
            held += stop - start
            reach = stop
    waits = [max(0.0, min(backoff[i], cut - done[i])) for i in failed if backoff[i] == backoff[i]]
    return HeldBack(
        retry_after=len(spans),
        retry_after_s=held,
        backoffs=len(waits),
        backoff_s=math.fsum(waits),
    )


def _ints(col: Any, idx: list[int]) -> tuple[int, int, int]:
    """Sum of the known values (missing ones are -1), how many are missing, how many 0."""
    values = list(map(col.__getitem__, idx))
    missing = values.count(-1)
    return sum(values) + missing, missing, values.count(0)


def _cost(t: SampleTable, ok: list[int], pricing: Pricing | None) -> Cost:
    prompt, missing, zero = _ints(t.ints["prompt_tokens"], ok)
    output, _, _ = _ints(t.ints["output_tokens"], ok)  # missing output tokens count 0
    reported = _take(t.floats["cost"], ok)
    known = len(ok) - missing
    cost = Cost(
        requests=len(ok),
        mean_prompt_tokens=prompt / known if known else None,
        mean_output_tokens=output / len(ok) if ok else None,
        prompt_tokens_missing=missing,
        prompt_tokens_zero=zero,
        reported_usd_total=math.fsum(reported) if reported else None,
        reported_per_request=math.fsum(reported) / len(reported) if reported else None,
        reported_requests=len(reported),
    )
    if pricing is None:
        cost.price_note = "no price captured for this model at run time"
        return cost
    cost.price_input_per_mtok = pricing.input_per_mtok
    cost.price_output_per_mtok = pricing.output_per_mtok
    cost.price_source = pricing.kind
    cost.price_note = pricing.source
    if ok:
        cost.usd_total = pricing.cost(prompt, output)
        cost.per_request = cost.usd_total / len(ok)
        cost.per_1k_requests = cost.per_request * 1000
    return cost


def _reasoning(t: SampleTable, ok: list[int]) -> ReasoningFigures:
    col = t.ints["reasoning_tokens"]
    values = list(map(col.__getitem__, ok))
    reasoned = sorted(float(v) for v in values if v > 0)
    return ReasoningFigures(
        requests=len(ok),
        reasoned=len(reasoned),
        tokens_total=int(sum(reasoned)),
        tokens=Dist.of_sorted(reasoned),
        unknown=values.count(-1),
    )


def _cache(t: SampleTable, ok: list[int]) -> CacheFigures:
    prompt, cached = t.ints["prompt_tokens"], t.ints["cached_tokens"]
    pairs = [(prompt[i], cached[i]) for i in ok if prompt[i] >= 0 and cached[i] >= 0]
    total_prompt = sum(p for p, _ in pairs)
    total_cached = sum(c for _, c in pairs)
    return CacheFigures(
        requests=len(pairs),
        requests_unreported=sum(1 for i in ok if cached[i] < 0),
        prompt_tokens=total_prompt,
        cached_tokens=total_cached,
        hit_rate=_share(total_cached, total_prompt),
    )


def _sessions(
    t: SampleTable, cols: _Columns, ok: list[int], failed: list[int], planned: int | None
) -> SessionFigures | None:
    session, turn = t.session, t.ints["turn"]
    ok = [i for i in ok if session[i] >= 0]
    failed = [i for i in failed if session[i] >= 0]
    if not ok and not failed:
        return None
    fig = SessionFigures(planned_turns=planned)
    positions: dict[int, tuple[list[int], list[int]]] = {}
    for outcome, idx in ((0, ok), (1, failed)):
        for i in idx:
            k = turn[i]
            if k > MAX_TURN_ROWS:
                fig.turns_beyond += 1
            elif k >= 1:
                positions.setdefault(k, ([], []))[outcome].append(i)
    ttft = cols.lat["ttft_ms"]
    sent = t.ints["input_tokens"]
    for k in sorted(positions):
        good, bad = positions[k]
        fig.by_turn.append(
            TurnFigures(
                turn=k,
                requests=len(good) + len(bad),
                ok=len(good),
                ttft_ms=Dist.of_sorted(sorted(_take(ttft, good))),
                input_tokens=Dist.of_sorted(sorted(float(sent[i]) for i in good if sent[i] >= 0)),
                cache=_cache(t, good),
            )
        )
    members: dict[int, list[int]] = {}
    for i in itertools.chain(ok, failed):
        members.setdefault(session[i], []).append(i)
    offsets, done = cols.offsets, cols.done
    failed_set = set(failed)
    durations, counts, complete = [], [], 0
    for idx in members.values():
        if not any(turn[i] == 1 for i in idx):
            continue  # started in the warm-up: its measured part is not the session
        counts.append(float(len(idx)))
        durations.append(max(done[i] for i in idx) - min(offsets[i] for i in idx))
        turns = {turn[i] for i in idx if i not in failed_set}
        if planned is not None and len(turns) == planned and not failed_set.intersection(idx):
            complete += 1
    fig.sessions = len(counts)
    fig.complete = complete if planned is not None else None
    fig.turns = Dist.of_sorted(sorted(counts))
    fig.duration_s = Dist.of_sorted(sorted(durations))
    return fig


def _lengths(t: SampleTable, cols: _Columns, ok: list[int]) -> LengthFigures:
    ints = t.ints
    sent, prompt = ints["input_tokens"], ints["prompt_tokens"]
    cap, out = ints["max_tokens"], cols.tokens
    usage = t.token_sources.index("usage") if "usage" in t.token_sources else None
    source = t.source
    input_ratio = sorted(prompt[i] / sent[i] for i in ok if sent[i] > 0 and prompt[i] >= 0)
    capped = [i for i in ok if cap[i] > 0 and source[i] == usage and out[i] >= 0]
    output_ratio = sorted(out[i] / cap[i] for i in capped)
    e2e, itl = t.floats["e2e_ms"], cols.itl
    per_token = sorted(e2e[i] / out[i] for i in ok if out[i] > 0 and e2e[i] == e2e[i])
    speed = sorted(1000.0 / itl[i] for i in ok if itl[i] > 0)  # NaN > 0 is False
    return LengthFigures(
        input_requested=Dist.of_sorted(sorted(float(sent[i]) for i in ok if sent[i] > 0)),
        input_ratio=Dist.of_sorted(input_ratio),
        output_requested=Dist.of_sorted(sorted(float(cap[i]) for i in ok if cap[i] > 0)),
        output_ratio=Dist.of_sorted(output_ratio),
        output_at_cap=_share(sum(1 for i in capped if out[i] >= cap[i]), len(capped)),
        ms_per_output_token=Dist.of_sorted(per_token),
        stream_tokens_per_s=Dist.of_sorted(speed),
    )


@dataclass
class _GroupCells:
    """One group's measured indices per stage, and their sorted TTFT and ITL per stage."""

    ok: list[list[int]]
    failed: list[list[int]]
    ttft: list[list[float]]
    itl: list[list[float]]
    met: list[int]  # per stage: successful requests meeting every SLO limit


def _group(
    t: SampleTable,
    cols: _Columns,
    g: int,
    index: SampleIndex,
    cells: _GroupCells,
    *,
    warm_too: bool,
    window: float,
    limits: Mapping[str, float],
    slo_source: str,
    pricing: Pricing | None,
    open_loop: bool,
    rl_code: int | None,
    end_s: float | None = None,
    session_turns: int | None = None,
    threshold_ms: float | None = DEFAULT_TIMING_BOUND_MS,
) -> GroupFigures:
    provider, model = t.groups[g]
    ok = list(itertools.chain.from_iterable(cells.ok))
    failed = list(itertools.chain.from_iterable(cells.failed))
    fig = GroupFigures(provider=provider, model=model)
    fig.samples = index.count(g)
    fig.requests = len(ok) + len(failed)
    fig.ok = len(ok)
    names = t.error_classes
    fig.errors = dict(sorted(Counter(names[t.error[i]] for i in failed).items()))
    status = t.ints["status"]
    fig.error_statuses = dict(
        sorted(Counter(str(status[i]) if status[i] >= 0 else "none" for i in failed).items())
    )
    messages = [
        (cls, msg, n)
        for (gg, cls, msg, warm), n in t.error_details.items()
        if gg == g and (warm_too or not warm)
    ]
    merged: Counter[tuple[str, str]] = Counter()
    for cls, msg, n in messages:
        merged[(cls, msg)] += n
    fig.error_messages = [
        (cls, msg, n)
        for (cls, msg), n in sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[
            :ERROR_MESSAGES_KEPT
        ]
    ]
    fig.success_rate = _share(fig.ok, fig.requests)
    fig.error_rate = _share(len(failed), fig.requests)
    fig.rate_limited = _rate_limited(t, cols, failed, rl_code, fig.requests)
    fig.availability = availability(fig.ok, len(failed), fig.rate_limited.count)
    fig.held = _held(cols, failed, end_s)
    anomalies: Counter[str] = Counter()
    for (gg, tag, warm), n in t.anomalies.items():
        if gg == g and (warm_too or not warm):
            anomalies[tag] += n
    fig.anomalies = dict(sorted(anomalies.items()))
    label = f"{provider}/{model}"
    fig.ttfb_ms, _ = _dist(cols.lat["ttfb_ms"], ok, _seed(label, "ttfb_ms"))
    fig.ttft_sorted = sorted(itertools.chain.from_iterable(cells.ttft))
    fig.ttft_ms = Dist.of_sorted(fig.ttft_sorted, ci_seed=_seed(label, "ttft_ms"))
    itl = sorted(itertools.chain.from_iterable(cells.itl))
    fig.itl_ms = Dist.of_sorted(itl, ci_seed=_seed(label, "itl_ms"))
    fig.e2e_ms, _ = _dist(cols.lat["e2e_ms"], ok, _seed(label, "e2e_ms"))
    fig.ttfa_ms, _ = _dist(cols.lat["ttfa_ms"], ok, _seed(label, "ttfa_ms"))
    fig.reasoning = _reasoning(t, ok)
    fig.cache = _cache(t, ok)
    fig.lengths = _lengths(t, cols, ok)
    fig.sessions = _sessions(t, cols, ok, failed, session_turns)
    if open_loop:
        fig.ttft_ms_from_t0, _ = _dist(cols.raw["ttft_ms"], ok, None)
    counts = Counter(map(cols.tokens.__getitem__, ok))
    counts.pop(-1, None)  # no count at all (never for a success, but a sample may lack it)
    described: dict[str, Any] = describe_counts(counts)
    fig.output_tokens = Dist(**described)
    sources = t.token_sources
    by_code = Counter(map(t.source.__getitem__, ok))
    fig.token_source = dict(sorted((sources[code], n) for code, n in by_code.items()))
    met = sum(cells.met)
    fig.window_s = window
    fig.requests_per_s = _per_s(fig.requests, window)
    fig.output_tokens_per_s = _per_s(sum(k * c for k, c in counts.items()), window)
    fig.goodput_rps = _per_s(met, window)
    fig.slo = Slo(dict(limits), slo_source, met, _share(met, fig.requests))
    fig.cost = _cost(t, ok, pricing)
    fig.timing_bound = timing_bound(t, ok, threshold_ms=threshold_ms)
    fig.conformance = _conformance(t, g, warm_too)
    return fig


def timing_bound(
    t: SampleTable, ok: Sequence[int], *, threshold_ms: float | None = DEFAULT_TIMING_BOUND_MS
) -> TimingBound:
    """The client timing error bound over the successful samples ``ok`` (module docstring)."""
    ttft_col, read_col = t.floats["ttft_bound_ms"], t.floats["read_bound_ms"]
    ttft = sorted(_take(ttft_col, list(ok)))
    read = sorted(_take(read_col, list(ok)))
    user = sum(map(t.user_clock.__getitem__, ok)) if len(t.user_clock) == len(t) else 0
    stamps = {k: n for k, n in (("kernel", len(ok) - user), ("user", user)) if n}
    out = TimingBound(
        samples=len(ttft),
        unbounded=len(ok) - len(ttft),
        stamps=stamps,
        ttft_ms=Dist.of_sorted(ttft),
        read_ms=Dist.of_sorted(read),
        threshold_ms=threshold_ms,
    )
    p99 = out.ttft_ms.p99
    out.exceeded = p99 is not None and threshold_ms is not None and p99 > threshold_ms
    if p99 is None:
        out.message = (
            "client timing error bound: unknown (no kernel receive times on this platform)"
            if ok
            else ""
        )
        return out
    how = (
        "kernel receive stamps"
        if not user
        else "user-space read stamps (the kernel's were missing or out of order)"
        if user == len(ok)
        else f"{user} of {len(ok)} requests on user-space read stamps"
    )
    if out.exceeded:
        out.message = (
            f"client timing uncertain: TTFT error up to {p99:.1f} ms (p99 of the client timing "
            f"error bound, above {threshold_ms:g} ms; max {out.ttft_ms.max or 0:.1f} ms). "
            "Either the client read late (its own queueing: see the event loop's lateness; "
            "use more processes (--processes auto) or fewer users per process), or the server "
            "sent the first token in one burst with later ones, which one read takes under "
            "one stamp, the newest"
        )
    else:
        out.message = (
            f"client timing error bound p50 {out.ttft_ms.p50 or 0:.2f} ms, p99 {p99:.2f} ms ({how})"
        )
    return out


def timing_bounds_by_stage(
    t: SampleTable,
    *,
    threshold_ms: float | None = DEFAULT_TIMING_BOUND_MS,
    index: SampleIndex | None = None,
) -> dict[str, TimingBound]:
    """Per stage label (sweep steps), every target together: the client timing error bound
    of that step's successful measured requests (capacity searches read this per step)."""
    index = SampleIndex(t) if index is None else index
    out: dict[str, TimingBound] = {}
    for s, label in enumerate(t.stages):
        ok = [i for g in range(index.n_groups) for i in index.cell(g, s, failed=False, warm=False)]
        out[label] = timing_bound(t, ok, threshold_ms=threshold_ms)
    return out


def _conformance(t: SampleTable, g: int, warm_too: bool) -> ConformanceUnderLoad:
    checked = sum(n for (gg, warm), n in t.checked.items() if gg == g and (warm_too or not warm))
    broken: Counter[str] = Counter()
    for (gg, name, warm), n in t.broken.items():
        if gg == g and (warm_too or not warm):
            broken[name] += n
    return ConformanceUnderLoad(
        checked=checked,
        broken=dict(sorted(broken.items())),
        share={k: n / checked for k, n in sorted(broken.items()) if checked},
    )


def _legacy_timeline(t: SampleTable, cols: _Columns, measured: list[int]) -> list[StageWindow]:
    """Without a plan: each stage from its first measured send to its last completion."""
    spans: dict[int, list[float]] = {}
    offsets, done = cols.offsets, cols.done
    for i in measured:
        o, d = offsets[i], done[i]
        if o != o:
            continue
        span = spans.setdefault(t.stage[i], [o, d])
        span[0] = min(span[0], o)
        span[1] = max(span[1], d)
    users = t.ints["users"]
    first_user: dict[int, int] = {}
    for i in measured:
        first_user.setdefault(t.stage[i], users[i])
    return [
        StageWindow(t.stages[s], lo, max(lo, hi), max(0, first_user.get(s, 0)))
        for s, (lo, hi) in sorted(spans.items(), key=lambda kv: kv[1][0])
    ]


def compute_run(t: SampleTable, spec: RunSpec, *, index: SampleIndex | None = None) -> RunFigures:
    """Every figure of one run from its samples (see the module docstring for the rules);
    ``index`` is the table's :class:`SampleIndex` when the caller already has one."""
    open_loop = spec.open_loop_rate is not None
    cols = _Columns(t, open_loop)
    index = SampleIndex(t) if index is None else index
    n_groups = len(t.groups)
    run = RunFigures(latency_origin="t_sched" if open_loop else "t0")
    run.samples = len(t)
    run.warmup_samples = sum(t.warmup)
    warm_too = bool(len(t)) and run.warmup_samples == len(t)
    if warm_too:
        run.notes.append(
            "every request fell inside the warm-up (the run was shorter than it): "
            "the figures include warm-up requests"
        )
    cells = [
        _GroupCells(
            ok=index.cells(g, failed=False, warm_too=warm_too),
            failed=index.cells(g, failed=True, warm_too=warm_too),
            ttft=[],
            itl=[],
            met=[],
        )
        for g in range(n_groups)
    ]
    limits = dict(spec.slo) if spec.slo else dict(DEFAULT_SLO)
    for c in cells:
        c.ttft = [sorted(_take(cols.lat["ttft_ms"], cell)) for cell in c.ok]
        c.itl = [sorted(_take(cols.itl, cell)) for cell in c.ok]
        c.met = [_meets(cols, cell, limits) for cell in c.ok]
    measured_idx = [i for c in cells for part in (c.ok, c.failed) for cell in part for i in cell]
    run.measured = len(measured_idx)
    run.warmup_samples = sum(t.warmup)

    # The timeline and the window.
    if spec.stages is not None:
        end = spec.end_s
        if spec.request_count or end is None:  # the last completion is needed
            last = max(cols.done) if len(t) else None
            if spec.request_count and last is not None:
                end = last if end is None else min(end, last)
            elif end is None:
                planned = spec.planned_s or 0.0
                end = min(last, planned) if last is not None else planned
        run.end_s = end
        stages = spec.stages
        if warm_too:  # no measured part: take each stage whole
            stages = [_Whole(s) for s in stages]
        run.timeline = measured_timeline(stages, end)
    else:
        run.timeline = _legacy_timeline(t, cols, measured_idx)
        run.end_s = max((w.end_s for w in run.timeline), default=None)
        if run.timeline:
            run.notes.append(
                "no plan.json: each stage's window runs from its first measured send to its "
                "last completion"
            )
    run.window_s = sum(w.seconds for w in run.timeline)

    slo_source = spec.slo_source if spec.slo else "default"
    rl_code = t.error_classes.index(RATE_LIMITED) if RATE_LIMITED in t.error_classes else None
    order = list(dict.fromkeys([*spec.targets, *t.groups]))
    codes = {key: g for g, key in enumerate(t.groups)}
    for key in order:
        g = codes.get(key)
        if g is None:  # a planned target with no sample at all
            run.groups.append(
                GroupFigures(
                    provider=key[0],
                    model=key[1],
                    window_s=run.window_s,
                    slo=Slo(dict(limits), slo_source),
                    cost=_cost(t, [], spec.prices.get(key)),
                )
            )
            continue
        run.groups.append(
            _group(
                t,
                cols,
                g,
                index,
                cells[g],
                warm_too=warm_too,
                window=run.window_s,
                limits=limits,
                slo_source=slo_source,
                pricing=spec.prices.get(key),
                open_loop=open_loop,
                rl_code=rl_code,
                end_s=run.end_s,
                session_turns=spec.session_turns,
                threshold_ms=spec.timing_bound_ms,
            )
        )

    # Run-level errors, availability, SLO.
    failed = [i for i in measured_idx if t.error[i]]
    run.errors = dict(sorted(Counter(t.error_classes[t.error[i]] for i in failed).items()))
    run.error_rate = _share(len(failed), run.measured)
    run.rate_limited = _rate_limited(t, cols, failed, rl_code, run.measured)
    ok_count = run.measured - len(failed)
    run.availability = availability(ok_count, len(failed), run.rate_limited.count)
    run.held = HeldBack(
        retry_after=sum(g.held.retry_after for g in run.groups),
        retry_after_s=math.fsum(g.held.retry_after_s for g in run.groups),
        backoffs=sum(g.held.backoffs for g in run.groups),
        backoff_s=math.fsum(g.held.backoff_s for g in run.groups),
    )
    met = sum(g.slo.met for g in run.groups)
    run.slo = Slo(limits, slo_source, met, _share(met, run.measured))
    run.error_classes = _error_classes(t, warm_too)
    ok_idx = [i for c in cells for cell in c.ok for i in cell]
    run.timing_bound = timing_bound(t, ok_idx, threshold_ms=spec.timing_bound_ms)
    if run.timing_bound.exceeded:
        run.notes.append(run.timing_bound.message)

    # Open loop.
    run.lag_ms = Dist.of_sorted(sorted(_take(cols.lag, measured_idx)))
    if open_loop:
        run.requested_rate = spec.open_loop_rate
        run.achieved_rate = _per_s(run.measured, run.window_s)
        run.lag_threshold_ms = spec.lag_threshold_ms
        p99 = run.lag_ms.p99
        run.client_saturated = bool(
            p99 is not None and spec.lag_threshold_ms is not None and p99 > spec.lag_threshold_ms
        )
    if len(run.timeline) > 1:
        run.sweep = _sweep(t, cols, cells, run.timeline, limits)
    return run


@dataclass(frozen=True, slots=True)
class _Whole:
    """A stage with its warm-up counted as measured (runs shorter than their warm-up)."""

    stage: StageLike

    @property
    def name(self) -> str:
        return self.stage.name

    @property
    def duration_s(self) -> float:
        return self.stage.duration_s

    @property
    def warmup_s(self) -> float:
        return 0.0

    @property
    def users(self) -> int:
        return self.stage.users


def _error_classes(t: SampleTable, warm_too: bool) -> list[ErrorClassFigures]:
    counts: Counter[str] = Counter()
    messages: dict[str, Counter[str]] = {}
    for (_g, cls, msg, warm), n in t.error_details.items():
        if warm and not warm_too:
            continue
        counts[cls] += n
        messages.setdefault(cls, Counter())[msg] += n
    out = []
    for cls, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        message, count = min(messages[cls].items(), key=lambda kv: (-kv[1], kv[0]))
        out.append(ErrorClassFigures(cls, n, message, count))
    return out


def _sweep(
    t: SampleTable,
    cols: _Columns,
    cells: list[_GroupCells],
    timeline: list[StageWindow],
    limits: Mapping[str, float],
) -> list[StageFigures]:
    """Per stage x group: the stage's measured requests over the stage's own window."""
    code_of = {label: s for s, label in enumerate(t.stages)}
    out = []
    for window in timeline:
        s = code_of.get(window.stage)
        seconds = window.seconds
        for g, (provider, model) in enumerate(t.groups):
            c = cells[g]
            ok = c.ok[s] if s is not None else []
            failed = c.failed[s] if s is not None else []
            ttft = c.ttft[s] if s is not None else []
            itl = c.itl[s] if s is not None else []
            met = c.met[s] if s is not None else 0
            out.append(
                StageFigures(
                    stage=window.stage,
                    users=window.users,
                    provider=provider,
                    model=model,
                    window_s=seconds,
                    requests=len(ok) + len(failed),
                    ok=len(ok),
                    errors=dict(
                        sorted(Counter(t.error_classes[t.error[i]] for i in failed).items())
                    ),
                    requests_per_s=_per_s(len(ok) + len(failed), seconds),
                    output_tokens_per_s=_per_s(_ints(cols.tokens, ok)[0], seconds),
                    goodput_rps=_per_s(met, seconds),
                    ttft_ms=Dist.of_sorted(ttft),
                    itl_ms=Dist.of_sorted(itl),
                )
            )
    return out


# ----------------------------------------------------------------------------- contract tallies

CONFORMING = ("passed", "deviation")
"""Case outcomes that conform to the provider's documented contract."""
VERDICTS = ("fail", "deviation", "warn")
"""Check statuses tallied, in the order they are shown (failures first)."""
CASE_PROBLEM = "(expectations)"
"""The tally of failed cases no check names (module docstring)."""


@dataclass
class CheckTally:
    """One check x provider x verdict over a contract run: how many cases, how many
    findings, and the first case as the example."""

    check: str
    provider: str
    verdict: str  # fail | deviation | warn
    severity: str = ""
    cases: int = 0
    findings: int = 0
    example_case: str = ""  # suite::case
    example_model: str = ""
    example_source: str = ""  # file:line of the case in its suite
    example: str = ""  # the example's first finding, as received
    reason: str = ""  # a deviation's documented reason


@dataclass
class ContractFigures:
    """What a contract run's results add up to (module docstring, "Contract tallies")."""

    cases: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)  # outcome -> cases
    by_provider: dict[str, dict[str, int]] = field(default_factory=dict)  # -> outcome -> cases
    conforming: int = 0  # passed + deviation
    deviating_checks: dict[str, int] = field(default_factory=dict)  # check -> cases, most first
    failing_checks: dict[str, int] = field(default_factory=dict)  # check -> cases, most first
    tallies: list[CheckTally] = field(default_factory=list)  # fail, deviation, warn; most first


def _case_statuses(entry: Mapping[str, Any]) -> dict[str, str]:
    """Each check's status in one case: ``checks`` as written, else (folders written before
    it existed) what the findings and deviations say."""
    recorded = entry.get("checks")
    if isinstance(recorded, Mapping) and recorded:
        return {str(k): str(v) for k, v in recorded.items()}
    statuses: dict[str, str] = {}
    for finding in entry.get("findings") or []:
        if isinstance(finding, Mapping) and finding.get("check"):
            fails = str(finding.get("severity") or "error") != "warning"
            name = str(finding["check"])
            if fails or statuses.get(name) != "fail":
                statuses[name] = "fail" if fails else "warn"
    for deviation in entry.get("deviations") or []:
        if isinstance(deviation, Mapping) and deviation.get("check"):
            statuses[str(deviation["check"])] = "deviation"
    return statuses


def _most_first(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def contract_figures(
    results: Sequence[Mapping[str, Any]], severities: Mapping[str, str] | None = None
) -> ContractFigures:
    """Tally a contract run's ``results`` (``contract.json`` entries); ``severities`` maps a
    check to its declared severity (``contract.json``'s ``checks``)."""
    figures = ContractFigures()
    outcomes: Counter[str] = Counter()
    deviating: Counter[str] = Counter()
    failing: Counter[str] = Counter()
    tallies: dict[tuple[str, str, str], CheckTally] = {}
    for entry in results:
        outcome = str(entry.get("outcome") or "?")
        provider = str(entry.get("provider") or "-")
        outcomes[outcome] += 1
        per = figures.by_provider.setdefault(provider, {})
        per[outcome] = per.get(outcome, 0) + 1
        findings = [f for f in entry.get("findings") or [] if isinstance(f, Mapping)]
        reasons = {
            str(d.get("check")): str(d.get("reason") or "")
            for d in entry.get("deviations") or []
            if isinstance(d, Mapping)
        }
        statuses = _case_statuses(entry)
        named = [(c, v) for c, v in statuses.items() if v in VERDICTS]
        if outcome in ("failed", "error") and not any(v == "fail" for _c, v in named):
            named.append((CASE_PROBLEM, "fail"))
        for check, status in named:
            mine = [f for f in findings if f.get("check") == check]
            if status == "deviation":
                deviating[check] += outcome == "deviation"
            elif status == "fail":
                failing[check] += 1
            tally = tallies.get((status, check, provider))
            if tally is None:
                first = mine[0] if mine else {}
                tally = tallies[(status, check, provider)] = CheckTally(
                    check=check,
                    provider=provider,
                    verdict=status,
                    severity=str(first.get("severity") or (severities or {}).get(check) or "error"),
                    example_case=f"{entry.get('suite') or '?'}::{entry.get('case') or '?'}",
                    example_model=str(entry.get("model") or ""),
                    example_source=str(entry.get("source") or ""),
                    example=str(first.get("message") or entry.get("message") or outcome),
                    reason=reasons.get(check, ""),
                )
            tally.cases += 1
            tally.findings += len(mine) or (1 if check == CASE_PROBLEM else 0)
    figures.cases = sum(outcomes.values())
    figures.outcomes = dict(sorted(outcomes.items()))
    figures.conforming = sum(outcomes.get(o, 0) for o in CONFORMING)
    figures.deviating_checks = _most_first(+deviating)
    figures.failing_checks = _most_first(failing)
    figures.tallies = sorted(
        tallies.values(),
        key=lambda t: (VERDICTS.index(t.verdict), -t.cases, t.check, t.provider),
    )
    return figures


# ----------------------------------------------------------------------------- verdict


def verdict(
    *,
    error_rate: float | None,
    attainment: Mapping[str, float | None],
    limits: Mapping[str, float],
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE,
    slo_declared: bool = False,
    slo_attainment: float | None = None,
) -> list[str]:
    """Why a run failed, one line per reason; empty when it passed (module docstring).

    ``attainment`` maps each target (``provider/model``) to its SLO attainment.
    """
    reasons = []
    if error_rate is not None and error_rate > max_error_rate:
        reasons.append(
            f"error rate {100 * error_rate:.2f}% is above the allowed {100 * max_error_rate:g}% "
            "(--max-error-rate)"
        )
    target = DEFAULT_SLO_ATTAINMENT if slo_attainment is None else slo_attainment
    if slo_declared:
        wanted = ", ".join(f"{k} <= {v:g}" for k, v in limits.items())
        for label, share in attainment.items():
            if share is not None and share < target:
                reasons.append(
                    f"SLO missed by {label}: {100 * share:.2f}% of requests met {wanted}; "
                    f"the scenario asks for {100 * target:g}%"
                )
    return reasons


# ----------------------------------------------------------------------------- output


def jsonable(obj: Any) -> Any:
    """Figures as JSON-ready values: dataclasses to dicts (fields marked ``json: False``
    left out), tuples to lists, NaN to null."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: jsonable(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if f.metadata.get("json", True)
        }
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float) and obj != obj:
        return None
    return obj
