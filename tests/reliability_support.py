"""Shared by the reliability tests: run the real command line, read what a run wrote.

Commands run through :mod:`tests.cli_support` (re-exported here for the reliability tests).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import orjson

from tests.cli_support import ROOT, clean_env, cli_command, run_cli

__all__ = [
    "ROOT",
    "clean_env",
    "cli_command",
    "listening",
    "process_tree",
    "read_run",
    "run_cli",
]


def read_run(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """``(summary, samples, meta)`` of a load results folder."""
    summary = orjson.loads((folder / "summary.json").read_bytes())
    samples = [orjson.loads(line) for line in (folder / "samples.jsonl").read_bytes().splitlines()]
    meta = orjson.loads((folder / "meta.json").read_bytes())
    return summary, samples, meta


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux ``/proc``)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return out


def _address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def listening(pids: list[int]) -> set[tuple[str, int]]:
    """``(address, port)`` of every TCP socket in LISTEN state held by ``pids``."""
    inodes: set[str] = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                host, port = fields[1].split(":")
                found.add((_address(host), int(port, 16)))
    return found
