"""Acceptance of issue 17: measurements that prove themselves.

Real load runs against the emulator (locust in a subprocess, bounded by request counts and a
timeout): every sample carries its client timing error bound and the summary the run's;
the stream checks run under load and report the share of streams that broke each, within
2 points of a 10% stream-rule fault; ``chatprobe calibrate`` joins a short run with the
emulator's ground truth. Counts, classes and order only; no milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from chatprobe.load.conformance import LOAD_CHECKS, LoadChecker, distinct_chunks, shape_key
from chatprobe.load.receive import KERNEL_TIMESTAMPS
from chatprobe.record import RequestRecord
from tests.conftest import CliRunner

FAULT_SCENARIO = """
targets: [{provider: openrouter, model: gemini-2.0-flash-001}]
shape: {users: 4}
requests: 200
max_tokens: 8
emulator:
  ttft_ms: 2
  itl_ms: 1
  output_tokens: 8
  faults: {"stream_rule:id_changes": 0.1}
"""


def _run_folder(root: Path) -> Path:
    (folder,) = [p for p in (root / "results").iterdir() if p.is_dir()]
    return folder


@pytest.mark.slow
def test_conformance_under_load_reports_the_faulted_share(cli: CliRunner, tmp_path: Path) -> None:
    scenario = tmp_path / "fault.yaml"
    scenario.write_text(FAULT_SCENARIO)
    done = cli("load", str(scenario), "--quiet", timeout=180)
    assert done.returncode in (0, 1), done.stderr
    folder = _run_folder(tmp_path)
    summary = orjson.loads((folder / "summary.json").read_bytes())
    (group,) = summary["groups"]
    conformance = group["conformance"]
    assert conformance["checked"] == 200  # every stream, the default share
    share = conformance["share"]["stream_same_id_created"]
    assert 0.08 <= share <= 0.12
    assert set(conformance["broken"]) == {"stream_same_id_created"}  # no other check broke
    assert "conformance under load:" in done.stdout and "stream_same_id_created" in done.stdout
    samples = [orjson.loads(x) for x in (folder / "samples.jsonl").read_bytes().splitlines()]
    assert all(isinstance(s["checks_broken"], list) for s in samples)
    # the client timing error bound: on every successful sample, and the run's in the summary
    bound = summary["timing_bound"]
    if KERNEL_TIMESTAMPS:
        assert all(s["ttft_bound_ms"] is not None for s in samples if s["error_class"] is None)
        assert all(
            s["read_bound_ms"] >= 0 and s["ttft_bound_ms"] >= 0
            for s in samples
            if s["error_class"] is None
        )
        assert 0 < bound["samples"] <= summary["measured"]
        assert bound["stamps"] == {"kernel": bound["samples"]}
        assert bound["message"] in done.stdout
        assert bound["exceeded"] == (bound["ttft_ms"]["p99"] > bound["threshold_ms"])


@pytest.mark.slow
def test_conformance_share_checks_that_share(cli: CliRunner, tmp_path: Path) -> None:
    scenario = tmp_path / "fault.yaml"
    scenario.write_text(FAULT_SCENARIO.replace("requests: 200", "requests: 40"))
    done = cli("load", str(scenario), "--quiet", "--conformance-share", "0.25", timeout=120)
    assert done.returncode in (0, 1), done.stderr
    folder = _run_folder(tmp_path)
    samples = [orjson.loads(x) for x in (folder / "samples.jsonl").read_bytes().splitlines()]
    checked = [s for s in samples if s["checks_broken"] is not None]
    assert len(checked) == 10
    summary = orjson.loads((folder / "summary.json").read_bytes())
    assert summary["groups"][0]["conformance"]["checked"] == 10


def test_conformance_share_is_validated(cli: CliRunner) -> None:
    done = cli("load", "--conformance-share", "1.5", timeout=60)
    assert done.returncode == 2
    assert "--conformance-share" in done.stderr


def test_the_checker_spreads_its_share_evenly() -> None:
    checker = LoadChecker(0.1)
    picks = [checker.due() for _ in range(100)]
    assert sum(picks) == 10
    assert all(sum(picks[i : i + 10]) == 1 for i in range(0, 100, 10))
    assert LoadChecker(0.0).due() is False
    with pytest.raises(ValueError):
        LoadChecker(2.0)
    assert "stream_same_id_created" in LOAD_CHECKS


@pytest.mark.slow
def test_calibrate_joins_the_run_with_ground_truth(cli: CliRunner) -> None:
    done = cli("calibrate", "--users", "2", "--duration", "3s", "--no-pin", timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("calibration: 2 users")
    joined = next(line for line in lines if "joined with ground truth" in line)
    requests, joined_n = (int(x) for x in joined.replace(",", "").split() if x.isdigit())
    assert requests > 0 and joined_n == requests
    assert any("TTFT error (client - truth)" in line for line in lines)
    assert any("recommended processes:" in line for line in lines)


@pytest.mark.slow
def test_processes_auto_calibrates_first(cli: CliRunner) -> None:
    done = cli(
        "load",
        "--users",
        "2",
        "--duration",
        "3s",
        "--processes",
        "auto",
        "--quiet",
        "--no-pin",
        timeout=180,
    )
    assert done.returncode in (0, 1), done.stderr
    assert "calibration: 2 users" in done.stderr  # printed before the run, on stderr
    assert "recommended processes:" in done.stderr
    folder = Path(done.stdout.split("results:")[1].split()[0])
    meta = orjson.loads((folder / "meta.json").read_bytes())
    calibration = meta["calibration"]  # the folder says how its process count was chosen
    assert calibration["auto"] is True and calibration["users"] == 2
    assert calibration["joined"] > 0 and calibration["ttft_err_ms"]["p50"] is not None
    assert meta["processes"] == calibration["recommended_processes"]


def test_processes_takes_a_number_or_auto(cli: CliRunner) -> None:
    done = cli("load", "--processes", "many", timeout=60)
    assert done.returncode == 2
    assert "--processes" in done.stderr


def test_chunk_shapes_keep_what_a_schema_can_tell_apart() -> None:
    base = {
        "id": "gen-1",
        "created": 1,
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}],
    }
    other_text = {**base, "id": "gen-2", "created": 2}
    other_text["choices"] = [{"index": 0, "delta": {"content": "b"}, "finish_reason": None}]
    assert shape_key(base) == shape_key(other_text)  # text, id, created: types only
    wrong_object = {**base, "object": "chat.completion"}
    assert shape_key(base) != shape_key(wrong_object)  # an enum value the schema judges
    number_id = {**base, "id": 7}
    assert shape_key(base) != shape_key(number_id)  # a type the schema judges
    tool = {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"id": "c", "index": 0}]}}]}
    tool2 = {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"id": "d", "index": 0}]}}]}
    assert shape_key(tool) == shape_key(tool2)
    record = RequestRecord(stream=True)
    record.chunks = [base, other_text, wrong_object]
    kept, keys = distinct_chunks(record, set())
    assert kept.chunks == [base, wrong_object] and len(keys) == 2
    kept, keys = distinct_chunks(record, {shape_key(base)})
    assert kept.chunks == [wrong_object]


def test_a_stream_no_check_can_read_never_raises() -> None:
    nested: dict[str, object] = {}
    deep = nested
    for _ in range(600):  # deeper than orjson writes (the hostile server's deep_json)
        deep["a"] = {}
        deep = deep["a"]  # type: ignore[assignment]
    record = RequestRecord(stream=True, provider="openai", model="m")
    record.chunks = [nested, nested]
    verdict = LoadChecker(1.0).judge(record, b"{not json")
    assert verdict is None or isinstance(verdict, list)
