"""LiteLLM's proxy with its mock model: what it sends, and what chatprobe says about it.

The ``test_wire_*`` tests pin the bytes ``docs/real-servers.md`` cites (if a new LiteLLM
changes them, the docs and ``verdicts.py`` need a look); the ``test_check_*`` tests assert
the findings chatprobe reports, by check name.
"""

from __future__ import annotations

import json

import pytest

from chatprobe.load.receive import KERNEL_TIMESTAMPS

from .conftest import Lab, ServerUnderTest

pytestmark = [pytest.mark.realserver, pytest.mark.slow, pytest.mark.timeout(900)]

HELLO = {"messages": [{"role": "user", "content": "Say hello."}]}


# ---------------------------------------------------------------------------- wire facts


def test_wire_plain_answer_has_no_logprobs_and_no_refusal(litellm: ServerUnderTest) -> None:
    response = litellm.post({**HELLO, "max_tokens": 1})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert set(choice) == {"finish_reason", "index", "message"}  # no "logprobs"
    assert set(choice["message"]) == {"content", "role"}  # no "refusal"
    # The mock ignores max_tokens: the whole fixed reply, finish_reason "stop".
    assert choice["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] > 1
    assert response.headers["x-litellm-version"] == litellm.server.version


def test_wire_stream_framing_and_usage_chunk(litellm: ServerUnderTest) -> None:
    payloads = litellm.stream({**HELLO, "stream_options": {"include_usage": True}})
    assert payloads[-1] == "[DONE]"
    *content, finish, usage = payloads[:-1]
    assert {p["id"] for p in payloads[:-1]} == {payloads[0]["id"]}
    # Content chunks: no finish_reason key at all (OpenAI sends null), role only in the
    # first, at most three characters of text each (the mock slices its reply).
    assert all(set(p["choices"][0]) == {"index", "delta"} for p in content)
    assert content[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in p["choices"][0]["delta"] for p in content[1:])
    assert {len(p["choices"][0]["delta"]["content"]) for p in content} <= {1, 2, 3}
    # Then a finish chunk with an empty delta, then usage with a choice instead of [].
    assert finish["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert usage["choices"] == [{"index": 0, "delta": {}}]
    assert usage["usage"]["completion_tokens"] > 0
    # Fewer tokens than content chunks: chunks split tokens (and words: "Hel", "lo!").
    assert usage["usage"]["completion_tokens"] < len(content)


def test_wire_two_streamed_choices_only_the_first_finishes(litellm: ServerUnderTest) -> None:
    payloads = litellm.stream({**HELLO, "n": 2})
    finishes = [
        (c["index"], c["finish_reason"])
        for p in payloads[:-1]
        for c in p["choices"]
        if c.get("finish_reason")
    ]
    assert finishes == [(0, "stop")]
    # Choice 1 repeats role "assistant" in every delta.
    second = [c for p in payloads[:-1] for c in p["choices"] if c["index"] == 1]
    assert second and all(c["delta"].get("role") == "assistant" for c in second)


def test_wire_auth_errors(litellm: ServerUnderTest) -> None:
    missing = litellm.post(HELLO, key=None)
    assert missing.status_code == 401
    error = missing.json()["error"]
    # The HTTP status as a string in `code`, and the string "None" in `param`.
    assert (error["type"], error["code"], error["param"]) == ("auth_error", "401", "None")
    wrong = litellm.post(HELLO, key="sk-wrong-key")
    assert wrong.status_code == 400
    assert wrong.json() == {
        "error": {
            "message": "No connected db.",
            "type": "no_db_connection",
            "param": None,
            "code": "400",
        }
    }


def test_wire_unknown_model_and_missing_messages(litellm: ServerUnderTest) -> None:
    unknown = litellm.post({**HELLO, "model": "chatprobe-no-such-model"})
    assert unknown.status_code == 400
    error = unknown.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "400", None)
    missing = litellm.post({})
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "messages"
    # Out-of-range values are not validated: the mock answers.
    assert litellm.post({**HELLO, "top_p": 5, "temperature": -1}).status_code == 200


def test_wire_models_lists_the_mock(litellm: ServerUnderTest) -> None:
    response = litellm.get("/models")
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["data"]] == [litellm.model]


# ---------------------------------------------------------------------------- chatprobe check

# Findings each case deserves (present) and must not carry (absent), by check name.
CASES = [
    ("errors::bad-key", {"auth_401"}, {"bad_request_4xx"}),
    ("errors::bad-key-stream", {"auth_401"}, {"bad_request_4xx"}),
    # 401 with OpenAI's envelope, but "code": "401" and "param": "None".
    (
        "errors::missing-key",
        {"error_code_documented", "error_param_null"},
        {"auth_401", "expected_status", "strict_error_envelope", "bad_request_4xx"},
    ),
    ("errors::top-p-too-high", {"bad_request_4xx"}, set()),
    ("errors::max-tokens-wrong-type", {"bad_request_4xx"}, set()),
    ("errors::unknown-model", {"error_code_documented"}, {"bad_request_4xx", "expected_status"}),
    (
        "errors::messages-missing",
        {"error_code_documented"},
        {"bad_request_4xx", "strict_error_envelope", "error_param_null"},  # param "messages"
    ),
    ("basic::hello", {"strict_response_schema"}, {"extra_fields", "usage_present"}),
    (
        "basic::hello-stream",
        {"strict_response_schema", "stream_include_usage", "stream_chunk_granularity"},
        {"provider_response_schema"},
    ),
    ("models::models-list", set(), {"models_list_model", "expected_status"}),
    ("streaming::stream-include-usage-false", set(), {"stream_include_usage"}),
    ("parameters::max-tokens-1", {"max_tokens_honoured", "field_match"}, set()),
    ("parameters::stop-list", {"stop_honoured"}, set()),
    ("parameters::n-2-stream", {"stream_one_finish_reason"}, {"n_honoured"}),
    ("tools::tool-required", {"tool_choice_honoured"}, set()),
    ("tools::tool-auto", set(), {"tool_choice_honoured"}),
]


@pytest.mark.parametrize(("case", "present", "absent"), CASES, ids=[c[0] for c in CASES])
def test_check_findings_by_case(
    litellm: ServerUnderTest, case: str, present: set[str], absent: set[str]
) -> None:
    checks = litellm.contract().checks(case)
    assert present <= checks, f"{case}: missing {present - checks}; found {sorted(checks)}"
    assert not absent & checks, f"{case}: unexpected {sorted(absent & checks)}"


def test_check_chunk_granularity_names_the_split(litellm: ServerUnderTest) -> None:
    """Three-character chunks: fewer usage tokens than content chunks, a warning."""
    (finding,) = litellm.contract().findings("basic::hello-stream", "stream_chunk_granularity")
    assert finding["severity"] == "warning" and "chunks split tokens" in finding["message"]


def test_check_usage_chunk_finding_cites_the_choice(litellm: ServerUnderTest) -> None:
    (finding,) = litellm.contract().findings(
        "streaming::stream-include-usage", "stream_include_usage"
    )
    assert '[{"index":0,"delta":{}}]' in finding["message"]


def test_check_flags_param_none(litellm: ServerUnderTest) -> None:
    findings = litellm.contract().result("errors::missing-key")["findings"]
    assert any((f.get("path") or "").endswith("/error/param") for f in findings), findings


def test_check_flags_http_status_as_error_code(litellm: ServerUnderTest) -> None:
    contract = litellm.contract()
    for case in ("errors::missing-key", "errors::unknown-model"):
        findings = contract.result(case)["findings"]
        assert any((f.get("path") or "").endswith("/error/code") for f in findings), (
            case,
            findings,
        )


def test_check_does_not_flag_the_models_route(litellm: ServerUnderTest) -> None:
    """GET /v1/models lists the model: nothing about /models may fail here."""
    assert not any(
        "/models" in (finding.get("path") or "") + finding["message"]
        for _, finding in litellm.contract().all_findings()
    )


# ---------------------------------------------------------------------------- over HTTPS


def test_load_over_https_is_measured_like_plain_http(realservers: Lab) -> None:
    """The proxy serving HTTPS itself (uvicorn's TLS, a CA generated for the run and given
    with --ca-bundle): every request answered, every sample on the kernel's receive stamps
    with a bound, and its timings ordered, as over plain HTTP."""
    sut = realservers("litellm", tls=True)
    assert sut.server.base_url.startswith("https://")
    done = sut.load()
    assert done.returncode == 0, done.explain()
    folder = done.only_folder()
    samples = [
        json.loads(line)
        for line in (folder / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert samples and {s["error_class"] for s in samples} == {None}
    assert {s["status"] for s in samples} == {200}
    for s in samples:
        assert 0 <= s["ttfb_ms"] <= s["ttft_ms"] <= s["e2e_ms"] <= s["total_ms"], s
        assert s["itl_ms"] >= 0 and not s["anomalies"], s
    if KERNEL_TIMESTAMPS:
        assert {s["clock"] for s in samples} == {"kernel"}
        assert all(s["ttft_bound_ms"] is not None for s in samples)
