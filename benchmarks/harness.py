"""Plumbing shared by the benchmarks: machine facts, CPU accounting, running a client.

Clients run as their own processes pinned to one CPU (``CLIENT_CPU``), the emulator on the
other (``EMULATOR_CPU``); this process only orchestrates and sleeps while they run. CPU time
is read from the kernel, never estimated: ``getrusage`` inside a client over its measurement
window, ``/proc/<pid>/stat`` for the emulator over the same window (the client snapshots it
at its window edges, see ``--peer-pid``), and ``/proc/stat`` per core, so every run also says
how busy each core was overall, i.e. how much of it other people's work took.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "CLIENTS",
    "CLIENT_CPU",
    "EMULATOR_CPU",
    "REPO",
    "ClientRun",
    "git_commit",
    "machine_info",
    "run_client",
]

REPO = Path(__file__).resolve().parent.parent
CLIENT_CPU = 0
EMULATOR_CPU = 1

# label -> module under benchmarks.clients
CLIENTS: dict[str, str] = {
    "chatprobe": "benchmarks.clients.locust_chatprobe",
    "locust-httpuser": "benchmarks.clients.locust_httpuser",
    "httpx-async": "benchmarks.clients.httpx_async",
    "raw-httptools": "benchmarks.clients.raw_httptools",
}


def git_commit() -> dict[str, Any]:
    """The commit the benchmarks ran on and whether the tree had local changes."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status)}


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        load = []
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "loadavg": load,
    }


@dataclass(slots=True)
class ClientRun:
    """One client subprocess's result file, parsed, plus what its label was."""

    label: str
    data: dict[str, Any]

    @property
    def streams_per_s(self) -> float:
        w = self.data["window_s"]
        return self.data["completed"] / w if w else 0.0

    @property
    def cpu_ms_per_stream(self) -> float | None:
        n = self.data["completed"]
        return self.data["cpu_s"] * 1000 / n if n else None

    @property
    def cpu_pct(self) -> float:
        w = self.data["window_s"]
        return 100 * self.data["cpu_s"] / w if w else 0.0

    @property
    def peer_cpu_pct(self) -> float | None:
        peer, w = self.data.get("peer_cpu_s"), self.data["window_s"]
        return 100 * peer / w if peer is not None and w else None

    @property
    def run_delay_pct(self) -> float | None:
        """Share of the window the client was runnable but had no CPU (other work)."""
        return self.data.get("run_delay_pct")

    @property
    def peer_run_delay_pct(self) -> float | None:
        return self.data.get("peer_run_delay_pct")

    @property
    def core_busy_pct(self) -> dict[str, float]:
        return self.data.get("core_busy_pct", {})

    @property
    def samples(self) -> list[list[Any]]:
        return self.data["samples"]


def run_client(
    label: str,
    *,
    url: str,
    body: bytes,
    headers: dict[str, str],
    concurrency: int,
    warmup: float,
    duration: float,
    cpu: int | None = CLIENT_CPU,
    rate: float | None = None,
    peer_pid: int | None = None,
    extra: list[str] | None = None,
    wrap: list[str] | None = None,
    ca_file: str | None = None,
) -> ClientRun:
    """Run one client to completion in a pinned subprocess and return its result.

    ``wrap`` prefixes the command (a profiler: ``["py-spy", "record", ..., "--"]``).
    """
    module = CLIENTS[label]
    with tempfile.TemporaryDirectory(prefix="chatprobe-bench-") as tmp:
        out = os.path.join(tmp, "result.json")
        cmd = [
            *(wrap or []),
            sys.executable,
            "-m",
            module,
            "--url",
            url,
            "--body",
            body.decode(),
            "--concurrency",
            str(concurrency),
            "--warmup",
            str(warmup),
            "--duration",
            str(duration),
            "--out",
            out,
        ]
        for name, value in headers.items():
            cmd += ["--header", f"{name}: {value}"]
        if cpu is not None:
            cmd += ["--cpu", str(cpu)]
        if rate is not None:
            cmd += ["--rate", str(rate)]
        if peer_pid is not None:
            cmd += ["--peer-pid", str(peer_pid)]
        if ca_file is not None:
            cmd += ["--ca-file", ca_file]
        cmd += extra or []
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        limit = warmup + duration + 60
        proc = subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=limit, check=False
        )
        if proc.returncode != 0 or not os.path.exists(out):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
            raise RuntimeError(
                f"client {label} failed (exit {proc.returncode}):\n" + "\n".join(tail)
            )
        with open(out, "rb") as f:
            return ClientRun(label, orjson.loads(f.read()))
