"""What a capacity step is judged against: percentile limits and an error-rate limit.

The limits are the project's one SLO vocabulary (:data:`chatprobe.metrics.SLO_METRICS`,
``slo:`` in a scenario or ``chatprobe.yaml``); the percentile comes from the scenario's
``slo.attainment`` (0.95 -> p95), the error-rate limit from ``--max-error-rate``, the
project's ``thresholds.max_error_rate`` or :data:`chatprobe.metrics.DEFAULT_MAX_ERROR_RATE`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chatprobe.errors import ConfigError
from chatprobe.metrics import (
    DEFAULT_MAX_ERROR_RATE,
    DEFAULT_SLO,
    DEFAULT_SLO_ATTAINMENT,
    SLO_METRICS,
)

__all__ = ["CapacitySlo", "metric_label", "resolve_slo"]

_LABELS = {"ttfb_ms": "TTFB", "ttft_ms": "TTFT", "itl_ms": "ITL", "e2e_ms": "E2E"}


def metric_label(metric: str) -> str:
    """``ttft_ms`` -> ``TTFT``."""
    return _LABELS.get(metric, metric)


@dataclass(frozen=True, slots=True)
class CapacitySlo:
    """Each limit holds at ``percentile`` (``p95 TTFT <= 500 ms``) and the error rate stays
    at or under ``max_error_rate``; judged with ``confidence`` once ``min_samples`` are in."""

    limits: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SLO))
    percentile: float = 100 * DEFAULT_SLO_ATTAINMENT
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    confidence: float = 0.95
    min_samples: int = 100
    source: str = "default"  # flags | scenario | default

    def __post_init__(self) -> None:
        if not self.limits:
            raise ConfigError("a capacity search needs at least one latency limit", field="slo")
        for name, limit in self.limits.items():
            if name not in SLO_METRICS:
                raise ConfigError(
                    f"unknown SLO metric {name!r} (known: {', '.join(SLO_METRICS)})", field="slo"
                )
            if not limit > 0:
                raise ConfigError(f"{name} must be more than 0 ms, got {limit:g}", field="slo")
        if not 0 < self.percentile < 100:
            raise ConfigError(
                f"the percentile must be between 0 and 100, got {self.percentile:g}",
                field="percentile",
            )
        if not 0 <= self.max_error_rate <= 1:
            raise ConfigError("max_error_rate must be between 0 and 1", field="max_error_rate")
        if not 0.5 <= self.confidence < 1:
            raise ConfigError("confidence must be in [0.5, 1)", field="confidence")
        if self.min_samples < 1:
            raise ConfigError("min_samples must be at least 1", field="min_samples")

    def describe(self) -> str:
        """``p95 TTFT <= 500 ms, p95 ITL <= 50 ms, errors <= 1%``."""
        parts = [
            f"p{self.percentile:g} {metric_label(m)} <= {v:g} ms" for m, v in self.limits.items()
        ]
        parts.append(f"errors <= {100 * self.max_error_rate:g}%")
        return ", ".join(parts)


def resolve_slo(
    *,
    flags: Mapping[str, float] | None,
    scenario_slo: Mapping[str, float],
    scenario_attainment: float | None,
    percentile: float | None,
    max_error_rate: float,
    confidence: float = 0.95,
    min_samples: int = 100,
) -> CapacitySlo:
    """Flags first (``--slo``, ``--percentile``), then the scenario's ``slo`` (which falls
    back to the project's), then :data:`chatprobe.metrics.DEFAULT_SLO` at p95."""
    if flags:
        limits, source = dict(flags), "flags"
    elif scenario_slo:
        limits, source = dict(scenario_slo), "scenario"
    else:
        limits, source = dict(DEFAULT_SLO), "default"
    if percentile is None:
        share = DEFAULT_SLO_ATTAINMENT if scenario_attainment is None else scenario_attainment
        percentile = 100 * share
    return CapacitySlo(
        limits=limits,
        percentile=percentile,
        max_error_rate=max_error_rate,
        confidence=confidence,
        min_samples=min_samples,
        source=source,
    )
