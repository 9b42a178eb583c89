"""A benchmark's outcome: a table of figures, goals met or missed, notes, and raw data."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Goal", "Section", "fmt", "median"]


@dataclass(slots=True)
class Goal:
    name: str
    target: str
    measured: str
    met: bool | None  # None: not measured (skipped)
    why: str = ""


@dataclass(slots=True)
class Section:
    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "config": self.config,
            "columns": self.columns,
            "rows": self.rows,
            "goals": [
                {
                    "name": g.name,
                    "target": g.target,
                    "measured": g.measured,
                    "met": g.met,
                    "why": g.why,
                }
                for g in self.goals
            ],
            "notes": self.notes,
            "seconds": round(self.seconds, 1),
            "raw": self.raw,
        }


def median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(vals) if vals else None


def fmt(value: float | int | None, digits: int = 1, suffix: str = "") -> str:
    """A figure for a table cell; '-' when absent."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int):
        return f"{value}{suffix}"
    return f"{value:.{digits}f}{suffix}"
