"""One JSON-Schema violation renderer (:func:`chatprobe.specs.violations`): ``chatprobe
validate``, the checks' findings, a user file's one-line error and the emulator's 400 answer
word and locate the same failure the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from chatprobe import specs
from chatprobe.checks import schema_problems
from chatprobe.cli import main
from chatprobe.emulator.plan import Reject, build_plan
from chatprobe.errors import ConfigError
from chatprobe.profiles import load_profile
from chatprobe.suites.loader import suite_validator
from chatprobe.yamlfile import dotted, parse_yaml

PROVIDER = "openrouter"
BASE = {"messages": [{"role": "user", "content": "hi"}]}

# (a bad field, the pointer and message every reader shows)
BAD = [
    pytest.param(  # a nullable enum is an anyOf: named by the enum, not "any of the schemas"
        {"tool_choice": "sometimes"},
        "/tool_choice",
        "'sometimes' is not one of ['none', 'auto', 'required']",
        id="anyOf-enum",
    ),
    pytest.param(  # every alternative rejects the type: the types are listed
        {"stop": 5}, "/stop", "5 is not of type 'string', 'array' or 'null'", id="anyOf-types"
    ),
    pytest.param(
        {"messages": [{"role": "robot", "content": "hi"}]},
        "/messages/0/role",
        "'robot' is not one of ['system', 'user', 'assistant', 'tool']",
        id="nested-enum",
    ),
    pytest.param(  # a missing property is pointed at itself
        {"messages": [{"content": "hi"}]},
        "/messages/0/role",
        "missing required property",
        id="required",
    ),
]


def _body(extra: dict[str, Any]) -> dict[str, Any]:
    profile = load_profile(PROVIDER)
    model = next(iter(profile.models.values()))
    return {"model": model.id, **BASE, **extra}


@pytest.mark.parametrize(("extra", "pointer", "message"), BAD)
def test_every_reader_words_a_violation_alike(
    extra: dict[str, Any],
    pointer: str,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = _body(extra)
    level = load_profile(PROVIDER).schema_level
    checker = specs.validator(level, "request")

    (violation,) = specs.validate(level, "request", body)
    assert (violation.pointer, violation.message) == (pointer, message)

    # chatprobe validate
    payload = tmp_path / "body.json"
    payload.write_bytes(orjson.dumps(body))
    with pytest.raises(SystemExit):
        main(["validate", "--schema", f"{level}:request", str(payload)])
    assert f"  {pointer}: {message}\n" in capsys.readouterr().out

    # the checks' findings (a label adds the schema's name and rule path)
    (problem,) = schema_problems(checker, body, prefix="/body")
    assert (problem.path, problem.message) == ("/body" + pointer, message)
    (labelled,) = schema_problems(checker, body, label=f"{level}:request")
    assert labelled.message == f"{message} [{level}:request {violation.schema_path}]"

    # a user's YAML file: file:line: field: message
    doc = parse_yaml(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode(), "body.yaml")
    with pytest.raises(ConfigError) as raised:
        specs.raise_schema_error(doc, checker)
    assert raised.value.detail == message
    assert raised.value.field == dotted(violation.path)
    assert raised.value.line == doc.line_of(violation.path)

    # the emulator's 400 answer
    with pytest.raises(Reject) as rejected:
        build_plan(load_profile(PROVIDER), orjson.dumps(body), seed=1, output_tokens=(1, 2))
    param = ".".join(str(p) for p in violation.path)
    assert rejected.value.status == 400
    assert rejected.value.message == f"Invalid request: {param}: {message}"
    assert rejected.value.details == [f"{param}: {message}"]


def test_unexpected_keys_are_pointed_at_and_the_allowed_ones_listed() -> None:
    text = "cases:\n  - name: a\n    request: {body: {x: 1}}\ncolour: red\n"
    (violation,) = specs.violations(suite_validator(), parse_yaml(text).data)
    assert violation.pointer == "/colour" and violation.received == "red"
    assert violation.message.startswith("unexpected property 'colour' (allowed: cases, ")


def test_a_payload_too_deep_to_validate_is_one_violation() -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    checker = specs.validator("openai-strict", "response")
    (violation,) = specs.violations(checker, {"choices": deep})
    assert violation.validator == "depth" and violation.pointer == ""


def test_the_most_relevant_violation_is_the_deepest() -> None:
    body = _body({"temperature": "hot", "messages": [{"role": "robot", "content": "hi"}]})
    found = specs.validate(load_profile(PROVIDER).schema_level, "request", body)
    assert [v.pointer for v in found] == ["/messages/0/role", "/temperature"]
    assert specs.most_relevant(found).pointer == "/messages/0/role"
