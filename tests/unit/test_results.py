"""Results folders: atomic writing, scrubbing, robust streaming reads, last-run discovery."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from chatprobe.errors import ConfigError
from chatprobe.results import (
    GROUP_ENV,
    META,
    SAMPLES,
    SampleWriter,
    finish_meta,
    latest_run_folders,
    load_results,
    new_run_dir,
    new_run_id,
    new_sample,
    read_meta,
    write_json_atomic,
    write_meta,
)
from chatprobe.scrub import register_secret

CANARY = "sk-or-v1-canary0123456789abcdefCANARY"


def sample(i: int, **extra: object) -> dict[str, object]:
    values: dict[str, object] = {
        "provider": "aimlapi",
        "model": "gemini-2.0-flash-exp",
        "ttft_ms": 40.0 + i,
        "itl_ms": 5.0,
        "e2e_ms": 400.0 + i,
        "output_tokens": 64,
        "token_source": "usage",
        "prompt_tokens": 20,
        "t_offset_s": i * 0.1,
        "users": 1,
    }
    values.update(extra)
    return new_sample(**values)


def append(path: Path, rows: list[dict[str, object]]) -> None:
    with SampleWriter(path) as writer:
        for row in rows:
            writer.write(row)


def make_folder(root: Path, rows: list[dict[str, object]], kind: str = "load") -> Path:
    folder = new_run_dir(root)
    write_meta(folder, kind=kind, data_source="emulated", providers=["aimlapi"])
    append(folder / SAMPLES, rows)
    return folder


def test_run_id_shape_and_uniqueness() -> None:
    ids = {new_run_id(0) for _ in range(50)}
    assert len(ids) > 40
    assert all(i.startswith("19700101-000000-") and len(i) == 20 for i in ids)


def test_write_json_atomic_leaves_no_tmp_and_scrubs(tmp_path: Path) -> None:
    register_secret(CANARY)
    path = write_json_atomic(tmp_path / "x.json", {"msg": f"key {CANARY} echoed", "n": 1})
    assert json.loads(path.read_text()) == {"msg": "key <redacted> echoed", "n": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_meta_lifecycle_and_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GROUP_ENV, "g-1")
    folder = new_run_dir(tmp_path)
    meta = write_meta(
        folder, kind="load", data_source="live", command=["chatprobe", "--key", CANARY]
    )
    assert meta["finished_at"] is None and meta["group"] == "g-1"
    assert meta["run_id"] == folder.name and meta["machine"]["cpus"]
    assert CANARY not in (folder / META).read_text()
    done = finish_meta(folder, interrupted=True, notes=["stopped by SIGINT"])
    assert done["finished_at"] and done["interrupted"] is True
    assert read_meta(folder)["notes"] == ["stopped by SIGINT"]
    with pytest.raises(ValueError):
        write_meta(folder, kind="nope", data_source="live")


def test_samples_roundtrip_into_columns(tmp_path: Path) -> None:
    rows = [sample(i) for i in range(10)]
    rows[3] = sample(3, error_class="http_status", error_detail="HTTP 429: slow down", ttft_ms=None)
    rows[4] = sample(4, model="gemini-1.5-flash", token_source="estimate")
    folder = make_folder(tmp_path, rows)
    res = load_results(folder)
    t = res.samples
    assert t is not None and len(t) == 10 and res.skipped_lines == 0
    assert t.groups == [("aimlapi", "gemini-2.0-flash-exp"), ("aimlapi", "gemini-1.5-flash")]
    assert list(t.group) == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    assert t.error_classes[t.error[3]] == "http_status"
    assert math.isnan(t.floats["ttft_ms"][3]) and t.floats["ttft_ms"][2] == 42.0
    assert t.error_details == {(0, "http_status", "HTTP 429: slow down", False): 1}
    assert [t.token_sources[t.source[i]] for i in (3, 4)] == ["usage", "estimate"]


def test_truncated_last_line_is_skipped_and_counted(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, [sample(i) for i in range(5)])
    with open(folder / SAMPLES, "ab") as fh:
        fh.write(b'{"provider": "aimlapi", "model": "gem')  # killed mid-write
    res = load_results(folder)
    assert res.samples is not None and len(res.samples) == 5
    assert res.skipped_lines == 1 and res.truncated_tail and res.bad_line_numbers == [6]


def test_corrupt_middle_line_and_garbage_values(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, [sample(0)])
    with open(folder / SAMPLES, "ab") as fh:
        fh.write(b"not json at all\n\n[1, 2]\n")
        fh.write(json.dumps(sample(1, ttft_ms="fast", users="many", warmup=None)).encode() + b"\n")
    append(folder / SAMPLES, [sample(2)])
    res = load_results(folder)
    t = res.samples
    assert t is not None and len(t) == 3  # the list [1, 2] is not a sample
    assert res.skipped_lines == 1 and res.bad_line_numbers == [2] and not res.truncated_tail
    assert math.isnan(t.floats["ttft_ms"][1]) and t.ints["users"][1] == -1


def test_writer_flushes_each_line_and_samples_are_scrubbed(tmp_path: Path) -> None:
    register_secret(CANARY)
    path = tmp_path / SAMPLES
    with SampleWriter(path) as out:
        out.write(sample(0))
        assert path.read_bytes().count(b"\n") == 1  # visible before close
        out.write(sample(1, error_class="http_status", error_detail=f"Bearer {CANARY}"))
        out.write_lines(b"".join([path.read_bytes().splitlines(keepends=True)[0]] * 2), 2)
        assert out.count == 4
    assert CANARY not in path.read_text()
    assert len(path.read_bytes().splitlines()) == 4
    with pytest.raises(TypeError, match="not sample fields: ttft"):
        new_sample(ttft=1.0)  # a misspelt field fails, it is never written


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "results folder not found"),
        (lambda p: p.write_text("x"), "expected a directory"),
        (lambda p: p.mkdir(), "meta.json is missing"),
        (lambda p: (p.mkdir(), (p / META).write_text("{oops")), "not valid JSON"),
        (
            lambda p: (p.mkdir(), (p / META).write_text('{"schema_version": 9}')),
            "unsupported schema_version 9",
        ),
        (
            lambda p: (p.mkdir(), (p / META).write_text('{"schema_version": 1}')),
            "holds no samples.jsonl",
        ),
    ],
)
def test_unreadable_folders_raise_one_line_errors(tmp_path: Path, setup, message: str) -> None:
    target = tmp_path / "run"
    setup(target)
    with pytest.raises(ConfigError) as info:
        load_results(target)
    text = str(info.value)
    assert message in text and "\n" not in text and str(target) in text


def test_latest_run_folders_by_group_then_by_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = make_folder(tmp_path, [sample(0)])
    write_meta(old, kind="load", data_source="emulated", started_at="2025-01-01T00:00:00Z")
    contract = new_run_dir(tmp_path)
    write_meta(contract, kind="contract", data_source="replayed", started_at="2025-01-02T00:00:00Z")
    load = make_folder(tmp_path, [sample(0)])
    write_meta(load, kind="load", data_source="emulated", started_at="2025-01-03T00:00:00Z")
    assert latest_run_folders(tmp_path) == [contract, load]
    monkeypatch.setenv(GROUP_ENV, "run-42")
    a = make_folder(tmp_path, [sample(0)], kind="contract")
    b = make_folder(tmp_path, [sample(0)])
    write_meta(a, kind="contract", data_source="emulated", started_at="2025-01-04T00:00:00Z")
    write_meta(b, kind="load", data_source="emulated", started_at="2025-01-05T00:00:00Z")
    assert latest_run_folders(tmp_path) == [a, b]
    with pytest.raises(ConfigError, match="results folder not found"):
        latest_run_folders(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no results found"):
        latest_run_folders(tmp_path / "empty")


def test_parallel_reading_matches_one_process(tmp_path: Path) -> None:
    from chatprobe.results import load_samples

    rows = [
        sample(
            i,
            model=("a", "b", "c")[i % 3],
            error_class="http_status" if i % 7 == 0 else None,
            error_detail=f"HTTP 5{i % 3}0",
            users=1 + i // 100,
            output_excerpt=f"text {i}",
        )
        for i in range(400)
    ]
    folder = make_folder(tmp_path, rows)
    path = folder / SAMPLES
    lines = path.read_bytes().splitlines(keepends=True)
    lines[150] = b"garbage\n"
    lines[330] = b"{broken\n"
    path.write_bytes(b"".join(lines) + b'{"provider": "aim')
    one = load_samples(path, processes=1)
    many = load_samples(path, processes=3)
    assert one[1:] == many[1:] == (3, [151, 331, 401], True)
    a, b = one[0], many[0]
    assert a.groups == b.groups and a.error_classes == b.error_classes and a.stages == b.stages
    assert list(a.group) == list(b.group) and list(a.error) == list(b.error)
    assert list(a.stage) == list(b.stage) and a.warmup == b.warmup
    assert all(a.floats[k].tobytes() == b.floats[k].tobytes() for k in a.floats)  # NaN too
    assert all(list(a.ints[k]) == list(b.ints[k]) for k in a.ints)
    assert a.error_details == b.error_details and a.anomalies == b.anomalies
    assert [a.token_sources[x] for x in a.source] == [b.token_sources[x] for x in b.source]
    assert {g: len(x) for g, x in a.excerpts.items()} == {g: len(x) for g, x in b.excerpts.items()}
