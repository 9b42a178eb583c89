"""Timeouts a user sets (``--idle-timeout`` and friends) on ``check``, ``load`` and ``run``.

Acceptance: ``--idle-timeout 2s`` ends a stream the emulator stalls for 20 s with
``timeout_idle``, on each command, well before the stall would have ended (and so before the
30 s default): asserted by order against the stall, never in milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from chatprobe.emulator import DEMO_KEY, Emulator, EmulatorConfig, parse_fault_rate
from chatprobe.transport import DEFAULT_TIMEOUTS
from tests.reliability_support import read_run, run_cli

STALL_S = 20.0  # the emulator stalls every stream this long, half-way through
assert DEFAULT_TIMEOUTS.idle is not None and DEFAULT_TIMEOUTS.idle > STALL_S


@pytest.fixture(scope="module")
def stalling() -> Iterator[Emulator]:
    config = EmulatorConfig(
        providers=("openrouter",),
        ttft_ms=5,
        itl_ms=1,
        output_tokens=(16, 16),
        faults=(parse_fault_rate(f"stall:{STALL_S:g}=1"),),
    )
    with Emulator.in_thread(config) as emu:
        yield emu


def _endpoint(emu: Emulator) -> list[str]:
    return [
        "--base-url",
        emu.base_url("openrouter"),
        "--api-key-env",
        "EMU_KEY",
        "--model",
        "google/gemini-2.0-flash-001",
    ]


@pytest.mark.parametrize("command", ["check", "load", "run"])
def test_help_shows_the_transport_options_and_defaults(command: str) -> None:
    done = run_cli(command, "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for option, default in (
        ("--connect-timeout", "10s"),
        ("--first-byte-timeout", "60s"),
        ("--idle-timeout", "30s"),
        ("--total-timeout", "600s"),
    ):
        assert option in text and f"[default: {default}" in text, option
    assert "--ca-bundle" in text and "--insecure" in text


@pytest.mark.parametrize("command", [["check", "--live"], ["load"], ["run"]])
def test_a_bad_timeout_is_one_line(command: list[str]) -> None:
    done = run_cli(*command, "--idle-timeout", "soon")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "--idle-timeout" in lines[0] and "soon" in lines[0]


def _check_stalled(emu: Emulator, tmp_path: Path) -> dict[str, Any]:
    done = run_cli(
        "check",
        "--live",
        *_endpoint(emu),
        "-k",
        "hello-stream",
        "--idle-timeout",
        "2s",
        "--out",
        str(tmp_path),
        env={"EMU_KEY": DEMO_KEY},
    )
    assert done.returncode == 1, done.stderr[-3000:]
    (contract,) = tmp_path.glob("*/contract.json")
    results = orjson.loads(contract.read_bytes())["results"]
    return {r["case"]: r for r in results}


def test_check_idle_timeout_ends_a_stall(stalling: Emulator, tmp_path: Path) -> None:
    result = _check_stalled(stalling, tmp_path)["hello-stream"]
    assert result["error_class"] == "timeout_idle", result
    assert "idle timeout (2s" in result["message"]
    assert result["duration_s"] < STALL_S  # ended by the 2 s limit, not by the stall


@pytest.mark.slow
def test_load_idle_timeout_ends_a_stall(stalling: Emulator, tmp_path: Path) -> None:
    done = run_cli(
        "load",
        "--quiet",
        "--emulator-url",
        stalling.url(),
        "--provider",
        "openrouter",
        "--users",
        "2",
        "--requests",
        "2",
        "--idle-timeout",
        "2s",
        "--out",
        str(tmp_path),
        "--run-id",
        "stall",
    )
    assert done.returncode == 1, done.stderr[-3000:]  # every request failed: over the budget
    _, samples, _ = read_run(tmp_path / "stall")
    assert len(samples) == 2 and {s["error_class"] for s in samples} == {"timeout_idle"}
    assert all(s["total_ms"] < STALL_S * 1000 for s in samples)
    plan = orjson.loads((tmp_path / "stall" / "plan.json").read_bytes())
    assert plan["timeouts"]["idle"] == 2.0 and plan["timeouts"]["first_byte"] == 60.0


@pytest.mark.slow
def test_run_passes_the_timeouts_to_its_steps(stalling: Emulator, tmp_path: Path) -> None:
    """The load step of ``chatprobe run`` ends stalls at the limit it was given; the contract
    step gets the same options (its stalled case is timed out like ``check``'s above)."""
    done = run_cli(
        "run",
        *_endpoint(stalling),
        "--duration",
        "3",
        "--idle-timeout",
        "2s",
        "--results",
        str(tmp_path / "results"),
        "--out",
        str(tmp_path / "report"),
        "--skip-check",
        env={"EMU_KEY": DEMO_KEY},
        timeout=180,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    (summary,) = (tmp_path / "results").glob("*/summary.json")
    _, samples, _ = read_run(summary.parent)
    assert samples and {s["error_class"] for s in samples} == {"timeout_idle"}
    assert all(s["total_ms"] < STALL_S * 1000 for s in samples)


def test_run_hands_transport_options_to_every_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from chatprobe.commands import run as run_module

    seen: list[list[str]] = []
    monkeypatch.setattr(run_module, "_run_child", lambda state, argv, env: seen.append(argv) or 0)
    monkeypatch.setattr("chatprobe.preflight.preflight", lambda urls, **_: None)  # no server
    monkeypatch.setenv("EMU_KEY", "x")
    CliRunner().invoke(
        run_module.run,
        [
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--api-key-env",
            "EMU_KEY",
            "--model",
            "m",
            "--idle-timeout",
            "2s",
            "--first-byte-timeout",
            "none",
            "--insecure",
            "--results",
            str(tmp_path),
        ],
    )
    assert [argv[0] for argv in seen] == ["check", "load"]
    for argv in seen:
        assert argv[-5:] == ["--insecure", "--first-byte-timeout", "none", "--idle-timeout", "2s"]
