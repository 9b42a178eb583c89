"""Named checks on hand-built records: each rule, its JSON pointer, deviations and outcomes."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from chatprobe.checks import CheckContext, Problem, Severity, check, evaluate, get_check, registered
from chatprobe.checks.match import MatchRule
from chatprobe.checks.match import evaluate as match_rule
from chatprobe.checks.registry import _REGISTRY
from chatprobe.errors import UnknownNameError
from chatprobe.profiles import load_profile
from chatprobe.record import RequestRecord, TimedEvent
from chatprobe.sse import SSEDecoder
from chatprobe.suites.model import CaseRun, Expect

AIML_ID = "2025-04-09|09:53:23.624687-07|5.250.254.39|-1825976509"
PLAIN = {
    "id": AIML_ID,
    "object": "chat.completion",
    "created": 1744217603,
    "model": "google/gemini-2.0-flash-exp",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "logprobs": None,
            "message": {"role": "assistant", "content": "Hello there!"},
        }
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
}


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": AIML_ID,
        "object": "chat.completion.chunk",
        "created": 1744217603,
        "model": "google/gemini-2.0-flash-exp",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        **extra,
    }


STREAM = [
    chunk({"role": "assistant", "content": "Hello"}),
    chunk({"content": " there"}),
    chunk({}, "stop"),
    {
        **chunk({}),
        "choices": [],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    },
]


def case(body: dict[str, Any] | None = None, **kw: Any) -> CaseRun:
    base = {"model": "gemini-2.0-flash-exp", "messages": [{"role": "user", "content": "Hi"}]}
    return CaseRun(
        suite="t",
        case="c",
        provider=kw.pop("provider", "aimlapi"),
        model="gemini-2.0-flash-exp",
        model_id="gemini-2.0-flash-exp",
        source="t.yaml:1",
        body={**base, **(body or {})},
        **kw,
    )


def plain(body: Any, status: int = 201, headers: dict[str, str] | None = None) -> RequestRecord:
    record = RequestRecord(provider="aimlapi", status=status)
    record.response_headers = {"content-type": "application/json", **(headers or {})}
    record.body = body if isinstance(body, bytes) else orjson.dumps(body)
    return record.finish()


def streamed(
    chunks: list[Any], *, done: bool = True, status: int = 201, raw: bytes = b""
) -> RequestRecord:
    record = RequestRecord(provider="aimlapi", status=status, stream=True)
    record.response_headers = {"content-type": "text/event-stream"}
    data = raw or b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks)
    if done and not raw:
        data += b"data: [DONE]\n\n"
    decoder = SSEDecoder()
    record.events = [
        TimedEvent(i, item) for i, item in enumerate([*decoder.decode(data), *decoder.flush()])
    ]
    return record.finish()


def run(record: RequestRecord, run_case: CaseRun | None = None, provider: str = "aimlapi"):
    run_case = run_case or case(provider=provider)
    profile = load_profile(run_case.provider)
    return evaluate(CheckContext.for_case(profile, run_case), record, run_case)


def failing(evaluation) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, result in evaluation.results.items():
        if result.status in ("fail", "deviation", "expected", "warn"):
            out[name] = [f.path for f in result.findings]
    return out


# ---------------------------------------------------------------------- registry
def test_every_check_is_documented() -> None:
    checks = registered()
    assert len(checks) >= 35
    for name, chk in checks.items():
        assert chk.name == name
        assert chk.description and chk.description != name, name
        assert chk.source, name
        assert isinstance(chk.severity, Severity)


def test_unknown_check_lists_known_names() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown check 'nope'.*usage_arithmetic"):
        get_check("nope")


def test_registering_twice_is_refused() -> None:
    registered()

    def usage_arithmetic(ctx, record, case):  # same name as a built-in
        return ()

    with pytest.raises(ValueError, match="registered twice"):
        check(severity="error", source="test")(usage_arithmetic)


def test_custom_check_runs_and_can_be_removed() -> None:
    @check(severity=Severity.WARNING, source="test", name="test_custom_rule")
    def custom(ctx, record, case):
        """Content mentions no dragons."""
        if "dragon" in record.text:
            yield Problem("a dragon", path="/choices/0/content")

    try:
        body = copy.deepcopy(PLAIN)
        body["choices"][0]["message"]["content"] = "a dragon"
        result = run(plain(body))
        assert result.results["test_custom_rule"].status == "warn"
        assert result.outcome != "failed"  # warnings never fail a case
    finally:
        del _REGISTRY["test_custom_rule"]


# ---------------------------------------------------------------------- plain answers
def test_documented_plain_answer_passes_with_documented_deviations() -> None:
    result = run(plain(PLAIN))
    assert result.outcome == "deviation", result.summary()
    assert {d["check"] for d in result.deviations} == {"status_openai", "strict_response_schema"}
    for name in ("usage_arithmetic", "id_format", "object_constant", "provider_response_schema"):
        assert result.results[name].status == "pass", name
    assert result.results["sse_framing"].status == "skip"


def test_usage_total_wrong_names_the_field() -> None:
    body = copy.deepcopy(PLAIN)
    body["usage"]["total_tokens"] = 99
    result = run(plain(body))
    assert result.outcome == "failed"
    finding = result.results["usage_arithmetic"].findings[0]
    assert finding.path == "/body/usage/total_tokens"
    assert "Received: 99 / Documented: 9" in finding.message


def test_usage_negative_and_zero_prompt() -> None:
    body = copy.deepcopy(PLAIN)
    body["usage"] = {"prompt_tokens": -1, "completion_tokens": 4, "total_tokens": 3}
    assert failing(run(plain(body)))["usage_arithmetic"] == ["/body/usage/prompt_tokens"]
    body["usage"] = {"prompt_tokens": 0, "completion_tokens": 4, "total_tokens": 4}
    result = run(plain(body), provider="apilaplas")
    assert result.results["usage_prompt_tokens_zero"].status == "warn"
    # AI/ML API documents the quirk (seed 002): a deviation, shown, not hidden
    result = run(plain(body))
    assert result.results["usage_prompt_tokens_zero"].status == "deviation"


def test_missing_finish_reason_plain() -> None:
    body = copy.deepcopy(PLAIN)
    del body["choices"][0]["finish_reason"]
    found = failing(run(plain(body)))
    assert found["finish_reason_documented"] == ["/body/choices/0/finish_reason"]
    assert "/body/choices/0/finish_reason" in found["provider_response_schema"]


def test_wrong_object_and_empty_id() -> None:
    body = {**PLAIN, "object": "completion", "id": ""}
    found = failing(run(plain(body)))
    assert found["object_constant"] == ["/body/object"]
    assert found["id_present"] == ["/body/id"]


def test_id_format_per_profile() -> None:
    body = {**PLAIN, "id": "chatcmpl-123"}
    assert failing(run(plain(body)))["id_format"] == ["/body/id"]


def test_openrouter_extra_fields_are_a_documented_deviation() -> None:
    body = copy.deepcopy(PLAIN)
    body.update(
        id="gen-1744217603-abcDEF", model="google/gemini-2.0-flash-exp:free", provider="Google"
    )
    body["choices"][0]["native_finish_reason"] = "STOP"
    body["choices"][0]["message"]["refusal"] = None
    record = plain(body, status=200)
    result = run(record, case(provider="openrouter"))
    assert result.results["extra_fields"].status == "deviation"
    paths = [f.path for f in result.results["extra_fields"].findings]
    assert paths == ["/body/provider", "/body/choices/0/native_finish_reason"]


def test_content_type_and_bad_json() -> None:
    record = plain(b"<html>oops</html>", headers={"content-type": "text/html"})
    found = failing(run(record))
    assert found["content_type"] == ["/headers/content-type"]
    assert found["json_body"] == ["/body"]


# ---------------------------------------------------------------------- streams
def test_documented_stream_passes() -> None:
    body = {"stream": True, "stream_options": {"include_usage": True}}
    result = run(streamed(STREAM), case(body))
    assert result.outcome == "deviation", result.summary()
    for name in (
        "sse_framing",
        "stream_done_last",
        "stream_same_id_created",
        "stream_one_finish_reason",
        "stream_include_usage",
        "strict_response_schema",
    ):
        assert result.results[name].status == "pass", name


def test_chunk_missing_id() -> None:
    chunks = copy.deepcopy(STREAM)
    del chunks[1]["id"]
    found = failing(run(streamed(chunks), case({"stream": True})))
    assert found["id_present"] == ["/chunks/1/id"]
    assert found["stream_same_id_created"] == ["/chunks/1/id"]
    assert "/chunks/1/id" in found["provider_response_schema"]


def test_stream_without_done() -> None:
    found = failing(run(streamed(STREAM, done=False), case({"stream": True})))
    assert found["stream_done_last"] == ["/events/4"]


def test_event_after_done_and_unterminated_event() -> None:
    raw = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in STREAM[:3])
    raw += b"data: [DONE]\n\ndata: " + orjson.dumps(STREAM[3])  # after [DONE], no blank line
    found = failing(run(streamed([], raw=raw), case({"stream": True})))
    assert found["stream_done_last"] == ["/events/4"]
    assert found["sse_framing"] == ["/events/4"]


def test_no_finish_reason_and_two_finish_reasons() -> None:
    chunks = [chunk({"role": "assistant", "content": "Hi"}), chunk({"content": "!"})]
    found = failing(run(streamed(chunks), case({"stream": True})))
    assert found["stream_one_finish_reason"] == ["/chunks/1/choices"]
    # The same reason repeated on a trailing chunk without output: a warning, not a failure.
    chunks = [chunk({"content": "Hi"}, "stop"), chunk({}, "stop")]
    evaluation = run(streamed(chunks), case({"stream": True}))
    result = evaluation.results["stream_one_finish_reason"]
    assert result.status == "warn"
    assert [f.path for f in result.findings] == ["/chunks/1/choices/0/finish_reason"]
    # A different second reason, or output after the finish: errors, one finding each.
    chunks = [chunk({"content": "Hi"}, "stop"), chunk({}, "length")]
    result = run(streamed(chunks), case({"stream": True})).results["stream_one_finish_reason"]
    assert result.status == "fail" and "'stop', then 'length'" in result.findings[0].message
    chunks = [chunk({"content": "Hi"}, "stop"), chunk({"content": "!"}, "stop")]
    result = run(streamed(chunks), case({"stream": True})).results["stream_one_finish_reason"]
    assert result.status == "fail"
    assert [f.path for f in result.findings] == [
        "/chunks/1/choices/0/delta",
        "/chunks/1/choices/0/finish_reason",
    ]


def test_changing_created_and_usage_chunk_with_choices() -> None:
    chunks = copy.deepcopy(STREAM)
    chunks[2]["created"] = 1
    chunks[3]["choices"] = [{"index": 0, "delta": {}, "finish_reason": None}]
    body = {"stream": True, "stream_options": {"include_usage": True}}
    found = failing(run(streamed(chunks), case(body)))
    assert found["stream_same_id_created"] == ["/chunks/2/created"]
    assert found["stream_include_usage"] == ["/chunks/3/choices"]


def test_include_usage_missing() -> None:
    body = {"stream": True, "stream_options": {"include_usage": True}}
    found = failing(run(streamed(STREAM[:3]), case(body)))
    assert found["stream_include_usage"] == ["/chunks/2/usage"]
    # not asked for: not applicable
    result = run(streamed(STREAM[:3]), case({"stream": True}))
    assert result.results["stream_include_usage"].status == "skip"


def test_empty_choices_chunk_mid_stream_is_a_warning() -> None:
    chunks = [STREAM[0], {**chunk({}), "choices": []}, *STREAM[1:]]
    result = run(streamed(chunks), case({"stream": True}))
    assert result.results["stream_empty_choices"].status == "warn"
    assert result.results["stream_empty_choices"].findings[0].path == "/chunks/1/choices"
    assert result.outcome != "failed"


def test_midstream_error() -> None:
    error = {"error": {"code": 502, "message": "upstream died"}}
    error_chunk = {**chunk({}, "error"), **error}
    result = run(streamed([STREAM[0], error_chunk]), case({"stream": True}, provider="openrouter"))
    found = failing(result)
    assert found["midstream_error"] == ["/chunks/1/error"]
    assert "upstream died" in result.results["midstream_error"].findings[0].message
    assert result.results["midstream_error_shape"].status == "pass"
    assert result.results["finish_reason_openai"].status == "deviation"
    assert result.results["finish_reason_documented"].status == "pass"


# ---------------------------------------------------------------------- tools
def tool_stream(index: Any = 0, args: tuple[str, str] = ('{"city": ', '"Paris"}')) -> list[Any]:
    first = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": args[0]},
    }
    if index is not None:
        first["index"] = index
    second = {"function": {"arguments": args[1]}}
    if index is not None:
        second["index"] = index
    return [
        chunk({"role": "assistant", "tool_calls": [first]}),
        chunk({"tool_calls": [second]}),
        chunk({}, "tool_calls"),
    ]


def test_streamed_tool_call_assembles() -> None:
    body = {
        "stream": True,
        "tools": [{"type": "function", "function": {"name": "get_weather"}}],
        "tool_choice": "required",
    }
    result = run(streamed(tool_stream()), case(body))
    for name in (
        "tool_call_index",
        "tool_call_arguments_json",
        "tool_call_finish_reason",
        "tool_choice_honoured",
    ):
        assert result.results[name].status == "pass", (name, result.summary())


def test_tool_call_without_index_and_broken_arguments() -> None:
    evaluation = run(streamed(tool_stream(index=None)), case({"stream": True}))
    (finding,) = evaluation.results["tool_call_index"].findings  # one per choice
    assert finding.path == "/chunks/0/choices/0/delta/tool_calls/0/index"
    assert "2 of 2 tool-call deltas" in finding.message
    # Assembled without the index all the same: one call, its arguments whole.
    assert evaluation.results["tool_call_arguments_json"].status == "pass"
    found = failing(run(streamed(tool_stream(args=('{"city": ', '"Par'))), case({"stream": True})))
    assert found["tool_call_arguments_json"] == ["/choices/0/tool_calls/0/function/arguments"]


def test_tool_choice_none_violated_and_wrong_finish() -> None:
    body = copy.deepcopy(PLAIN)
    body["choices"][0]["message"]["tool_calls"] = [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    ]
    tools = [{"type": "function", "function": {"name": "get_weather"}}]
    found = failing(run(plain(body), case({"tools": tools, "tool_choice": "none"})))
    assert found["tool_choice_honoured"] == ["/body/choices/0/message/tool_calls/0"]
    assert found["tool_call_finish_reason"] == ["/body/choices/0/finish_reason"]


# ---------------------------------------------------------------------- parameters
def test_max_tokens_stop_and_n() -> None:
    body = copy.deepcopy(PLAIN)
    body["usage"] = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    body["choices"][0]["message"]["content"] = "Hello. There."
    found = failing(run(plain(body), case({"max_tokens": 3, "stop": ".", "n": 2})))
    assert found["max_tokens_honoured"] == ["/body/usage/completion_tokens"]
    assert found["stop_honoured"] == ["/body/choices/0/message/content"]
    assert found["n_honoured"] == ["/body/choices"]


# ---------------------------------------------------------------------- errors
AIML_ERROR = {
    "message": "Invalid request: top_p: 5 is greater than the maximum of 1",
    "path": "/v1/chat/completions",
    "requestId": "r-1",
    "statusCode": 400,
    "timestamp": "2025-04-09T16:53:23.624Z",
}


def test_error_envelope_without_message() -> None:
    error = {k: v for k, v in AIML_ERROR.items() if k != "message"}
    result = run(plain(error, status=400), case(expect=Expect.from_dict({"status": "4xx"})))
    finding = result.results["provider_error_envelope"].findings[0]
    assert finding.path == "/body/message"
    assert finding.message.startswith("missing required property [aimlapi:error required].")
    assert 'Received: {"keys":["path","requestId","statusCode","timestamp"]}' in finding.message
    assert result.results["strict_error_envelope"].status == "deviation"
    assert result.outcome == "failed"


def test_openrouter_status_must_equal_code() -> None:
    error = {"error": {"code": 429, "message": "slow down"}}
    record = plain(error, status=400)
    found = failing(
        run(record, case(provider="openrouter", expect=Expect.from_dict({"status": 400})))
    )
    assert found["error_status_matches_code"] == ["/body/error/code"]


def test_429_needs_retry_after() -> None:
    expect = Expect.from_dict({"status": 429})
    record = plain({**AIML_ERROR, "statusCode": 429}, status=429)
    assert failing(run(record, case(expect=expect)))["retry_after_429"] == ["/headers/retry-after"]
    record = plain({**AIML_ERROR, "statusCode": 429}, status=429, headers={"retry-after": "2"})
    assert run(record, case(expect=expect)).results["retry_after_429"].status == "pass"


def test_bad_request_5xx_is_critical_and_bad_key_must_401() -> None:
    error = {**AIML_ERROR, "statusCode": 500}
    result = run(plain(error, status=500), case(expect=Expect.from_dict({"status": "4xx"})))
    finding = result.results["bad_request_4xx"].findings[0]
    assert finding.severity is Severity.CRITICAL and finding.path == "/status"
    # A valid body with a wrong key: judged by auth_401 alone (issue 12).
    result = run(plain(PLAIN), case(api_key="invalid", expect=Expect.from_dict({"status": 401})))
    assert failing(result)["auth_401"] == ["/status"]
    assert result.results["bad_request_4xx"].status == "skip"
    assert result.results["expected_status"].status == "skip"
    # An auth case that expects something else than 401 keeps its expected_status.
    result = run(plain(PLAIN), case(api_key="missing", expect=Expect.from_dict({"status": 403})))
    assert {"auth_401", "expected_status"} <= set(failing(result))


# ---------------------------------------------------------------------- evaluation rules
def test_disabled_and_switched_off_checks_are_skipped() -> None:
    body = copy.deepcopy(PLAIN)
    body["usage"]["total_tokens"] = 99
    off = case(expect=Expect.from_dict({"checks": {"usage_arithmetic": False}}))
    result = run(plain(body), off)
    assert result.results["usage_arithmetic"].status == "skip"
    assert result.results["usage_arithmetic"].reason == "switched off by the suite"


def test_expected_failures() -> None:
    record = streamed(STREAM, done=False)
    expecting = case({"stream": True}, expect=Expect.from_dict({"fails": ["stream_done_last"]}))
    result = run(record, expecting)
    assert result.results["stream_done_last"].status == "expected"
    assert result.outcome != "failed"
    # the same expectation on a healthy stream fails the case
    result = run(streamed(STREAM), expecting)
    assert result.outcome == "failed"
    assert "expected check stream_done_last to fail, but it passed" in result.problems


def test_case_deviation_reason_is_reported() -> None:
    body = copy.deepcopy(PLAIN)
    body["usage"]["total_tokens"] = 99
    result = run(
        plain(body), case(deviations={"usage_arithmetic": "the gateway adds cache tokens"})
    )
    assert result.outcome == "deviation"
    assert {
        "check": "usage_arithmetic",
        "reason": "the gateway adds cache tokens",
    } in result.deviations


def test_a_crashing_check_fails_the_case_without_raising() -> None:
    @check(severity=Severity.ERROR, source="test", name="test_crashing_rule")
    def crashing(ctx, record, case):
        """Always crashes."""
        raise KeyError("boom")

    try:
        result = run(plain(PLAIN))
        assert result.outcome == "failed"
        assert any("test_crashing_rule crashed: KeyError" in p for p in result.problems)
    finally:
        del _REGISTRY["test_crashing_rule"]


@pytest.mark.parametrize(
    "garbage",
    [b"[]", b"null", b'{"choices": "x"}', b'{"choices": [1, null, {"message": 3}]}', b"\xff\xfe"],
)
def test_garbage_bodies_never_crash_a_check(garbage: bytes) -> None:
    result = run(plain(garbage))
    assert not result.problems, result.problems
    assert result.outcome == "failed"


def test_garbage_chunks_never_crash_a_check() -> None:
    raw = b'data: {"choices": [{"delta": {"tool_calls": [1, {"index": "x"}]}}]}\n\ndata: [1]\n\n'
    raw += b'data: {"choices": null, "usage": {"total_tokens": "x"}}\n\ndata: [DONE]\n\n'
    result = run(
        streamed([], raw=raw), case({"stream": True, "stop": ["a"], "n": 2, "max_tokens": 1})
    )
    assert not result.problems, result.problems
    assert result.outcome == "failed"


# ---------------------------------------------------------------------- matchers
DOC = {"a": {"b": [1, 2, 3], "s": "hello world", "n": 5, "z": None}}


@pytest.mark.parametrize(
    ("rule", "ok"),
    [
        ({"path": "a.b", "type": "array"}, True),
        ({"path": "a.b", "type": "object"}, False),
        ({"path": "a.b.-1", "equals": 3}, True),
        ({"path": "a.b", "contains": 2}, True),
        ({"path": "a.b", "contains": 9}, False),
        ({"path": "a.s", "contains": "world"}, True),
        ({"path": "a.s", "regex": "^hel+o"}, True),
        ({"path": "a.s", "regex": "^world"}, False),
        ({"path": "a.n", "range": {"min": 1, "max": 5}}, True),
        ({"path": "a.n", "range": {"max": 4}}, False),
        ({"path": "a.s", "range": {"max": 4}}, False),
        ({"path": "a.b", "length": 3}, True),
        ({"path": "a.s", "length": {"max": 3}}, False),
        ({"path": "a.z", "absent": True}, True),
        ({"path": "a.q", "absent": True}, True),
        ({"path": "a.n", "absent": True}, False),
        ({"path": "a.q"}, False),
        ({"path": "a.b.7"}, False),
        ({"path": "a.n", "type": "integer"}, True),
        ({"path": "a.n", "type": "boolean"}, False),
    ],
)
def test_match_rules(rule: dict[str, Any], ok: bool) -> None:
    problems = list(match_rule(MatchRule.from_dict(rule), DOC))
    assert (not problems) is ok, problems
    for problem in problems:
        assert problem.path == "/" + rule["path"].replace(".", "/")
        assert "Received:" in problem.render()
