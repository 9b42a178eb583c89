"""``chatprobe validate --schema LEVEL:KIND FILE``: exit status, output and user errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chatprobe import specs
from chatprobe.cli import main

PAYLOADS = Path(__file__).parents[1] / "data" / "payloads"
SEED_RESPONSE = PAYLOADS / "aimlapi-seed000-response.json"


def run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(["validate", *argv])
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_provider_level_accepts_seed_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run("--schema", "aimlapi:response", str(SEED_RESPONSE), capsys=capsys)
    assert code == 0, err
    assert "valid aimlapi:response" in out
    assert str(SEED_RESPONSE) in out


def test_strict_level_rejects_seed_example_with_pointer(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run("--schema", "openai-strict:response", str(SEED_RESPONSE), capsys=capsys)
    assert code == 1
    assert "1 violation(s) of openai-strict:response" in out
    line = next(ln for ln in out.splitlines() if "/choices/0/message" in ln)
    assert "refusal" in line


def test_several_files_fail_if_any_fails(capsys: pytest.CaptureFixture[str]) -> None:
    good = PAYLOADS / "openai-reference-response.json"
    code, out, _ = run(
        "--schema", "openai-strict:response", str(good), str(SEED_RESPONSE), capsys=capsys
    )
    assert code == 1
    assert f"{good}: valid openai-strict:response" in out
    assert f"{SEED_RESPONSE}: 1 violation(s)" in out


def test_chunks_as_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    path = PAYLOADS / "openai-reference-chunks.jsonl"
    code, out, _ = run("--schema", "openai-strict:chunk", str(path), capsys=capsys)
    assert code == 0
    assert out.count("valid openai-strict:chunk") == 3
    assert f"{path}:3: valid" in out


def test_openrouter_error_chunk_names_finish_reason(capsys: pytest.CaptureFixture[str]) -> None:
    path = PAYLOADS / "openrouter-midstream-error-chunk.json"
    assert run("--schema", "openrouter:chunk", str(path), capsys=capsys)[0] == 0
    code, out, _ = run("--schema", "openai-strict:chunk", str(path), capsys=capsys)
    assert code == 1
    assert "/choices/0/finish_reason: 'error' is not one of" in out


def test_unknown_level_is_one_line_listing_levels(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run("--schema", "openia-strict:response", str(SEED_RESPONSE), capsys=capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "unknown schema level 'openia-strict'" in err
    for level in specs.levels():
        assert level in err


def test_unknown_kind_lists_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run("--schema", "aimlapi:reply", str(SEED_RESPONSE), capsys=capsys)
    assert code == 2
    assert err.count("\n") == 1
    for kind in specs.KINDS:
        assert kind in err


def test_non_json_file_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{\n  "id": "x",\n  "object": chat.completion\n}\n', encoding="utf-8")
    code, _, err = run("--schema", "aimlapi:response", str(bad), capsys=capsys)
    assert code == 2
    assert f"{bad}:3: not JSON" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_missing_file_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    code, _, err = run("--schema", "aimlapi:response", str(missing), capsys=capsys)
    assert code == 2
    assert str(missing) in err and "Traceback" not in err


def test_console_process_has_no_traceback() -> None:
    # The same mistake through a real process: what a user at a shell sees.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatprobe.cli",
            "validate",
            "--schema",
            "nope:response",
            str(SEED_RESPONSE),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("chatprobe: error: unknown schema level 'nope'")
    assert "Traceback" not in proc.stderr
