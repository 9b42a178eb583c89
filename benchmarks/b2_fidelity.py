"""B2, fidelity: how far a client's TTFT and ITL are from the emulator's ground truth.

The emulator (TTFT 50 ms, ITL 10 ms, no jitter, 64 one-token chunks) stamps, by
``perf_counter_ns`` (CLOCK_MONOTONIC, shared by every process here), when each request arrived
(the kernel's receive stamp, so its own event loop's delay in reading it is server latency,
as a client sees it) and right before it wrote the first and last content event. A client
stamps when it sent the request and when it saw each content event. Joined by
``X-Chatprobe-Request-Id``:

* TTFT error = (client t_first - client t0) - (truth t_first_content - truth t_received)
  = send delay (t_received - t0) + receive delay (t_first - t_first_content): everything
  the client adds to the provider's real TTFT, its queueing included.
* ITL error = client ITL - true ITL, both (t_last - t_first) / (tokens - 1).

Closed loop at 1, 20, 64 and 200 concurrent streams, client CPU % alongside (a client near
100 % is reporting its own queueing). Then open loop at a fixed arrival rate: the schedule lag
(t0 - t_sched) p50/p99 and the achieved rate.

The ``--processes auto`` rows run ``chatprobe load`` itself, as a user would: a scenario with
the same emulator settings and users, ``--emulator --processes auto``. The command calibrates,
picks its process count, runs, and leaves a results folder; its samples are joined with the
``emulator_truth.jsonl`` the run wrote (:func:`chatprobe.calibrate.measure_against_truth`).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from benchmarks.budget import Budget
from benchmarks.harness import ClientRun, run_client
from benchmarks.section import Goal, Section, fmt
from benchmarks.target import MODEL_ID, PROVIDER, TOKENS, emulator
from chatprobe.stats import percentiles

SERVER_FLOOR_MS = 0.5  # what no client bound sees: the server's read/write, loopback (docs)
RECV_FLOOR_MS = 0.1  # the receive side alone: the emulator's stamp-to-write and loopback
TTFT_MS = 50.0
ITL_MS = 10.0
OPEN_LOOP_CLIENTS = ("chatprobe", "httpx-async")


def run(budget: Budget) -> Section:
    levels, clients = budget.b2_levels, budget.b2_clients
    warmup, duration = budget.warmup_s, budget.window_s
    stream_s = (TTFT_MS + (TOKENS - 1) * ITL_MS) / 1000
    rate = round(64 / stream_s)  # the arrival rate that keeps about 64 streams in flight
    section = Section(
        "B2",
        f"Fidelity: TTFT/ITL error vs emulator truth (TTFT {TTFT_MS:g} ms, ITL {ITL_MS:g} ms, "
        f"{TOKENS} tokens)",
        [
            "client",
            "streams",
            "n",
            "TTFT err p50",
            "TTFT err p99",
            "send p99",
            "recv p99",
            "ITL err p50",
            "ITL err p99",
            "client CPU %",
            "CPU µs/token",
            "client waited %",
            "emulator waited %",
            "errors",
            "bound p50 / p99",
            "bound covers",
            "recv covered",
            "checked %",
        ],
        config={
            "ttft_ms": TTFT_MS,
            "itl_ms": ITL_MS,
            "tokens": TOKENS,
            "levels": list(levels),
            "warmup_s": warmup,
            "duration_s": duration,
            "open_loop_rate": rate,
            "clients": list(clients),
        },
    )
    figures: dict[str, dict[str, Any]] = {}
    with emulator(ttft_ms=TTFT_MS, itl_ms=ITL_MS, sigma=0.0) as target:
        for level in levels:
            for label in clients:
                seq = target.last_seq()
                r = run_client(
                    label,
                    url=target.url,
                    body=target.body,
                    headers=target.headers,
                    concurrency=level,
                    warmup=warmup,
                    duration=duration,
                    peer_pid=target.pid,
                )
                f = errors_vs_truth(r, target.truth(since=seq))
                figures[f"{label}@{level}"] = f
                section.rows.append(_row(label, str(level), f))
        for label in OPEN_LOOP_CLIENTS if budget.b2_open_loop else ():
            seq = target.last_seq()
            r = run_client(
                label,
                url=target.url,
                body=target.body,
                headers=target.headers,
                concurrency=64,
                warmup=warmup,
                duration=duration,
                rate=rate,
                peer_pid=target.pid,
            )
            f = errors_vs_truth(r, target.truth(since=seq))
            f["achieved_rate"] = f["n"] / r.data["window_s"] if r.data["window_s"] else None
            figures[f"{label}@open{rate}"] = f
            section.rows.append(_row(label, f"open {rate}/s", f))
    tls_labels = [c for c in budget.tls_clients if c in clients]
    if tls_labels:
        with emulator(ttft_ms=TTFT_MS, itl_ms=ITL_MS, sigma=0.0, tls=True) as target:
            for level in budget.b2_tls_levels:
                for label in tls_labels:
                    seq = target.last_seq()
                    r = run_client(
                        label,
                        url=target.url,
                        body=target.body,
                        headers=target.headers,
                        concurrency=level,
                        warmup=warmup,
                        duration=duration,
                        peer_pid=target.pid,
                        ca_file=target.ca_file,
                    )
                    f = errors_vs_truth(r, target.truth(since=seq))
                    figures[f"{label} TLS@{level}"] = f
                    section.rows.append(_row(f"{label} TLS", str(level), f))
    for level in budget.b2_auto_levels:
        auto = auto_processes_run(level, warmup, duration)
        figures[f"chatprobe-auto@{level}"] = auto
        section.rows.append(_auto_row(level, auto))
    section.raw = {"figures": figures}
    open_rows = {k: v for k, v in figures.items() if "@open" in k}
    if open_rows:
        section.columns.append("lag p50 / p99 ms")
        for row in section.rows:
            key = f"{row[0]}@open{rate}" if str(row[1]).startswith("open") else None
            f = open_rows.get(key) if key else None
            row.append(f"{fmt(f['lag_ms']['p50'], 2)} / {fmt(f['lag_ms']['p99'], 2)}" if f else "")
    _goals(section, figures)
    section.notes.append(
        "errors in ms, client minus truth; send = truth t_received - client t0, recv = client "
        "t_first - truth t_first_content; n = streams joined with truth inside the window; "
        "raw-httptools is the reference: it decodes nothing, so its error is what the emulator, "
        "the kernel and other work on the machine leave; waited % = share of the window a "
        "process was runnable without a CPU; CPU µs/token = client CPU / (streams x tokens): "
        "at 10 ms ITL each token is its own network read and wake-up; bound = chatprobe's "
        "client timing error bound (ttft_bound_ms) p50 / p99; bound covers = share of streams "
        f"whose TTFT error is within their bound + {SERVER_FLOOR_MS:g} ms (the server-side "
        "floor no client can see); recv covered = the receive side alone: client first-token "
        f"stamp - truth write within the first token read's bound + {RECV_FLOOR_MS:g} ms; "
        "'... TLS' rows: emulator --tls (TLS in memory, kernel stamps); checked % = the share of "
        "chatprobe's streams its conformance checks under load judged (in the event loop's "
        "idle time: a busy client skips some); 'chatprobe load --processes auto (N)': the "
        "command itself, calibrating first, against the same emulator settings; N = the "
        "processes it chose (at most one per CPU left beside the emulator it started)"
    )
    return section


def errors_vs_truth(run: ClientRun, truth: list[dict[str, Any]]) -> dict[str, Any]:
    """Join a client's samples with the emulator's truth by request id; error percentiles."""
    by_id = {t["request_id"]: t for t in truth}
    ttft, send, recv, itl, lag, bounds = [], [], [], [], [], []
    covered = strict = recv_covered = 0
    missing = 0
    for sample in run.samples:
        rid, t_sched, t0, t_first, t_last, _t_end, n, ok = sample[:8]
        bound = sample[8] if len(sample) > 8 else None
        send_late = sample[9] if len(sample) > 9 else None
        t = by_id.get(rid)
        if not ok or t is None or t_first is None or t.get("t_first_content_ns") is None:
            missing += 1
            continue
        true_ttft = t["t_first_content_ns"] - t["t_received_ns"]
        ttft.append((t_first - t0 - true_ttft) / 1e6)
        send.append((t["t_received_ns"] - t0) / 1e6)
        recv.append((t_first - t["t_first_content_ns"]) / 1e6)
        if bound is not None:
            bounds.append(bound)
            strict += ttft[-1] <= bound
            covered += ttft[-1] <= bound + SERVER_FLOOR_MS
            if send_late is not None:  # the receive side alone: the first token's read
                recv_covered += recv[-1] <= bound - send_late + RECV_FLOOR_MS
        tokens = t.get("tokens_sent") or t.get("completion_tokens") or 0
        if n >= 2 and tokens >= 2 and t_last is not None and t.get("t_last_content_ns"):
            client_itl = (t_last - t_first) / (tokens - 1)
            true_itl = (t["t_last_content_ns"] - t["t_first_content_ns"]) / (tokens - 1)
            itl.append((client_itl - true_itl) / 1e6)
        if t_sched is not None:
            lag.append((t0 - t_sched) / 1e6)
    return {
        "n": len(ttft),
        "unjoined": missing,
        "errors": run.data["errors"],
        "streams_per_s": run.streams_per_s,
        "client_cpu_pct": run.cpu_pct,
        "cpu_us_per_token": (
            run.data["cpu_s"] * 1e6 / (run.data["completed"] * TOKENS)
            if run.data["completed"]
            else None
        ),
        "emulator_cpu_pct": run.peer_cpu_pct,
        "client_waited_pct": run.run_delay_pct,
        "emulator_waited_pct": run.peer_run_delay_pct,
        "core_busy_pct": run.core_busy_pct,
        "ttft_err_ms": percentiles(ttft),
        "send_ms": percentiles(send),
        "recv_ms": percentiles(recv),
        "itl_err_ms": percentiles(itl),
        "lag_ms": percentiles(lag),
        "bound_ms": percentiles(bounds),
        "bound_covers": covered / len(bounds) if bounds else None,
        "bound_covers_strict": strict / len(bounds) if bounds else None,
        "bound_covers_recv": recv_covered / len(bounds) if bounds else None,
        "notes": run.data.get("notes", []),
        "checked_pct": run.data.get("checked_pct"),
    }


def auto_processes_run(users: int, warmup: float, duration: float) -> dict[str, Any]:
    """``chatprobe load --emulator --processes auto`` at ``users`` streams against B2's
    emulator settings; its TTFT error against the truth the run wrote (module docstring)."""
    from chatprobe.calibrate import Calibration, measure_against_truth, read_samples

    scenario = {
        "name": "b2-auto",
        "targets": [{"provider": PROVIDER, "model": MODEL_ID.split("/")[-1]}],
        "prompts": {"text": ["Tell me about benchmarks."]},
        "max_tokens": TOKENS,
        "shape": {"users": users},
        "duration": f"{warmup + duration:g}s",
        "warmup": f"{warmup:g}s",
        "emulator": {
            "ttft_ms": TTFT_MS,
            "itl_ms": ITL_MS,
            "sigma": 0,
            "tokens_per_chunk": 1,
            "output_tokens": TOKENS,
        },
    }
    with tempfile.TemporaryDirectory(prefix="chatprobe-bench-auto-") as tmp:
        path = Path(tmp) / "b2-auto.yaml"
        path.write_bytes(orjson.dumps(scenario))  # JSON is YAML
        cmd = [
            sys.executable,
            "-c",
            "from chatprobe.cli import main; main()",
            "load",
            str(path),
            "--emulator",
            "--processes",
            "auto",
            "--out",
            tmp,
            "--run-id",
            "run",
            "--quiet",
            "--max-error-rate",
            "1",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        folder = Path(tmp) / "run"
        if not (folder / "summary.json").exists():
            raise RuntimeError(f"chatprobe load --processes auto failed: {done.stderr[-500:]}")
        meta = orjson.loads((folder / "meta.json").read_bytes())
        summary = orjson.loads((folder / "summary.json").read_bytes())
        truth = {t["request_id"]: t for t in read_samples(folder / "emulator_truth.jsonl")}
        result = Calibration(users, None, warmup + duration, int(meta.get("processes") or 1), False)
        rows = read_samples(folder / "samples.jsonl")
        measure_against_truth(result, rows, truth, summary)
        errors = sum(1 for r in rows if r.get("error_class") and not r.get("warmup"))
    calibration = meta.get("calibration") or {}
    return {
        "n": result.joined,
        "processes": result.processes,
        "calibration_ttft_err_p99": (calibration.get("ttft_err_ms") or {}).get("p99"),
        "calibration_busy_pct": (
            100 * calibration["busy_fraction"] if calibration.get("busy_fraction") else None
        ),
        "load_cpus": calibration.get("load_cpus"),
        "errors": errors,
        "client_cpu_pct": None if result.busy_fraction is None else 100 * result.busy_fraction,
        "ttft_err_ms": {"p50": result.ttft_err_ms.p50, "p99": result.ttft_err_ms.p99},
        "itl_err_ms": {"p50": result.itl_err_ms.p50, "p99": result.itl_err_ms.p99},
        "bound_ms": {"p50": result.bound_ms.p50, "p99": result.bound_ms.p99},
        "bound_covers": result.covered,
        # what the run said of its own client: loop lag, end-of-stream turns, notes (a miss
        # here is explained by the run's folder, which is gone once the row is made)
        "client_cpu": {
            k: v
            for k, v in (summary.get("client_cpu") or {}).items()
            if k in ("loop_lag_ms", "end_turn_ms", "busy_fraction", "cpu_ms_per_request")
        },
        "notes": summary.get("notes") or [],
    }


def _auto_row(users: int, f: dict[str, Any]) -> list[Any]:
    bound = f["bound_ms"]
    return [
        f"chatprobe load --processes auto ({f['processes']})",
        str(users),
        f["n"],
        fmt(f["ttft_err_ms"]["p50"], 2),
        fmt(f["ttft_err_ms"]["p99"], 2),
        "",
        "",
        fmt(f["itl_err_ms"]["p50"], 3),
        fmt(f["itl_err_ms"]["p99"], 3),
        fmt(f["client_cpu_pct"], 0),
        "",
        "",
        "",
        f["errors"],
        f"{fmt(bound['p50'], 2)} / {fmt(bound['p99'], 2)}" if bound["p50"] is not None else "",
        fmt(100 * f["bound_covers"], 1, "%") if f["bound_covers"] is not None else "",
        "",
        "",
    ]


def _row(label: str, streams: str, f: dict[str, Any]) -> list[Any]:
    return [
        label,
        streams,
        f["n"],
        fmt(f["ttft_err_ms"]["p50"], 2),
        fmt(f["ttft_err_ms"]["p99"], 2),
        fmt(f["send_ms"]["p99"], 2),
        fmt(f["recv_ms"]["p99"], 2),
        fmt(f["itl_err_ms"]["p50"], 3),
        fmt(f["itl_err_ms"]["p99"], 3),
        fmt(f["client_cpu_pct"], 0),
        fmt(f["cpu_us_per_token"], 0),
        fmt(f["client_waited_pct"], 1),
        fmt(f["emulator_waited_pct"], 1),
        f["errors"],
        f"{fmt(f['bound_ms']['p50'], 2)} / {fmt(f['bound_ms']['p99'], 2)}"
        if f["bound_ms"].get("p50") is not None
        else "",
        fmt(100 * f["bound_covers"], 1, "%") if f["bound_covers"] is not None else "",
        fmt(100 * f["bound_covers_recv"], 1, "%") if f["bound_covers_recv"] is not None else "",
        fmt(f["checked_pct"], 0),
    ]


def _goals(section: Section, figures: dict[str, dict[str, Any]]) -> None:
    for level, key, limit in ((64, "p50", 0.5), (64, "p99", 2.0), (200, "p99", 5.0)):
        f = figures.get(f"chatprobe@{level}")
        value = f["ttft_err_ms"][key] if f else None
        section.goals.append(
            Goal(
                f"B2 TTFT error {key} at {level} streams",
                f"<= {limit:g} ms",
                f"{fmt(value, 2)} ms" if value is not None else "-",
                None if value is None else value <= limit,
            )
        )
    for key, f in figures.items():
        if key.startswith("chatprobe-auto@"):
            value = f["ttft_err_ms"]["p99"]
            section.goals.append(
                Goal(
                    f"B2 TTFT error p99 at {key.split('@')[1]} streams, "
                    "chatprobe load --processes auto",
                    "<= 5 ms",
                    f"{fmt(value, 2)} ms with {f['processes']} process(es)"
                    if value is not None
                    else "-",
                    None if value is None else value <= 5.0,
                    f"{f['load_cpus']} CPU(s) for load processes here",
                )
            )
    covers = {
        key: f["bound_covers"]
        for key, f in figures.items()
        if key.startswith("chatprobe@") and "open" not in key and f["bound_covers"] is not None
    }
    if covers:
        worst = min(covers, key=lambda k: covers[k])
        section.goals.append(
            Goal(
                "B2 the client's error bound covers its TTFT error, every level",
                ">= 99% of streams",
                ", ".join(f"{k.split('@')[1]}: {100 * v:.1f}%" for k, v in covers.items()),
                covers[worst] >= 0.99,
                f"+{SERVER_FLOOR_MS:g} ms server floor",
            )
        )
