"""The pytest plugin end to end (pytester): collection, ids, record against the emulator,
offline replay, missing cassettes, invalid suites, live without a key, the canary key."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

pytest_plugins = ["pytester"]

KEY_VARS = ("AIMLAPI_API_KEY", "APILAPLAS_API_KEY", "OPENROUTER_API_KEY")
CANARY = "sk-canary-Q7xV2mK9pL4wR8tZ3nB6cF1d"

SUITE = """
defaults:
  providers: [aimlapi, openrouter]
  request:
    body:
      max_tokens: 4
      messages: [{role: user, content: Say hi.}]
cases:
  - name: hello
  - name: hello-stream
    request: {stream: true, body: {stream_options: {include_usage: true}}}
  - name: bad-key
    request: {api_key: invalid}
    expect: {status: 401}
  - name: limited
    request: {fault: rate_limit_429}
    expect: {status: 429}
"""


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)


def suite(pytester: pytest.Pytester, text: str = SUITE, name: str = "basic") -> Path:
    path = pytester.path / "suites" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "-p", "no:cacheprovider", "--chatprobe", "--chatprobe-cassette-dir", "cassettes", *args
    )


def outcomes(result: pytest.RunResult) -> dict[str, int]:
    """Outcome counts, including the plugin's own `deviation` category."""
    return {k: v for k, v in result.parseoutcomes().items() if k not in ("seconds", "deselected")}


def test_collects_one_item_per_case_provider_model(pytester: pytest.Pytester) -> None:
    suite(pytester)
    (pytester.path / "other.yaml").write_text("cases: nope\n", encoding="utf-8")
    (pytester.path / "cassettes").mkdir()
    (pytester.path / "cassettes" / "x.yaml").write_text("interactions: []\n", encoding="utf-8")
    result = run(pytester, "--collect-only", "-q")
    lines = [line for line in result.outlines if "::" in line]
    assert lines == [
        "suites/basic.yaml::hello[aimlapi-gemini-2.0-flash-exp]",
        "suites/basic.yaml::hello[openrouter-gemini-2.0-flash-exp:free]",
        "suites/basic.yaml::hello-stream[aimlapi-gemini-2.0-flash-exp]",
        "suites/basic.yaml::hello-stream[openrouter-gemini-2.0-flash-exp:free]",
        "suites/basic.yaml::bad-key[aimlapi-gemini-2.0-flash-exp]",
        "suites/basic.yaml::bad-key[openrouter-gemini-2.0-flash-exp:free]",
        "suites/basic.yaml::limited[aimlapi-gemini-2.0-flash-exp]",
        "suites/basic.yaml::limited[openrouter-gemini-2.0-flash-exp:free]",
    ]
    filtered = run(
        pytester, "--collect-only", "-q", "--chatprobe-provider", "openrouter", "-k", "stream"
    )
    assert [line for line in filtered.outlines if "::" in line] == [
        "suites/basic.yaml::hello-stream[openrouter-gemini-2.0-flash-exp:free]"
    ]


def test_record_against_the_emulator_then_replay_offline(pytester: pytest.Pytester) -> None:
    suite(pytester)
    recorded = run(pytester, "--chatprobe-record-mode", "once", "--chatprobe-results", "rec.json")
    assert outcomes(recorded) == dict(deviation=8)
    cassettes = sorted((pytester.path / "cassettes").rglob("*.yaml"))
    assert [str(p.relative_to(pytester.path / "cassettes")) for p in cassettes] == sorted(
        [
            f"{provider}/basic/{case}--{model}.yaml"
            for provider, model in (
                ("aimlapi", "gemini-2.0-flash-exp"),
                ("openrouter", "gemini-2.0-flash-exp_free"),
            )
            for case in ("hello", "hello-stream", "bad-key", "limited")
        ]
    )
    data = yaml.safe_load(
        (
            pytester.path / "cassettes/openrouter/basic/limited--gemini-2.0-flash-exp_free.yaml"
        ).read_text()
    )
    assert data["metadata"]["chatprobe"]["recorded_from"] == "emulator"
    request = data["interactions"][0]["request"]
    assert request["uri"] == "https://openrouter.ai/api/v1/chat/completions"
    assert request["headers"]["host"] == ["openrouter.ai"]
    assert request["headers"]["authorization"] == ["<redacted>"]
    assert request["headers"]["x-chatprobe-fault"] == ["rate_limit_429"]
    assert json.loads((pytester.path / "rec.json").read_text())["data_source"] == "emulated"

    replayed = run(pytester, "--chatprobe-results", "replay.json")
    assert outcomes(replayed) == dict(deviation=8)
    replayed.stdout.fnmatch_lines(
        [
            "chatprobe: 8 cases conform to their provider's documented contract, 8 of them with "
            "documented deviations from OpenAI: *status_openai 2*. "
            "Data: replayed (emulated recording).",
        ]
    )
    verbose = run(pytester, "-v")  # -v: each deviation names the checks that made it one
    verbose.stdout.fnmatch_lines(["*::hello[[]aimlapi-* DEVIATION (*status_openai*)*"])
    contract = json.loads((pytester.path / "replay.json").read_text())
    assert contract["data_source"] == "replayed (emulated recording)"
    assert contract["matrix"]["aimlapi"]["status_openai"] == "deviation"
    assert contract["matrix"]["openrouter"]["retry_after_429"] == "pass"
    assert contract["matrix"]["openrouter"]["stream_done_last"] == "pass"
    assert {r["outcome"] for r in contract["results"]} == {"deviation"}


def test_extra_suite_paths_and_bad_options(pytester: pytest.Pytester) -> None:
    extra = pytester.path / "contracts" / "mine.yaml"
    extra.parent.mkdir()
    extra.write_text(
        "defaults: {providers: [apilaplas]}\ncases:\n  - name: one\n", encoding="utf-8"
    )
    result = run(pytester, "--collect-only", "-q", "--chatprobe-suites", "contracts")
    assert "contracts/mine.yaml::one[apilaplas-gemini-2.0-flash-exp]" in result.stdout.str()
    result = run(pytester, "--chatprobe-provider", "acme")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown provider 'acme' (known: aimlapi, apilaplas, openrouter)" in result.stderr.str()
    result = run(pytester, "--chatprobe-model", "gpt-9")
    assert "unknown model 'gpt-9'" in result.stderr.str()
    result = run(pytester, "--chatprobe-live", "--chatprobe-record-mode", "all")
    assert "--chatprobe-live sends requests without cassettes" in result.stderr.str()


def test_missing_cassette_fails_saying_how_to_record(pytester: pytest.Pytester) -> None:
    suite(pytester)
    result = run(pytester, "-k", "hello and not stream")
    assert outcomes(result) == dict(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*no cassette cassettes/aimlapi/basic/hello--gemini-2.0-flash-exp.yaml*record it with: "
            "chatprobe check --record --provider aimlapi --model gemini-2.0-flash-exp -k 'hello'*"
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_canary_key_leaves_no_trace(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in KEY_VARS:
        monkeypatch.setenv(name, CANARY)
    suite(pytester)
    result = run(
        pytester,
        "--chatprobe-record-mode",
        "all",
        "--chatprobe-emulator",
        "--chatprobe-results",
        "results/contract.json",
        "--junitxml",
        "results/junit.xml",
    )
    assert outcomes(result) == dict(deviation=8)
    written = [p for p in pytester.path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".yaml" and "cassettes" in p.parts for p in written)
    needles = [CANARY.encode(), CANARY[3:].encode(), CANARY[-12:].encode()]
    for path in written:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"canary found in {path}"
    assert CANARY not in result.stdout.str()


INVALID = {
    "bad_yaml": ("cases: [\n", "bad_yaml.yaml:2: invalid YAML"),
    "wrong_type": (
        "cases:\n  - name: a\n    request: {stream: 3}\n",
        "wrong_type.yaml:3: cases[0].request.stream: 3 is not of type 'boolean'",
    ),
    "unknown_check": (
        "cases:\n  - name: a\n    expect: {checks: {no_such: false}}\n",
        "unknown_check.yaml:3: cases[0].expect.checks.no_such: unknown check 'no_such'",
    ),
    "duplicate": (
        "cases:\n  - name: a\n  - name: a\n",
        "duplicate.yaml:3: cases[1].name: duplicate case name 'a' (first at line 2)",
    ),
    "unknown_provider": (
        "defaults: {providers: [acme]}\ncases:\n  - name: a\n",
        "unknown_provider.yaml:1: defaults.providers[0]: unknown provider 'acme'",
    ),
    "unknown_model": (
        "cases:\n  - name: a\n    models: [gpt-9]\n",
        "unknown_model.yaml:3: cases[0].models[0]: unknown model",
    ),
}


def test_each_invalid_suite_is_one_failing_item(pytester: pytest.Pytester) -> None:
    for name, (text, _) in INVALID.items():
        suite(pytester, text, name)
    suite(
        pytester,
        "defaults: {providers: [aimlapi]}\n"
        "cases:\n  - name: ok\n    overrides: {aimlapi: {skip: later}}\n",
        "good",
    )
    result = run(pytester)
    assert outcomes(result) == dict(failed=len(INVALID), skipped=1)
    output = result.stdout.str()
    for name, (_, message) in INVALID.items():
        assert f"suites/{name}.yaml::invalid-suite" in output
        assert message in output, message
    assert "Traceback" not in output
    assert "ERROR collecting" not in output


def test_live_without_a_key_skips_naming_the_variable(pytester: pytest.Pytester) -> None:
    suite(pytester)
    result = run(pytester, "--chatprobe-live", "-k", "hello and not stream", "-rs")
    assert outcomes(result) == dict(skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED*environment variable AIMLAPI_API_KEY is not set*"])
    result.stdout.fnmatch_lines(["SKIPPED*environment variable OPENROUTER_API_KEY is not set*"])
    assert "Traceback" not in result.stdout.str()


def test_live_skips_fault_cases_unless_the_target_is_the_emulator(
    pytester: pytest.Pytester,
) -> None:
    suite(pytester)
    result = run(pytester, "--chatprobe-live", "-k", "limited", "-rs")
    assert outcomes(result) == dict(skipped=2)  # skipped before the missing key matters
    result.stdout.fnmatch_lines(["SKIPPED*suites/basic.yaml:*fault injection (rate_limit_429)*"])
    result = run(pytester, "--chatprobe-live", "--chatprobe-emulator", "-k", "limited")
    assert outcomes(result) == dict(deviation=2)
    assert not (pytester.path / "cassettes").exists()


def test_xfail_override_is_strict(pytester: pytest.Pytester) -> None:
    suite(
        pytester,
        """
        defaults:
          providers: [apilaplas]
          request: {body: {max_tokens: 4, messages: [{role: user, content: hi}]}}
        cases:
          - name: known-bad
            expect: {status: 418}
            overrides: {apilaplas: {xfail: the teapot is not implemented}}
          - name: fixed
            overrides: {apilaplas: {xfail: was broken once}}
        """,
    )
    result = run(pytester, "--chatprobe-live", "--chatprobe-emulator")
    assert outcomes(result) == dict(xfailed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*expected to fail (was broken once) but passed: remove the xfail override*"]
    )


def test_plugin_import_is_cheap() -> None:
    code = (
        "import sys, chatprobe.pytest_plugin.plugin\n"
        "heavy = [m for m in ('httpx', 'jsonschema', 'vcr', 'yaml', 'chatprobe.checks',"
        " 'chatprobe.suites', 'chatprobe.emulator') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
