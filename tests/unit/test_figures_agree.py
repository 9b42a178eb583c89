"""One run, one set of figures: summary.json, report.json and the terminal table agree.

Results folders are built with the real builders from hand-made request records with known
timings: a warm-up, errors (HTTP 500, 429), one-token answers (no ITL), a stream without
[DONE], prompt tokens reported as 0, and samples shipped by two workers and interleaved as a
master writes them. Every figure of every group must be identical in ``summary.json`` and
``report.json``, and the terminal table must print exactly those values. A second folder is
an open-loop request-count run. Then: a profile edited after a run changes nothing in its
report (the report never reads ``specs/providers/``), and a folder written before snapshots
existed is reported with a warning, never with today's prices.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from chatprobe import profiles
from chatprobe.load.scenario import OpenLoop, Stage
from chatprobe.metrics import GroupFigures
from chatprobe.output.load import TABLES, fmt_seconds, print_summary, summary_row
from chatprobe.profiles import load_profile
from chatprobe.record import RequestRecord, TimedEvent
from chatprobe.report import build_report_files
from chatprobe.results import PLAN, PROFILES, SUMMARY
from chatprobe.sse import ServerSentEvent
from tests.results_support import plan_for, sample_of, target, write_load_folder

MS = 1_000_000
FAST, SLOW = ("aimlapi", "gemini-2.0-flash-exp"), ("aimlapi", "gemini-1.5-flash")
GROUP_KEYS = [
    f.name for f in GroupFigures.__dataclass_fields__.values() if f.metadata.get("json", True)
]


def _chunk(content: str | None, finish: str | None = None, usage: Any = None) -> ServerSentEvent:
    delta = {} if content is None else {"content": content}
    payload: dict[str, Any] = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        payload["usage"] = usage
    return ServerSentEvent(json.dumps(payload))


def answer(
    key: tuple[str, str],
    *,
    ttft_ms: float,
    gap_ms: float,
    tokens: int,
    prompt_tokens: int,
    done: bool = True,
    lag_ms: float | None = None,
) -> RequestRecord:
    """A streamed answer: headers at 2 ms, one token per chunk every ``gap_ms``."""
    record = RequestRecord(provider=key[0], model=key[1], stream=True, status=200)
    record.t0_ns, record.t_headers_ns, record.wall_start = 1000 * MS, 1002 * MS, 1.7e9
    if lag_ms is not None:
        record.t_sched_ns = record.t0_ns - int(lag_ms * MS)
    record.response_headers = {"content-type": "text/event-stream"}
    t = record.t0_ns + int(ttft_ms * MS)
    events = [TimedEvent(record.t_headers_ns, _chunk(""))]
    for k in range(tokens):
        events.append(TimedEvent(t + int(k * gap_ms * MS), _chunk("w")))
    end = events[-1].t_ns
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": tokens}
    events.append(TimedEvent(end, _chunk(None, "stop", usage)))
    if done:
        events.append(TimedEvent(end, ServerSentEvent("[DONE]")))
    record.events, record.t_end_ns = events, end + MS
    return record.finish()


def refused(key: tuple[str, str], status: int, message: str) -> RequestRecord:
    record = RequestRecord(provider=key[0], model=key[1], stream=True, status=status)
    record.t0_ns, record.t_headers_ns, record.t_end_ns = 1000 * MS, 1030 * MS, 1031 * MS
    record.response_headers = {"content-type": "application/json"}
    record.body = orjson.dumps({"error": {"code": status, "message": message}})
    return record.finish()


def closed_loop_samples() -> list[list[dict[str, Any]]]:
    """Two workers' samples: 48 requests over 24 s, the first 6 s warm-up."""
    workers: list[list[dict[str, Any]]] = [[], []]
    for i in range(48):
        key = FAST if i % 2 == 0 else SLOW
        ttft = (45.0 if key == FAST else 110.0) + (i % 7) * 13.0
        if i % 12 == 4:  # FAST
            record = refused(key, 500, "upstream overloaded")
        elif i % 12 == 9:  # SLOW
            record = refused(key, 429, "rate limit exceeded")
        else:
            record = answer(
                key,
                ttft_ms=ttft,
                gap_ms=4.0 + (i % 5),
                tokens=1 if i % 4 == 0 else 20 + i % 9,  # a quarter of the answers: one token
                prompt_tokens=0 if key == SLOW else 30,  # 1.5 Flash reports 0 (flagged)
                done=i % 12 not in (6, 7),  # complete but for [DONE]: measured, noted
            )
        offset = i * 0.5
        workers[i % 2].append(
            sample_of(
                record,
                scenario="agree",
                stage="4 users",
                users=4,
                worker=f"worker-{i % 2}",
                t_offset_s=offset,
                warmup=offset < 6.0,
                excerpt=i < 4,
            )
        )
    return workers


def open_loop_samples() -> list[list[dict[str, Any]]]:
    rows = []
    for i in range(30):
        record = answer(
            FAST, ttft_ms=40.0 + i, gap_ms=3.0, tokens=12, prompt_tokens=25, lag_ms=0.2 + i / 10
        )
        rows.append(sample_of(record, stage="10 rps", users=3, t_offset_s=i * 0.1, warmup=False))
    return [rows]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("results")
    profiles = [load_profile("aimlapi")]
    closed = write_load_folder(
        root,
        lambda folder: plan_for(
            folder,
            [target(*FAST), target(*SLOW)],
            [Stage("4 users", 24.0, 4, 0.0, 6.0)],
            slo={"ttft_ms": 150.0, "itl_ms": 7.0},
        ),
        profiles,
        closed_loop_samples(),
        end_offset_s=24.0,
    )
    opened = write_load_folder(
        root,
        lambda folder: plan_for(
            folder,
            [target(*FAST)],
            [Stage("10 rps", 600.0, 0, 0.0, 0.0, 10.0)],
            open_loop=OpenLoop(rate=10.0),
            requests=30,
            shape_kind="open_loop",
        ),
        profiles,
        open_loop_samples(),
        end_offset_s=3.4,
    )
    return [closed, opened]


@pytest.fixture(scope="module")
def report_json(folders: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    index = build_report_files(folders, out=tmp_path_factory.mktemp("report"))
    return json.loads((index.parent / "report.json").read_text())


def _summary(folder: Path) -> dict[str, Any]:
    return json.loads((folder / SUMMARY).read_text())


def _terminal(summary: dict[str, Any]) -> tuple[str, dict[str, dict[str, str]]]:
    """What ``chatprobe load`` prints (plain: the stream is no terminal), and the table
    cells by target and column."""
    out = io.StringIO()
    print_summary(summary, None, stream=out)
    text = out.getvalue()
    cells: dict[str, dict[str, str]] = {}
    columns: tuple[str, ...] = ()
    for line in text.splitlines():
        parts = [p.strip() for p in re.split(r"\s{2,}", line.strip())]
        if parts[0] == "target":  # a header row: which table follows
            columns = tuple(parts[1:])
            assert columns in TABLES
        elif columns and len(parts) == len(columns) + 1 and "/" in parts[0]:
            cells.setdefault(parts[0], {}).update(zip(columns, parts[1:], strict=True))
    return text, cells


def test_the_folders_hold_what_the_figures_need(folders: list[Path]) -> None:
    closed = _summary(folders[0])
    fast, slow = closed["groups"]
    assert fast["requests"] == slow["requests"] == 18  # 6 of 24 each in the warm-up
    assert fast["errors"] == {"http_status": 3} and slow["errors"] == {"rate_limited": 3}
    assert fast["itl_ms"]["n"] < fast["ok"]  # one-token answers have no ITL
    assert slow["cost"]["prompt_tokens_zero"] == slow["ok"]
    assert fast["anomalies"] == slow["anomalies"] == {"missing_done": 3}
    assert closed["window_s"] == 18.0
    opened = _summary(folders[1])
    # A request-count run ends at its last completion (3.4 s recorded, done at about 3.0 s).
    assert opened["latency_origin"] == "t_sched" and 2.9 < opened["window_s"] < 3.1


def test_summary_and_report_give_identical_figures(
    folders: list[Path], report_json: dict[str, Any]
) -> None:
    compared = 0
    for folder in folders:
        summary = _summary(folder)
        mine = [g for g in report_json["groups"] if g["run_id"] == folder.name]
        assert [(g["provider"], g["model"]) for g in mine] == [
            (g["provider"], g["model"]) for g in summary["groups"]
        ]
        for in_summary, in_report in zip(summary["groups"], mine, strict=True):
            for key in GROUP_KEYS:
                assert in_summary[key] == in_report[key], (folder.name, in_summary["model"], key)
                compared += 1
            assert in_report["window_s"] == summary["window_s"]
    assert compared >= 3 * len(GROUP_KEYS)


def test_the_terminal_table_prints_those_figures(
    folders: list[Path], report_json: dict[str, Any]
) -> None:
    for folder in folders:
        summary = _summary(folder)
        text, cells = _terminal(summary)
        assert f"throughput over the {fmt_seconds(summary['window_s'])} measured window" in text
        for g in (g for g in report_json["groups"] if g["run_id"] == folder.name):
            assert cells[f"{g['provider']}/{g['model']}"] == summary_row(g)
        for g in summary["groups"]:
            label = f"{g['provider']}/{g['model']}"
            zero = g["cost"]["prompt_tokens_zero"]
            assert (f"note: {label}: {zero} successful request(s) reported 0" in text) == bool(zero)
            if g["anomalies"]:
                assert f"anomalies: {label}: missing_done x3" in text
        if summary["errors"]:
            assert "errors by class (most common message):" in text
            assert "http_status x3: HTTP 500: 500: upstream overloaded (x3)" in text


def test_editing_a_profile_after_the_run_does_not_change_its_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edited = tmp_path / "profile.yaml"
    shutil.copyfile(load_profile("aimlapi").source, edited)
    profile = load_profile(str(edited))
    root = tmp_path / "results"
    folder = write_load_folder(
        root,
        lambda f: plan_for(f, [target(profile.name, FAST[1])], [Stage("4 users", 24.0, 4)]),
        [profile],
        [[s for s in closed_loop_samples()[0] if s["model"] == FAST[1]]],
        end_offset_s=24.0,
    )
    before = build_report_files([folder], out=tmp_path / "before").parent / "report.json"

    text = edited.read_text().replace("input_per_mtok: 0.10", "input_per_mtok: 9.99")
    edited.write_text(text.replace("output_per_mtok: 0.40", "output_per_mtok: 99.0"))
    profiles._load_path.cache_clear()
    assert load_profile(str(edited)).model(FAST[1]).pricing.output_per_mtok == 99.0

    def no_live_profiles(*args: object, **kwargs: object) -> None:
        raise AssertionError("a report read a live profile for a past run")

    monkeypatch.setattr(profiles, "_load_path", no_live_profiles)
    after = build_report_files([folder], out=tmp_path / "after").parent / "report.json"
    old, new = json.loads(before.read_text()), json.loads(after.read_text())
    assert old["groups"][0]["cost"] == new["groups"][0]["cost"]
    assert new["groups"][0]["cost"]["price_output_per_mtok"] == 0.40
    assert (
        new["groups"][0]["cost"]["usd_total"] == _summary(folder)["groups"][0]["cost"]["usd_total"]
    )


def test_a_folder_without_a_snapshot_says_so(folders: list[Path], tmp_path: Path) -> None:
    old = tmp_path / folders[0].name
    shutil.copytree(folders[0], old)
    (old / PROFILES).unlink()
    plan = json.loads((old / PLAN).read_text())
    for t in plan["targets"]:  # what plan.json recorded before profiles.json existed
        t.update(price_in_per_mtok=1.0, price_out_per_mtok=2.0, price_source="assumed: old")
    (old / PLAN).write_text(json.dumps(plan))
    index = build_report_files([old], out=tmp_path / "report")
    data = json.loads((index.parent / "report.json").read_text())
    assert any("without profiles.json" in w for w in data["warnings"])
    cost = data["groups"][0]["cost"]
    assert (cost["price_input_per_mtok"], cost["price_note"]) == (1.0, "assumed: old")
