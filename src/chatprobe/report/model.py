"""The report as plain data, computed once from results folders; renderers only format it.

Every figure comes from exact per-request samples (``samples.jsonl``) when a folder has
them, and falls back to ``summary.json`` otherwise. Definitions (see ``docs/report.md``):

* latency statistics use successful requests outside the warm-up; the 95% confidence
  interval of each median is a seeded percentile bootstrap (:func:`chatprobe.stats.bootstrap_ci`)
  up to :data:`CI_MAX_SAMPLE` values and the bootstrap's exact limit above (see
  :func:`_median_ci`), which keeps a million-sample report fast;
* the steady window runs from the first non-warm-up send to the last completion; requests/s,
  output tokens/s and goodput (successful requests meeting every SLO, per second, errors in
  the denominator) are taken over it;
* cost per request = the profile's price x the mean prompt and output tokens of successful
  requests; its source (documented or assumed) is the profile's.
"""

from __future__ import annotations

import math
import operator
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chatprobe.errors import ChatprobeError
from chatprobe.results import Results, SampleTable
from chatprobe.stats import PCTS, bootstrap_ci, percentile, ratio_ci

__all__ = [
    "CI_MAX_SAMPLE",
    "DEFAULT_SLO",
    "REPORT_SCHEMA_VERSION",
    "Comparison",
    "Conformance",
    "Dist",
    "GroupStats",
    "Report",
    "RunInfo",
    "Summary",
    "SweepPoint",
    "build_report",
]

REPORT_SCHEMA_VERSION = 1
CI_MAX_SAMPLE = 1000
CI_RESAMPLES = 400
CDF_POINTS = 120
TIMELINE_BINS = 60
TIMELINE_MAX_POINTS = 20_000  # per group; a stride subsample beyond
DEFAULT_SLO = {"ttft_ms": 1000.0, "itl_ms": 100.0}
STATUS_ORDER = ("fail", "deviation", "pass", "skip")


@dataclass
class Dist:
    """Percentiles of one metric, with the 95% CI of the median."""

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
    def from_pcts(cls, pcts: dict[str, Any] | None) -> Dist:
        pcts = pcts or {}
        given: dict[str, Any] = {k: pcts[k] for k in cls.__dataclass_fields__ if k in pcts}
        return cls(**given)


@dataclass
class RunInfo:
    """What one results folder says about itself."""

    run_id: str
    kind: str
    path: str
    started_at: str
    finished_at: str | None
    harness_version: str
    machine: dict[str, Any]
    data_source: str
    command: list[str]
    providers: list[str]
    interrupted: bool
    notes: list[str]
    samples: int = 0
    skipped_lines: int = 0
    truncated_tail: bool = False
    scenario: str = ""
    duration_s: float | None = None
    warmup_start_s: float | None = None  # warm-up span on the t_offset_s axis
    warmup_s: float | None = None


@dataclass
class GroupStats:
    """One provider x model in a load run."""

    provider: str
    model: str
    family: str
    data_source: str
    run_id: str
    requests: int = 0  # outside warm-up, any outcome
    ok: int = 0
    success_rate: float | None = None
    errors: dict[str, int] = field(default_factory=dict)
    error_messages: list[tuple[str, str, int]] = field(default_factory=list)
    ttft: Dist = field(default_factory=Dist)
    itl: Dist = field(default_factory=Dist)
    e2e: Dist = field(default_factory=Dist)
    window_s: float | None = None
    requests_per_s: float | None = None
    output_tokens_per_s: float | None = None
    goodput_rps: float | None = None
    slo_attainment: float | None = None
    mean_output_tokens: float | None = None
    mean_prompt_tokens: float | None = None
    tokens_estimated: int = 0
    cost_per_request: float | None = None
    cost_per_1k: float | None = None
    reported_cost_per_request: float | None = None
    price_source: str = "none"  # documented | assumed | none
    price_note: str = ""
    free: bool = False
    excerpts: list[str] = field(default_factory=list)
    cdf: list[tuple[float, float]] = field(default_factory=list)  # (ttft ms, fraction)
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (s, median ttft ms)
    # Sorted TTFT values for comparisons; not part of report.json.
    ttft_sorted: list[float] = field(default_factory=list, repr=False, metadata={"json": False})

    @property
    def label(self) -> str:
        return f"{self.provider} · {self.model}"


@dataclass
class SweepPoint:
    provider: str
    model: str
    users: int
    requests: int
    requests_per_s: float | None
    output_tokens_per_s: float | None
    ttft_p50: float | None


@dataclass
class Conformance:
    providers: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    descriptions: dict[str, str] = field(default_factory=dict)
    matrix: dict[str, dict[str, str]] = field(default_factory=dict)
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)  # provider -> outcome
    # provider, check, documented reason, evidence (a finding message as received)
    deviations: list[tuple[str, str, str, str]] = field(default_factory=list)
    failures: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    excerpts: list[tuple[str, str, str]] = field(default_factory=list)  # provider, model, text
    data_source: str = ""


@dataclass
class Comparison:
    """A TTFT ratio (median of a / median of b) with its bootstrap 95% CI."""

    kind: str  # "family" (two families at one provider) | "provider" (one family, two providers)
    scope: str
    a: str
    b: str
    a_p50: float | None
    b_p50: float | None
    n_a: int
    n_b: int
    ratio: float | None
    low: float | None
    high: float | None
    verdict: str


@dataclass
class Summary:
    lines: list[str] = field(default_factory=list)
    fastest: dict[str, Any] | None = None
    cheapest: dict[str, Any] | None = None
    most_conformant: dict[str, Any] | None = None
    most_available: dict[str, Any] | None = None


@dataclass
class Report:
    report_id: str
    generated_at: str
    harness_version: str
    runs: list[RunInfo]
    data_sources: list[str]
    slo: dict[str, float]
    groups: list[GroupStats] = field(default_factory=list)
    sweep: list[SweepPoint] = field(default_factory=list)
    conformance: Conformance | None = None
    comparisons: list[Comparison] = field(default_factory=list)
    summary: Summary = field(default_factory=Summary)
    warnings: list[str] = field(default_factory=list)
    schema_version: int = REPORT_SCHEMA_VERSION

    @property
    def emulated(self) -> bool:
        return "emulated" in self.data_sources

    @property
    def source_label(self) -> str:
        return " + ".join(self.data_sources) or "unknown"


# ----------------------------------------------------------------------------- building


def build_report(
    folders: list[Results],
    *,
    report_id: str | None = None,
    slo: dict[str, float] | None = None,
) -> Report:
    """Compute the whole report from loaded folders (see the module docstring)."""
    from chatprobe import __version__

    runs = [_run_info(r) for r in folders]
    sources = sorted({run.data_source for run in runs if run.data_source})
    report = Report(
        report_id=report_id or _default_id(folders),
        generated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        harness_version=__version__,
        runs=runs,
        data_sources=sources,
        slo=dict(slo or _slo_from_summaries(folders) or DEFAULT_SLO),
    )
    for res in folders:
        if res.skipped_lines:
            where = ", ".join(str(n) for n in res.bad_line_numbers)
            cut = (
                " (the last line was cut off by an interrupted write)" if res.truncated_tail else ""
            )
            report.warnings.append(
                f"{res.run_id}: skipped {res.skipped_lines} unreadable line(s) of samples.jsonl "
                f"(line {where}){cut}."
            )
        report.warnings.extend(_folder_warnings(res))
        if res.meta.get("interrupted"):
            report.warnings.append(
                f"{res.run_id}: the run was interrupted; figures cover what was measured."
            )
        if res.samples is not None and len(res.samples):
            groups, sweep = _groups_from_samples(res, res.samples, report.slo, report.warnings)
            report.groups.extend(groups)
            report.sweep.extend(sweep)
        elif res.summary is not None:
            groups, sweep = _groups_from_summary(res)
            report.groups.extend(groups)
            report.sweep.extend(sweep)
    _warn_duplicates(report)
    report.conformance = _conformance([r for r in folders if r.contract is not None])
    report.comparisons = _comparisons(report.groups)
    report.summary = _summary(report)
    return report


def _folder_warnings(res: Results) -> list[str]:
    """What a load summary or contract says about its own trustworthiness."""
    out: list[str] = []
    summary = res.summary or {}
    if summary.get("client_saturated"):
        out.append(
            f"{res.run_id}: the load client was saturated (send lag above its threshold): "
            "latency figures include client-side queueing."
        )
    raw_workers = summary.get("workers")
    workers = raw_workers if isinstance(raw_workers, dict) else {}
    lost = workers.get("lost") or []
    if lost:
        out.append(
            f"{res.run_id}: {len(lost)} load worker(s) were lost; their samples are missing."
        )
    for note in [*(summary.get("notes") or []), *((res.contract or {}).get("warnings") or [])]:
        if isinstance(note, str) and note:
            out.append(f"{res.run_id}: {note}")
    return out


def _default_id(folders: list[Results]) -> str:
    groups = {r.meta.get("group") for r in folders if r.meta.get("group")}
    if len(groups) == 1:
        return str(groups.pop())
    return max((r.run_id for r in folders), default="report")


def _run_info(res: Results) -> RunInfo:
    meta = res.meta
    summary = res.summary or {}
    return RunInfo(
        run_id=res.run_id,
        kind=res.kind,
        path=str(res.path),
        started_at=str(meta.get("started_at") or ""),
        finished_at=meta.get("finished_at"),
        harness_version=str(meta.get("harness_version") or ""),
        machine=dict(meta.get("machine") or {}),
        data_source=res.data_source,
        command=[str(a) for a in meta.get("command") or []],
        providers=[str(p) for p in meta.get("providers") or []],
        interrupted=bool(meta.get("interrupted")),
        notes=[str(n) for n in meta.get("notes") or []],
        samples=len(res.samples) if res.samples is not None else 0,
        skipped_lines=res.skipped_lines,
        truncated_tail=res.truncated_tail,
        scenario=str(summary.get("scenario") or ""),
        duration_s=summary.get("duration_s"),
        **_warmup_span(res.samples),
    )


def _warmup_span(t: SampleTable | None) -> dict[str, float]:
    if t is None or not any(t.warmup):
        return {}
    offsets = t.floats["t_offset_s"]
    warm = [offsets[i] for i, w in enumerate(t.warmup) if w and offsets[i] == offsets[i]]
    if not warm:
        return {}
    return {"warmup_start_s": min(warm), "warmup_s": max(warm)}


def _slo_from_summaries(folders: list[Results]) -> dict[str, float]:
    for res in folders:
        for group in (res.summary or {}).get("groups") or []:
            slo = group.get("slo") if isinstance(group, dict) else None
            if isinstance(slo, dict):
                found = {
                    k: float(v)
                    for k, v in slo.items()
                    if k in ("ttft_ms", "itl_ms", "e2e_ms", "ttfb_ms")
                    and isinstance(v, int | float)
                    and not isinstance(v, bool)
                }
                if found:
                    return found
    return {}


def _profile_model(provider: str, model: str) -> Any:
    from chatprobe.profiles import load_profile

    try:
        return load_profile(provider).model(model)
    except ChatprobeError:
        return None


def _finite(values: Any) -> list[float]:
    return [v for v in values if v == v and v is not None]  # NaN != NaN


def _take(col: Any, idx: list[int]) -> list[float]:
    """``col[i]`` for ``i`` in ``idx``, NaNs (missing values) dropped."""
    values = list(map(col.__getitem__, idx))
    total = sum(values)
    if total == total:  # no NaN (a NaN or inf - inf would make the sum NaN): keep them all
        return values
    return [v for v in values if v == v]


def _dist(values: list[float], seed: int, *, ci: bool = True) -> tuple[Dist, list[float]]:
    """Percentiles and median CI of ``values`` (NaNs dropped); also returns them sorted.

    Same definitions as :func:`chatprobe.stats.percentiles`, computed from one sort (that
    function would sort again, which matters at a million samples).
    """
    data = sorted(_finite(values))
    n = len(data)
    if not n:
        return Dist(), data
    mean = sum(data) / n
    if n > 1:
        square = sum(map(operator.mul, data, data))
        std = math.sqrt(max(0.0, square - n * mean * mean) / (n - 1))
    else:
        std = 0.0
    dist = Dist(n=n, mean=mean, std=std, min=data[0], max=data[-1])
    for key, q in PCTS:
        setattr(dist, key, percentile(data, q))
    if ci:
        dist.p50_low, dist.p50_high = _median_ci(data, seed)
    return dist, data


def _median_ci(data: list[float], seed: int) -> tuple[float | None, float | None]:
    """95% CI of the median of sorted ``data``.

    Up to :data:`CI_MAX_SAMPLE` values: a seeded percentile bootstrap
    (:func:`chatprobe.stats.bootstrap_ci`). Above, the bootstrap's own limit, computed
    instead of sampled: the median of a resample falls below the j-th order statistic with
    binomial probability, so the interval is the pair of order statistics at
    n/2 -+ 1.96 sqrt(n)/2 (the distribution-free CI of the median). Exact, and O(1).
    """
    n = len(data)
    if n <= CI_MAX_SAMPLE:
        _, low, high = bootstrap_ci(data, resamples=CI_RESAMPLES, seed=seed)
        return _num(low), _num(high)
    half = 1.959964 * math.sqrt(n) / 2
    lo = max(0, math.floor(n / 2 - half) - 1)
    hi = min(n - 1, math.ceil(n / 2 + half) - 1)
    return data[lo], data[hi]


def _ratio_ci(
    a: list[float], b: list[float], ci_a: tuple[Any, Any], ci_b: tuple[Any, Any], seed: int
) -> tuple[float, float, float]:
    """median(a) / median(b) with a 95% CI: :func:`chatprobe.stats.ratio_ci` (bootstrap)
    when both sides are small; above :data:`CI_MAX_SAMPLE`, from the two medians' CIs on the
    log scale, where the variances of independent samples add."""
    if len(a) <= CI_MAX_SAMPLE and len(b) <= CI_MAX_SAMPLE:
        return ratio_ci(a, b, resamples=CI_RESAMPLES, seed=seed)
    ma, mb = percentile(a, 50.0), percentile(b, 50.0)
    if not (ma > 0 and mb > 0) or None in (*ci_a, *ci_b):
        return (ma / mb if mb else math.nan), math.nan, math.nan
    if min(*ci_a, *ci_b) <= 0:
        return ma / mb, math.nan, math.nan
    z = 1.959964
    sa = (math.log(ci_a[1]) - math.log(ci_a[0])) / (2 * z)
    sb = (math.log(ci_b[1]) - math.log(ci_b[0])) / (2 * z)
    spread = z * math.sqrt(sa * sa + sb * sb)
    log_ratio = math.log(ma / mb)
    return ma / mb, math.exp(log_ratio - spread), math.exp(log_ratio + spread)


def _num(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _price(stats: GroupStats) -> None:
    info = _profile_model(stats.provider, stats.model)
    if info is not None:
        stats.family = info.family
        stats.free = info.free
    pricing = getattr(info, "pricing", None)
    if pricing is None:
        stats.price_source = "none"
        stats.price_note = "no price in the profile"
        return
    source = (pricing.source or "").strip()
    stats.price_source = "documented" if source.lower().startswith("documented") else "assumed"
    stats.price_note = source
    if stats.mean_output_tokens is not None:
        # Cost is linear in tokens, so the mean cost is the cost of the mean token counts.
        stats.cost_per_request = pricing.cost(
            stats.mean_prompt_tokens or 0,
            stats.mean_output_tokens,
        )
        stats.cost_per_1k = stats.cost_per_request * 1000


def _buckets(t: SampleTable) -> list[list[int]]:
    """Sample indices by (group, failed, warm-up): bucket ``4 * group + 2 * failed + warm``."""
    keys = [4 * g + (2 if e else 0) + w for g, e, w in zip(t.group, t.error, t.warmup, strict=True)]
    buckets: list[list[int]] = [[] for _ in range(4 * len(t.groups))]
    appenders = [b.append for b in buckets]
    for i, k in enumerate(keys):
        appenders[k](i)
    return buckets


def _groups_from_samples(
    res: Results, t: SampleTable, slo: dict[str, float], warnings: list[str]
) -> tuple[list[GroupStats], list[SweepPoint]]:
    buckets = _buckets(t)
    if not any(buckets[4 * g] or buckets[4 * g + 2] for g in range(len(t.groups))):
        # Shorter than its warm-up: better figures with a warning than no figures at all.
        warnings.append(
            f"{res.run_id}: every request fell inside the warm-up (the run was shorter than "
            "it); the figures include warm-up requests."
        )
        for g in range(len(t.groups)):
            buckets[4 * g] += buckets[4 * g + 1]
            buckets[4 * g + 2] += buckets[4 * g + 3]
            buckets[4 * g + 1], buckets[4 * g + 3] = [], []
    offsets = t.floats["t_offset_s"]
    if len(offsets) and all(v != v for v in offsets[:100]):  # no offsets: derive from wall
        walls = t.floats["t_wall"]
        start = min((w for w in walls if w == w), default=0.0)
        offsets = array("d", [w - start for w in walls])
    e2e = t.floats["e2e_ms"]
    starts, ends = [], []
    for g in range(len(t.groups)):
        ok, failed = buckets[4 * g], buckets[4 * g + 2]
        sent = _take(offsets, ok) + _take(offsets, failed)
        if sent:
            starts.append(min(sent))
        finished = [
            o + d / 1000.0
            for o, d in zip(map(offsets.__getitem__, ok), map(e2e.__getitem__, ok), strict=True)
        ]
        finished = [x for x in finished if x == x] + _take(offsets, failed)
        if finished:
            ends.append(max(finished))
    window = max(ends) - min(starts) if starts and ends and max(ends) > min(starts) else None
    if window is None and res.summary and res.summary.get("duration_s"):
        window = float(res.summary["duration_s"])

    groups: list[GroupStats] = []
    out_tokens = t.ints["output_tokens"]
    prompt = t.ints["prompt_tokens"]
    for g, (provider, model) in enumerate(t.groups):
        ok = buckets[4 * g]
        failed = buckets[4 * g + 2]
        if not ok and not failed:
            continue
        stats = GroupStats(
            provider=provider,
            model=model,
            family=model,
            data_source=res.data_source,
            run_id=res.run_id,
        )
        stats.requests = len(ok) + len(failed)
        stats.ok = len(ok)
        stats.success_rate = stats.ok / stats.requests
        errors = Counter(t.error_classes[t.error[i]] for i in failed)
        stats.errors = dict(errors.most_common())
        stats.error_messages = sorted(
            ((cls, msg, n) for (gg, cls, msg), n in t.error_details.items() if gg == g),
            key=lambda item: -item[2],
        )[:8]
        seed = g + 1
        stats.ttft, ttft_sorted = _dist(_take(t.floats["ttft_ms"], ok), seed)
        stats.itl, _ = _dist(_take(t.floats["itl_ms"], ok), seed)
        stats.e2e, _ = _dist(_take(e2e, ok), seed)
        stats.ttft_sorted = ttft_sorted
        tokens = [v for v in [out_tokens[i] for i in ok] if v >= 0]
        prompts = [v for v in [prompt[i] for i in ok] if v >= 0]
        stats.mean_output_tokens = sum(tokens) / len(tokens) if tokens else None
        stats.mean_prompt_tokens = sum(prompts) / len(prompts) if prompts else None
        stats.tokens_estimated = t.token_estimated[g] if g < len(t.token_estimated) else 0
        reported = _finite([t.floats["cost"][i] for i in ok])
        stats.reported_cost_per_request = sum(reported) / len(reported) if reported else None
        if window:
            stats.window_s = window
            stats.requests_per_s = stats.requests / window
            stats.output_tokens_per_s = sum(tokens) / window
            met = _slo_met(t, ok, slo)
            stats.goodput_rps = met / window
            stats.slo_attainment = met / stats.requests
        stats.cdf = _cdf(ttft_sorted)
        over_time = ok + buckets[4 * g + 1]  # successful, warm-up included
        over_time = over_time[:: max(1, len(over_time) // TIMELINE_MAX_POINTS)]
        stats.timeline = _timeline(
            [offsets[i] for i in over_time], [t.floats["ttft_ms"][i] for i in over_time]
        )
        stats.excerpts = list(t.excerpts.get(g, []))
        _price(stats)
        groups.append(stats)
    return groups, _sweep_from_samples(t, offsets, buckets, res)


def _slo_met(t: SampleTable, ok: list[int], slo: dict[str, float]) -> int:
    """How many of ``ok`` meet every SLO (a missing metric fails it)."""
    passing = ok
    for name, limit in slo.items():
        if name not in t.floats:
            continue
        col = t.floats[name]
        passing = [i for i in passing if col[i] <= limit]  # NaN <= x is False
    return len(passing)


def _cdf(sorted_values: list[float]) -> list[tuple[float, float]]:
    if not sorted_values:
        return []
    qs = [100.0 * k / (CDF_POINTS - 1) for k in range(CDF_POINTS)]
    return [(percentile(sorted_values, q), q / 100.0) for q in qs]


def _timeline(times: list[float], values: list[float]) -> list[tuple[float, float]]:
    pairs = [(t, v) for t, v in zip(times, values, strict=True) if t == t and v == v]
    if not pairs:
        return []
    lo = min(p[0] for p in pairs)
    hi = max(p[0] for p in pairs)
    width = (hi - lo) / TIMELINE_BINS or 1.0
    bins: list[list[float]] = [[] for _ in range(TIMELINE_BINS + 1)]
    for tt, v in pairs:
        bins[int((tt - lo) / width)].append(v)
    out = []
    for k, values_in_bin in enumerate(bins):
        if values_in_bin:
            values_in_bin.sort()
            out.append((lo + (k + 0.5) * width, percentile(values_in_bin, 50.0)))
    return out


def _sweep_from_samples(
    t: SampleTable, offsets: Any, buckets: list[list[int]], res: Results
) -> list[SweepPoint]:
    """Per stage x group: requests/s and output tokens/s over the stage's span."""
    if len(t.stages) < 2:
        return _sweep_from_summary((res.summary or {}).get("sweep") or [])
    stage = t.stage
    n_stages = len(t.stages)
    n_groups = len(t.groups)
    # Cells (stage, group), successful and failed apart: [ok indices, failed indices].
    flat: list[tuple[list[int], list[int]]] = [([], []) for _ in range(n_stages * n_groups)]
    for g in range(n_groups):
        for side, bucket in ((0, 0), (1, 2)):
            indices = buckets[4 * g + bucket]
            appenders = [flat[x * n_groups + g][side].append for x in range(n_stages)]
            for i, x in zip(indices, map(stage.__getitem__, indices), strict=True):
                appenders[x](i)
    # Completion offsets in seconds, once: send offset + E2E (failed requests: the send).
    e2e = t.floats["e2e_ms"]
    done = array("d", [o + d / 1000.0 if d == d else o for o, d in zip(offsets, e2e, strict=True)])
    tokens_col = array("q", [v if v > 0 else 0 for v in t.ints["output_tokens"]])
    spans = [[math.inf, -math.inf] for _ in range(n_stages)]
    for k, (ok, failed) in enumerate(flat):
        for idx in (ok, failed):
            starts = _take(offsets, idx)
            ends = _take(done, idx)
            if starts and ends:
                lo_hi = spans[k // n_groups]
                lo_hi[0], lo_hi[1] = min(lo_hi[0], min(starts)), max(lo_hi[1], max(ends))
    users_col = t.ints["users"]
    ttft_col = t.floats["ttft_ms"]
    points = []
    for k, (ok, failed) in enumerate(flat):
        if not ok and not failed:
            continue
        s, g = divmod(k, n_groups)
        span = spans[s][1] - spans[s][0]
        ttft = sorted(_take(ttft_col, ok))
        tokens = sum(map(tokens_col.__getitem__, ok))
        provider, model = t.groups[g]
        users = users_col[(ok or failed)[0]]
        requests = len(ok) + len(failed)
        points.append(
            SweepPoint(
                provider=provider,
                model=model,
                users=int(users) if users >= 0 else 0,
                requests=requests,
                requests_per_s=requests / span if span > 0 else None,
                output_tokens_per_s=tokens / span if span > 0 else None,
                ttft_p50=percentile(ttft, 50.0) if ttft else None,
            )
        )
    points.sort(key=lambda p: (p.provider, p.model, p.users))
    return points


def _sweep_from_summary(rows: list[Any]) -> list[SweepPoint]:
    points = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        raw_ttft = row.get("ttft_ms")
        ttft = raw_ttft if isinstance(raw_ttft, dict) else {}
        points.append(
            SweepPoint(
                provider=str(row.get("provider", "?")),
                model=str(row.get("model", "?")),
                users=int(row.get("users") or 0),
                requests=int(ttft.get("n") or 0),
                requests_per_s=row.get("requests_per_s"),
                output_tokens_per_s=row.get("output_tokens_per_s"),
                ttft_p50=ttft.get("p50"),
            )
        )
    return sorted(points, key=lambda p: (p.provider, p.model, p.users))


def _groups_from_summary(res: Results) -> tuple[list[GroupStats], list[SweepPoint]]:
    summary = res.summary or {}
    groups = []
    for row in summary.get("groups") or []:
        if not isinstance(row, dict):
            continue
        stats = GroupStats(
            provider=str(row.get("provider", "?")),
            model=str(row.get("model", "?")),
            family=str(row.get("model", "?")),
            data_source=res.data_source,
            run_id=res.run_id,
        )
        stats.requests = int(row.get("n") or 0)
        errors = row.get("errors") or {}
        stats.errors = {str(k): int(v) for k, v in errors.items()}
        stats.ok = max(0, stats.requests - sum(stats.errors.values()))
        stats.success_rate = row.get("success_rate")
        stats.ttft = Dist.from_pcts(row.get("ttft_ms"))
        stats.itl = Dist.from_pcts(row.get("itl_ms"))
        stats.e2e = Dist.from_pcts(row.get("e2e_ms"))
        stats.requests_per_s = row.get("requests_per_s")
        stats.output_tokens_per_s = row.get("output_tokens_per_s")
        stats.goodput_rps = row.get("goodput_rps")
        stats.window_s = summary.get("duration_s")
        _price(stats)
        if row.get("cost_per_1k_requests") is not None and stats.cost_per_1k is None:
            stats.cost_per_1k = row["cost_per_1k_requests"]
            stats.cost_per_request = stats.cost_per_1k / 1000
        groups.append(stats)
    return groups, _sweep_from_summary(summary.get("sweep") or [])


def _warn_duplicates(report: Report) -> None:
    seen = Counter((g.provider, g.model) for g in report.groups)
    for (provider, model), count in seen.items():
        if count > 1:
            report.warnings.append(
                f"{provider} · {model} appears in {count} load folders; each is shown "
                "separately (see the run column)."
            )


# ----------------------------------------------------------------------------- conformance


def _conformance(folders: list[Results]) -> Conformance | None:
    if not folders:
        return None
    conf = Conformance()
    sources = set()
    deviations: dict[tuple[str, str], str] = {}
    evidence: dict[tuple[str, str], str] = {}
    for res in folders:
        contract = res.contract or {}
        sources.add(str(contract.get("data_source") or res.data_source))
        for name, info in (contract.get("checks") or {}).items():
            if isinstance(info, dict):
                conf.descriptions[str(name)] = str(info.get("description") or "")
        matrix = contract.get("matrix") or {}
        for provider, row in matrix.items():
            if not isinstance(row, dict):
                continue
            target = conf.matrix.setdefault(str(provider), {})
            for check, status in row.items():
                status = str(status)
                old = target.get(str(check))
                if old is None or _rank(status) < _rank(old):
                    target[str(check)] = status
        for result in contract.get("results") or []:
            if not isinstance(result, dict):
                continue
            provider = str(result.get("provider") or "?")
            outcome = str(result.get("outcome") or "?")
            counts = conf.outcomes.setdefault(provider, {})
            counts[outcome] = counts.get(outcome, 0) + 1
            for dev in result.get("deviations") or []:
                if isinstance(dev, dict) and dev.get("check"):
                    deviations.setdefault(
                        (provider, str(dev["check"])), str(dev.get("reason") or "")
                    )
            if outcome == "deviation":
                for finding in result.get("findings") or []:
                    if isinstance(finding, dict) and finding.get("message"):
                        key = (provider, str(finding.get("check") or ""))
                        evidence.setdefault(key, str(finding["message"])[:400])
            if outcome in ("failed", "error"):
                findings = result.get("findings") or [{}]
                for finding in findings[:3]:
                    if not isinstance(finding, dict):
                        continue
                    conf.failures.append(
                        (
                            provider,
                            str(result.get("model") or ""),
                            str(result.get("case") or ""),
                            str(finding.get("check") or ""),
                            str(finding.get("message") or outcome)[:400],
                        )
                    )
            excerpt = result.get("output_excerpt")
            if excerpt and sum(1 for e in conf.excerpts if e[0] == provider) < 2:
                conf.excerpts.append((provider, str(result.get("model") or ""), str(excerpt)[:500]))
    conf.data_source = " + ".join(sorted(s for s in sources if s))
    conf.providers = sorted(conf.matrix) or sorted(conf.outcomes)
    checks: set[str] = set()
    for row in conf.matrix.values():
        checks.update(row)
    conf.checks = sorted(checks)
    for provider, row in conf.matrix.items():
        totals = dict.fromkeys(STATUS_ORDER, 0)
        for check, status in row.items():
            totals[status] = totals.get(status, 0) + 1
            if status == "deviation" and (provider, check) not in deviations:
                deviations[(provider, check)] = _profile_deviation(provider, check)
        conf.totals[provider] = totals
    conf.deviations = sorted(
        (p, c, why, evidence.get((p, c), "")) for (p, c), why in deviations.items()
    )
    return conf


def _rank(status: str) -> int:
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER)


def _profile_deviation(provider: str, check: str) -> str:
    from chatprobe.profiles import load_profile

    try:
        return load_profile(provider).deviations.get(check, "")
    except ChatprobeError:
        return ""


# ----------------------------------------------------------------------------- comparisons


def _verdict(ratio: float | None, low: float | None, high: float | None, a: str, b: str) -> str:
    if ratio is None or low is None or high is None:
        return "not enough data"
    if high < 1:
        return f"{a} is faster: its median TTFT is {1 / ratio:.2f}x lower (CI excludes 1)"
    if low > 1:
        return f"{b} is faster: its median TTFT is {ratio:.2f}x lower (CI excludes 1)"
    return "no clear difference (the CI includes 1)"


def _comparisons(groups: list[GroupStats]) -> list[Comparison]:
    usable = [g for g in groups if g.ttft.n >= 2]
    out: list[Comparison] = []
    # Families at one provider: e.g. Gemini 2.0 Flash vs 1.5 Flash (the seeds' claim).
    by_provider: dict[str, dict[str, GroupStats]] = {}
    for g in usable:
        best = by_provider.setdefault(g.provider, {}).get(g.family)
        if best is None or g.ttft.n > best.ttft.n:
            by_provider[g.provider][g.family] = g
    for provider, families in sorted(by_provider.items()):
        names = sorted(families, reverse=True)  # newer versions sort later: put them first
        for i, fa in enumerate(names):
            for fb in names[i + 1 :]:
                out.append(_compare("family", provider, families[fa], families[fb]))
    # One family across providers: each against the fastest.
    by_family: dict[str, list[GroupStats]] = {}
    for g in usable:
        by_family.setdefault(g.family, []).append(g)
    for family, members in sorted(by_family.items()):
        if len({m.provider for m in members}) < 2:
            continue
        members = sorted(members, key=lambda m: m.ttft.p50 or math.inf)
        base = members[0]
        for other in members[1:]:
            if other.provider != base.provider:
                out.append(_compare("provider", family, other, base))
    return out


def _compare(kind: str, scope: str, a: GroupStats, b: GroupStats) -> Comparison:
    va, vb = a.ttft_sorted, b.ttft_sorted
    if va and vb:
        ratio, low, high = _ratio_ci(
            va, vb, (a.ttft.p50_low, a.ttft.p50_high), (b.ttft.p50_low, b.ttft.p50_high), seed=11
        )
    elif a.ttft.p50 and b.ttft.p50:  # summary-only folders: no CI
        ratio, low, high = a.ttft.p50 / b.ttft.p50, math.nan, math.nan
    else:
        ratio = low = high = math.nan
    name_a = a.model if kind == "family" else a.label
    name_b = b.model if kind == "family" else b.label
    r, lo, hi = _num(ratio), _num(low), _num(high)
    return Comparison(
        kind=kind,
        scope=scope,
        a=name_a,
        b=name_b,
        a_p50=a.ttft.p50,
        b_p50=b.ttft.p50,
        n_a=a.ttft.n,
        n_b=b.ttft.n,
        ratio=r,
        low=lo,
        high=hi,
        verdict=_verdict(r, lo, hi, name_a, name_b),
    )


# ----------------------------------------------------------------------------- summary


def _usd(x: float | None) -> str:
    if x is None:
        return "n/a"
    return "$0" if x == 0 else f"${x:,.4f}" if x >= 0.01 else f"${x:.6f}"


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.1f} ms"


def _summary(report: Report) -> Summary:
    s = Summary()
    groups = [g for g in report.groups if g.ttft.p50 is not None]
    if report.emulated:
        s.lines.append(
            "These numbers come from the built-in emulator: they show the harness working "
            "end to end, not how the real providers perform."
        )
    if groups:
        ranked = sorted(groups, key=lambda g: g.ttft.p50 or math.inf)
        best = ranked[0]
        s.fastest = {
            "provider": best.provider,
            "model": best.model,
            "ttft_p50_ms": best.ttft.p50,
            "ci": [best.ttft.p50_low, best.ttft.p50_high],
        }
        line = (
            f"Fastest first token: {best.label}, median TTFT {_ms(best.ttft.p50)} "
            f"(95% CI {_ms(best.ttft.p50_low)} to {_ms(best.ttft.p50_high)})"
        )
        if len(ranked) > 1 and best.ttft.p50:
            nxt = ranked[1]
            line += (
                f", {(nxt.ttft.p50 or 0) / best.ttft.p50:.2f}x quicker than the next, "
                f"{nxt.label} ({_ms(nxt.ttft.p50)})"
            )
        s.lines.append(line + ".")
        streaming = sorted((g for g in groups if g.itl.p50), key=lambda g: g.itl.p50 or math.inf)
        if streaming:
            g = streaming[0]
            s.lines.append(
                f"Fastest streaming: {g.label}, median inter-token latency {_ms(g.itl.p50)} "
                f"(about {1000 / g.itl.p50:,.0f} tokens/s per stream)."  # type: ignore[operator]
            )
    priced = [g for g in report.groups if g.cost_per_1k is not None]
    if priced:
        paid = [g for g in priced if (g.cost_per_1k or 0) > 0]
        cheapest = min(priced, key=lambda g: g.cost_per_1k or 0)
        s.cheapest = {
            "provider": cheapest.provider,
            "model": cheapest.model,
            "cost_per_1k_usd": cheapest.cost_per_1k,
            "price_source": cheapest.price_source,
        }
        line = (
            f"Cheapest: {cheapest.label} at {_usd(cheapest.cost_per_1k)} per 1,000 requests "
            f"({cheapest.price_source} price)"
        )
        if cheapest.cost_per_1k == 0 and cheapest.free:
            line += ", a free variant with a tight rate limit"
        if paid and cheapest not in paid:
            cheap_paid = min(paid, key=lambda g: g.cost_per_1k or 0)
            line += (
                f"; cheapest paid: {cheap_paid.label} at {_usd(cheap_paid.cost_per_1k)} "
                f"({cheap_paid.price_source})"
            )
        s.lines.append(line + ".")
    if report.groups:
        avail = max(report.groups, key=lambda g: (g.success_rate or 0, g.requests))
        s.most_available = {
            "provider": avail.provider,
            "model": avail.model,
            "success_rate": avail.success_rate,
            "requests": avail.requests,
        }
        worst = min(report.groups, key=lambda g: g.success_rate or 0)
        if len(report.groups) > 1 and worst.success_rate == avail.success_rate:
            total = sum(g.requests for g in report.groups)
            s.lines.append(
                f"Availability: every provider x model answered "
                f"{100 * (avail.success_rate or 0):.2f}% of its requests ({total:,} in all)."
            )
        else:
            s.lines.append(
                f"Most available: {avail.label}, {100 * (avail.success_rate or 0):.2f}% of "
                f"{avail.requests:,} requests succeeded (lowest: {worst.label}, "
                f"{100 * (worst.success_rate or 0):.2f}%)."
            )
    conf = report.conformance
    if conf and conf.totals:

        def key(p: str) -> tuple[int, int, int]:
            t = conf.totals[p]
            return (t.get("fail", 0), t.get("deviation", 0), -t.get("pass", 0))

        best_p = min(conf.totals, key=key)
        t = conf.totals[best_p]
        checked = sum(t.values()) - t.get("skip", 0)
        s.most_conformant = {"provider": best_p, **t}
        s.lines.append(
            f"Most conformant: {best_p}, {t.get('pass', 0)} of {checked} checks pass, "
            f"{t.get('deviation', 0)} documented deviation(s), {t.get('fail', 0)} failure(s)."
        )
    for comp in report.comparisons:
        if comp.kind == "family" and comp.ratio is not None:
            ci = (
                f" (95% CI {comp.low:.2f} to {comp.high:.2f})"
                if comp.low is not None and comp.high is not None
                else ""
            )
            s.lines.append(
                f"At {comp.scope}, {comp.a} / {comp.b} median TTFT ratio is "
                f"{comp.ratio:.2f}{ci}: {comp.verdict}."
            )
    if not s.lines or (report.emulated and len(s.lines) == 1):
        s.lines.append("No latency or conformance data in the given results.")
    return s
