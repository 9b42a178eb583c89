"""Acceptance: copies of committed cassettes, edited to break one rule each, fail the right
named check with the JSON path in the message. The committed cassettes are never touched."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import yaml

from chatprobe.paths import project_root
from chatprobe.suites import load_suite
from chatprobe.suites.model import CaseRun
from chatprobe.suites.runner import CaseResult, RunConfig, Runner

ROOT = project_root()


def find_run(suite: str, case: str, provider: str) -> CaseRun:
    loaded = load_suite(ROOT / "suites" / f"{suite}.yaml")
    return next(r for r in loaded.runs if r.case == case and r.provider == provider)


def replay_edited(tmp_path: Path, run: CaseRun, edit: Callable[[str], str]) -> CaseResult:
    source = ROOT / "cassettes" / str(run.cassette)
    target = tmp_path / str(run.cassette)
    target.parent.mkdir(parents=True)
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    body = data["interactions"][0]["response"]["body"]
    edited = edit(body["string"])
    assert edited != body["string"], "the edit changed nothing"
    body["string"] = edited
    target.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with Runner(RunConfig(cassette_dir=tmp_path)) as runner:
        return runner.run(run)


def edit_json(change: Callable[[dict], None]) -> Callable[[str], str]:
    def edit(text: str) -> str:
        document = orjson.loads(text)
        change(document)
        return orjson.dumps(document).decode()

    return edit


def edit_chunk(index: int, change: Callable[[dict], None]) -> Callable[[str], str]:
    def edit(text: str) -> str:
        events = text.split("\n\n")
        data = [i for i, e in enumerate(events) if e.startswith("data: {")]
        position = data[index]
        chunk = orjson.loads(events[position][len("data: ") :])
        change(chunk)
        events[position] = "data: " + orjson.dumps(chunk).decode()
        return "\n\n".join(events)

    return edit


def assert_fails(result: CaseResult, check: str, path: str) -> None:
    assert result.outcome == "failed", result.message
    assert result.evaluation is not None
    assert result.evaluation.results[check].status == "fail", result.message
    assert re.search(rf"\b{check} at {re.escape(path)}:", result.message), result.message


def test_usage_total_wrong(tmp_path: Path) -> None:
    run = find_run("basic", "hello", "aimlapi")
    result = replay_edited(
        tmp_path, run, edit_json(lambda d: d["usage"].__setitem__("total_tokens", 1000))
    )
    assert_fails(result, "usage_arithmetic", "/body/usage/total_tokens")
    assert result.data_source == "replayed (emulated recording)"


def test_streamed_usage_total_wrong(tmp_path: Path) -> None:
    run = find_run("streaming", "stream-include-usage", "apilaplas")
    result = replay_edited(
        tmp_path, run, edit_chunk(-1, lambda c: c["usage"].__setitem__("total_tokens", -3))
    )
    assert result.outcome == "failed", result.message
    assert re.search(r"usage_arithmetic at /chunks/\d+/usage/total_tokens: ", result.message)


def test_chunk_missing_id(tmp_path: Path) -> None:
    run = find_run("streaming", "stream-include-usage", "aimlapi")
    result = replay_edited(tmp_path, run, edit_chunk(2, lambda c: c.pop("id")))
    assert_fails(result, "id_present", "/chunks/2/id")
    assert_fails(result, "stream_same_id_created", "/chunks/2/id")


def test_no_finish_reason_plain(tmp_path: Path) -> None:
    run = find_run("basic", "hello", "openrouter")
    result = replay_edited(tmp_path, run, edit_json(lambda d: d["choices"][0].pop("finish_reason")))
    assert_fails(result, "finish_reason_documented", "/body/choices/0/finish_reason")


def test_no_finish_reason_stream(tmp_path: Path) -> None:
    run = find_run("streaming", "stream-basic", "aimlapi")

    def drop_finish(text: str) -> str:
        return re.sub(r'"finish_reason":"[a-z_]+"', '"finish_reason":null', text)

    result = replay_edited(tmp_path, run, drop_finish)
    assert result.evaluation is not None
    check = result.evaluation.results["stream_one_finish_reason"]
    assert check.status == "fail"
    assert "choice 0 never got a finish_reason" in result.message
    assert re.search(r"stream_one_finish_reason at /chunks/\d+/choices:", result.message)


def test_done_missing(tmp_path: Path) -> None:
    run = find_run("streaming", "stream-basic", "openrouter")
    result = replay_edited(tmp_path, run, lambda text: text.replace("data: [DONE]\n\n", ""))
    assert result.evaluation is not None
    assert result.evaluation.results["stream_done_last"].status == "fail"
    assert re.search(
        r"stream_done_last at /events/\d+: stream ended without data: \[DONE\]", result.message
    )


def test_error_envelope_without_message(tmp_path: Path) -> None:
    run = find_run("errors", "top-p-too-high", "aimlapi")
    result = replay_edited(tmp_path, run, edit_json(lambda d: d.pop("message")))
    assert_fails(result, "provider_error_envelope", "/body/message")


def test_openrouter_error_envelope_without_message(tmp_path: Path) -> None:
    run = find_run("errors", "bad-key", "openrouter")
    result = replay_edited(tmp_path, run, edit_json(lambda d: d["error"].pop("message")))
    assert_fails(result, "provider_error_envelope", "/body/error/message")


def test_unedited_copy_passes(tmp_path: Path) -> None:
    run = find_run("basic", "hello", "aimlapi")
    target = tmp_path / str(run.cassette)
    target.parent.mkdir(parents=True)
    shutil.copy(ROOT / "cassettes" / str(run.cassette), target)
    with Runner(RunConfig(cassette_dir=tmp_path)) as runner:
        result = runner.run(run)
    assert result.outcome == "deviation", result.message
    assert {d["check"] for d in result.evaluation.deviations} == {
        "status_openai",
        "strict_response_schema",
    }


def test_missing_cassette_says_how_to_record(tmp_path: Path) -> None:
    run = find_run("basic", "hello", "aimlapi")
    with Runner(RunConfig(cassette_dir=tmp_path)) as runner:
        result = runner.run(run)
    assert result.outcome == "error"
    assert "no cassette" in result.message
    assert (
        "chatprobe check --record --provider aimlapi --model gemini-2.0-flash-exp" in result.message
    )


def test_changed_case_does_not_replay_a_stale_answer(tmp_path: Path) -> None:
    run = find_run("basic", "hello", "aimlapi")
    target = tmp_path / str(run.cassette)
    target.parent.mkdir(parents=True)
    shutil.copy(ROOT / "cassettes" / str(run.cassette), target)
    fields = {f: getattr(run, f) for f in run.__dataclass_fields__}
    changed = CaseRun(**{**fields, "body": {**(run.body or {}), "max_tokens": 99}})
    with Runner(RunConfig(cassette_dir=tmp_path)) as runner:
        result = runner.run(changed)
    assert result.outcome == "error"
    assert "has no recording matching this request" in result.message
    assert "--record-mode all" in result.message


@pytest.mark.parametrize("garbage", ["", "interactions: [", "version: 1\n", ": : :\n\t"])
def test_corrupt_cassette_is_a_clear_error(tmp_path: Path, garbage: str) -> None:
    run = find_run("basic", "hello", "aimlapi")
    target = tmp_path / str(run.cassette)
    target.parent.mkdir(parents=True)
    target.write_text(garbage, encoding="utf-8")
    with Runner(RunConfig(cassette_dir=tmp_path)) as runner:
        result = runner.run(run)
    assert result.outcome == "error"
    assert str(run.cassette.name) in result.message
    assert "Traceback" not in result.message
