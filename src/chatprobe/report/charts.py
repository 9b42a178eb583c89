"""Chart geometry for hand-made inline SVG: scales, ticks, polylines, legend.

This module only computes numbers and labels; the template draws them (escaping every label),
so no provider text ever reaches the SVG unescaped and no JavaScript is needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["PALETTE", "LineChart", "Series", "line_chart"]

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#7a7a7a",
    "#F0E442",
)
DASHES = ("", "6 3", "2 3", "8 3 2 3")


@dataclass
class Series:
    label: str
    color: str
    dash: str
    points: str  # "x,y x,y ..." in SVG coordinates
    markers: list[tuple[float, float]] = field(default_factory=list)
    band: str = ""  # a confidence band: polygon "x,y ..." (upper edge, then lower reversed)


@dataclass
class LineChart:
    id: str
    title: str
    x_label: str
    y_label: str
    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    series: list[Series]
    legend: list[tuple[float, float, Series]]
    badge: str = ""
    caption: str = ""
    bands: list[tuple[float, float, str]] = field(default_factory=list)  # x0, x1, label
    hlines: list[tuple[float, str]] = field(default_factory=list)  # y, label (a limit)


def _nice_step(span: float, target: int) -> float:
    raw = span / max(1, target)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:g}" if float(v).is_integer() else f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.1f}".rstrip("0").rstrip(".")
    return f"{v:.2g}"


def _linear_ticks(lo: float, hi: float, target: int = 6) -> tuple[float, float, list[float]]:
    if hi <= lo:
        hi = lo + 1.0
    step = _nice_step(hi - lo, target)
    start = math.floor(lo / step) * step
    end = math.ceil(hi / step) * step
    ticks = []
    v = start
    while v <= end + step * 1e-9:
        ticks.append(round(v, 10))
        v += step
    return start, end, ticks


def _log_ticks(
    lo: float, hi: float, at: Sequence[float] | None = None
) -> tuple[float, float, list[float]]:
    lo = max(lo, 1e-3)
    hi = max(hi, lo * 1.01)
    if at:
        ticks = sorted({float(t) for t in at if t > 0})
        return min(lo, ticks[0]) / 1.15, max(hi, ticks[-1]) * 1.15, ticks
    e0, e1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    steps = (1, 2, 5) if hi / lo > 30 else (1, 1.5, 2, 3, 5, 7)
    candidates = [m * 10**e for e in range(e0, e1 + 1) for m in steps]
    below = [t for t in candidates if t <= lo]
    above = [t for t in candidates if t >= hi]
    x0 = below[-1] if below else lo
    x1 = above[0] if above else hi
    return x0, x1, [t for t in candidates if x0 <= t <= x1]


def line_chart(
    *,
    id: str,
    title: str,
    x_label: str,
    y_label: str,
    data: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    log_x: bool = False,
    y_min: float | None = None,
    markers: bool = False,
    badge: str = "",
    caption: str = "",
    width: int = 860,
    plot_height: int = 300,
    bands: Sequence[tuple[float, float, str]] = (),
    colors: dict[str, str] | None = None,
    x_ticks_at: Sequence[float] | None = None,
    ci: Mapping[str, Sequence[tuple[float, float, float]]] | None = None,
    hlines: Sequence[tuple[float, str]] = (),
    dashes: Mapping[str, str] | None = None,
) -> LineChart:
    """Lay out one chart: ``data`` is ``[(series label, [(x, y), ...]), ...]``; ``ci`` maps
    a series label to ``[(x, low, high), ...]``, drawn as a shaded band around it; ``hlines``
    are horizontal reference lines (an SLO limit) at y with a label; ``bands`` shade x
    ranges (a warm-up, an SLO edge)."""
    left, right, top = 72, 24, 40 if badge else 20
    legend_cols = 2
    legend_rows = math.ceil(len(data) / legend_cols)
    legend_h = 22 * legend_rows + 10
    bottom_axis = 52
    height = top + plot_height + bottom_axis + legend_h
    xs = [x for _, pts in data for x, _ in pts if x == x]
    ys = [y for _, pts in data for _, y in pts if y == y]
    ys += [v for pts in (ci or {}).values() for _, lo, hi in pts for v in (lo, hi) if v == v]
    ys += [y for y, _ in hlines]
    if not xs or not ys:
        xs, ys = [0.0, 1.0], [0.0, 1.0]
    if log_x:
        positive = [x for x in xs if x > 0] or [1.0]
        x0, x1, xt = _log_ticks(min(positive), max(positive), x_ticks_at)
    else:
        x0, x1, xt = _linear_ticks(min(xs), max(xs))
    y0, y1, yt = _linear_ticks(min(ys) if y_min is None else y_min, max(ys))
    plot_w = width - left - right

    def sx(x: float) -> float:
        if log_x:
            x = max(x, x0)
            frac = (math.log10(x) - math.log10(x0)) / ((math.log10(x1) - math.log10(x0)) or 1)
        else:
            frac = (x - x0) / ((x1 - x0) or 1)
        return round(left + frac * plot_w, 1)

    def sy(y: float) -> float:
        frac = (y - y0) / ((y1 - y0) or 1)
        return round(top + plot_height - frac * plot_height, 1)

    series = []
    for k, (label, pts) in enumerate(data):
        clean = [(x, y) for x, y in pts if x == x and y == y and (not log_x or x > 0)]
        coords = [(sx(x), sy(y)) for x, y in clean]
        spans = [
            (x, lo, hi)
            for x, lo, hi in (ci or {}).get(label, ())
            if x == x and lo == lo and hi == hi and (not log_x or x > 0)
        ]
        band = ""
        if len(spans) >= 2:
            upper = [f"{sx(x)},{sy(hi)}" for x, _, hi in spans]
            lower = [f"{sx(x)},{sy(lo)}" for x, lo, _ in reversed(spans)]
            band = " ".join(upper + lower)
        series.append(
            Series(
                label=label,
                color=(colors or {}).get(label) or PALETTE[k % len(PALETTE)],
                dash=(dashes or {}).get(label, DASHES[(k // len(PALETTE)) % len(DASHES)]),
                points=" ".join(f"{x},{y}" for x, y in coords),
                markers=coords if markers else [],
                band=band,
            )
        )
    legend: list[tuple[float, float, Series]] = []
    col_w = plot_w / legend_cols
    for k, s in enumerate(series):
        row, col = divmod(k, legend_cols)
        legend.append((left + col * col_w, top + plot_height + bottom_axis + 14 + row * 22, s))
    return LineChart(
        id=id,
        title=title,
        x_label=x_label,
        y_label=y_label,
        width=width,
        height=height,
        left=left,
        top=top,
        right=width - right,
        bottom=top + plot_height,
        x_ticks=[(sx(t), _fmt(t)) for t in xt],
        y_ticks=[(sy(t), _fmt(t)) for t in yt],
        series=series,
        legend=legend,
        badge=badge,
        caption=caption,
        bands=[(sx(a), sx(b), text) for a, b, text in bands],
        hlines=[(sy(y), text) for y, text in hlines],
    )
