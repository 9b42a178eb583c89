"""Load runs through provider faults: they keep going, count each class, and lose no sample.

* ``chatprobe load`` against the emulator with every fault kind at a configured rate: each
  sample's class is the one its fault documents (joined with the emulator's ground truth by
  request id), and samples recorded = requests the emulator received = requests asked for.
* ``chatprobe load`` against :mod:`tests.fake_servers.hostile` (every behaviour drawn per request,
  through a provider profile file and a live key variable): samples recorded = requests the
  server received, each class allowed for the behaviour that produced it, no harness error.
* Hostile content: model text and provider error messages holding HTML and script reach the
  report as text; the page is checked in a real browser (no dialog fires, the text shows).
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from chatprobe.emulator import FAULT_KINDS
from chatprobe.record import ErrorClass
from tests.fake_servers.hostile import BEHAVIOURS, HOSTILE_ERROR, HOSTILE_TEXT, HostileServer
from tests.reliability_support import ROOT, clean_env, cli_command, read_run, run_cli
from tests.test_reliability_faults import EMULATOR_EXPECTED

pytestmark = pytest.mark.slow

E = ErrorClass
FAULT_RATE = 1 / (len(FAULT_KINDS) + 1)  # one share per kind, one share with none
FAULT_PARAMS = {
    "stall": "stall:2",
    "slow_headers": "slow_headers:0.1",
    "stream_rule": "stream_rule:error_in_200",
}
EMULATOR_REQUESTS = 320
HOSTILE_REQUESTS = 240
# Load user (geventhttpclient) classes per hostile behaviour, for samples that carry the
# server's request id (a head was parsed). Without one, the exchange died before a usable head.
LOAD_EXPECTED: dict[str, set[E | None]] = {
    "valid": {None},
    "cut": {None, E.CONNECTION_RESET, E.TRUNCATED_STREAM, E.TRUNCATED_BODY, E.PROTOCOL_ERROR},
    "cut_rst": {None, E.CONNECTION_RESET, E.PROTOCOL_ERROR},
    "garbage_body": {E.TRUNCATED_STREAM, E.BAD_JSON, E.PROTOCOL_ERROR},
    "giant_line": {E.BAD_JSON},
    "giant_header": {E.BAD_CONTENT_TYPE, E.PROTOCOL_ERROR},
    "nul_bytes": {E.BAD_JSON},
    "invalid_utf8": {None},
    "bad_chunk_size": {E.PROTOCOL_ERROR},
    "chunk_overrun": {E.PROTOCOL_ERROR},
    "chunk_short": {E.TRUNCATED_STREAM},  # a clean close (FIN) mid-stream
    "empty_200": {E.TRUNCATED_STREAM},
    "html_200": {E.BAD_CONTENT_TYPE},
    "json_array_200": {E.BAD_CONTENT_TYPE},
    "content_length_lie": {E.TRUNCATED_BODY},  # a JSON body cut by a clean close
    "stall_headers": {E.TIMEOUT_IDLE},
    "wrong_types": {E.MIDSTREAM_ERROR},
    "deep_json": {E.MIDSTREAM_ERROR},
    "echo_key": {E.MIDSTREAM_ERROR},
    "hostile_content": {None},
    "hostile_error": {E.HTTP_STATUS},
    "hostile_midstream": {E.MIDSTREAM_ERROR},
}
NO_HEAD = {E.CONNECTION_RESET, E.PROTOCOL_ERROR}  # classes of a sample without any head
MODEL_OR = "gemini-2.0-flash-001"


def _hostile_profile(folder: Path, server: HostileServer) -> Path:
    path = folder / "hostile.yaml"
    path.write_text(
        "name: hostile\n"
        f"base_url: {server.base_url}\n"
        "api_key_env: HOSTILE_API_KEY\n"
        "models:\n  hostile-1: {id: hostile-1}\n"
    )
    return path


def _hostile_load(
    tmp: Path, mix: list[str], requests: int, run_id: str, *, seed: int = 5
) -> tuple[Path, HostileServer]:
    with HostileServer(mix, seed=seed) as server:
        profile = _hostile_profile(tmp, server)
        scenario = tmp / f"{run_id}.yaml"
        scenario.write_text(
            f"targets: [{{provider: {profile}, model: hostile-1}}]\n"
            f"shape: {{users: 6}}\nrequests: {requests}\ntimeouts: {{read: 0.5s}}\n"
        )
        done = run_cli(
            "load",
            "--quiet",
            str(scenario),
            "--no-emulator",
            "--out",
            str(tmp),
            "--run-id",
            run_id,
            "--max-error-rate",
            "100%",  # failing requests are the point here; the verdict is tested elsewhere
            env={"HOSTILE_API_KEY": "hostile-key-1234567"},
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert server.errors == []
    return tmp / run_id, server


# ---------------------------------------------------------------------------- emulator faults


def test_every_emulator_fault_at_a_rate_is_counted(tmp_path: Path) -> None:
    faults = "\n".join(f"    {FAULT_PARAMS.get(k, k)}: {FAULT_RATE}" for k in FAULT_KINDS)
    scenario = tmp_path / "faults.yaml"
    scenario.write_text(
        "targets: [{provider: aimlapi, model: gemini-2.0-flash-exp}]\n"
        f"max_tokens: 16\nshape: {{users: 8}}\nrequests: {EMULATOR_REQUESTS}\n"
        "timeouts: {read: 0.5s}\n"
        f"emulator:\n  ttft_ms: 2\n  itl_ms: 0.5\n  output_tokens: 16\n  seed: 4\n"
        f"  faults:\n{faults}\n"
    )
    done = run_cli(
        "load",
        "--quiet",
        str(scenario),
        "--out",
        str(tmp_path),
        "--run-id",
        "f",
        "--max-error-rate",
        "100%",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "f"
    summary, samples, meta = read_run(folder)
    truth = {}
    for line in (folder / "emulator_truth.jsonl").read_bytes().splitlines():
        record = orjson.loads(line)
        truth[record["request_id"]] = record

    # nothing lost: asked = received by the emulator = samples written = samples summarised
    received = meta["emulator_stats"]["received"]
    assert len(samples) == summary["samples"] == received == EMULATOR_REQUESTS
    assert summary["aborted"] == 0
    assert {s["server_request_id"] for s in samples} == set(truth)

    tried: Counter[str] = Counter()
    for sample in samples:
        faults = [f.partition("=")[0] for f in truth[sample["server_request_id"]]["faults"]]
        kind = faults[0] if faults else None
        want = EMULATOR_EXPECTED[kind][0] if kind else None
        assert sample["error_class"] == (want.value if want else None), (kind, sample)
        tried[kind or "none"] += 1
    assert set(tried) == {*FAULT_KINDS, "none"}, tried  # every kind occurred
    errors = Counter(s["error_class"] for s in samples if s["error_class"])
    assert summary["errors"] == dict(sorted(errors.items()))
    assert "client_error" not in errors
    print(f"\nfault kinds tried in one load run: {len(tried) - 1}; requests per kind: {tried}")


def test_two_distributed_runs_at_once_keep_their_own_workers(tmp_path: Path) -> None:
    """Two ``--processes 2`` runs on one machine: each master gets its own two workers (on
    locust's fixed default port the workers of one run joined the other's master, and
    foreign samples landed in its results)."""
    children = {}
    for provider, model in (("aimlapi", "gemini-2.0-flash-exp"), ("openrouter", MODEL_OR)):
        scenario = tmp_path / f"{provider}.yaml"
        scenario.write_text(
            f"targets: [{{provider: {provider}, model: {model}}}]\nshape: {{users: 4}}\n"
            "duration: 5s\nemulator: {ttft_ms: 10, itl_ms: 1, output_tokens: 8}\n"
        )
        argv = ["load", "--quiet", str(scenario), "--out", str(tmp_path), "--run-id", provider]
        children[provider] = subprocess.Popen(
            cli_command(*argv, "--processes", "2"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
            cwd=ROOT,
        )
    for provider, child in children.items():
        try:
            _, stderr = child.communicate(timeout=90)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == 0, stderr[-3000:]
        summary, samples, meta = read_run(tmp_path / provider)
        assert {s["provider"] for s in samples} == {provider}
        assert summary["workers"]["seen"] == 2 and summary["workers"]["lost"] == []
        assert len(samples) == meta["emulator_stats"]["received"] > 0


# ---------------------------------------------------------------------------- hostile server


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, HostileServer]:
    mix = [b for b in BEHAVIOURS if b not in ("stall_headers", "giant_line")]
    mix += ["stall_headers:1", "giant_line:1000000"]
    return _hostile_load(tmp_path_factory.mktemp("hostile"), mix, HOSTILE_REQUESTS, "h")


def test_hostile_server_load_keeps_every_sample(hostile_run: tuple[Path, HostileServer]) -> None:
    folder, server = hostile_run
    summary, samples, meta = read_run(folder)
    assert meta["data_source"] == "live"
    # A request that met a closed keep-alive connection (silent_close on a reused one looks
    # the same) was sent once more on a new connection: one sample, two requests received.
    retried = sum(any("retried once" in a for a in s["anomalies"]) for s in samples)
    assert len(samples) == summary["samples"] == HOSTILE_REQUESTS
    assert server.received == HOSTILE_REQUESTS + retried
    assert summary["aborted"] == 0
    behaviour = {f"hostile-{seq}": name for seq, name, _, _ in server.log}
    seen: Counter[str] = Counter()
    for sample in samples:
        cls = E(sample["error_class"]) if sample["error_class"] else None
        assert cls is not E.CLIENT_ERROR, sample
        name = behaviour.get(sample["server_request_id"] or "")
        seen[name or "<no head>"] += 1
        if name is None:
            assert cls in NO_HEAD, sample
        else:
            assert cls in LOAD_EXPECTED.get(name, NO_HEAD), (name, sample)
    errors = Counter(s["error_class"] for s in samples if s["error_class"])
    assert summary["errors"] == dict(sorted(errors.items()))
    assert seen["valid"] > 0 and seen["<no head>"] > 0
    print(f"\nhostile load: {len(samples)} samples of {server.received} requests; {dict(errors)}")


def test_report_builds_from_the_hostile_run(
    hostile_run: tuple[Path, HostileServer], tmp_path: Path
) -> None:
    folder, _ = hostile_run
    done = run_cli("report", str(folder), "--out", str(tmp_path / "report"))
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page  # the error message, as text


# ---------------------------------------------------------------------------- hostile content


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI")
        pytest.skip(f"{CHROMIUM} not installed; CI runs this test")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield instance
        instance.close()


def test_hostile_text_is_escaped_in_the_browser(tmp_path: Path, browser: Any) -> None:
    mix = ["hostile_content", "hostile_content", "hostile_error", "hostile_midstream"]
    folder, _ = _hostile_load(tmp_path, mix, 24, "content", seed=2)
    _, samples, _ = read_run(folder)
    assert any(s.get("output_excerpt") == HOSTILE_TEXT for s in samples)
    done = run_cli("report", str(folder), "--out", str(tmp_path / "report"))
    assert done.returncode == 0, done.stderr
    index = tmp_path / "report" / "index.html"

    page = browser.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(index.as_uri())
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)  # an onerror handler would have fired by now
    text = page.locator("body").inner_text()
    assert dialogs == [] and errors == []
    assert requests == [index.as_uri()]  # <img src=x> was never fetched
    assert HOSTILE_TEXT in text
    assert HOSTILE_ERROR in text
    assert page.locator("main script, main img, main b").count() == 0
    page.close()
    md = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "<script>" not in md and "<img" not in md
