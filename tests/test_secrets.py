"""Secrets never land anywhere: a canary key used by every command is searched for in every
byte written.

Two canaries, each the API key of a provider: a key-shaped one (``sk-canary-`` + 24 random
characters, which the pattern scrubber would catch anyway) and one shaped like nothing
(``canary-zz9-plural-z-alpha-`` + random), which only the registry of keys read from the
environment can hide. The emulator accepts only these two keys, so every successful answer
proves the key was sent; a hostile server echoes the key back in headers, SSE comments, the
model's text and error messages.

Commands run (each in a subprocess, its stdout and stderr saved as logs): recording cassettes,
replaying them, checking live, loading live, a whole ``chatprobe run``, and reports over
everything. The providers' profiles point at the emulator through a project
(``$CHATPROBE_PROJECT``) whose own profiles, named like the shipped ones and so used instead,
name ``http://127.0.0.1:PORT`` as base URL; nothing leaves the machine. Then every file under
the temporary folder is read as bytes and the canaries (and their random cores) are counted:
the count must be 0.
"""

from __future__ import annotations

import re
import secrets
import shutil
import string
import subprocess
from pathlib import Path

import pytest

from chatprobe.emulator import Emulator, EmulatorConfig
from chatprobe.profiles import load_profile
from tests.fake_servers.hostile import HostileServer
from tests.reliability_support import ROOT, clean_env, cli_command

pytestmark = pytest.mark.slow

ALPHABET = string.ascii_letters + string.digits
SK_CORE = "".join(secrets.choice(ALPHABET) for _ in range(24))
PLAIN_CORE = "".join(secrets.choice(string.ascii_lowercase) for _ in range(12))
CANARY_SK = f"sk-canary-{SK_CORE}"
CANARY_PLAIN = f"canary-zz9-plural-z-alpha-{PLAIN_CORE}"
NEEDLES = (CANARY_SK, CANARY_PLAIN, SK_CORE, PLAIN_CORE)
MODELS = {"aimlapi": "gemini-2.0-flash-exp", "openrouter": "gemini-2.0-flash-001"}


# Served by the shared ``emulator`` fixture (tests/conftest.py).
EMULATOR_CONFIG = EmulatorConfig(
    providers=("aimlapi", "openrouter", "apilaplas"),
    keys=(CANARY_SK, CANARY_PLAIN),
    ttft_ms=2,
    itl_ms=0.5,
    output_tokens=(8, 16),
    rate_limit_rpm=0,
    seed=9,
)


def _project_copy(base: Path, emulator: Emulator) -> Path:
    """A project whose profiles are the shipped ones pointed at the emulator."""
    root = base / "project"
    shutil.copytree(ROOT / "specs" / "providers", root / "profiles")
    (root / "chatprobe.toml").write_text('providers = ["aimlapi", "apilaplas", "openrouter"]\n')
    for path in (root / "profiles").glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        local = emulator.base_url(path.stem)
        text, n = re.subn(r"(?m)^base_url: .*$", f"base_url: {local}", text)
        assert n == 1, path
        path.write_text(text, encoding="utf-8")
        profile = load_profile(str(path))
        assert profile.base_url.startswith("http://127.0.0.1:"), profile.base_url
    return root


class Commands:
    """Runs chatprobe commands with the canaries set; keeps every log under ``base``."""

    def __init__(self, base: Path, root: Path) -> None:
        self.base = base
        self.logs = base / "logs"
        self.logs.mkdir()
        self.env = {
            "CHATPROBE_PROJECT": str(root),
            "CHATPROBE_RESULTS": str(base / "results"),
            "AIMLAPI_API_KEY": CANARY_SK,
            "OPENROUTER_API_KEY": CANARY_PLAIN,
            "APILAPLAS_API_KEY": CANARY_PLAIN,
            "CANARY_KEY": CANARY_PLAIN,
        }
        self.ran: list[str] = []

    def __call__(self, name: str, *argv: str, ok: tuple[int, ...] = (0, 1)) -> str:
        done = subprocess.run(
            cli_command(*argv),
            capture_output=True,
            timeout=240,
            env=clean_env(self.env),
            cwd=self.base,
        )
        (self.logs / f"{name}.out").write_bytes(done.stdout)
        (self.logs / f"{name}.err").write_bytes(done.stderr)
        self.ran.append(name)
        text = (done.stdout + done.stderr).decode("utf-8", "replace")
        assert done.returncode in ok, f"{name}: exit {done.returncode}\n{text[-3000:]}"
        assert "Traceback" not in text, text[-3000:]
        return done.stdout.decode("utf-8", "replace")


def _scan(base: Path) -> dict[str, list[str]]:
    """Every needle, and the files (relative to ``base``) holding it."""
    hits: dict[str, list[str]] = {}
    for path in base.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        for needle in NEEDLES:
            if needle.encode() in data:
                hits.setdefault(needle, []).append(str(path.relative_to(base)))
    return hits


def test_canary_keys_never_reach_disk_or_logs(tmp_path: Path, emulator: Emulator) -> None:
    root = _project_copy(tmp_path, emulator)
    run = Commands(tmp_path, root)
    basic = str(ROOT / "suites" / "basic.yaml")
    streaming = str(ROOT / "suites" / "streaming.yaml")
    errors_suite = str(ROOT / "suites" / "errors.yaml")
    cassettes = str(tmp_path / "cassettes")
    both = ("--provider", "aimlapi", "--provider", "openrouter")

    # record (the providers' "real" URLs are the emulator), replay, check live
    run("record", "check", "--record", *both, "--suites", basic, "--suites", streaming,
        "--cassette-dir", cassettes)  # fmt: skip
    assert list(Path(cassettes).rglob("*.yaml")), "nothing was recorded"
    run("replay", "check", *both, "--suites", basic, "--cassette-dir", cassettes)
    run("live", "check", "--live", *both, "--suites", basic, "--suites", errors_suite)
    run(
        "live-base-url",
        "check",
        "--live",
        "--base-url",
        emulator.base_url("openrouter"),
        "--api-key-env",
        "CANARY_KEY",
        "--model",
        "google/gemini-2.0-flash-001",
        "--suites",
        basic,
    )
    # load, live, through a profile and through --base-url
    run("load", "load", "--quiet", "--no-emulator", *both, "--users", "3", "--requests", "40")
    run(
        "load-base-url",
        "load",
        "--quiet",
        "--base-url",
        emulator.base_url("aimlapi"),
        "--api-key-env",
        "CANARY_KEY",
        "--model",
        "gemini-2.0-flash-exp",
        "--users",
        "2",
        "--requests",
        "20",
    )
    # a gateway that echoes the key everywhere it can
    with HostileServer(["echo_key", "valid"], seed=3) as echo:
        run("echo-load", "load", "--quiet", "--base-url", echo.base_url, "--api-key-env",
            "CANARY_KEY", "--model", "m1", "--users", "2", "--requests", "20")  # fmt: skip
        run("echo-check", "check", "--live", "--base-url", echo.base_url, "--api-key-env",
            "CANARY_KEY", "--model", "m1", "--suites", basic)  # fmt: skip
        assert echo.by_behaviour["echo_key"] > 0
        assert f"Bearer {CANARY_PLAIN}" in echo.authorizations  # sent, and echoed back
    run("providers", "providers")
    # the whole job, and reports over everything written so far
    run("run", "run", "--provider", "aimlapi,openrouter", "--duration", "3",
        "--scenario", "smoke", "--out", str(tmp_path / "reports" / "run"))  # fmt: skip
    folders = sorted(str(p) for p in (tmp_path / "results").iterdir())
    assert len(folders) >= 9
    run("report", "report", *folders, "--out", str(tmp_path / "reports" / "all"))

    # the keys were really used: the emulator accepts nothing else
    stats = emulator.stats()
    ok = sum(n for status, n in stats["by_status"].items() if str(status).startswith("2"))
    assert ok >= 100, stats["by_status"]

    written = [p for p in tmp_path.rglob("*") if p.is_file() and "project" not in p.parts]
    hits = _scan(tmp_path)
    print(
        f"\ncanary hits: {sum(len(v) for v in hits.values())} in {len(written)} files written "
        f"by {len(run.ran)} commands ({', '.join(run.ran)}); {ok} accepted requests"
    )
    assert hits == {}
    assert len(written) > 50


def test_the_scan_finds_a_planted_canary(tmp_path: Path) -> None:
    """The search itself works: a canary written in any form is found."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.jsonl").write_bytes(f'{{"k": "{CANARY_PLAIN}"}}'.encode())
    (tmp_path / "y.bin").write_bytes(b"\x00" + SK_CORE.encode() + b"\xff")
    hits = _scan(tmp_path)
    assert hits[CANARY_PLAIN] == ["a/b/x.jsonl"] and hits[SK_CORE] == ["y.bin"]
