"""HTTPS: the emulator's generated certificate, and a real load run over TLS.

Every hosted provider is served over HTTPS; these tests run the same paths as the plain-HTTP
ones against ``chatprobe emulate --tls`` (a CA and server certificate generated at start),
trusting its CA file the way a user trusts a company CA.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from chatprobe.emulator import DEMO_KEY, Emulator, EmulatorConfig
from chatprobe.load.receive import KERNEL_TIMESTAMPS
from chatprobe.paths import project_root

BODY = {
    "model": "google/gemini-2.0-flash-001",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 8,
}


@pytest.fixture(scope="module")
def tls_emulator() -> Iterator[Emulator]:
    with Emulator.in_thread(EmulatorConfig(providers=("openrouter",), tls=True)) as emu:
        yield emu


def test_emulator_serves_https_with_a_ca_it_prints(tls_emulator: Emulator) -> None:
    assert tls_emulator.url().startswith("https://")
    assert tls_emulator.ca_file and Path(tls_emulator.ca_file).is_file()
    url = tls_emulator.base_url("openrouter") + "/chat/completions"
    headers = {"Authorization": f"Bearer {DEMO_KEY}"}
    trusted = ssl.create_default_context(cafile=tls_emulator.ca_file)
    response = httpx.post(url, json=BODY, headers=headers, verify=trusted, trust_env=False)
    assert response.status_code == 200 and response.json()["choices"]
    # without the CA the certificate is not trusted: TLS verification is on
    with pytest.raises(httpx.ConnectError):
        httpx.post(url, json=BODY, headers=headers, trust_env=False)


def test_certificate_files_go_when_the_emulator_stops() -> None:
    emu = Emulator.in_thread(EmulatorConfig(providers=("openrouter",), tls=True))
    assert emu.ca_file is not None
    folder = Path(emu.ca_file).parent
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert oct((folder / "server-key.pem").stat().st_mode & 0o777) == "0o600"
    emu.close()
    assert not folder.exists()


def _load(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatprobe.cli", "load", "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=project_root(),
    )


def _rank_correlation(xs: list[float], ys: list[float]) -> float:
    """Spearman's rho (no ties expected in continuous timings)."""
    rx = {i: r for r, i in enumerate(sorted(range(len(xs)), key=xs.__getitem__))}
    ry = {i: r for r, i in enumerate(sorted(range(len(ys)), key=ys.__getitem__))}
    n = len(xs)
    d2 = sum((rx[i] - ry[i]) ** 2 for i in range(n))
    return 1 - 6 * d2 / (n * (n * n - 1))


@pytest.mark.slow
def test_load_run_over_tls_measures_like_plain_http(tmp_path: Path) -> None:
    """A real ``chatprobe load`` against the HTTPS emulator: no client errors, every sample's
    TTFT between the emulator's true TTFT and its last token, and ordered like the truth."""
    config = EmulatorConfig(
        providers=("openrouter",), tls=True, ttft_ms=60, itl_ms=8, sigma=0.5, output_tokens=(24, 24)
    )
    with Emulator.in_subprocess(config) as emu:
        assert emu.ca_file is not None
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        done = _load(
            [
                "--ca-bundle",  # how a user trusts a private CA
                emu.ca_file,
                "--emulator-url",
                emu.url(),
                "--provider",
                "openrouter",
                "--users",
                "4",
                "--requests",
                "40",
                "--out",
                str(tmp_path),
                "--run-id",
                "tls",
            ],
            env,
        )
        truth = {t["request_id"]: t for t in emu.truth()}
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "tls"
    plan = orjson.loads((folder / "plan.json").read_bytes())
    assert plan["tls"] == {"ca_bundles": [emu.ca_file], "insecure": False, "source": "--ca-bundle"}
    samples: list[dict[str, Any]] = [
        orjson.loads(line) for line in (folder / "samples.jsonl").read_bytes().splitlines()
    ]
    assert len(samples) == 40
    assert [s for s in samples if s["error_class"]] == []
    # TLS in memory: the client reads the TCP socket itself, so HTTPS samples carry the
    # kernel's receive stamps and an error bound, as plain-HTTP ones do
    assert {s["clock"] for s in samples} == {"kernel" if KERNEL_TIMESTAMPS else "user"}
    if KERNEL_TIMESTAMPS:
        assert all(s["ttft_bound_ms"] is not None and s["ttft_bound_ms"] >= 0 for s in samples)
    measured, true = [], []
    for sample in samples:
        record = truth[sample["server_request_id"]]
        first = (record["t_first_content_ns"] - record["t_received_ns"]) / 1e6
        last = (record["t_last_content_ns"] - record["t_received_ns"]) / 1e6
        # the client cannot see the first token before the server wrote it, and saw it
        # before the stream's last token was written (not stamped when the body ended)
        assert first <= sample["ttft_ms"] < last, (sample, record)
        measured.append(sample["ttft_ms"])
        true.append(first)
    assert _rank_correlation(measured, true) > 0.8


# ---------------------------------------------------------------------------- contract and run


def _check(emu: Emulator, tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    """``chatprobe check --live`` against the emulator as a custom endpoint; the results."""
    from tests.reliability_support import run_cli

    done = run_cli(
        "check",
        "--live",
        "--base-url",
        emu.base_url("openrouter"),
        "--api-key-env",
        "EMU_KEY",
        "--model",
        "google/gemini-2.0-flash-001",
        "--out",
        str(tmp_path),
        *extra,
        env={"EMU_KEY": DEMO_KEY, **(env or {})},
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    (contract,) = tmp_path.glob("*/contract.json")
    return orjson.loads(contract.read_bytes())["results"], done


TRANSPORT_FAILURES = {"tls_error", "connect_error", "connection_reset", "client_error"}


@pytest.mark.parametrize("trust", ["--ca-bundle", "REQUESTS_CA_BUNDLE"])
def test_contract_checks_over_tls(tls_emulator: Emulator, tmp_path: Path, trust: str) -> None:
    assert tls_emulator.ca_file is not None
    if trust == "--ca-bundle":
        results, _ = _check(tls_emulator, tmp_path, "--ca-bundle", tls_emulator.ca_file)
    else:
        results, _ = _check(tls_emulator, tmp_path, env={trust: tls_emulator.ca_file})
    assert results and not [r for r in results if r["error_class"] in TRANSPORT_FAILURES]
    assert any(r["outcome"] == "passed" for r in results)
    sent = [r["request_id"] for r in results if r["outcome"] != "skipped"]
    assert all(sent) and len(set(sent)) == len(sent)  # each case's own X-Request-Id


def test_an_untrusted_certificate_fails_clearly(tls_emulator: Emulator, tmp_path: Path) -> None:
    """The preflight meets the certificate first: one line naming the fix, exit 2, no case
    run (the transport's tls_error detail, as a case would have shown it)."""
    from tests.reliability_support import run_cli

    done = run_cli(
        *("check", "--live", "--base-url", tls_emulator.base_url("openrouter")),
        *("--api-key-env", "EMU_KEY", "--model", "google/gemini-2.0-flash-001"),
        *("--out", str(tmp_path), "-k", "hello"),
        env={"EMU_KEY": DEMO_KEY},
    )
    assert done.returncode == 2, done.stderr[-3000:]
    (line,) = done.stderr.strip().splitlines()
    assert "cannot connect to https://" in line and "TLS handshake failed" in line
    assert "--ca-bundle" in line and "--insecure" in line


def test_a_bad_ca_bundle_is_one_line(tmp_path: Path) -> None:
    from tests.reliability_support import run_cli

    missing = tmp_path / "nope.pem"
    for command in (["check", "--live"], ["load"], ["run"]):
        done = run_cli(*command, "--ca-bundle", str(missing))
        assert done.returncode == 2, (command, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "--ca-bundle: cannot use" in lines[0], (command, lines)


@pytest.mark.slow
def test_run_over_tls(tmp_path: Path) -> None:
    """``chatprobe run`` against an HTTPS endpoint: both steps trust the CA it was given."""
    from tests.reliability_support import read_run, run_cli

    config = EmulatorConfig(providers=("openrouter",), tls=True, ttft_ms=5, itl_ms=1)
    with Emulator.in_subprocess(config) as emu:
        assert emu.ca_file is not None
        done = run_cli(
            "run",
            "--base-url",
            emu.base_url("openrouter"),
            "--api-key-env",
            "EMU_KEY",
            "--model",
            "google/gemini-2.0-flash-001",
            "--duration",
            "3",
            "--ca-bundle",
            emu.ca_file,
            "--results",
            str(tmp_path / "results"),
            "--out",
            str(tmp_path / "report"),
            env={"EMU_KEY": DEMO_KEY},
            timeout=240,
        )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    (contract,) = (tmp_path / "results").glob("*/contract.json")
    results = orjson.loads(contract.read_bytes())["results"]
    assert not [r for r in results if r["error_class"] in TRANSPORT_FAILURES]
    (summary_path,) = (tmp_path / "results").glob("*/summary.json")
    _, samples, _ = read_run(summary_path.parent)
    assert samples and [s for s in samples if s["error_class"]] == []
    assert (tmp_path / "report" / "index.html").is_file()
