"""Suite loading: defaults, overrides, expansion, and one precise error per bad input."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatprobe.errors import ConfigError
from chatprobe.paths import project_root, specs_dir
from chatprobe.suites import load_suite
from chatprobe.suites.loader import check_profile_checks, suite_name_for

ROOT = project_root()


def write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / "suites" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def test_expansion_defaults_and_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        defaults:
          providers: [aimlapi, openrouter]
          request:
            headers: {X-Trace: "{{model}}"}
            body: {max_tokens: 8, temperature: 0}
          expect:
            checks: {model_echo: false}
        cases:
          - name: hello
            models: {aimlapi: [gemini-2.0-flash-exp, gemini-1.5-flash]}
            request:
              stream: true
              body:
                messages: [{role: user, content: "Hi {{model}}"}]
                max_tokens: 4
            expect:
              match: [{path: text, type: string}]
            overrides:
              openrouter:
                deviations: {usage_arithmetic: "documented elsewhere"}
                expect: {status: 2xx}
                request: {body: {temperature: 1}}
          - name: skipped
            request: {api_key: missing}
            expect: {status: 401}
            overrides:
              aimlapi: {skip: not today}
        """,
    )
    suite = load_suite(path)
    assert suite.name == "suite"
    assert suite.cases == ("hello", "skipped")
    ids = [r.id for r in suite.runs]
    assert ids == [
        "hello[aimlapi-gemini-2.0-flash-exp]",
        "hello[aimlapi-gemini-1.5-flash]",
        "hello[openrouter-gemini-2.0-flash-exp:free]",
        "skipped[aimlapi-gemini-2.0-flash-exp]",
        "skipped[openrouter-gemini-2.0-flash-exp:free]",
    ]
    first, _, router, skipped, _ = suite.runs
    assert first.body == {
        "max_tokens": 4,
        "temperature": 0,
        "messages": [{"role": "user", "content": "Hi gemini-2.0-flash-exp"}],
        "model": "gemini-2.0-flash-exp",
        "stream": True,
    }
    assert first.headers == {"X-Trace": "gemini-2.0-flash-exp"}
    assert first.stream and first.expect.enabled("model_echo") is False
    assert first.expect.match[0].path == "text"
    assert first.source.endswith("suite.yaml:9")
    assert router.body is not None and router.body["temperature"] == 1
    assert router.body["model"] == "google/gemini-2.0-flash-exp:free"
    assert router.deviations == {"usage_arithmetic": "documented elsewhere"}
    assert router.expect.status.spec == "2xx"
    assert str(router.cassette) == "openrouter/suite/hello--gemini-2.0-flash-exp_free.yaml"
    assert skipped.skip == "not today" and skipped.api_key == "missing"


def test_raw_body_is_templated_and_parsed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        defaults: {providers: [apilaplas], request: {body: {max_tokens: 3}}}
        cases:
          - name: raw
            request: {raw_body: '{"model": "{{model}}", "stream": true}'}
        """,
    )
    run = load_suite(path).runs[0]
    assert run.body is None
    assert run.raw_body == b'{"model": "google/gemini-2.0-flash-exp", "stream": true}'
    assert run.stream is True


def test_suite_names_follow_the_folder(tmp_path: Path) -> None:
    assert suite_name_for(tmp_path / "suites" / "derived" / "x.yaml") == "derived/x"
    assert suite_name_for(tmp_path / "elsewhere" / "y.yml") == "y"


def test_every_committed_suite_loads() -> None:
    paths = sorted((ROOT / "suites").rglob("*.yaml"))
    assert len(paths) >= 8
    for path in paths:
        suite = load_suite(path)
        assert suite.runs, path


CASE = "cases:\n  - name: a\n    request: {body: {messages: [{role: user, content: hi}]}}\n"


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        ("cases: [\n", 2, None, "invalid YAML"),
        ("- 1\n- 2\n", 1, None, "a suite must be a mapping"),
        ("name: x\n", 1, "cases", "missing required property"),
        ("cases: []\n", 1, "cases", "should be non-empty"),
        (CASE + "bogus: 1\n", 4, "bogus", "unexpected property 'bogus' (allowed: cases,"),
        (
            "cases:\n  - name: a\n    request: {stream: yes please}\n",
            3,
            "cases[0].request.stream",
            "is not of type 'boolean'",
        ),
        (
            "cases:\n  - name: a\n    request: {api_key: maybe}\n",
            3,
            "cases[0].request.api_key",
            "is not one of",
        ),
        ("cases:\n  - name: 'bad name'\n", 2, "cases[0].name", "does not match"),
        (CASE + "  - name: a\n", 4, "cases[1].name", "duplicate case name 'a' (first at line 2)"),
        (
            "defaults: {providers: [nowhere]}\n" + CASE,
            1,
            "defaults.providers[0]",
            "unknown provider 'nowhere'",
        ),
        ("defaults: {models: [gpt-9]}\n" + CASE, 1, "defaults.models[0]", "unknown model"),
        (
            "defaults: {models: {aimlapi: [gemini-2.0-flash-001]}}\n" + CASE,
            1,
            "defaults.models.aimlapi[0]",
            "unknown model for provider 'aimlapi'",
        ),
        (
            CASE + "    expect: {checks: {no_such_check: false}}\n",
            4,
            "cases[0].expect.checks.no_such_check",
            "unknown check",
        ),
        (
            CASE + "    expect: {fails: [nope]}\n",
            4,
            "cases[0].expect.fails[0]",
            "unknown check 'nope'",
        ),
        (
            CASE + "    expect: {schema_level: gpt}\n",
            4,
            "cases[0].expect.schema_level",
            "unknown schema level",
        ),
        (CASE + "    expect: {status: 700}\n", 4, "cases[0].expect.status", "700"),
        (
            CASE + "    expect: {match: [{path: x, regex: '(('}]}\n",
            4,
            "cases[0].expect.match[0].regex",
            "bad regex",
        ),
        (
            CASE + "    expect: {match: [{path: x, colour: red}]}\n",
            4,
            "cases[0].expect.match[0].colour",
            "unexpected property 'colour' (allowed: absent, contains,",
        ),
        (
            "cases:\n  - name: a\n    request: {body: {x: '{{modle}}'}}\n",
            3,
            "cases[0].request.body.x",
            "unknown placeholder {{modle}}",
        ),
        (
            "cases:\n  - name: a\n    request: {fault: meteor_strike}\n",
            3,
            "cases[0].request.fault",
            "unknown fault kind 'meteor_strike'",
        ),
        (
            "cases:\n  - name: a\n    request: {headers: {Authorization: Bearer x}}\n",
            3,
            "cases[0].request.headers.Authorization",
            "credentials do not belong",
        ),
        (
            CASE + "    overrides: {nowhere: {skip: x}}\n",
            4,
            "cases[0].overrides.nowhere",
            "unknown provider 'nowhere'",
        ),
        (
            CASE + "    overrides: {aimlapi: {deviations: {nope: because}}}\n",
            4,
            "cases[0].overrides.aimlapi.deviations.nope",
            "unknown check",
        ),
        (
            CASE + "    providers: [aimlapi]\n    overrides: {openrouter: {skip: x}}\n",
            5,
            "cases[0].overrides.openrouter",
            "does not run against",
        ),
        (
            "cases:\n  - name: a\n    request: {body: {}, raw_body: x}\n",
            3,
            "cases[0].request.raw_body",
            "not both",
        ),
        (
            "cases:\n  - name: a\n    models: [gemini-1.5-flash]\n    providers: [openrouter]\n",
            3,
            "cases[0].models[0]",
            "unknown model",
        ),
        ("cases:\n  - name: a\n    x: 1\n  - name: b\n", 3, "cases[0].x", "unexpected property"),
        (
            "cases:\n  - name: a\n    request: {body: {a: 1, a: 2}}\n",
            3,
            "cases[0].request.body.a",
            "duplicate key",
        ),
    ],
)
def test_bad_suites_name_file_line_and_field(
    tmp_path: Path, text: str, line: int | None, field: str | None, message: str
) -> None:
    path = tmp_path / "suites" / "bad.yaml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_suite(path)
    error = caught.value
    assert error.path == str(path)
    assert error.line == line, str(error)
    assert error.field == field, str(error)
    assert message in str(error)
    assert str(error).startswith(f"{path}:{line}: " if line else f"{path}: ")
    assert "\n" not in str(error)


def test_profile_naming_an_unknown_check_is_reported_at_the_profile(tmp_path: Path) -> None:
    profile = tmp_path / "odd.yaml"
    source = (specs_dir() / "providers" / "aimlapi.yaml").read_text(encoding="utf-8")
    profile.write_text(source.replace("  status_openai:", "  status_teapot:"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        check_profile_checks(str(profile))
    assert caught.value.field == "deviations.status_teapot"
    assert caught.value.line is not None and caught.value.path == str(profile)
    assert "unknown check 'status_teapot'" in str(caught.value)


def test_shipped_profiles_name_real_checks() -> None:
    for path in sorted((specs_dir() / "providers").glob("*.yaml")):
        check_profile_checks(str(path))


def _walk(node: Any, where: str, problems: list[str]) -> None:
    if isinstance(node, dict):
        closed = node.get("additionalProperties") is False
        if node.get("type") == "object" and "properties" in node and not closed:
            problems.append(f"{where}: additionalProperties is not false")
        for name, sub in (node.get("properties") or {}).items():
            if not (isinstance(sub, dict) and (sub.get("description") or "$ref" in sub)):
                problems.append(f"{where}.{name}: no description")
        for key, value in node.items():
            _walk(value, f"{where}.{key}", problems)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk(value, f"{where}[{i}]", problems)


def test_suite_schema_is_closed_and_described() -> None:
    schema = yaml.safe_load((specs_dir() / "suite.schema.yaml").read_text(encoding="utf-8"))
    problems: list[str] = []
    _walk(schema, "#", problems)
    assert not problems, problems
    for name, definition in schema["$defs"].items():
        assert definition.get("description"), name


# ---------------------------------------------------------------------- fuzzing

_KEYS = st.sampled_from(
    [
        "name",
        "cases",
        "defaults",
        "request",
        "expect",
        "body",
        "stream",
        "api_key",
        "fault",
        "raw_body",
        "status",
        "match",
        "path",
        "range",
        "length",
        "checks",
        "fails",
        "models",
        "providers",
        "overrides",
        "aimlapi",
        "openrouter",
        "skip",
        "xfail",
        "deviations",
        "min",
        "max",
        "regex",
        "headers",
        "schema_level",
        "tags",
        "x",
        1,
        True,
    ]
)
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 700),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["a", "4xx", "valid", "all", "{{model}}", "{{x}}", "(", "gemini-1.5-flash"]),
    st.text(max_size=5),
)
_VALUES = st.recursive(
    _LEAVES,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    document=st.fixed_dictionaries(
        {"cases": st.lists(st.dictionaries(_KEYS, _VALUES, max_size=5), max_size=3)},
        optional={"defaults": st.dictionaries(_KEYS, _VALUES, max_size=4), "name": _LEAVES},
    )
)
def test_fuzzed_suites_raise_only_config_errors(
    tmp_path_factory: pytest.TempPathFactory, document: dict
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "suites" / "fuzz.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    try:
        load_suite(path)
    except ConfigError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab:-[]{}\n \t'\"!&*#|>%@`,?")), max_size=60))
def test_fuzzed_yaml_text_raises_only_config_errors(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "suites" / "fuzz.yaml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    try:
        load_suite(path)
    except ConfigError as exc:
        assert "\n" not in str(exc)
