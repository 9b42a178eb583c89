"""Run one command and report its wall time and peak memory: ``python -m benchmarks.measure
OUT.json -- CMD ...``.

A fresh process per measurement, so ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is the peak
resident set of exactly that command (of its largest single process, if it starts others),
not of anything measured earlier. Portable where ``/usr/bin/time`` is not installed. Because
a command may fan out to worker processes, the resident memory of its whole process tree is
also sampled every 20 ms from ``/proc`` and the peak of the sum reported (``tree_peak``): the
figure to hold against a memory budget.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time

import orjson


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_rss_kib(root: int) -> int:
    """Resident KiB of ``root`` and all its descendants, now."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += _rss_kib(pid)
        todo += _children(pid)
    return total


def main() -> None:
    argv = sys.argv[1:]
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: python -m benchmarks.measure OUT.json -- CMD ...")
    out, cmd = argv[0], argv[2:]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], tree_rss_kib(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {
        "cmd": cmd,
        "exit": proc.returncode,
        "tree_peak_rss_mib": peak[0] / 1024,
        "wall_s": wall,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "max_rss_mib": ru.ru_maxrss / 1024,  # Linux reports KiB
        "stdout_tail": stdout[-2000:],
        "stderr_tail": stderr[-2000:],
    }
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(orjson.dumps(result))
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
