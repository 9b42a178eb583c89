"""The report's summary sentences, written from the model's figures (the model holds none).

Used by the HTML and Markdown views alike. Rules:

* Rankings ("fastest", "cheapest", "most available", "most conformant") need at least two
  contenders; a report of one target states its figures instead.
* Two contenders whose figures print the same (:mod:`chatprobe.report.formatting`) tie, and
  the sentence says so; a lead whose 95% CI overlaps the runner-up's is called unclear.
* A model-family sentence appears only for a real family pair (two versions of one family,
  :func:`chatprobe.report.model.family_pair`), never above unrelated models.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from chatprobe.metrics import ContractFigures
from chatprobe.report.formatting import ms, pct, usd
from chatprobe.report.model import Comparison, GroupStats, Report

__all__ = ["contract_tally", "headline", "verdict_text"]


def _cases(n: int) -> str:
    return f"{n:,} case" + ("" if n == 1 else "s")


def _by_check(counts: dict[str, int]) -> str:
    return ", ".join(f"{check} {n:,}" for check, n in counts.items())


def contract_tally(figures: ContractFigures) -> list[str]:
    """A contract run in sentences, failures first (the terminal's and the report's)::

    2 cases fail: strict_error_envelope 2.
    527 cases conform to their provider's documented contract, 521 of them with
    documented deviations from OpenAI: status_openai 273, strict_response_schema 250.
    14 cases skipped.
    """
    o = figures.outcomes
    lines = []
    failed = o.get("failed", 0) + o.get("error", 0)
    if failed:
        lines.append(
            f"{_cases(failed)} {'fails' if failed == 1 else 'fail'}: "
            f"{_by_check(figures.failing_checks)}."
        )
    conform = "conforms" if figures.conforming == 1 else "conform"
    line = (
        f"{_cases(figures.conforming)} {conform} to their provider's documented contract"
        if figures.conforming != 1
        else f"1 case {conform} to its provider's documented contract"
    )
    deviating = o.get("deviation", 0)
    if deviating:
        line += (
            f", {deviating:,} of them with documented deviations from OpenAI: "
            f"{_by_check(figures.deviating_checks)}"
        )
    lines.append(line + ".")
    rest = []
    if o.get("xfailed"):
        rest.append(f"{_cases(o['xfailed'])} expected to fail (xfail)")
    if o.get("skipped"):
        rest.append(f"{_cases(o['skipped'])} skipped")
    if rest:
        lines.append("; ".join(rest) + ".")
    return lines


def verdict_text(c: Comparison) -> str:
    """What a TTFT ratio with its CI says, in words."""
    if c.outcome == "a_faster" and c.ratio:
        return f"{c.a} is faster: its median TTFT is {1 / c.ratio:.2f}x lower (CI excludes 1)"
    if c.outcome == "b_faster" and c.ratio:
        return f"{c.b} is faster: its median TTFT is {c.ratio:.2f}x lower (CI excludes 1)"
    if c.outcome == "unclear":
        return "no clear difference (the CI includes 1)"
    return "not enough data"


def _names(groups: list[GroupStats]) -> str:
    labels = [g.label for g in groups]
    return ", ".join(labels[:-1]) + f" and {labels[-1]}" if len(labels) > 1 else labels[0]


def _leaders(
    groups: list[GroupStats], value: Callable[[GroupStats], float | None], shown: Callable[..., str]
) -> tuple[list[GroupStats], list[GroupStats]]:
    """``groups`` with a value, best (lowest) first, and the ones that tie with the best."""
    valued = [(v, g) for g in groups if (v := value(g)) is not None]
    ranked = [g for _v, g in sorted(valued, key=lambda pair: pair[0])]
    if not ranked:
        return [], []
    best = shown(value(ranked[0]))
    return ranked, [g for g in ranked if shown(value(g)) == best]


def _overlap(a: GroupStats, b: GroupStats) -> bool:
    lo_a, hi_a = a.ttft_ms.p50_low, a.ttft_ms.p50_high
    lo_b, hi_b = b.ttft_ms.p50_low, b.ttft_ms.p50_high
    if None in (lo_a, hi_a, lo_b, hi_b):
        return False
    return bool(hi_a >= lo_b and hi_b >= lo_a)  # type: ignore[operator]


def _one_target(g: GroupStats) -> str:
    parts = [
        f"median TTFT {ms(g.ttft_ms.p50)} ms (95% CI {ms(g.ttft_ms.p50_low)} to "
        f"{ms(g.ttft_ms.p50_high)} ms)"
    ]
    if g.itl_ms.p50 is not None:
        parts.append(f"median ITL {ms(g.itl_ms.p50)} ms")
    parts.append(f"availability {pct(g.availability)} of {g.requests:,} requests")
    if g.cost.per_1k_requests is not None:
        parts.append(
            f"{usd(g.cost.per_1k_requests)} per 1,000 requests ({g.cost.price_source} price)"
        )
    return f"{g.label}: " + ", ".join(parts) + "."


def _latency(groups: list[GroupStats]) -> list[str]:
    lines = []
    ranked, tied = _leaders(groups, lambda g: g.ttft_ms.p50, ms)
    if len(tied) > 1:
        lines.append(
            f"First token: {_names(tied)} tie at a median TTFT of {ms(tied[0].ttft_ms.p50)} ms."
        )
    elif len(ranked) > 1:
        best, nxt = ranked[0], ranked[1]
        line = (
            f"Fastest first token: {best.label}, median TTFT {ms(best.ttft_ms.p50)} ms "
            f"(95% CI {ms(best.ttft_ms.p50_low)} to {ms(best.ttft_ms.p50_high)} ms)"
        )
        if best.ttft_ms.p50:
            line += (
                f", {(nxt.ttft_ms.p50 or 0) / best.ttft_ms.p50:.2f}x quicker than the next, "
                f"{nxt.label} ({ms(nxt.ttft_ms.p50)} ms)"
            )
        if _overlap(best, nxt):
            line += "; their 95% CIs overlap, so the lead is not clear"
        lines.append(line + ".")
    ranked, tied = _leaders(groups, lambda g: g.itl_ms.p50 or None, ms)
    if len(tied) > 1:
        lines.append(
            f"Streaming: {_names(tied)} tie at a median inter-token latency of "
            f"{ms(tied[0].itl_ms.p50)} ms."
        )
    elif len(ranked) > 1:
        g = ranked[0]
        lines.append(
            f"Fastest streaming: {g.label}, median inter-token latency {ms(g.itl_ms.p50)} ms "
            f"(about {1000 / (g.itl_ms.p50 or math.inf):,.0f} tokens/s per stream)."
        )
    return lines


def _cost(groups: list[GroupStats]) -> list[str]:
    priced = [g for g in groups if g.cost.per_1k_requests is not None]
    if len(priced) < 2:
        return []
    ranked, tied = _leaders(priced, lambda g: g.cost.per_1k_requests, usd)
    cheapest = tied[0]
    if len(tied) > 1:
        line = (
            f"Cost: {_names(tied)} tie at {usd(cheapest.cost.per_1k_requests)} per 1,000 requests"
        )
    else:
        line = (
            f"Cheapest: {cheapest.label} at {usd(cheapest.cost.per_1k_requests)} per 1,000 "
            f"requests ({cheapest.cost.price_source} price)"
        )
        if cheapest.cost.per_1k_requests == 0 and cheapest.free:
            line += ", a free variant with a tight rate limit"
    paid = [g for g in ranked if (g.cost.per_1k_requests or 0) > 0]
    if paid and (cheapest.cost.per_1k_requests or 0) == 0:
        cheap_paid = paid[0]
        line += (
            f"; cheapest paid: {cheap_paid.label} at {usd(cheap_paid.cost.per_1k_requests)} "
            f"({cheap_paid.cost.price_source})"
        )
    return [line + "."]


def _availability(groups: list[GroupStats]) -> list[str]:
    if len(groups) < 2:
        return []
    ranked, tied = _leaders(groups, lambda g: -(g.availability or 0.0), lambda v: pct(-v))
    total = sum(g.requests for g in groups)
    if len(tied) == len(groups):
        return [
            f"Availability: every provider x model answered {pct(tied[0].availability)} of its "
            f"requests ({total:,} in all; rate-limited requests excluded)."
        ]
    if len(tied) > 1:
        return [
            f"Availability: {_names(tied)} tie at {pct(tied[0].availability)} "
            f"(lowest: {ranked[-1].label}, {pct(ranked[-1].availability)}; rate-limited "
            "requests excluded)."
        ]
    best, worst = ranked[0], ranked[-1]
    return [
        f"Most available: {best.label}, {pct(best.availability)} of {best.requests:,} requests "
        f"succeeded (lowest: {worst.label}, {pct(worst.availability)}; rate-limited requests "
        "excluded)."
    ]


def _conformance(report: Report) -> list[str]:
    conf = report.conformance
    if not conf or not conf.totals:
        return []

    def describe(provider: str) -> str:
        t = conf.totals[provider]
        checked = sum(t.values()) - t.get("skip", 0)
        return (
            f"{t.get('pass', 0)} of {checked} checks pass, {t.get('deviation', 0)} documented "
            f"deviation(s), {t.get('fail', 0)} failure(s)"
        )

    if len(conf.totals) == 1:
        (provider,) = conf.totals
        return [f"Conformance of {report.name(provider)}: {describe(provider)}."]

    def key(p: str) -> tuple[int, int, int]:
        t = conf.totals[p]
        return (t.get("fail", 0), t.get("deviation", 0), -t.get("pass", 0))

    ranked = sorted(conf.totals, key=key)
    tied = [p for p in ranked if key(p) == key(ranked[0])]
    if len(tied) > 1:
        names = ", ".join(report.name(p) for p in tied)
        return [f"Conformance: {names} tie: {describe(tied[0])} each."]
    return [f"Most conformant: {report.name(ranked[0])}, {describe(ranked[0])}."]


def _families(report: Report) -> list[str]:
    lines = []
    for comp in report.comparisons:
        if comp.kind != "family" or comp.ratio is None:
            continue
        ci = (
            f" (95% CI {comp.low:.2f} to {comp.high:.2f})"
            if comp.low is not None and comp.high is not None
            else ""
        )
        lines.append(
            f"At {comp.scope}, {comp.a} / {comp.b} median TTFT ratio is "
            f"{comp.ratio:.2f}{ci}: {verdict_text(comp)}."
        )
    return lines


def headline(report: Report) -> list[str]:
    """The summary sentences, in reading order."""
    lines = []
    if report.emulated:
        lines.append(
            "These numbers come from the built-in emulator: they show the harness working "
            "end to end, not how the real providers perform."
        )
    timed = [g for g in report.groups if g.ttft_ms.p50 is not None]
    if len(timed) == 1 and len(report.groups) == 1:
        lines.append(_one_target(timed[0]))
    else:
        lines += _latency(timed)
        lines += _cost(report.groups)
        lines += _availability(report.groups)
    lines += _conformance(report)
    lines += _families(report)
    lines += [f"Capacity: {t.label}: {t.statement}." for t in report.capacity]
    if not lines or (report.emulated and len(lines) == 1):
        lines.append("No latency or conformance data in the given results.")
    return lines
