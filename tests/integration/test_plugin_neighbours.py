"""The plugin in other people's pytest runs: beside pytest-recording, in a folder that is not
a chatprobe project, under pytest-xdist, and through its fixtures in Python tests."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
KEY_VARS = ("AIMLAPI_API_KEY", "APILAPLAS_API_KEY", "OPENROUTER_API_KEY")


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CHATPROBE_PROJECT", raising=False)


def outcomes(result: pytest.RunResult) -> dict[str, int]:
    skip = ("seconds", "warnings", "deselected")
    return {k: v for k, v in result.parseoutcomes().items() if k not in skip}


def test_pytest_recording_and_chatprobe_work_side_by_side(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_vcr="""
        import pytest

        @pytest.mark.vcr
        def test_recording_option(record_mode):
            assert record_mode == "none"
        """
    )
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites" / "one.yaml").write_text(
        "defaults: {providers: [apilaplas]}\ncases:\n  - name: hi\n    request:\n"
        "      body: {max_tokens: 4, messages: [{role: user, content: hi}]}\n",
        encoding="utf-8",
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--record-mode", "none", "--chatprobe",
        "--chatprobe-live", "--chatprobe-emulator",
    )  # fmt: skip
    assert outcomes(result) == {"passed": 1, "deviation": 1}
    help_text = pytester.runpytest("--help").stdout.str()
    assert "--record-mode=" in help_text  # pytest-recording's
    assert "--chatprobe-record-mode=" in help_text  # chatprobe's


def test_an_unrelated_suites_folder_is_not_collected(pytester: pytest.Pytester) -> None:
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites" / "x.yaml").write_text("jobs: [build, test]\n", encoding="utf-8")
    (pytester.path / "suites" / "ci.yaml").write_text("cases: nope\n", encoding="utf-8")
    pytester.makepyfile(test_app="def test_app():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 0
    assert outcomes(result) == {"passed": 1}
    collected = pytester.runpytest("-p", "no:cacheprovider", "--collect-only", "-q")
    assert "yaml" not in collected.stdout.str()
    # the same folder made a chatprobe project: now its suites are suites
    (pytester.path / "chatprobe.toml").write_text("[paths]\nsuites = ['suites']\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert outcomes(result) == {"passed": 1, "failed": 2}  # two invalid suites, one item each


def _contract(*args: str, out: Path) -> dict[str, object]:
    """Replay three real suites in this repository with plain pytest; contract.json."""
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-o", "addopts=",
        "suites/basic.yaml", "suites/errors.yaml", "suites/streaming.yaml",
        "--chatprobe-results", str(out), *args,
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return json.loads(out.read_text())


def test_xdist_writes_the_same_contract_results_as_a_serial_run(tmp_path: Path) -> None:
    serial = _contract(out=tmp_path / "serial.json")
    parallel = _contract("-n", "2", out=tmp_path / "parallel.json")

    def comparable(doc: dict[str, object]) -> dict[str, object]:
        per_run = ("duration_s", "request_id")  # a fresh X-Request-Id per request and run
        results = [{k: v for k, v in r.items() if k not in per_run} for r in doc["results"]]  # type: ignore[attr-defined]
        return {**doc, "results": results}

    assert len(serial["results"]) > 50  # type: ignore[arg-type]
    assert comparable(parallel) == comparable(serial)  # outcomes, order, matrix, counts


TEST_CLIENT = """
from chatprobe.emulator import DEMO_KEY
from chatprobe import ChatClient

def test_client(chatprobe_client, chatprobe_model):
    profile = chatprobe_client.profile
    body = {"model": profile.model(chatprobe_model).id, "max_tokens": 4,
            "messages": [{"role": "user", "content": "Say hi."}]}
    record = chatprobe_client.chat(body)
    assert record.status in profile.success_status, record.summary_line()
    print("PROVIDER", profile.name, "MODEL", chatprobe_model)

def test_emulator(chatprobe_emulator):
    with ChatClient(chatprobe_emulator.profile("apilaplas"), api_key=DEMO_KEY) as client:
        record = client.chat({"model": "google/gemini-2.0-flash-exp", "max_tokens": 2,
                              "messages": [{"role": "user", "content": "hi"}]})
    assert record.status == 201  # Apilaplas documents 201
"""


def test_fixtures_record_replay_and_precedence(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_py=TEST_CLIENT)

    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest("-p", "no:cacheprovider", "-s", "-rs", *args)

    missing = run("--chatprobe-provider", "aimlapi", "-k", "client")
    assert outcomes(missing) == {"errors": 1}  # the fixture's setup fails, saying what to do
    missing.stdout.fnmatch_lines(["*no cassette*; record it with: pytest --chatprobe-record-mode*"])

    recorded = run("--chatprobe-provider", "aimlapi", "--chatprobe-record-mode", "once")
    assert outcomes(recorded) == {"passed": 2}  # recorded from the emulator: no key is set
    cassette = (
        pytester.path / "cassettes/aimlapi/tests/test_py/test_client--gemini-2.0-flash-exp.yaml"
    )
    assert cassette.is_file()
    assert "api.aimlapi.com" in cassette.read_text()  # stored under the real URL

    replayed = run("--chatprobe-provider", "aimlapi", "-k", "client")
    assert outcomes(replayed) == {"passed": 1}
    replayed.stdout.fnmatch_lines(["*PROVIDER aimlapi MODEL gemini-2.0-flash-exp*"])

    # the fixture chooses when the command line does not; the command line wins over it
    pytester.makeconftest(
        "import pytest\n\n@pytest.fixture(scope='session')\n"
        "def chatprobe_config():\n    return {'provider': 'aimlapi', 'model': 'gemini-1.5-flash'}\n"
    )
    chosen = run("-k", "client", "--chatprobe-record-mode", "once")
    assert outcomes(chosen) == {"passed": 1}
    chosen.stdout.fnmatch_lines(["*PROVIDER aimlapi MODEL gemini-1.5-flash*"])
    cli = run("-k", "client", "--chatprobe-model", "gemini-2.0-flash-exp")
    cli.stdout.fnmatch_lines(["*PROVIDER aimlapi MODEL gemini-2.0-flash-exp*"])

    live = run("-k", "client", "--chatprobe-live")  # live, no key: skipped, naming it
    assert outcomes(live) == {"skipped": 1}
    live.stdout.fnmatch_lines(["SKIPPED*environment variable AIMLAPI_API_KEY is not set*"])


def test_a_broken_project_configuration_is_a_usage_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "chatprobe.toml").write_text(
        textwrap.dedent("""
        providers = ["aimlapi"]
        [timeouts]
        idle = "soon"
        """).lstrip()
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "chatprobe.toml:3: timeouts.idle:" in result.stderr.str()
    (pytester.path / "chatprobe.toml").write_text('providers = ["acme"]\n')
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "providers: unknown provider 'acme'" in result.stderr.str()
