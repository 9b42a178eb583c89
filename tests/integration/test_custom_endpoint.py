"""Custom endpoints without the network: ``--base-url`` materialised as a profile file, the
suite loader's generic cases for a custom provider, the runner's skips and hints, and the
checks an unknown server is judged by."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

from chatprobe.checks import CheckContext, evaluate
from chatprobe.endpoints import (
    custom_endpoint_name,
    endpoint_names,
    materialise_endpoint,
    provider_refs,
    record_profiles,
)
from chatprobe.errors import ChatprobeError, MissingKeyError
from chatprobe.paths import project_root
from chatprobe.profiles import builtin_profiles, list_profiles, load_profile
from chatprobe.record import RequestRecord
from chatprobe.specs import profile_validator
from chatprobe.suites import load_suite
from chatprobe.suites.runner import RunConfig, Runner
from chatprobe.yamlfile import load_yaml

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")  # specs/profile.schema.yaml


@pytest.fixture(autouse=True)
def profile_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "profiles"
    monkeypatch.setenv("CHATPROBE_PROFILE_DIR", str(folder))
    monkeypatch.setenv("LOCAL_LLM_KEY", "none")
    monkeypatch.delenv("UNSET_LLM_KEY", raising=False)
    return folder


def endpoint(*models: str, url: str = "http://localhost:8000/v1") -> str:
    return str(materialise_endpoint(url, "LOCAL_LLM_KEY", list(models or ("tiny-chat",))))


# ---------------------------------------------------------------------------- the profile file


def test_base_url_becomes_a_validated_profile_file(profile_dir: Path) -> None:
    path = Path(endpoint("m-1", "org/m-2", url="http://localhost:8000/v1/"))
    assert path.parent == profile_dir
    doc = load_yaml(path)
    assert list(profile_validator().iter_errors(doc.data)) == []
    profile = load_profile(str(path))
    assert profile.name == "localhost-8000"
    assert profile.base_url == "http://localhost:8000/v1"
    assert profile.chat_url == "http://localhost:8000/v1/chat/completions"
    assert profile.api_key_env == "LOCAL_LLM_KEY"
    assert profile.schema_level == "openai-strict"
    assert profile.success_status == (200,)
    assert profile.error_envelope == "openai"
    assert profile.stream_usage == "include_usage"
    assert profile.id_pattern is None
    assert profile.deviations == {}
    assert profile.custom_endpoint
    assert [(m.name, m.id, m.echo) for m in profile.models.values()] == [
        ("m-1", "m-1", "m-1"),
        ("org/m-2", "org/m-2", "org/m-2"),
    ]
    assert "none" not in path.read_text()  # the variable's name, never its value


def test_the_path_is_stable_per_endpoint_and_models() -> None:
    first = endpoint("a")
    assert endpoint("a") == first
    assert endpoint("b") != first
    assert endpoint("a", url="http://localhost:8001/v1") != first


def test_a_pasted_chat_completions_url_is_cut_to_the_base() -> None:
    profile = load_profile(endpoint(url="https://gw.example.com/openai/v1/chat/completions"))
    assert profile.base_url == "https://gw.example.com/openai/v1"
    assert profile.name == "gw-example-com"


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("http://localhost:8000/v1", "localhost-8000"),
        ("http://LocalHost:11434/v1", "localhost-11434"),
        ("http://127.0.0.1:8080/v1", "127-0-0-1-8080"),
        ("https://api.openai.com/v1", "api-openai-com"),
        ("http://[::1]:8000/v1", "1-8000"),
        ("http://aimlapi:9000/v1", "aimlapi-9000"),
    ],
)
def test_names_come_from_host_and_port(url: str, name: str) -> None:
    assert custom_endpoint_name(url) == name
    assert NAME_PATTERN.match(name)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://localhost:8000/v1", "localhost:8000"),
        ("http://LocalHost:11434/v1/", "localhost:11434"),
        ("http://127.0.0.1:4000/v1", "127.0.0.1:4000"),
        ("https://api.openai.com/v1", "api.openai.com"),
        ("http://[::1]:8000/v1", "[::1]:8000"),
    ],
)
def test_people_read_host_and_port_files_get_the_id(url: str, shown: str) -> None:
    """The naming rule: a display name for people, a file-safe id for files and node ids."""
    assert endpoint_names(url) == (custom_endpoint_name(url), shown)
    profile = load_profile(str(materialise_endpoint(url, "LOCAL_LLM_KEY", ["m"])))
    assert (profile.name, profile.display_name) == (custom_endpoint_name(url), shown)
    assert Path(profile.source).name.startswith(profile.name + "-")  # the file: the id


def test_name_gives_both_names_and_follows_the_profile_rule() -> None:
    assert endpoint_names("http://127.0.0.1:4000/v1", "staging") == ("staging", "staging")
    path = materialise_endpoint("http://127.0.0.1:4000/v1", "LOCAL_LLM_KEY", ["m"], name="gw")
    profile = load_profile(str(path))
    assert (profile.name, profile.display_name) == ("gw", "gw")
    assert path.name.startswith("gw-")
    for bad in ("Bad Name", "-x", "a.b:1"):
        with pytest.raises(ChatprobeError, match="--name must be lower case"):
            endpoint_names("http://h/v1", bad)
    with pytest.raises(ChatprobeError, match="shipped provider's name"):
        endpoint_names("http://h/v1", builtin_profiles()[0])
    with pytest.raises(ChatprobeError, match="--name names a --base-url endpoint"):
        provider_refs(("aimlapi",), name="gw")


def test_a_name_never_shadows_a_shipped_profile() -> None:
    shipped = list_profiles()[0]
    assert custom_endpoint_name(f"http://{shipped}/v1") == f"{shipped}-custom"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("http://h/v1", None, ["m"]), "--base-url needs --api-key-env VAR"),
        (("http://h/v1", "LOCAL_LLM_KEY", []), "--base-url needs --model ID"),
        (("h:8000/v1", "LOCAL_LLM_KEY", ["m"]), "--base-url must be an http:// or https:// URL"),
        (("http://h/v1", "local_key", ["m"]), "--api-key-env takes the NAME"),
    ],
)
def test_incomplete_endpoint_options_say_what_to_add(
    args: tuple[str, str | None, list[str]], words: str
) -> None:
    with pytest.raises(ChatprobeError, match=re.escape(words)) as info:
        provider_refs((), *args)
    assert "\n" not in str(info.value)


def test_an_unset_key_variable_is_named_before_anything_starts() -> None:
    with pytest.raises(MissingKeyError) as info:
        provider_refs((), "http://localhost:8000/v1", "UNSET_LLM_KEY", ["m"])
    assert info.value.variable == "UNSET_LLM_KEY"
    assert "set it to any value" in str(info.value)


def test_provider_refs_keep_names_and_files_and_refuse_mixtures() -> None:
    path = endpoint()
    assert provider_refs(("aimlapi", path)) == ["aimlapi", path]
    with pytest.raises(ChatprobeError, match="not both"):
        provider_refs(("aimlapi",), "http://localhost:8000/v1", "LOCAL_LLM_KEY", ["m"])
    with pytest.raises(ChatprobeError, match="only used with --base-url"):
        provider_refs((), None, "LOCAL_LLM_KEY")


def test_profile_files_are_copied_into_the_results_folder(tmp_path: Path) -> None:
    path = endpoint()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    copied = record_profiles(run_dir, ["openrouter", path])
    assert copied == [run_dir / "profile-localhost-8000.yaml"]
    assert copied[0].read_text() == Path(path).read_text()


# ---------------------------------------------------------------------------- suites

SUITE = """
defaults:
  request:
    body:
      max_tokens: 8
      messages: [{role: user, content: Hi.}]
cases:
  - name: generic
    request:
      raw_body: '{"model": "{{model}}", "messages": [{"role": "user", "content": "Hi"}]}'
  - name: every-model
    models: all
  - name: pinned
    providers: [aimlapi, apilaplas]
  - name: shipped-model-only
    models: [gemini-1.5-flash]
  - name: overridden
    expect: {status: 403}
    overrides:
      openrouter:
        expect: {status: 402}
        xfail: an OpenRouter quirk
  - name: limited
    request: {fault: rate_limit_429}
    expect: {status: 429}
"""


def write(tmp_path: Path, text: str, name: str = "custom.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def test_generic_cases_run_against_a_custom_provider(tmp_path: Path) -> None:
    ref = endpoint("m-1", "m-2")
    suite = load_suite(write(tmp_path, SUITE), custom=[ref])
    custom = [r for r in suite.runs if r.provider == "localhost-8000"]
    assert [r.id for r in custom] == [
        "generic[localhost-8000-m-1]",
        "every-model[localhost-8000-m-1]",
        "every-model[localhost-8000-m-2]",
        "overridden[localhost-8000-m-1]",
        "limited[localhost-8000-m-1]",
    ]
    assert all(r.profile == ref and r.profile_ref == ref for r in custom)
    generic = custom[0]
    assert orjson.loads(generic.raw_body or b"")["model"] == "m-1"  # {{model}} -> the id
    overridden = custom[3]
    assert overridden.expect.status.spec == 403  # the case's own expectation...
    assert overridden.xfail is None  # ...and none of OpenRouter's override
    shipped = [r for r in suite.runs if r.provider != "localhost-8000"]
    assert shipped == list(load_suite(write(tmp_path, SUITE)).runs)  # unchanged
    assert all(r.profile == "" for r in shipped)


def test_success_means_the_custom_profiles_status(tmp_path: Path) -> None:
    ref = endpoint()
    suite = load_suite(write(tmp_path, SUITE), custom=[ref])
    run = next(r for r in suite.runs if r.id == "generic[localhost-8000-tiny-chat]")
    assert run.expect.status.allowed(load_profile(ref)) == (200,)
    aiml = next(r for r in suite.runs if r.id.startswith("generic[aimlapi"))
    assert aiml.expect.status.allowed(load_profile("aimlapi")) == (201,)


def test_level_suites_run_only_for_custom_profiles_of_their_level(tmp_path: Path) -> None:
    text = "schema_level: aimlapi\ndefaults: {providers: [aimlapi]}\ncases: [{name: one}]\n"
    path = write(tmp_path, text, "level.yaml")
    strict = endpoint()
    assert [r.provider for r in load_suite(path, custom=[strict]).runs] == ["aimlapi"]
    aiml_like = write(
        tmp_path,
        Path(load_profile("aimlapi").source)
        .read_text()
        .replace("name: aimlapi", "name: aiml-proxy"),
        "aiml-proxy.yaml",
    )
    runs = load_suite(path, custom=[str(aiml_like)]).runs
    assert [r.provider for r in runs] == ["aimlapi", "aiml-proxy"]


def test_committed_suites_for_a_custom_endpoint() -> None:
    """Every hand-written generic case applies; derived suites are per level and no suite is
    derived for openai-strict (documented in chatprobe.suites.derive)."""
    ref = endpoint()
    counts: dict[str, int] = {}
    for path in sorted((project_root() / "suites").rglob("*.yaml")):
        suite = load_suite(path, custom=[ref])
        counts[suite.name] = sum(r.provider == "localhost-8000" for r in suite.runs)
        for run in suite.runs:
            if run.provider == "localhost-8000":
                assert run.case != "penalties-null"  # pinned to AI/ML API and Apilaplas
    assert {n: c for n, c in counts.items() if n.startswith("derived/")} == {
        "derived/aimlapi": 0,
        "derived/apilaplas": 0,
        "derived/openrouter": 0,
    }
    assert counts["basic"] == 3 and counts["faults"] == 12
    assert counts["parameters"] == 15  # 16 cases, one pinned


def test_a_custom_profiles_deviations_must_name_real_checks(tmp_path: Path) -> None:
    text = Path(endpoint()).read_text().replace("deviations: {}", "deviations: {no_such: x}")
    bad = write(tmp_path, text, "bad-profile.yaml")
    with pytest.raises(ChatprobeError, match=r"bad-profile.yaml:\d+: deviations.no_such"):
        load_suite(write(tmp_path, SUITE), custom=[str(bad)])


# ---------------------------------------------------------------------------- the runner


def test_fault_cases_are_skipped_for_a_real_endpoint(tmp_path: Path) -> None:
    ref = endpoint()
    suite = load_suite(write(tmp_path, SUITE), custom=[ref])
    run = next(r for r in suite.runs if r.id == "limited[localhost-8000-tiny-chat]")
    for config in (RunConfig(cassette_dir=tmp_path), RunConfig(live=True, emulator=True)):
        with Runner(config) as runner:
            result = runner.run(run)
        assert result.outcome == "skipped"
        assert "localhost-8000 is a real endpoint (--base-url), never emulated" in result.message


def test_replay_without_a_cassette_says_how_to_record_the_endpoint(tmp_path: Path) -> None:
    ref = endpoint()
    suite = load_suite(write(tmp_path, SUITE), custom=[ref])
    run = next(r for r in suite.runs if r.id == "generic[localhost-8000-tiny-chat]")
    with Runner(RunConfig(cassette_dir=tmp_path / "cassettes")) as runner:
        result = runner.run(run)
    assert result.outcome == "error"
    assert "no cassette" in result.message
    assert (
        "record it with: chatprobe check --record --base-url http://localhost:8000/v1 "
        "--api-key-env LOCAL_LLM_KEY --model tiny-chat -k 'generic'" in result.message
    )
    assert str(run.cassette) == "localhost-8000/custom/generic--tiny-chat.yaml"


# ---------------------------------------------------------------------------- checks


def answer(model: str) -> RequestRecord:
    """An OpenAI-style plain answer, as api.openai.com sends it."""
    body = {
        "id": "chatcmpl-AbC123",
        "object": "chat.completion",
        "created": 1744217603,
        "model": model,
        "system_fingerprint": "fp_1",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "logprobs": None,
                "message": {"role": "assistant", "content": "Hello!", "refusal": None},
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
    record = RequestRecord(provider="x", status=200)
    record.response_headers = {"content-type": "application/json"}
    record.body = orjson.dumps(body)
    return record.finish()


@pytest.mark.parametrize(
    ("echo", "status"),
    [
        ("gpt-4o-mini", "pass"),
        ("gpt-4o-mini-2024-07-18", "pass"),  # OpenAI's dated snapshot of an alias
        ("gpt-4o", "warn"),
        ("gpt-4o-mini-latest", "warn"),
    ],
)
def test_a_plain_openai_answer_passes_every_applicable_check(echo: str, status: str) -> None:
    ref = endpoint("gpt-4o-mini", url="https://api.openai.com/v1")
    profile = load_profile(ref)
    suite_path = project_root() / "suites" / "basic.yaml"
    run = next(
        r for r in load_suite(suite_path, custom=[ref]).runs if r.id.startswith("hello[api-")
    )
    evaluation = evaluate(CheckContext.for_case(profile, run), answer(echo), run)
    statuses = evaluation.statuses()
    assert statuses["model_echo"] == status
    assert statuses["id_format"] == "skip"  # no documented id format to hold it to
    assert {s for n, s in statuses.items() if n != "model_echo"} <= {"pass", "skip"}
    assert evaluation.outcome == "passed"


def test_a_shipped_profile_keeps_its_exact_echo() -> None:
    profile = load_profile("openrouter")
    run = next(
        r
        for r in load_suite(project_root() / "suites" / "basic.yaml").runs
        if r.id == "hello[openrouter-gemini-2.0-flash-001]"
    )
    record = answer("google/gemini-2.0-flash-001-2025-01-01")
    statuses = evaluate(CheckContext.for_case(profile, run), record, run).statuses()
    assert statuses["model_echo"] == "warn"


# ---------------------------------------------------------------------------- plain pytest


def _collect(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    return subprocess.run(
        [*command, *args, "suites/"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=project_root(),
    )


def test_plain_pytest_takes_a_profile_file_as_provider() -> None:
    """`pytest suites/ --chatprobe-provider FILE` collects the generic cases for that provider only;
    the -k filters docs/suites.md suggests for missing capabilities deselect whole areas."""
    ref = endpoint()
    done = _collect("--chatprobe-provider", ref)
    assert done.returncode == 0, done.stdout[-2000:]
    items = [line for line in done.stdout.splitlines() if "::" in line]
    assert len(items) == 64  # the generic cases, models-list included
    assert all("[localhost-8000-tiny-chat]" in line for line in items)
    assert not any("derived/" in line for line in items)
    kept = _collect(
        "--chatprobe-provider", ref, "-k", "not key and not tools and not multimodal"
    ).stdout
    assert "51/64 tests collected (13 deselected)" in kept  # 3 key, 7 tools, 3 multimodal
    missing = _collect("--chatprobe-provider", "no-such-profile.yaml")
    assert missing.returncode != 0
    assert "no-such-profile.yaml: file not found" in missing.stderr + missing.stdout
