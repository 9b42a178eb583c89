"""Helpers for monitor tests: probes written straight into a history, at chosen times.

The rows go through :meth:`History.write_probe` and :meth:`History.end_round`, so events
come from the real detection rules; only the requests are made up (samples from
:func:`chatprobe.results.samples.new_sample`, the same fields a real probe has).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from chatprobe.monitor.detect import LatencyRule
from chatprobe.monitor.store import History, ProbeRow, StoredFinding, TargetRow
from chatprobe.results.samples import new_sample

HOSTILE = "<script>alert('x')</script> **bold** | pipe & <b>tag</b>"
START = 1_796_000_400.0  # a whole hour, monitor time
CASES = ("plain", "stream-usage", "bad-key")


def probe(
    history: History,
    target: TargetRow,
    run_id: int,
    *,
    t: float,
    name: str,
    round: int,
    kind: str = "contract",
    status: int | None = 200,
    error_class: str | None = None,
    ttft_ms: float | None = 20.0,
    counted: bool = True,
    findings: Sequence[StoredFinding] = (),
    input_tokens: int | None = None,
    prompt_tokens: int | None = 12,
) -> int:
    """Write one made-up probe; returns its id."""
    ok = error_class is None
    sample = new_sample(
        provider=target.provider,
        model=target.model,
        status=status,
        error_class=error_class,
        error_detail="" if ok else f"HTTP {status}",
        ttft_ms=ttft_ms if ok else None,
        ttfb_ms=ttft_ms if ok else None,
        e2e_ms=(ttft_ms or 0) * 1.5 if ok else None,
        itl_ms=1.0 if ok else None,
        total_ms=(ttft_ms or 0) * 1.5 if ok else 3.0,
        output_tokens=8 if ok else 0,
        prompt_tokens=prompt_tokens if ok else None,
        request_id=f"req-{round}-{name}-{t}",
        stage=name,
        scenario="monitor",
        worker="monitor",
    )
    probe_id, _ = history.write_probe(
        ProbeRow(
            run_id=run_id,
            target_id=target.id,
            round=round,
            t=t,
            kind=kind,
            name=name,
            counted=counted,
            outcome="ok" if ok else str(error_class),
            sample=sample,
            input_tokens=input_tokens,
            case_outcome=None if kind == "latency" else ("failed" if findings else "passed"),
            findings=list(findings),
            detail="" if ok else f"HTTP {status}",
        )
    )
    return probe_id


def synthetic_history(
    path: Path, *, hours: float = 6.0, every: float = 300.0, hostile: bool = True, seed: int = 5
) -> History:
    """Two targets probed every ``every`` seconds for ``hours``: the first goes down from
    hour 2 to 2.5, fails a check (with ``HOSTILE`` text) from hour 3 to 3.5 and gets three
    times slower from hour 4; the second stays well."""
    rng = random.Random(seed)
    history = History(path, clock=60.0)
    run_id = history.start_run(argv=["monitor", "--clock", "60"], every_s=every)
    targets = [
        history.target("openrouter", "gemini-2.0-flash-001", data_source="emulated"),
        history.target("aimlapi", "gemini-2.0-flash-exp", data_source="emulated"),
    ]
    rule = LatencyRule()
    rounds = int(hours * 3600 / every)
    for r in range(rounds):
        t = START + r * every
        for k, target in enumerate(targets):
            hour = (t - START) / 3600
            down = k == 0 and 2.0 <= hour < 2.5
            slow = 3.0 if k == 0 and hour >= 4.0 else 1.0
            for j, name in enumerate((*CASES, "latency-100", "latency-1000")):
                at = t + j * 2.0
                latency = name.startswith("latency")
                if down:
                    probe(
                        history,
                        target,
                        run_id,
                        t=at,
                        name=name,
                        round=r,
                        status=503,
                        error_class="unavailable",
                        kind="latency" if latency else "contract",
                    )
                    break  # a polite round stops at the first unavailable answer
                findings = []
                if name == "bad-key":
                    findings.append(
                        StoredFinding("strict_error_envelope", "error", "deviation", "documented")
                    )
                    if k == 0 and 3.0 <= hour < 3.5:
                        message = HOSTILE if hostile else "envelope changed"
                        findings.append(
                            StoredFinding("provider_error_envelope", "error", "fail", message)
                        )
                probe(
                    history,
                    target,
                    run_id,
                    t=at,
                    name=name,
                    round=r,
                    kind="latency" if latency else "contract",
                    status=401 if name == "bad-key" else 200,
                    error_class="http_status" if name == "bad-key" else None,
                    counted=name != "bad-key",
                    ttft_ms=rng.lognormvariate(0, 0.1) * (30 if latency else 20) * slow,
                    findings=findings,
                    input_tokens=int(name.split("-")[1]) if latency else None,
                    prompt_tokens=int(int(name.split("-")[1]) * 0.7) if latency else 12,
                )
            history.end_round(target.id, t=t + 20.0, rule=rule)
    history.end_run(run_id, "duration")
    return history
