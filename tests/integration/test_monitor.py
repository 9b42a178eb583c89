"""``chatprobe monitor``'s parts: the test, the rules, the history, the exposition, the
webhook, the report and the command line. The end-to-end run against scheduled faults is
``test_monitor_acceptance.py``; the browser check of the report is
``test_monitor_report_browser.py``."""

from __future__ import annotations

import http.server
import itertools
import json
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner

from chatprobe.cli import cli
from chatprobe.durations import parse_duration
from chatprobe.emulator import Emulator, EmulatorConfig
from chatprobe.errors import ConfigError
from chatprobe.metrics import availability
from chatprobe.monitor import History, Monitor, MonitorClock, MonitorSettings
from chatprobe.monitor.detect import (
    FINDING_APPEARED,
    FINDING_DISAPPEARED,
    LATENCY_SHIFT,
    OUTAGE_ENDED,
    OUTAGE_STARTED,
    FindingState,
    LatencyRule,
    LatencySample,
    availability_change,
    finding_changes,
    latency_shift,
)
from chatprobe.monitor.exposition import METRIC_NAMES, Exposition
from chatprobe.monitor.probes import latency_body, round_specs
from chatprobe.monitor.store import MIGRATIONS, SCHEMA_VERSION, StoredFinding
from chatprobe.monitor.targets import place_targets, target_pairs
from chatprobe.monitor.uptime import UPTIME_WINDOWS
from chatprobe.monitor.webhook import Webhook, event_payload
from chatprobe.report.monitor import (
    build_monitor_report,
    build_monitor_sections,
    render_monitor_html,
    render_monitor_markdown,
    write_monitor_report,
)
from chatprobe.stats import describe_sorted, mann_whitney_u
from chatprobe.transport import retry_after_s
from tests.cli_support import run_cli
from tests.monitor_support import START, probe, synthetic_history

REPO = Path(__file__).resolve().parents[2]
HOOK_TOKEN = "T0001/B0002/hooksecret0123456789"  # the way chat webhooks carry their token


# ---------------------------------------------------------------------------- the test


def _brute_p(a: list[float], b: list[float]) -> float:
    """The two-sided permutation p of U, by enumerating every split."""
    values = a + b
    m = len(a)

    def u(x: list[float], y: list[float]) -> float:
        return sum((p > q) + 0.5 * (p == q) for p in x for q in y)

    centre = len(a) * len(b) / 2
    observed = abs(u(a, b) - centre)
    hits = total = 0
    for idx in itertools.combinations(range(len(values)), m):
        chosen = set(idx)
        x = [values[i] for i in idx]
        y = [values[i] for i in range(len(values)) if i not in chosen]
        total += 1
        hits += abs(u(x, y) - centre) >= observed - 1e-9
    return hits / total


@pytest.mark.parametrize("seed", range(12))
def test_mann_whitney_exact_p_equals_the_permutation_p(seed: int) -> None:
    rng = random.Random(seed)
    m, n = rng.randint(1, 5), rng.randint(1, 6)
    if seed % 2:  # ties across and within the sides
        a = [float(rng.randint(0, 3)) for _ in range(m)]
        b = [float(rng.randint(0, 3)) for _ in range(n)]
    else:
        values = [float(v) for v in rng.sample(range(1000), m + n)]
        a, b = values[:m], values[m:]
    result = mann_whitney_u(a, b)
    assert result.exact
    assert result.p == pytest.approx(_brute_p(a, b))
    assert result.u == sum((p > q) + 0.5 * (p == q) for p in a for q in b)


def test_mann_whitney_large_samples_use_the_normal_approximation() -> None:
    rng = random.Random(1)
    same = mann_whitney_u(
        [rng.gauss(0, 1) for _ in range(400)], [rng.gauss(0, 1) for _ in range(400)]
    )
    shifted = mann_whitney_u(
        [rng.gauss(1, 1) for _ in range(400)], [rng.gauss(0, 1) for _ in range(400)]
    )
    assert not same.exact and same.p > 0.01
    assert shifted.p < 1e-20 and shifted.effect > 0.7
    separate = mann_whitney_u([10.0, 11.0, 12.0, 13.0, 14.0], [float(i) for i in range(18)])
    assert separate.exact  # ties with the other side, few values: still exact
    with pytest.raises(ValueError):
        mann_whitney_u([], [1.0])


# ---------------------------------------------------------------------------- rules


def _rounds(values: list[list[tuple[str, float]]], start: int = 0) -> list[LatencySample]:
    return [
        LatencySample(start + r, name, value, float(start + r) * 300 + k)
        for r, items in enumerate(values)
        for k, (name, value) in enumerate(items)
    ]


def _round(rng: random.Random, scale: float = 1.0) -> list[tuple[str, float]]:
    return [
        ("plain", 40 * scale * rng.lognormvariate(0, 0.25)),
        ("stream-usage", 25 * scale * rng.lognormvariate(0, 0.25)),
        ("tool-call", 45 * scale * rng.lognormvariate(0, 0.25)),
        ("latency-100", 30 * scale * rng.lognormvariate(0, 0.25)),
        ("latency-1000", 90 * scale * rng.lognormvariate(0, 0.25)),
    ]


def test_no_latency_shift_is_reported_when_nothing_changes() -> None:
    rng = random.Random(11)
    rule = LatencyRule()
    samples = _rounds([_round(rng) for _ in range(400)])
    keep = rule.max_baseline + 5 * rule.max_rounds
    fired = [
        r
        for r in range(4, 400)
        if latency_shift([s for s in samples if s.round <= r][-keep:], rule, t=0.0) is not None
    ]
    assert fired == []


def test_a_latency_step_is_reported_once_it_held_two_rounds_then_cools_down() -> None:
    rng = random.Random(3)
    rule = LatencyRule()
    before = [_round(rng) for _ in range(12)]
    after = [_round(rng, 3.0) for _ in range(10)]
    samples = _rounds(before + after)
    assert latency_shift([s for s in samples if s.round <= 12], rule, t=1.0) is None
    event = latency_shift([s for s in samples if s.round <= 13], rule, t=1.0)
    assert event is not None and event.kind == LATENCY_SHIFT
    assert event.details["direction"] == "up" and 2.2 < event.details["ratio"] < 4
    assert event.details["p"] < rule.alpha and event.details["since"] == 12 * 300
    assert event.details["n_recent"] == 10
    # cooldown: the next test only uses values since the window that fired
    since = [s for s in samples if s.t >= event.details["since"]]
    fired = [
        r for r in range(14, 22) if latency_shift([s for s in since if s.round <= r], rule, t=0)
    ]
    assert fired == []


def test_one_slow_round_is_not_a_shift() -> None:
    rng = random.Random(8)
    samples = _rounds([_round(rng) for _ in range(12)] + [_round(rng, 4.0)] + [_round(rng)])
    rule = LatencyRule()
    assert [
        r for r in (12, 13) if latency_shift([s for s in samples if s.round <= r], rule, t=0)
    ] == []


@pytest.mark.parametrize("seed", range(6))
def test_a_step_inside_a_round_is_reported_on_one_of_the_next_two(seed: int) -> None:
    rng = random.Random(seed)
    rule = LatencyRule()
    values = [_round(rng) for _ in range(12)]
    straddling = _round(rng)
    values.append(straddling[:2] + [(n, 3 * v) for n, v in straddling[2:]])  # half and half
    values += [_round(rng, 3.0) for _ in range(6)]
    samples = _rounds(values)
    fired = [
        r for r in range(12, 19) if latency_shift([s for s in samples if s.round <= r], rule, t=0)
    ]
    assert fired and fired[0] in (13, 14), fired  # two rounds held, the first may be mixed


def test_a_small_significant_shift_is_not_reported() -> None:
    rng = random.Random(5)
    tight = [[(n, v * rng.lognormvariate(0, 0.01)) for n, v in _round(random.Random(0))]]
    before = [[(n, v * rng.lognormvariate(0, 0.01)) for n, v in tight[0]] for _ in range(12)]
    after = [[(n, v * 1.1) for n, v in before[0]]] * 2
    rule = LatencyRule()
    samples = _rounds(before + after)
    recent = [s.value for s in samples if s.round == 12]
    assert mann_whitney_u(recent, [s.value for s in samples if s.round < 12]).p > 0
    loose = LatencyRule(min_ratio=1.05)
    assert latency_shift(samples, loose, t=0) is not None  # significant ...
    assert latency_shift(samples, rule, t=0) is None  # ... but 1.1x is below 1.5x


def test_availability_and_finding_transitions() -> None:
    assert availability_change(None, 1, t=1, probe="plain", outcome="ok", detail="") is None
    start = availability_change(None, 0, t=2, probe="plain", outcome="unavailable", detail="503")
    assert (
        start is not None and start.kind == OUTAGE_STARTED and "unavailable: 503" in start.message
    )
    assert availability_change(0, 0, t=3, probe="plain", outcome="unavailable", detail="") is None
    assert availability_change(0, None, t=3, probe="x", outcome="rate_limited", detail="") is None
    end = availability_change(0, 1, t=903, probe="plain", outcome="ok", detail="", down_since=3)
    assert end is not None and end.kind == OUTAGE_ENDED and end.details["down_s"] == 900
    assert "15m down" in end.message
    before = {"a": FindingState("error", "fail", "x"), "b": FindingState("warning", "warn", "y")}
    after = {"b": FindingState("warning", "warn", "y"), "c": FindingState("error", "fail", "z")}
    events = finding_changes(before, after, case="plain", t=5)
    assert [(e.kind, e.subject) for e in events] == [
        (FINDING_APPEARED, "plain/c"),
        (FINDING_DISAPPEARED, "plain/a"),
    ]


def test_uptime_uses_the_one_availability_formula() -> None:
    assert availability(8, 2, 0) == 0.8
    assert availability(8, 4, 2) == 0.8  # two of the four failures were 429: left out
    assert availability(0, 3, 3) is None


# ---------------------------------------------------------------------------- the history


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    with History(tmp_path / "monitor.sqlite", clock=60) as h:
        yield h


def test_a_probe_is_written_whole_or_not_at_all(history: History) -> None:
    target = history.target("openrouter", "m", data_source="emulated")
    run = history.start_run(argv=[], every_s=300)
    bad = StoredFinding("check", "error", "fail", None)  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError):
        probe(history, target, run, t=START, name="plain", round=0, findings=[bad])
    assert history.counts()["probes"] == 0 and history.counts()["events"] == 0
    probe(history, target, run, t=START, name="plain", round=0)
    assert history.counts()["probes"] == 1 and history.integrity() == "ok"


def test_detection_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    with History(path, clock=60) as h:
        target = h.target("openrouter", "m", data_source="live")
        run = h.start_run(argv=[], every_s=300)
        probe(h, target, run, t=START, name="plain", round=0)
        probe(
            h,
            target,
            run,
            t=START + 300,
            name="plain",
            round=1,
            status=503,
            error_class="unavailable",
        )
    with History(path, clock=60) as h:  # "restarted": only the rows carry state
        target = h.targets()[0]
        run = h.start_run(argv=[], every_s=300)
        probe(
            h,
            target,
            run,
            t=START + 600,
            name="plain",
            round=2,
            status=503,
            error_class="unavailable",
        )
        probe(h, target, run, t=START + 900, name="plain", round=3)
        kinds = [(e.event.kind, e.event.details.get("down_s")) for e in h.events()]
        assert kinds == [(OUTAGE_STARTED, None), (OUTAGE_ENDED, 600.0)]
        assert [r["ended"] for r in h.runs()] == ["lost", None]
        assert h.next_round(target.id) == 4


def test_an_error_case_the_provider_could_not_serve_starts_an_outage(history: History) -> None:
    """The error case expects a 4xx and is not counted in uptime, but a 503 (or no answer)
    in its place is an outage: when it is the first probe inside one, the monitor's
    Retry-After hold would otherwise skip the outage without a trace."""
    target = history.target("openrouter", "m", data_source="emulated")
    run = history.start_run(argv=[], every_s=300)

    def error_case(t: float, status: int | None, error_class: str) -> None:
        probe(history, target, run, t=t, name="bad-key", round=int(t), counted=False,
              status=status, error_class=error_class)  # fmt: skip

    probe(history, target, run, t=START, name="plain", round=0)
    error_case(START + 1, 401, "http_status")  # its expected answer: nothing to say
    error_case(START + 2, 429, "rate_limited")  # slow down, not down
    assert history.events() == []
    error_case(START + 300, 503, "unavailable")
    error_case(START + 600, None, "connect_error")  # still down: no second event
    probe(history, target, run, t=START + 900, name="bad-key", round=900, counted=False,
          status=401, error_class="http_status")  # fmt: skip
    assert [e.event.kind for e in history.events()] == [OUTAGE_STARTED]  # a 401 ends nothing
    probe(history, target, run, t=START + 1200, name="plain", round=1200)
    events = [(e.event.kind, e.event.details) for e in history.events()]
    assert events == [
        (OUTAGE_STARTED, {"probe": "bad-key", "outcome": "unavailable"}),
        (OUTAGE_ENDED, {"probe": "plain", "down_s": 900.0}),
    ]
    # uptime still counts only the probes that expect success
    (day,) = history.uptime(target.id, START + 1200, (("1d", 86400.0),))
    assert (day.ok, day.errored) == (2, 0)


def test_migrations_bring_an_older_history_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("BEGIN")
    raw.execute("PRAGMA application_id = 1668313698")
    MIGRATIONS[0](raw)  # a version-1 history, as the first release wrote it
    raw.execute("PRAGMA user_version = 1")
    raw.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)", [("clock", "60.0"), ("epoch", "1.0")]
    )
    raw.execute("INSERT INTO targets (provider, model) VALUES ('openrouter', 'm')")
    raw.execute(
        "INSERT INTO runs (started_t, ended, ended_t) VALUES (?, 'stopped', ?)", (START, START)
    )
    raw.execute(
        "INSERT INTO probes (run_id, target_id, round, t, kind, name, counted, up, outcome, "
        "status, ttft_ms, sample) VALUES (1, 1, 0, ?, 'contract', 'plain', 1, 1, 'ok', 200, "
        "21.5, '{}')",
        (START,),
    )
    raw.execute(
        "INSERT INTO events (target_id, probe_id, t, kind, message) VALUES (1, 1, ?, ?, 'x')",
        (START, OUTAGE_ENDED),
    )
    raw.execute("COMMIT")
    raw.close()
    with History(path) as h:
        assert h.version == SCHEMA_VERSION == 2
        assert h.clock.factor == 60.0
        (target,) = h.targets()
        assert [p["ttft_ms"] for p in h.probes(target.id)] == [21.5]
        assert [e.delivered for e in h.events()] == [None]  # the column version 2 added
        probe(h, target, h.start_run(argv=[], every_s=300), t=START + 300, name="plain", round=1)
        assert h.uptime(target.id, START + 300)[1].ok == 2
        assert h.rollup(START + 30 * 86400) == 2  # the version-2 tables work
        assert h.integrity() == "ok"


def test_files_that_are_not_a_usable_history_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as raw:
        raw.execute("CREATE TABLE mine (x)")
    with pytest.raises(ConfigError, match="not a chatprobe monitor database"):
        History(other)
    text = tmp_path / "notes.sqlite"
    text.write_text("not a database at all, just some words " * 100)
    with pytest.raises(ConfigError, match="not a usable monitor database"):
        History(text)
    newer = tmp_path / "newer.sqlite"
    History(newer).close()
    with sqlite3.connect(newer) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigError, match="newer chatprobe"):
        History(newer)
    clocked = tmp_path / "clocked.sqlite"
    History(clocked, clock=600).close()
    with pytest.raises(ConfigError, match="--clock 600"):
        History(clocked, clock=1)
    with History(clocked) as h:  # no --clock: the history's own
        assert h.clock.factor == 600
    with pytest.raises(ConfigError, match="no such monitor database"):
        History(tmp_path / "missing.sqlite", create=False)


def test_uptime_windows_leave_rate_limited_probes_out(history: History) -> None:
    target = history.target("openrouter", "m", data_source="live")
    run = history.start_run(argv=[], every_s=60)
    outcomes = ["ok"] * 6 + ["unavailable"] * 2 + ["rate_limited"] * 3
    for i, outcome in enumerate(outcomes):
        error = None if outcome == "ok" else outcome
        status = {None: 200, "unavailable": 503, "rate_limited": 429}[error]
        probe(
            history,
            target,
            run,
            t=START + 60 * i,
            name="plain",
            round=i,
            status=status,
            error_class=error,
        )
    probe(
        history,
        target,
        run,
        t=START + 700,
        name="bad-key",
        round=12,
        status=401,
        error_class="http_status",
        counted=False,
    )
    now = START + 700
    by = {u.window: u for u in history.uptime(target.id, now)}
    assert [w for w, _ in UPTIME_WINDOWS] == list(by)
    assert (by["1h"].ok, by["1h"].errored, by["1h"].rate_limited) == (6, 2, 3)
    assert by["1h"].uptime == 0.75  # 6 / (6 + 2): 429s and the error case left out
    # the last 300 s (t > 400): one 503 and three 429s
    assert (by["5m"].ok, by["5m"].errored, by["5m"].rate_limited) == (0, 1, 3)
    assert by["5m"].uptime == 0.0


def test_retention_rolls_old_hours_up_without_changing_uptime(history: History) -> None:
    target = history.target("openrouter", "m", data_source="live")
    run = history.start_run(argv=[], every_s=300)
    rng = random.Random(2)
    ttfts: dict[float, list[float]] = {}
    for i in range(48):  # four hours, one probe every five minutes
        t = START + 300 * i
        down = 12 <= i < 15
        ttft = 20 * rng.lognormvariate(0, 0.3)
        findings = [StoredFinding("provider_error_envelope", "error", "fail", "m")] if i < 6 else []
        probe(
            history,
            target,
            run,
            t=t,
            name="plain",
            round=i,
            ttft_ms=ttft,
            status=503 if down else 200,
            error_class="unavailable" if down else None,
            findings=findings,
        )
        if not down:
            ttfts.setdefault((t // 3600) * 3600, []).append(ttft)
    now = START + 300 * 47
    before = history.uptime(target.id, now, (("4h", 4 * 3600.0), ("3h", 3 * 3600.0)))
    events = len(history.events())
    rolled = history.rollup(START + 2 * 3600 + 1800)  # hours 0 and 1 go, hour 2 stays raw
    assert rolled == 24 and history.counts()["probes"] == 24
    after = history.uptime(target.id, now, (("4h", 4 * 3600.0), ("3h", 3 * 3600.0)))
    assert before == after
    hourly = [h for h in history.hourly(target.id) if h["name"] == "*"]
    assert [h["hour"] for h in hourly] == [START, START + 3600]
    for h in hourly:
        expected = describe_sorted(sorted(ttfts[h["hour"]]))
        assert h["ttft"]["p50"] == pytest.approx(expected["p50"])
        assert h["ttft"]["p99"] == pytest.approx(expected["p99"])
    assert hourly[1]["errored"] == 3 and hourly[1]["ok"] == 9
    assert history.hourly_findings(target.id)[0]["count"] == 6
    assert len(history.events()) == events and history.integrity() == "ok"
    assert history.rollup(START + 2 * 3600 + 1800) == 0  # idempotent


# ---------------------------------------------------------------------------- probes


def test_latency_prompts_are_fresh_and_about_the_requested_size() -> None:
    rng = random.Random(0)
    small = latency_body(100, "aa11bb22", rng)
    large = latency_body(1000, "cc33dd44", rng)
    text = large["messages"][0]["content"]
    assert text.startswith("[probe cc33dd44]")  # the nonce first: no shared prefix
    from chatprobe.tokens import count_tokens

    # built to the size by the tokenizer (joining the head and the filler may merge a token)
    assert abs(count_tokens(text) - 1000) <= 2
    assert abs(count_tokens(small["messages"][0]["content"]) - 100) <= 2
    assert large["stream"] and large["stream_options"] == {"include_usage": True}


def test_a_round_holds_the_monitor_suite_and_the_latency_probes() -> None:
    specs = round_specs("openrouter", "gemini-2.0-flash-001", sizes=(100, 1000))
    assert [s.name for s in specs] == [
        "plain",
        "stream-usage",
        "tool-call",
        "bad-key",
        "latency-100",
        "latency-1000",
    ]
    assert [s.counted for s in specs] == [True, True, True, False, True, True]
    only = round_specs("aimlapi", "gemini-2.0-flash-exp", cases=("bad-key",), sizes=())
    assert [s.name for s in only] == ["bad-key"]
    with pytest.raises(ConfigError, match="no case 'nope'"):
        round_specs("openrouter", "gemini-2.0-flash-001", cases=("nope",))


def test_fault_cases_are_sent_only_to_the_emulator(tmp_path: Path) -> None:
    suite = tmp_path / "faulty.yaml"
    suite.write_text(
        "cases:\n"
        "  - name: hello\n"
        "    request: {body: {messages: [{role: user, content: hi}]}}\n"
        "  - name: broken\n"
        "    request: {fault: missing_done, stream: true, "
        "body: {messages: [{role: user, content: hi}]}}\n"
        "    expect: {fails: [stream_done_last]}\n"
    )
    live = round_specs("openrouter", "gemini-2.0-flash-001", suite=suite, sizes=())
    emulated = round_specs(
        "openrouter", "gemini-2.0-flash-001", suite=suite, sizes=(), emulated=True
    )
    assert [s.name for s in live] == ["hello"]
    assert [(s.name, s.counted) for s in emulated] == [("hello", True), ("broken", False)]


def test_targets_follow_the_shared_provider_vocabulary() -> None:
    assert target_pairs(["openrouter"], []) == [("openrouter", "gemini-2.0-flash-001")]
    assert target_pairs(["aimlapi"], ["gemini-1.5-flash", "gemini-2.0-flash-exp"]) == [
        ("aimlapi", "gemini-1.5-flash"),
        ("aimlapi", "gemini-2.0-flash-exp"),
    ]
    with pytest.raises(Exception, match="no-such-model"):
        target_pairs(["openrouter"], ["no-such-model"])
    placed = place_targets(
        [("openrouter", "gemini-2.0-flash-001")], emulator_url="http://127.0.0.1:9"
    )
    (target,) = placed.targets
    assert target.data_source == "emulated"
    assert target.send_to.base_url == "http://127.0.0.1:9/openrouter/api/v1"
    assert target.profile.base_url.startswith("https://openrouter.ai")  # judged as documented


def test_the_clock_compresses_monitor_time() -> None:
    fast = MonitorClock(600.0, epoch=time.time() - 10)
    slow = MonitorClock(1.0)
    a, b = fast.now(), slow.now()
    time.sleep(0.05)
    assert fast.now() - a >= 600 * 0.04 and slow.now() - b < 1
    # ten seconds after the epoch, monitor time is 6,000 s past it
    assert a - (time.time() - 10) == pytest.approx(6000, abs=60)
    assert fast.real_seconds(300) == 0.5 and fast.monitor_seconds(1) == 600


def test_retry_after_and_day_durations() -> None:
    assert retry_after_s("7") == 7.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470) == 10.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490) == 0.0
    assert retry_after_s("soon") is None and retry_after_s(None) is None
    assert parse_duration("7d") == 7 * 86400 and parse_duration("1.5d") == 1.5 * 86400


# ---------------------------------------------------------------------------- running


# Served by the shared ``emulator`` fixture (tests/conftest.py).
EMULATOR_CONFIG = EmulatorConfig(
    providers=("openrouter",), ttft_ms=5, itl_ms=1, output_tokens=(6, 6), rate_limit_rpm=0
)


def _short_run(emu: Emulator, path: Path, **kwargs: Any) -> tuple[History, Any]:
    placed = place_targets([("openrouter", "gemini-2.0-flash-001")], emulator_url=emu.url())
    specs = {t.label: round_specs(t.ref, t.model, emulated=True) for t in placed.targets}
    history = History(path, clock=600)
    settings = MonitorSettings(every_s=300, duration_s=900, seed=1)
    monitor = Monitor(history, placed.targets, specs, settings, **kwargs)
    return history, monitor.run()


def test_the_metrics_endpoint_parses_and_shows_the_labelled_series(
    emulator: Emulator, tmp_path: Path
) -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
    from prometheus_client.parser import text_string_to_metric_families as parse

    exposition = Exposition(clock=600)
    url = exposition.serve("127.0.0.1", 0)
    try:
        history, summary = _short_run(emulator, tmp_path / "m.sqlite", exposition=exposition)
        assert summary.probes >= 12 and summary.reason == "duration"
        text = httpx.get(url, trust_env=False).text
        scraped = httpx.get(
            url, headers={"Accept": "application/openmetrics-text"}, trust_env=False
        )
    finally:
        exposition.close()
    assert url.startswith("http://127.0.0.1:")
    assert scraped.headers["content-type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in parse(text)}
    assert list(om_parse(scraped.text))  # the OpenMetrics variant parses as well
    target = {"provider": "openrouter", "model": "gemini-2.0-flash-001"}

    def samples(name: str, family: str | None = None) -> list[Any]:
        return [s for s in families[family or name].samples if s.name == name]

    for name in ("chatprobe_monitor_ttft_seconds", "chatprobe_monitor_e2e_seconds"):
        assert families[name].type == "histogram"
        buckets = samples(name + "_bucket", name)
        probes = {s.labels["probe"] for s in buckets}
        assert {"plain", "latency-100", "latency-1000"} <= probes
        assert all(s.labels.items() >= target.items() for s in buckets)
        assert any(s.labels["le"] == "+Inf" and s.value >= 1 for s in buckets)
    outcomes: dict[str, float] = {}
    for s in samples("chatprobe_monitor_probes_total", "chatprobe_monitor_probes"):
        outcomes[s.labels["outcome"]] = outcomes.get(s.labels["outcome"], 0) + s.value
    assert outcomes["ok"] >= 10 and outcomes["http_status"] >= 2  # the wrong-key case
    uptime = {s.labels["window"]: s.value for s in samples("chatprobe_monitor_uptime_ratio")}
    assert uptime == {"5m": 1.0, "1h": 1.0, "1d": 1.0, "7d": 1.0}
    findings = samples("chatprobe_monitor_findings_total", "chatprobe_monitor_findings")
    assert {"check", "severity", "status", "probe"} <= set(findings[0].labels)
    assert samples("chatprobe_monitor_up")[0].value == 1
    assert {s.labels["probe"] for s in samples("chatprobe_monitor_prompt_tokens")} >= {
        "latency-100",
        "latency-1000",
    }
    (info,) = samples("chatprobe_monitor_info")
    assert info.labels["clock"] == "600" and info.labels["version"]
    history.close()


def test_the_grafana_dashboard_uses_only_exposed_series() -> None:
    dashboard = json.loads((REPO / "docs/grafana/chatprobe-monitor.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    used = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for e in exprs
        for name in re.findall(r"chatprobe_monitor_[a-z0-9_]+", e)
    }
    assert used and used <= set(METRIC_NAMES)
    assert {"chatprobe_monitor_uptime_ratio", "chatprobe_monitor_ttft_seconds"} <= used
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


class _Receiver(http.server.BaseHTTPRequestHandler):
    """Answers 500 to the first ``fail`` posts, then 204; keeps the bodies."""

    fail = 2
    bodies: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).bodies.append(body)
        failing = len(type(self).bodies) <= type(self).fail
        self.send_response(500 if failing else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_the_webhook_retries_then_delivers_and_failures_are_not_fatal(tmp_path: Path) -> None:
    history = synthetic_history(tmp_path / "h.sqlite", hours=3)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    said: list[str] = []
    try:
        target = history.targets()[0]
        first = history.events()[0]
        url = f"http://127.0.0.1:{server.server_address[1]}/hook?token=sk-or-v1-webhooksecret12345"
        hook = Webhook(url, history=history, say=said.append, backoff_s=0.01)
        hook.post(target, first, clock=60)
        hook.close()
        dead = Webhook(
            "http://127.0.0.1:9/hook", history=history, say=said.append, backoff_s=0.01, attempts=2
        )
        dead.post(target, history.events()[1], clock=60)
        dead.close()
    finally:
        server.shutdown()
    assert len(_Receiver.bodies) == 3  # two 500s, then delivered
    body = orjson.loads(_Receiver.bodies[-1])
    assert body == event_payload(target, first, clock=60)
    assert body["kind"] == OUTAGE_STARTED and body["provider"] == "openrouter"
    assert {"source", "time", "t", "message", "details", "model", "clock"} <= set(body)
    delivered = {e.id: e.delivered for e in history.events()}
    assert delivered[first.id] == "ok"
    assert delivered[history.events()[1].id].startswith("failed: ConnectError after 2 attempts")
    assert said and all("webhooksecret" not in line for line in said)
    history.close()


# ---------------------------------------------------------------------------- the report


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("monitor-report")
    with synthetic_history(root / "h.sqlite") as history:
        return write_monitor_report(history, root / "report").parent


def test_the_report_model_holds_uptime_bins_findings_and_events(tmp_path: Path) -> None:
    with synthetic_history(tmp_path / "h.sqlite") as history:
        report = build_monitor_report(history)
    first, second = report.targets
    assert report.emulated and report.clock == 60 and report.bin_s == 900
    kinds = [e.kind for e in first.events]
    assert kinds == [
        OUTAGE_STARTED,
        OUTAGE_ENDED,
        FINDING_APPEARED,
        FINDING_DISAPPEARED,
        LATENCY_SHIFT,
    ]
    assert second.events == []
    (span,) = first.findings
    assert (span.case, span.check, span.status) == ("bad-key", "provider_error_envelope", "fail")
    assert span.last_t - span.first_t == pytest.approx(1800 - 300, abs=10)
    assert [round(h.uptime or 0, 3) for h in first.hours][:4] == [1.0, 1.0, 0.8, 1.0]
    late = [b.ttft_ms.p50 for b in first.bins if b.start_t >= START + 4.5 * 3600]
    early = [b.ttft_ms.p50 for b in first.bins if b.start_t < START + 1.5 * 3600]
    assert min(late) > 2 * max(early)  # type: ignore[operator]
    assert [(p.name, p.requested, p.reported_p50) for p in first.prompts] == [
        ("latency-100", 100, 70.0),
        ("latency-1000", 1000, 700.0),
    ]


def test_report_files_escape_provider_text_and_agree(report_dir: Path) -> None:
    from tests.report_support import TableParser, md_tables, norm

    page = (report_dir / "index.html").read_text()
    md = (report_dir / "report.md").read_text()
    data = orjson.loads((report_dir / "report.json").read_bytes())
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "<script>" not in md and "<b>" not in md and "&lt;script&gt;" in md
    assert data["schema_version"] == 1 and len(data["targets"]) == 2
    assert data["targets"][0]["events"][0]["kind"] == OUTAGE_STARTED
    parser = TableParser()
    parser.feed(page)
    html_tables = [[[norm(c) for c in row] for row in t] for t in parser.tables.values()]
    md_rows = [[[norm(c) for c in row] for row in t] for t in md_tables(md)]
    assert html_tables == md_rows  # the same tables, cell by cell
    assert page.count("<svg") >= 7  # 3 charts per target + the findings timeline


def test_report_sections_name_every_target(tmp_path: Path) -> None:
    with synthetic_history(tmp_path / "h.sqlite", hours=1.5) as history:
        report = build_monitor_report(history)
    sections = build_monitor_sections(report)
    assert [s.id for s in sections] == [
        "summary",
        "uptime",
        "target-1",
        "target-2",
        "runs",
        "method",
    ]
    html = render_monitor_html(report, sections)
    md = render_monitor_markdown(report, sections)
    assert "openrouter · gemini-2.0-flash-001" in html and "aimlapi" in md


# ---------------------------------------------------------------------------- command line


def _cli(*args: str) -> tuple[int, str, str]:
    result = run_cli(*args, timeout=120)
    return result.returncode, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--every", "0"], "--every"),
        (["--case", "nope"], "no case 'nope'"),
        (["--sizes", "many"], "'many' is not a number of tokens"),
        (["--retention", "2h"], "must be at least 86400s"),
        (["--webhook", "ftp://x"], "--webhook"),
        (["--model", "no-such-model"], "no-such-model"),
    ],
)
def test_bad_monitor_options_are_one_line(args: list[str], words: str, tmp_path: Path) -> None:
    code, out, err = _cli(
        "monitor",
        "--provider",
        "openrouter",
        "--emulator-url",
        "http://127.0.0.1:9",
        "--db",
        str(tmp_path / "m.sqlite"),
        *args,
    )
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and words in lines[0], err
    assert lines[0].startswith("chatprobe: error: ") and out == ""


def test_a_broken_history_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "m.sqlite"
    bad.write_text("hello " * 200)
    code, _, err = _cli(
        "monitor",
        "--provider",
        "openrouter",
        "--emulator-url",
        "http://127.0.0.1:9",
        "--db",
        str(bad),
    )
    assert code == 2 and err.count("\n") == 1 and "not a usable monitor database" in err
    code, _, err = _cli("report", "--monitor", str(tmp_path / "missing.sqlite"))
    assert code == 2 and err.count("\n") == 1 and "no such monitor database" in err


def test_report_monitor_writes_the_three_files(report_dir: Path, tmp_path: Path) -> None:
    db = report_dir.parent / "h.sqlite"
    result = CliRunner().invoke(cli, ["report", "--monitor", str(db), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert Path(result.output.strip()) == tmp_path / "index.html"
    assert {p.name for p in tmp_path.iterdir()} == {"index.html", "report.md", "report.json"}


def test_ctrl_c_finishes_the_probe_in_hand_and_exits_0(emulator: Emulator, tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatprobe.cli",
            "monitor",
            "--emulator-url",
            emulator.url(),
            "--provider",
            "openrouter",
            "--every",
            "1m",
            "--db",
            str(db),
            "--webhook",
            f"http://127.0.0.1:9/hook/{HOOK_TOKEN}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _probes(db) and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    (line,) = out.strip().splitlines()
    assert line.startswith("chatprobe monitor: stopped after ") and "uptime 1h" in line
    with History(db, create=False) as h:
        assert [r["ended"] for r in h.runs()] == ["stopped"] and h.integrity() == "ok"
        assert h.counts()["probes"] >= 1
        argv = h.runs()[0]["argv"]
        assert "<redacted>" in argv and not any(HOOK_TOKEN in a for a in argv)
    assert HOOK_TOKEN not in err


def _probes(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as raw:
            return int(raw.execute("SELECT count(*) FROM probes").fetchone()[0])
    except sqlite3.Error:
        return 0
