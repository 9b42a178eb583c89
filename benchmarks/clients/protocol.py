"""What every benchmark client shares: its command line, the measurement window, the result.

A client is started as ``python -m benchmarks.clients.NAME --url ... --out FILE`` in its own
process, pinned to one CPU. It runs for ``warmup + duration`` seconds. At the start and end of
the measurement window it snapshots its own CPU time (``resource.getrusage(RUSAGE_SELF)``,
user + system, all threads) and the monotonic clock; afterwards only the streams that
*finished* inside the window count. That gives streams/s and CPU ms per stream that exclude
start-up, connection set-up and the ramp.

Each completed stream leaves one sample
``[request_id, t_sched, t0, t_first, t_last, t_end, n, ok]``:
(chatprobe's client appends its ``ttft_bound_ms`` and the part of it the request's write
took, ``send_late`` ms) with
``time.perf_counter_ns()`` stamps (CLOCK_MONOTONIC on Linux, so comparable with the
emulator's ground truth taken in another process), ``t_sched`` is ``None`` in closed loop,
``t_first``/``t_last`` are the arrival of the first and last content event as this client saw
them, ``t_end`` when the exchange ended (the window is judged on it), ``n`` is the number of
content events, ``ok`` whether the stream ended well.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["ClientArgs", "Result", "Sample", "cpu_seconds", "parse_args", "pin"]

Sample = list[Any]  # [request_id, t_sched, t0, t_first, t_last, t_end, n_content, ok]


@dataclass(slots=True)
class ClientArgs:
    url: str
    body: bytes
    headers: dict[str, str]
    concurrency: int
    warmup: float
    duration: float
    rate: float | None  # open loop: arrivals per second; None = closed loop
    cpu: int | None
    out: str
    peer_pid: int | None = None
    ca_file: str | None = None  # an https URL: the CA certificate to trust (the emulator's)
    conformance_share: float | None = None  # chatprobe: the plan's (None: its default)


def parse_args(argv: list[str] | None = None) -> ClientArgs:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", required=True, help="full chat-completions URL")
    p.add_argument("--body", required=True, help="JSON request body")
    p.add_argument("--header", action="append", default=[], help="NAME:VALUE, repeatable")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--rate", type=float, default=None, help="open loop arrivals/s")
    p.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    p.add_argument("--out", required=True, help="result JSON file")
    p.add_argument("--peer-pid", type=int, default=None, help="also account this pid's CPU")
    p.add_argument("--ca-file", default=None, help="https: the CA certificate to trust")
    p.add_argument(
        "--conformance-share", type=float, default=None, help="chatprobe: checks under load"
    )
    a = p.parse_args(argv)
    headers = {}
    for h in a.header:
        name, _, value = h.partition(":")
        headers[name.strip()] = value.strip()
    return ClientArgs(
        url=a.url,
        body=a.body.encode(),
        headers=headers,
        concurrency=a.concurrency,
        warmup=a.warmup,
        duration=a.duration,
        rate=a.rate,
        cpu=a.cpu,
        out=a.out,
        peer_pid=a.peer_pid,
        ca_file=a.ca_file,
        conformance_share=a.conformance_share,
    )


def pin(cpu: int | None) -> None:
    """Pin this process (all its threads created later) to one CPU."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (every thread)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def sys_seconds() -> float:
    """The kernel's share of :func:`cpu_seconds` (syscalls, wake-ups, TCP)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


_TICK = os.sysconf("SC_CLK_TCK")


def pid_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of another process (and its reaped children) from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # after the name: state(0) ... utime(11) stime(12) cutime(13) cstime(14)
    return sum(int(x) for x in fields[11:15]) / _TICK


def run_delay_ns(pid: int | str = "self") -> int | None:
    """Time the threads of ``pid`` spent runnable but waiting for a CPU (schedstat).

    On a shared machine this is what other people's work cost a process: over a window,
    run delay / window length is the fraction of time it wanted a CPU and had none.
    """
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    except OSError:
        return None
    return total


def core_times() -> dict[str, tuple[int, int]]:
    """Per core ``(busy, total)`` jiffies from /proc/stat."""
    out: dict[str, tuple[int, int]] = {}
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("cpu") and line[3].isdigit():
                    name, *vals = line.split()
                    nums = [int(v) for v in vals[:8]]
                    idle = nums[3] + nums[4]  # idle + iowait
                    out[name] = (sum(nums) - idle, sum(nums))
    except OSError:
        pass
    return out


@dataclass(slots=True)
class Result:
    """Accumulates samples and the window snapshots; written once at the end."""

    client: str
    args: ClientArgs
    samples: list[Sample] = field(default_factory=list)
    errors: int = 0
    started: int = 0
    w0_ns: int = 0
    w1_ns: int = 0
    cpu0: float = 0.0
    cpu1: float = 0.0
    sys0: float = 0.0
    sys1: float = 0.0
    peer0: float | None = None
    peer1: float | None = None
    delay0: tuple[int | None, int | None] = (None, None)
    delay1: tuple[int | None, int | None] = (None, None)
    cores0: dict[str, tuple[int, int]] = field(default_factory=dict)
    cores1: dict[str, tuple[int, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    checked_pct: float | None = None  # chatprobe: streams its conformance checks judged

    def window_start(self) -> None:
        self.cores0 = core_times()
        if self.args.peer_pid:
            self.peer0 = pid_cpu_seconds(self.args.peer_pid)
        self.delay0 = (
            run_delay_ns(),
            run_delay_ns(self.args.peer_pid or 0) if self.args.peer_pid else None,
        )
        self.w0_ns = time.perf_counter_ns()
        self.cpu0 = cpu_seconds()
        self.sys0 = sys_seconds()

    def window_end(self) -> None:
        self.w1_ns = time.perf_counter_ns()
        self.cpu1 = cpu_seconds()
        self.sys1 = sys_seconds()
        if self.args.peer_pid:
            self.peer1 = pid_cpu_seconds(self.args.peer_pid)
        self.delay1 = (
            run_delay_ns(),
            run_delay_ns(self.args.peer_pid or 0) if self.args.peer_pid else None,
        )
        self.cores1 = core_times()

    def write(self) -> None:
        """Keep the streams that finished inside the window and write the result file."""
        w0, w1 = self.w0_ns, self.w1_ns
        inside = [s for s in self.samples if w0 <= s[5] <= w1]
        errors_inside = sum(1 for s in inside if not s[7])
        window_s = (w1 - w0) / 1e9 if w1 > w0 else 0.0
        completed = len(inside) - errors_inside
        busy = {}
        for name, (b1, t1) in self.cores1.items():
            b0, t0 = self.cores0.get(name, (b1, t1))
            busy[name] = round(100 * (b1 - b0) / (t1 - t0), 1) if t1 > t0 else 0.0
        waited = []
        for a, b in zip(self.delay0, self.delay1, strict=True):
            ok = a is not None and b is not None and w1 > w0
            waited.append(round(100 * (b - a) / (w1 - w0), 1) if ok else None)  # type: ignore[operator]
        peer = None
        if self.peer0 is not None and self.peer1 is not None:
            peer = self.peer1 - self.peer0
        out = {
            "client": self.client,
            "pid": os.getpid(),
            "concurrency": self.args.concurrency,
            "rate": self.args.rate,
            "window_s": window_s,
            "w0_ns": w0,
            "w1_ns": w1,
            "completed": completed,
            "errors": errors_inside + self.errors,
            "started": self.started,
            "cpu_s": self.cpu1 - self.cpu0,
            "cpu_sys_s": self.sys1 - self.sys0,
            "peer_cpu_s": peer,
            "core_busy_pct": busy,
            "run_delay_pct": waited[0],  # of the window, runnable but without a CPU
            "peer_run_delay_pct": waited[1],
            "notes": self.notes,
            "checked_pct": self.checked_pct,
            "samples": inside,
        }
        tmp = self.args.out + ".tmp"
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(out))
        os.replace(tmp, self.args.out)
