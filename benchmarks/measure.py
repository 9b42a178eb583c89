"""Run one command and report its wall time and peak memory: ``python -m benchmarks.measure
OUT.json -- CMD ...``.

A fresh process per measurement, so ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is the peak
resident set of exactly that command (of its largest process, if it starts others), not of
anything measured earlier. Portable where ``/usr/bin/time`` is not installed.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

import orjson


def main() -> None:
    argv = sys.argv[1:]
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: python -m benchmarks.measure OUT.json -- CMD ...")
    out, cmd = argv[0], argv[2:]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {
        "cmd": cmd,
        "exit": proc.returncode,
        "wall_s": wall,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "max_rss_mib": ru.ru_maxrss / 1024,  # Linux reports KiB
        "stdout_tail": proc.stdout[-2000:],
        "stderr_tail": proc.stderr[-2000:],
    }
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(orjson.dumps(result))
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
