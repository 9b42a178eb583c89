"""``chatprobe emulate``: help, errors, and the subprocess mode built on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from chatprobe.client import ChatClient
from chatprobe.emulator import DEMO_KEY, FAULT_KINDS, Emulator, EmulatorConfig
from tests.cli_support import run_cli


def _help() -> str:
    from chatprobe.commands.emulate import emulate

    result = CliRunner().invoke(emulate, ["--help"], terminal_width=100)
    assert result.exit_code == 0
    return result.output


def test_help_documents_profiles_ports_latency_and_faults() -> None:
    text = _help()
    for topic in (
        "PROFILES",
        "PORTS",
        "LATENCY",
        "FAULTS",
        "--port",
        "--ttft-ms",
        "--itl-ms",
        "--sigma",
        "--fault",
        "--seed",
        "--provider",
        "X-Chatprobe-Fault",
        "/_chatprobe/requests",
        DEMO_KEY,
    ):
        assert topic in text, topic
    for kind in FAULT_KINDS:
        assert kind in text, kind
    for provider in ("aimlapi", "apilaplas", "openrouter"):
        assert provider in text


def test_unknown_provider_is_one_line_and_exit_2() -> None:
    result = run_cli("emulate", "--provider", "nosuch", timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "nosuch" in lines[0] and "openrouter" in lines[0] and "aimlapi" in lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--fault", "gremlins=0.1"], "gremlins"), (["--output-tokens", "9:3"], "output_tokens")],
)
def test_bad_options_are_one_line_and_exit_2(args: list[str], needle: str) -> None:
    result = run_cli("emulate", *args, timeout=60)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and needle in result.stderr


def test_subprocess_serves_and_writes_truth_jsonl(tmp_path: Path) -> None:
    jsonl = tmp_path / "truth.jsonl"
    config = EmulatorConfig(providers=("aimlapi",), zero_latency=True, truth_jsonl=str(jsonl))
    with Emulator.in_subprocess(config) as emu:
        assert emu.pid != 0 and emu.base_url() == emu.url("/v1")
        with ChatClient(emu.profile("aimlapi"), api_key=DEMO_KEY) as client:
            records = [
                client.chat(
                    {"messages": [{"role": "user", "content": "hi"}], "stream": s},
                    model="gemini-2.0-flash-exp",
                )
                for s in (False, True)
            ]
        assert [r.status for r in records] == [201, 201]
        truth = emu.truth()
        assert [t["request_id"] for t in truth] == [
            r.response_headers["x-chatprobe-request-id"] for r in records
        ]
        assert emu.stats()["by_status"] == {"201": 2}
        emu.reset()
        assert emu.truth() == []
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["stream"] for line in lines] == [False, True]
    assert all(line["outcome"] == "complete" for line in lines)
