"""A results folder on disk: its file names, run ids, atomic writes, ``meta.json``, discovery.

Every run writes one folder, ``<root>/<run-id>/``; the names of the files in it are defined
here and only here (:data:`META`, :data:`SAMPLES`, ...), so writers, readers and the tests
that fake folders cannot drift apart. JSON files are written to ``name.tmp``, flushed and
renamed into place (:func:`write_json_atomic`), so a run killed at any moment leaves a
folder that :func:`chatprobe.results.load_results` reads; everything written is scrubbed of
secrets first.

A run made of several commands (``chatprobe run`` = checks + load) shares one *group* id:
:func:`write_meta` copies ``$CHATPROBE_RUN_GROUP`` into ``meta.json``, and
:func:`latest_run_folders` returns every folder of the newest group.
"""

from __future__ import annotations

import os
import platform
import secrets
import socket
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from chatprobe.errors import ConfigError
from chatprobe.paths import RESULTS_ENV, results_dir
from chatprobe.scrub import scrub_obj, scrub_text

__all__ = [
    "CONTRACT",
    "EMULATOR_TRUTH",
    "GROUP_ENV",
    "JUNIT",
    "LOCUST_CSV_PREFIX",
    "LOCUST_LOG",
    "LOCUST_TIMINGS",
    "META",
    "MONITOR_DB",
    "PLAN",
    "PROFILES",
    "REPORT_HTML",
    "REPORT_JSON",
    "REPORT_MD",
    "RESULTS_ENV",
    "SAMPLES",
    "SCHEMA_VERSION",
    "STATUS",
    "SUMMARY",
    "find_run_folders",
    "finish_meta",
    "latest_run_folders",
    "machine_info",
    "new_run_dir",
    "new_run_id",
    "read_json",
    "read_meta",
    "results_root",
    "utc_now_iso",
    "write_json_atomic",
    "write_meta",
    "write_text_atomic",
]

SCHEMA_VERSION = 1
GROUP_ENV = "CHATPROBE_RUN_GROUP"  # set by `chatprobe run` so its parts share one group id

# The files of a results folder (docs/results-format.md describes each).
META = "meta.json"  # every run: identity, command, machine, data source
PROFILES = "profiles.json"  # every run: the provider profiles as they were at run time
SAMPLES = "samples.jsonl"  # load: one line per completed request
SUMMARY = "summary.json"  # load: the run's figures (chatprobe.metrics)
PLAN = "plan.json"  # load: the resolved plan handed to locust
STATUS = "status.json"  # load: live progress from the locust master
EMULATOR_TRUTH = "emulator_truth.jsonl"  # load against an emulator it started
LOCUST_LOG = "locust.log"  # load: the locust child's output
LOCUST_CSV_PREFIX = "locust"  # load: locust's own CSV files, locust_*.csv
LOCUST_TIMINGS = "locust_timings.csv"  # load: TTFT/ITL/E2E as locust rounds them (reference)
CONTRACT = "contract.json"  # check: results per case and the conformance matrix
JUNIT = "junit.xml"  # check: pytest's JUnit XML

# Not in a run folder: the monitor's history lives in the results root itself.
MONITOR_DB = "monitor.sqlite"  # chatprobe monitor: probes, findings, events (SQLite, WAL)

# The files of a report folder (chatprobe report; docs/report.md).
REPORT_HTML = "index.html"
REPORT_MD = "report.md"
REPORT_JSON = "report.json"

_OPTS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS


# ---------------------------------------------------------------------------- writing


def utc_now_iso() -> str:
    """Now as ISO 8601 UTC with seconds, e.g. ``2025-04-09T16:53:23Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def results_root() -> Path:
    """``$CHATPROBE_RESULTS`` when set, else the project's ``paths.results``
    (:func:`chatprobe.paths.results_dir`; ``./results`` outside a project)."""
    return results_dir()


def new_run_id(now: float | None = None) -> str:
    """``YYYYmmdd-HHMMSS-<4 hex>`` in UTC: sorts by time, unique across parallel runs."""
    stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return f"{stamp:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def new_run_dir(root: Path | str | None = None, run_id: str | None = None) -> Path:
    """Create and return ``<root>/<run-id>/`` (root defaults to :func:`results_root`)."""
    base = Path(root) if root is not None else results_root()
    base.mkdir(parents=True, exist_ok=True)
    for _ in range(20):
        path = base / (run_id or new_run_id())
        try:
            path.mkdir()
            return path
        except FileExistsError:
            if run_id is not None:
                raise ConfigError("results folder already exists", path=str(path)) from None
    raise ConfigError("could not create a fresh results folder", path=str(base))


def write_text_atomic(path: Path | str, text: str | bytes) -> Path:
    """Write to ``path.tmp``, flush to disk, rename over ``path``: readers never see half."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    data = text.encode() if isinstance(text, str) else text
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def write_json_atomic(path: Path | str, obj: Any, *, scrub: bool = True) -> Path:
    """Scrub secrets from ``obj`` and write it as indented JSON, atomically."""
    data = scrub_obj(obj) if scrub else obj
    return write_text_atomic(path, orjson.dumps(data, option=_OPTS) + b"\n")


def machine_info() -> dict[str, Any]:
    """Hostname, platform, Python and CPU count, for ``meta.json``."""
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def write_meta(
    run_dir: Path | str,
    *,
    kind: str,
    data_source: str,
    providers: Iterable[str] = (),
    models: Iterable[str] = (),
    command: list[str] | None = None,
    notes: Iterable[str] = (),
    run_id: str | None = None,
    started_at: str | None = None,
    finished_at: str | None = None,
    interrupted: bool = False,
    group: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Write ``meta.json`` at the start of a run (``finished_at`` null) and return it.

    ``command`` defaults to ``sys.argv`` (scrubbed, like everything else written here);
    ``group`` defaults to ``$CHATPROBE_RUN_GROUP``.
    """
    from chatprobe import __version__

    if kind not in ("load", "contract", "run"):
        raise ValueError(f"meta kind must be load, contract or run, not {kind!r}")
    if data_source not in ("emulated", "replayed", "live"):
        raise ValueError(f"data_source must be emulated, replayed or live, not {data_source!r}")
    run_dir = Path(run_dir)
    meta: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id or run_dir.name,
        "kind": kind,
        "group": group or os.environ.get(GROUP_ENV) or None,
        "started_at": started_at or utc_now_iso(),
        "finished_at": finished_at,
        "harness_version": __version__,
        "machine": machine_info(),
        "data_source": data_source,
        "command": [scrub_text(a) for a in (command if command is not None else sys.argv)],
        "providers": list(providers),
        "models": list(models),
        "interrupted": interrupted,
        "notes": list(notes),
        **extra,
    }
    write_json_atomic(run_dir / META, meta)
    return meta


def read_meta(run_dir: Path | str) -> dict[str, Any]:
    """The folder's ``meta.json``; a :class:`ConfigError` naming the file if unreadable."""
    path = Path(run_dir) / META
    data = read_json(path)
    if not isinstance(data, dict):
        raise ConfigError("not a JSON object", path=str(path))
    return data


def finish_meta(
    run_dir: Path | str, *, interrupted: bool = False, notes: Iterable[str] = (), **extra: Any
) -> dict[str, Any]:
    """Stamp ``finished_at`` (and ``interrupted``, extra notes and fields) into ``meta.json``."""
    meta = read_meta(run_dir)
    meta["finished_at"] = utc_now_iso()
    meta["interrupted"] = bool(meta.get("interrupted")) or interrupted
    meta["notes"] = [*meta.get("notes", []), *notes]
    meta.update(extra)
    write_json_atomic(Path(run_dir) / META, meta)
    return meta


def read_json(path: Path) -> Any:
    """Parse a JSON file; a one-line :class:`ConfigError` naming it if that fails."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=str(path)) from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        line = getattr(exc, "lineno", None)
        raise ConfigError(f"not valid JSON ({exc.msg})", path=str(path), line=line) from None


def find_run_folders(root: Path | str) -> list[Path]:
    """Sub-folders of ``root`` that hold a ``meta.json``, oldest first (run ids sort by time)."""
    base = Path(root)
    try:
        entries = list(base.iterdir())
    except FileNotFoundError:
        raise ConfigError("results folder not found", path=str(base)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=str(base)) from None
    found = [p for p in entries if p.is_dir() and (p / META).is_file()]
    return sorted(found, key=lambda p: (_started(p), p.name))


def _started(folder: Path) -> str:
    try:
        return str(read_meta(folder).get("started_at") or "")
    except ConfigError:
        return ""


def latest_run_folders(root: Path | str | None = None) -> list[Path]:
    """The folders of the last run under ``root``: every folder sharing the newest folder's
    ``group`` (set by ``chatprobe run``); without a group, the newest folder of each kind."""
    base = Path(root) if root is not None else results_root()
    folders = find_run_folders(base)
    if not folders:
        raise ConfigError(
            "no results found (run `chatprobe run`, `chatprobe check` or `chatprobe load` first)",
            path=str(base),
        )
    metas = {}
    for folder in folders:
        try:
            metas[folder] = read_meta(folder)
        except ConfigError:
            continue
    newest = folders[-1]
    group = (metas.get(newest) or {}).get("group")
    if group:
        return [f for f in folders if (metas.get(f) or {}).get("group") == group]
    by_kind: dict[str, Path] = {}
    for folder in folders:
        meta = metas.get(folder) or {}
        if meta.get("group"):
            continue
        by_kind[str(meta.get("kind"))] = folder
    return sorted(by_kind.values(), key=lambda p: (_started(p), p.name)) or [newest]
