"""The benchmark runner: ``python -m benchmarks [--quick] [--only B1,B3] [--name NAME]``.

Runs the chosen benchmarks one after another, prints a table per benchmark and a goals table
(rich), and writes ``benchmarks/results/<name>.json`` (machine, commit, configuration, every
figure and the raw per-run data) and ``<name>.md`` (the same tables as Markdown, pasted into
``benchmarks/README.md``). ``--quick`` shortens every window and round count (about a
minute, indicative figures); ``--smoke`` is the smallest end-to-end run, used by the tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from benchmarks.budget import BUDGETS
from benchmarks.harness import CLIENTS, REPO, git_commit, machine_info
from benchmarks.section import Section

RESULTS = REPO / "benchmarks" / "results"
ALL = ("B1", "B2", "B3", "B4", "B5")


def _runners() -> dict[str, Callable[..., Section]]:
    from benchmarks import (
        b1_client_capacity,
        b2_fidelity,
        b3_emulator_capacity,
        b4_offline,
        b5_replay,
    )

    return {
        "B1": b1_client_capacity.run,
        "B2": b2_fidelity.run,
        "B3": b3_emulator_capacity.run,
        "B4": b4_offline.run,
        "B5": b5_replay.run,
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="short windows, one round (~1 min)")
    size.add_argument(
        "--smoke",
        action="store_true",
        help="the smallest end-to-end run, for tests (seconds; figures meaningless)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="also profile chatprobe's client in B1 (always on in a full run)",
    )
    p.add_argument("--only", default=",".join(ALL), help="comma-separated subset of B1,B2,B3,B4,B5")
    p.add_argument(
        "--name", default=None, help="results file stem (default: latest, quick or smoke)"
    )
    p.add_argument("--out-dir", default=str(RESULTS), help="where results are written")
    p.add_argument(
        "--clients",
        default=None,
        help="comma-separated subset of the clients for B1/B2 (chatprobe, locust-httpuser, "
        "httpx-async, raw-httptools); default: the budget's",
    )
    p.add_argument(
        "--levels",
        default=None,
        help="comma-separated stream counts for B2 (plain and TLS rows); default: the budget's",
    )
    args = p.parse_args(argv)
    chosen = [x.strip().upper() for x in args.only.split(",") if x.strip()]
    unknown = [x for x in chosen if x not in ALL]
    if unknown:
        p.error(f"--only: unknown benchmark {', '.join(unknown)} (choose from {', '.join(ALL)})")
    args.only = chosen
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("benchmarks need two CPUs (client and emulator each pinned to one)")
    console = Console(width=None if sys.stdout.isatty() else 160)
    budget = BUDGETS["smoke" if args.smoke else "quick" if args.quick else "full"]
    if args.profile:
        budget = dataclasses.replace(budget, profile=True)
    if args.clients:
        chosen = tuple(c.strip() for c in args.clients.split(",") if c.strip())
        budget = dataclasses.replace(
            budget,
            b1_clients=tuple(c for c in chosen if c in CLIENTS),
            b2_clients=tuple(c for c in chosen if c in CLIENTS),
        )
    if args.levels:
        levels = tuple(int(x) for x in args.levels.split(",") if x.strip())
        budget = dataclasses.replace(budget, b2_levels=levels, b2_tls_levels=levels)
    name = args.name or {"full": "latest"}.get(budget.name, budget.name)
    started = datetime.now(UTC)
    doc: dict[str, Any] = {
        "schema_version": 1,
        "name": name,
        "command": ["python", "-m", "benchmarks", *(argv if argv is not None else sys.argv[1:])],
        "budget": budget.name,
        "started_at": started.isoformat(timespec="seconds"),
        "git": git_commit(),
        "machine": machine_info(),
        "sections": [],
    }
    runners = _runners()
    sections: list[Section] = []
    for key in args.only:
        console.rule(f"[bold]{key}")
        t = time.perf_counter()
        try:
            section = runners[key](budget)
        except Exception as exc:  # one broken benchmark must not lose the others' figures
            section = Section(
                key, f"{key} failed", ["error"], rows=[[f"{type(exc).__name__}: {exc}"]]
            )
            section.notes.append("this benchmark raised; see the error row")
        section.seconds = time.perf_counter() - t
        sections.append(section)
        console.print(render(section))
        for note in section.notes:
            console.print(f"  [dim]{note}[/dim]")
    console.print(goals_table(sections))
    doc["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    doc["machine"]["loadavg_end"] = machine_info()["loadavg"]
    doc["sections"] = [s.to_dict() for s in sections]
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)
    md = out_dir / f"{name}.md"
    md.write_text(markdown(doc, sections))
    console.print(f"wrote {path} and {md}")
    full = budget.name == "full" and name == "latest" and args.only == list(ALL)
    if full and update_readme(README, md.read_text()):
        console.print(f"updated the figures in {README}")


README = REPO / "benchmarks" / "README.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"


def update_readme(path: Path, figures: str) -> bool:
    """Replace the text between the figure markers of ``path``; False if it has none."""
    try:
        text = path.read_text()
    except OSError:
        return False
    if START not in text or END not in text:
        return False
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{START}\n{figures}{END}{tail}")
    return True


def render(section: Section) -> Table:
    table = Table(title=f"{section.key}: {section.title}", title_justify="left")
    for i, col in enumerate(section.columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in section.rows:
        table.add_row(*(str(v) for v in row))
    return table


def _met(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "not measured"}[met]


def goals_table(sections: list[Section]) -> Table:
    table = Table(title="Goals", title_justify="left")
    for col in ("goal", "target", "measured", "status", "why"):
        table.add_column(col)
    for s in sections:
        for g in s.goals:
            style = {True: "green", False: "red", None: "yellow"}[g.met]
            table.add_row(g.name, g.target, g.measured, f"[{style}]{_met(g.met)}[/{style}]", g.why)
    return table


def markdown(doc: dict[str, Any], sections: list[Section]) -> str:
    """The tables as Markdown, with the header facts needed to read them."""
    m = doc["machine"]
    lines = [
        f"Run `{' '.join(doc['command'])}` at {doc['started_at']} on commit "
        f"`{doc['git']['commit'][:12]}`{' (with local changes)' if doc['git']['dirty'] else ''}; "
        f"{m['cpus']} x {m['cpu_model']}, Python {m['python']}, load average "
        f"{' '.join(m['loadavg'])} at start.",
        "",
    ]
    for s in sections:
        lines += [f"**{s.key}: {s.title}** ({s.seconds:.0f} s)", ""]
        lines.append("| " + " | ".join(s.columns) + " |")
        lines.append("|" + "|".join("---" for _ in s.columns) + "|")
        for row in s.rows:
            lines.append("| " + " | ".join(str(v) for v in row) + " |")
        lines.append("")
        for note in s.notes:
            lines.append(f"- {note}")
        if s.notes:
            lines.append("")
    lines += [
        "**Goals**",
        "",
        "| goal | target | measured | status | why |",
        "|---|---|---|---|---|",
    ]
    for s in sections:
        for g in s.goals:
            lines.append(f"| {g.name} | {g.target} | {g.measured} | {_met(g.met)} | {g.why} |")
    return "\n".join(lines) + "\n"
