"""How the report writes numbers: one formatter per kind of figure, shared by the tables
(:mod:`chatprobe.report.views`) and the sentences (:mod:`chatprobe.report.headline`), so a
figure reads the same everywhere and two figures that print alike are reported as a tie."""

from __future__ import annotations

from chatprobe.metrics import Dist

__all__ = ["DASH", "NA", "ci", "count", "ms", "pct", "rate", "ratio", "tokens", "usd"]

NA = "\u2013"  # en dash: a missing value
DASH = "\u2013"  # en dash: a range, as in 48.7-50.4


def ms(x: float | None) -> str:
    if x is None:
        return NA
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.1f}"


def ci(d: Dist) -> str:
    if d.p50_low is None or d.p50_high is None:
        return NA
    return f"{ms(d.p50_low)}{DASH}{ms(d.p50_high)}"


def pct(x: float | None, digits: int = 2) -> str:
    return NA if x is None else f"{100 * x:.{digits}f}%"


def rate(x: float | None) -> str:
    if x is None:
        return NA
    return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"


def ratio(x: float | None) -> str:
    """A delivered / requested ratio: 1.00 is exact."""
    return NA if x is None else f"{x:.2f}"


def tokens(x: float | None) -> str:
    return NA if x is None else f"{x:,.1f}"


def usd(x: float | None) -> str:
    if x is None:
        return NA
    if x == 0:
        return "$0"
    if x >= 1:
        return f"${x:,.2f}"
    return f"${x:.6f}".rstrip("0")


def count(x: int | None) -> str:
    return NA if x is None else f"{x:,}"
