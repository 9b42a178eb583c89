"""Loading one results folder for a report: meta, plan, profile snapshot, samples, summary,
contract, capacity (see ``docs/results-format.md``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatprobe.errors import ConfigError
from chatprobe.results.folder import (
    CAPACITY,
    CONTRACT,
    META,
    PLAN,
    SAMPLES,
    SCHEMA_VERSION,
    SUMMARY,
    read_json,
    read_meta,
)
from chatprobe.results.samples import SampleTable, load_samples
from chatprobe.results.snapshot import ProfileSnapshot

__all__ = ["Results", "load_results"]


@dataclass
class Results:
    """One loaded results folder."""

    path: Path
    meta: dict[str, Any]
    summary: dict[str, Any] | None = None
    contract: dict[str, Any] | None = None
    capacity: dict[str, Any] | None = None  # capacity.json (chatprobe capacity)
    plan: dict[str, Any] | None = None  # plan.json as written (load runs)
    profiles: ProfileSnapshot | None = None  # profiles.json; None in folders before it existed
    samples: SampleTable | None = None
    skipped_lines: int = 0  # unparseable lines in samples.jsonl (skipped, counted)
    truncated_tail: bool = False  # the last line was cut off (an interrupted write)
    bad_line_numbers: list[int] = field(default_factory=list)  # the first few, 1-based

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id") or self.path.name)

    @property
    def kind(self) -> str:
        return str(self.meta.get("kind") or "")

    @property
    def data_source(self) -> str:
        return str(self.meta.get("data_source") or (self.contract or {}).get("data_source") or "")


def _read_optional(path: Path, what: str) -> dict[str, Any] | None:
    if not path.exists():
        return None
    data = read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a JSON object", path=str(path))
    return data


def load_results(path: Path | str) -> Results:
    """Load one results folder; a :class:`ConfigError` (one line) if it is not readable.

    The folder needs ``meta.json`` and at least one of ``samples.jsonl``, ``summary.json``
    or ``contract.json``. Unparseable sample lines are skipped and counted.
    """
    folder = Path(path)
    if not folder.exists():
        raise ConfigError("results folder not found", path=str(folder))
    if not folder.is_dir():
        raise ConfigError("not a results folder (expected a directory)", path=str(folder))
    if not os.access(folder, os.R_OK | os.X_OK):
        raise ConfigError("results folder is not readable (permission denied)", path=str(folder))
    if not (folder / META).exists():
        raise ConfigError(
            "not a results folder: meta.json is missing (was it written by chatprobe?)",
            path=str(folder),
        )
    meta = read_meta(folder)
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ConfigError(
            f"unsupported schema_version {version!r} (this chatprobe reads {SCHEMA_VERSION})",
            path=str(folder / META),
            field="schema_version",
        )
    result = Results(path=folder, meta=meta)
    result.summary = _read_optional(folder / SUMMARY, "summary.json")
    result.contract = _read_optional(folder / CONTRACT, "contract.json")
    result.capacity = _read_optional(folder / CAPACITY, "capacity.json")
    result.plan = _read_optional(folder / PLAN, "plan.json")
    result.profiles = ProfileSnapshot.read(folder)
    samples_path = folder / SAMPLES
    if samples_path.exists():
        table, skipped, bad, truncated = load_samples(samples_path)
        result.samples = table
        result.skipped_lines = skipped
        result.bad_line_numbers = bad
        result.truncated_tail = truncated
    if (
        result.samples is None
        and result.summary is None
        and result.contract is None
        and result.capacity is None
    ):
        raise ConfigError(
            "results folder holds no samples.jsonl, summary.json, contract.json or "
            "capacity.json (empty run?)",
            path=str(folder),
        )
    return result
