"""Where chatprobe's client spends its CPU: a py-spy profile of one extra B1 round.

The round runs under ``py-spy record --gil`` (samples only while Python code holds the GIL,
i.e. CPU the interpreter spends, not time waiting on sockets) and is not counted in B1's
figures, since sampling slows the client a little. Samples are grouped by the stage of the
hot path they fall in (a frame anywhere in the stack), plus the top frames by own time.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections import Counter
from typing import Any

from benchmarks.harness import run_client

__all__ = ["STAGES", "profile_client", "summarize_raw"]

# stage -> substrings of a py-spy frame ("function (file:line)"), any of which marks it
STAGES: dict[str, tuple[str, ...]] = {
    "connection, request and response head (geventhttpclient pool, read_head)": (
        "get_socket (",
        "sendall (",
        "read_head (chatprobe/load/receive.py",
    ),
    "body read (read_body)": ("read_body (chatprobe/load/receive.py",),
    "SSE decoding (SSEDecoder via exchange._decode)": ("_decode (chatprobe/load/exchange.py",),
    "record interpretation (RequestRecord.finish, orjson)": ("RequestRecord.finish (",),
    "sample line and locust events (RequestPath.keep)": ("RequestPath.keep (",),
}


def summarize_raw(path: str, top: int = 12) -> dict[str, Any]:
    """Stage shares and top own-time frames from a py-spy ``--format raw`` file."""
    total = 0
    stages: Counter[str] = Counter()
    own: Counter[str] = Counter()
    user = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            frames = stack.split(";")
            if any("importlib" in fr for fr in frames):
                continue  # start-up, not the steady state
            total += n
            if any("ChatUser.chat" in fr or "run_user" in fr for fr in frames):
                user += n
            own[frames[-1]] += n
            for stage, markers in STAGES.items():
                if any(marker in fr for fr in frames for marker in markers):
                    stages[stage] += n
    if not total:
        return {"samples": 0}
    shares = {k: round(100 * v / total, 1) for k, v in stages.most_common()}
    shares["everything else (locust, gevent hub, greenlet switches)"] = round(
        100 - sum(shares.values()), 1
    )
    return {
        "samples": total,
        "stages_pct": shares,
        "top_own_pct": {k: round(100 * v / total, 1) for k, v in own.most_common(top)},
        "in_user_task_pct": round(100 * user / total, 1),
    }


def profile_client(
    label: str, target: Any, *, concurrency: int, warmup: float, duration: float
) -> dict[str, Any]:
    """Run ``label`` once under py-spy against ``target``; the grouped profile, or a note."""
    # on PATH, or beside this interpreter (a virtual environment used without activating it)
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=os.path.dirname(sys.executable))
    if spy is None:
        return {"skipped": "py-spy not installed (pip install -e '.[dev]')"}
    with tempfile.TemporaryDirectory(prefix="chatprobe-profile-") as tmp:
        raw = os.path.join(tmp, "profile.txt")
        wrap = [
            spy,
            "record",
            "--gil",
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            raw,
            "--nonblocking",
            "--",
        ]
        try:
            r = run_client(
                label,
                url=target.url,
                body=target.body,
                headers=target.headers,
                concurrency=concurrency,
                warmup=warmup,
                duration=duration,
                peer_pid=target.pid,
                wrap=wrap,
            )
        except RuntimeError as exc:
            return {"skipped": f"py-spy run failed: {str(exc)[-300:]}"}
        if not os.path.exists(raw):
            return {"skipped": "py-spy wrote no profile (ptrace not permitted?)"}
        out = summarize_raw(raw)
    out["cpu_ms_per_stream_while_sampled"] = r.cpu_ms_per_stream
    return out
