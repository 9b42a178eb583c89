"""The documented schemas under ``specs/schemas/``: they compile, resolve, document their
sources, and accept / reject the documented examples the way the providers' docs say."""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatprobe import specs
from chatprobe.errors import UnknownNameError
from chatprobe.paths import project_root
from chatprobe.profiles import list_profiles, load_profile
from chatprobe.yamlfile import load_yaml

PAYLOADS = Path(__file__).parents[1] / "data" / "payloads"
SCHEMAS = project_root() / "specs" / "schemas"
LEVELS = ("openai-strict", "aimlapi", "apilaplas", "openrouter")
REFERENCE = project_root().parent / "shared" / "reference" / "openai-chat-completions.openapi.yaml"


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def chunks(name: str) -> list[Any]:
    lines = (PAYLOADS / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def pointers(level: str, kind: str, instance: Any) -> list[str]:
    return [v.pointer for v in specs.validate(level, kind, instance)]


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def properties(schema: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every declared property, skipping instance data (examples, defaults) and the
    ``if``/``then`` conditions that only restate a property's values."""
    if isinstance(schema, list):
        for item in schema:
            yield from properties(item, where)
        return
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        if key in ("examples", "default", "enum", "const", "if", "then", "else"):
            continue
        if key == "properties":
            for name, sub in value.items():
                yield f"{where}.{name}", sub
                yield from properties(sub, f"{where}.{name}")
        else:
            yield from properties(value, where)


# -- the files themselves ---------------------------------------------------------------------


def test_levels_present() -> None:
    assert set(LEVELS) <= set(specs.levels())


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("kind", specs.KINDS)
def test_compiles_and_is_cached(level: str, kind: str) -> None:
    first = specs.validator(level, kind)
    type(first).check_schema(first.schema)
    assert specs.validator(level, kind) is first
    assert specs.schema(level, kind) is specs.schema(level, kind)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("kind", specs.KINDS)
def test_every_ref_resolves(level: str, kind: str) -> None:
    # check_schema does not follow $refs; a dangling one would only fail on the payload that
    # reaches it, so resolve them all here.
    base = f"https://chatprobe.dev/schemas/{level}/{kind}.yaml"
    resolver = specs._registry().resolver(base_uri=base)
    refs = [n["$ref"] for n in walk(specs.schema(level, kind)) if "$ref" in n]
    for ref in refs:
        resolved = resolver.lookup(ref)
        assert isinstance(resolved.contents, dict), ref
        # follow one hop so refs inside other files resolve against that file
        inner = resolved.resolver
        for sub in walk(resolved.contents):
            if "$ref" in sub:
                inner.lookup(sub["$ref"])


@pytest.mark.parametrize(
    "path", sorted(SCHEMAS.glob("*/*.yaml")), ids=lambda p: str(p.relative_to(SCHEMAS))
)
def test_file_documents_its_sources(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# "), "starts with a comment block"
    assert "Source" in text.split("\n$schema", 1)[0]
    doc = load_yaml(path).data  # line-aware loader: a duplicate key would be an error
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for key in ("$comment", "title", "description"):
        assert isinstance(doc.get(key), str) and doc[key].strip(), key
    assert (
        "seeds/" in doc["$comment"]
        or "reference/" in doc["$comment"]
        or "DESIGN.md" in doc["$comment"]
    )
    for node in walk(doc):
        assert "nullable" not in node or not isinstance(node["nullable"], bool), (
            "nullable rewritten"
        )
    for where, sub in properties(doc):
        assert sub.get("description"), f"property {where} has no description"


def test_openai_strict_names_reference_commit() -> None:
    for kind in specs.KINDS:
        comment = specs.schema("openai-strict", kind)["$comment"]
        assert "openai-chat-completions.openapi.yaml" in comment
        assert "f85dbe223d40e1a31cba812ab2d755c7e98a92a3" in comment


def test_apilaplas_request_is_aimlapi_request() -> None:
    provenance = ("$comment", "title", "description")
    a = {k: v for k, v in specs.schema("aimlapi", "request").items() if k not in provenance}
    b = {k: v for k, v in specs.schema("apilaplas", "request").items() if k not in provenance}
    assert a == b


@pytest.mark.skipif(not REFERENCE.is_file(), reason="OpenAI reference not next to this clone")
def test_openai_strict_is_generated_output(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "gen_openai_strict", project_root() / "tools" / "gen_openai_strict.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--reference", str(REFERENCE), "--root", str(tmp_path)]) == 0
    for kind in specs.KINDS:
        generated = tmp_path / "specs" / "schemas" / "openai-strict" / f"{kind}.yaml"
        committed = SCHEMAS / "openai-strict" / f"{kind}.yaml"
        assert generated.read_text() == committed.read_text(), f"re-run the generator ({kind})"
    for name in ("openai-reference-response.json", "openai-reference-chunks.jsonl"):
        assert (tmp_path / "tests" / "data" / "payloads" / name).read_text() == (
            PAYLOADS / name
        ).read_text()


def test_unknown_names_list_known_ones() -> None:
    with pytest.raises(UnknownNameError, match="aimlapi"):
        specs.validator("no-such-level", "response")
    with pytest.raises(UnknownNameError, match="chunk"):
        specs.validator("aimlapi", "no-such-kind")


@pytest.mark.parametrize("name", ["aimlapi", "apilaplas", "openrouter"])
def test_shipped_profiles_load_with_existing_levels(name: str) -> None:
    assert name in list_profiles()
    profile = load_profile(name)
    assert profile.schema_level == name
    assert profile.schema_level in specs.levels()


# -- responses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["aimlapi-seed000-response.json", "aimlapi-seed002-response.json"],
)
def test_aimlapi_seed_example_passes_provider_level_fails_strict(name: str) -> None:
    example = payload(name)
    assert specs.validate("aimlapi", "response", example) == []
    violations = specs.validate("openai-strict", "response", example)
    # a missing property is pointed at itself, the way the checks and user files point
    assert [v.pointer for v in violations] == ["/choices/0/message/refusal"]
    assert violations[0].message == "missing required property"
    assert violations[0].validator == "required"


def test_apilaplas_seed_example_passes_provider_level() -> None:
    example = payload("apilaplas-seed001-response.json")
    assert specs.validate("apilaplas", "response", example) == []
    assert pointers("openai-strict", "response", example) == ["/choices/0/message/refusal"]


def test_openai_reference_examples_pass_strict() -> None:
    # Only true after the nullable rewrite: the chunk example has finish_reason and
    # logprobs null, which the raw reference declares with OpenAPI's `nullable`.
    assert (
        specs.validate("openai-strict", "response", payload("openai-reference-response.json")) == []
    )
    examples = chunks("openai-reference-chunks.jsonl")
    assert len(examples) == 3
    assert [c["choices"][0]["finish_reason"] for c in examples] == [None, None, "stop"]
    for chunk in examples:
        assert specs.validate("openai-strict", "chunk", chunk) == []


def test_strict_response_still_rejects_what_the_reference_forbids() -> None:
    example = payload("openai-reference-response.json")
    bad = copy.deepcopy(example)
    bad["choices"][0]["finish_reason"] = "error"
    assert pointers("openai-strict", "response", bad) == ["/choices/0/finish_reason"]
    bad = copy.deepcopy(example)
    bad["object"] = "chat.completion.chunk"
    assert pointers("openai-strict", "response", bad) == ["/object"]
    bad = copy.deepcopy(example)
    del bad["choices"][0]["logprobs"]
    assert pointers("openai-strict", "response", bad) == ["/choices/0/logprobs"]


def test_aimlapi_response_still_requires_the_basics() -> None:
    example = payload("aimlapi-seed000-response.json")
    bad = copy.deepcopy(example)
    bad["choices"][0]["finish_reason"] = "error"
    assert pointers("aimlapi", "response", bad) == ["/choices/0/finish_reason"]
    bad = copy.deepcopy(example)
    del bad["id"]
    assert pointers("aimlapi", "response", bad) == ["/id"]
    bad = copy.deepcopy(example)
    bad["usage"]["total_tokens"] = "178"
    assert pointers("aimlapi", "response", bad) == ["/usage/total_tokens"]


def test_openrouter_response_with_extras() -> None:
    example = payload("openrouter-response.json")
    assert specs.validate("openrouter", "response", example) == []
    bad = copy.deepcopy(example)
    bad["usage"]["cost"] = "0.1"
    assert pointers("openrouter", "response", bad) == ["/usage/cost"]
    bad = copy.deepcopy(example)
    bad["choices"][0]["finish_reason"] = "aborted"
    assert pointers("openrouter", "response", bad) == ["/choices/0/finish_reason"]


# -- chunks -----------------------------------------------------------------------------------


def test_openrouter_midstream_error_chunk() -> None:
    chunk = payload("openrouter-midstream-error-chunk.json")
    assert specs.validate("openrouter", "chunk", chunk) == []
    violations = specs.validate("openai-strict", "chunk", chunk)
    assert [v.pointer for v in violations] == ["/choices/0/finish_reason"]
    # the nullable enum is an anyOf; the message names the enum, not "any of the given schemas"
    assert violations[0].message.startswith("'error' is not one of ['stop', 'length'")
    assert violations[0].validator == "enum"
    bad = copy.deepcopy(chunk)
    bad["error"] = {"message": "no code"}
    assert pointers("openrouter", "chunk", bad) == ["/error/code"]


def test_type_only_anyof_failures_keep_the_summary() -> None:
    bad = payload("openai-reference-response.json")
    bad["choices"][0]["message"]["content"] = 5
    (violation,) = specs.validate("openai-strict", "response", bad)
    assert violation.pointer == "/choices/0/message/content"
    assert violation.validator == "anyOf"
    assert violation.message == "5 is not of type 'string' or 'null'"


def test_usage_chunk_with_empty_choices() -> None:
    chunk = payload("openrouter-usage-chunk.json")
    for level in LEVELS:
        assert specs.validate(level, "chunk", chunk) == [], level


def test_reference_chunks_pass_provider_levels() -> None:
    for chunk in chunks("openai-reference-chunks.jsonl"):
        for level in ("aimlapi", "apilaplas", "openrouter"):
            assert specs.validate(level, "chunk", chunk) == [], level


# -- error envelopes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["openrouter-error-402.json", "openrouter-error-403-moderation.json"]
)
def test_openrouter_error_envelope(name: str) -> None:
    envelope = payload(name)
    assert specs.validate("openrouter", "error", envelope) == []
    found = pointers("openai-strict", "error", envelope)
    assert {"/error/type", "/error/param"} <= set(found)  # no `type` / `param`
    assert "/error/code" in found  # an integer, OpenAI's is string|null


@pytest.mark.parametrize("name", ["aimlapi-error-400.json", "aimlapi-error-403.json"])
def test_aimlapi_error_envelope(name: str) -> None:
    envelope = payload(name)
    assert specs.validate("aimlapi", "error", envelope) == []
    assert specs.validate("apilaplas", "error", envelope) == []
    assert pointers("openai-strict", "error", envelope) == ["/error"]  # no `error` wrapper
    assert pointers("openrouter", "error", envelope) == ["/error"]


def test_error_envelopes_do_not_cross() -> None:
    openai = payload("openai-error.json")
    assert specs.validate("openai-strict", "error", openai) == []
    assert pointers("openrouter", "error", openai) == ["/error/code"]
    assert set(pointers("aimlapi", "error", openai)) == {  # five missing members
        "/message",
        "/path",
        "/requestId",
        "/statusCode",
        "/timestamp",
    }
    bad = payload("aimlapi-error-403.json")
    bad["message"] = [1, 2]
    found = specs.validate("aimlapi", "error", bad)
    assert len(found) == 1 and found[0].pointer.startswith("/message/")
    assert "is not of type 'string'" in found[0].message
    del bad["requestId"]
    assert "/requestId" in pointers("aimlapi", "error", bad)


# -- requests ---------------------------------------------------------------------------------

BASE_REQUEST = {"model": "gemini-2.0-flash-exp", "messages": [{"role": "user", "content": "Hi"}]}


def request(**params: Any) -> dict[str, Any]:
    return {**copy.deepcopy(BASE_REQUEST), **params}


@pytest.mark.parametrize("level", ["aimlapi", "apilaplas"])
@pytest.mark.parametrize(
    ("params", "ok"),
    [
        ({"top_p": 0.05}, False),
        ({"top_p": 0.1}, True),
        ({"top_p": 1}, True),
        ({"top_p": 1.01}, False),
        ({"max_tokens": 0}, False),
        ({"max_tokens": 1}, True),
        ({"max_tokens": 512}, True),
        ({"temperature": 2}, True),
        ({"temperature": 2.1}, False),
        ({"temperature": 0}, True),
        ({"temperature": -0.1}, False),
        ({"stop": "END"}, True),
        ({"stop": ["END", "\n\n"]}, True),
        ({"stop": None}, True),
        ({"stop": 7}, False),
        ({"stop": [7]}, False),
        ({"frequency_penalty": None, "presence_penalty": 1.5}, True),
        ({"frequency_penalty": "high"}, False),
        ({"logit_bias": {"50256": -100}}, True),
        ({"logit_bias": {"50256": "ban"}}, False),
        ({"stream": "yes"}, False),
        ({"tool_choice": "required"}, True),
        ({"tool_choice": "sometimes"}, False),
        ({"tools": [{"type": "retrieval"}]}, False),
        ({"n": 0}, False),
        ({"seed": 1.5}, False),
        ({"response_format": {"type": "json_object"}}, True),
        ({"response_format": {"type": "xml"}}, False),
        ({"some_gateway_extra": True}, True),
    ],
    ids=lambda x: json.dumps(x) if isinstance(x, dict) else str(x),
)
def test_aimlapi_request_bounds(level: str, params: dict[str, Any], ok: bool) -> None:
    assert (specs.validate(level, "request", request(**params)) == []) is ok


@pytest.mark.parametrize("level", LEVELS)
def test_request_samples_pass_every_level(level: str) -> None:
    for name in (
        "request-multimodal.json",
        "request-tool-turn.json",
        "apilaplas-seed001-request.json",
    ):
        assert specs.validate(level, "request", payload(name)) == [], name


@pytest.mark.parametrize("level", ["aimlapi", "apilaplas", "openrouter"])
@pytest.mark.parametrize(
    "message",
    [
        {"role": "user"},  # no content
        {"role": "tool", "content": "42"},  # no tool_call_id
        {"role": "user", "content": None},
        {"role": "narrator", "content": "Once upon a time"},
        {"role": "user", "content": []},
        {"role": "user", "content": [{"type": "video", "video": "x"}]},
        {"role": "user", "content": [{"type": "image_url", "image_url": {}}]},
    ],
    ids=json.dumps,
)
def test_bad_messages_fail(level: str, message: dict[str, Any]) -> None:
    assert specs.validate(level, "request", request(messages=[message])) != []


@pytest.mark.parametrize(
    ("params", "ok"),
    [
        ({"temperature": 2}, True),
        ({"temperature": 2.1}, False),
        ({"top_p": 0}, True),
        ({"top_p": 1.01}, False),
        ({"frequency_penalty": -2, "presence_penalty": 2}, True),
        ({"presence_penalty": 2.5}, False),
        ({"repetition_penalty": 0}, False),
        ({"repetition_penalty": 2}, True),
        ({"top_k": 0}, True),
        ({"top_k": -1}, False),
        ({"min_p": 1.5}, False),
        ({"top_a": 0.2}, True),
        ({"max_tokens": 0}, False),
        ({"max_tokens": 1.5}, False),
        ({"logit_bias": {"1": 101}}, False),
        ({"provider": {"order": ["Google"], "allow_fallbacks": False, "sort": "latency"}}, True),
        ({"provider": {"sort": "vibes"}}, False),
        ({"models": ["google/gemini-2.0-flash-001"], "transforms": ["middle-out"]}, True),
        ({"reasoning": {"effort": "high", "exclude": True}}, True),
        ({"reasoning": {"effort": "extreme"}}, False),
        ({"usage": {"include": True}}, True),
        ({"usage": {"include": "yes"}}, False),
    ],
    ids=lambda x: json.dumps(x) if isinstance(x, dict) else str(x),
)
def test_openrouter_request_bounds(params: dict[str, Any], ok: bool) -> None:
    body = request(**params)
    body["model"] = "google/gemini-2.0-flash-001"
    assert (specs.validate("openrouter", "request", body) == []) is ok


@pytest.mark.parametrize("level", ["aimlapi", "apilaplas", "openrouter"])
def test_provider_request_parameters_are_plain_for_derive(level: str) -> None:
    # `chatprobe derive` reads bounds straight off the root's properties.
    props = specs.schema(level, "request")["properties"]
    assert specs.schema(level, "request")["additionalProperties"] is True
    for name in ("temperature", "top_p", "max_tokens"):
        assert "type" in props[name], name
        assert "maximum" in props[name] or "minimum" in props[name], name
    if level != "openrouter":
        assert props["top_p"]["minimum"] == 0.1 and props["top_p"]["maximum"] == 1
        assert props["max_tokens"]["minimum"] == 1 and props["max_tokens"]["default"] == 512
        assert props["temperature"]["maximum"] == 2
        assert props["tool_choice"]["anyOf"][0]["enum"] == ["none", "auto", "required"]
