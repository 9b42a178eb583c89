"""The request record: metric definitions on hand-built records, assembly, classification."""

from __future__ import annotations

import json

from chatprobe.record import (
    MISSING_DONE,
    ErrorClass,
    RequestRecord,
    TimedEvent,
    estimate_tokens,
)
from chatprobe.results import build_sample
from chatprobe.sse import Comment, ServerSentEvent

MS = 1_000_000


def chunk(delta: dict, finish: str | None = None, **extra: object) -> ServerSentEvent:
    payload = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return ServerSentEvent(json.dumps(payload))


def streamed(*timed: tuple[int, ServerSentEvent | Comment]) -> RequestRecord:
    record = RequestRecord(stream=True, status=200, t0_ns=100 * MS, t_headers_ns=105 * MS)
    record.response_headers = {"content-type": "text/event-stream; charset=utf-8"}
    record.events = [TimedEvent(t * MS, item) for t, item in timed]
    record.t_end_ns = max(t for t, _ in timed) * MS
    return record.finish()


DONE = ServerSentEvent("[DONE]")


def test_ttft_skips_role_only_chunk_and_comments() -> None:
    record = streamed(
        (106, Comment("OPENROUTER PROCESSING")),
        (107, chunk({"role": "assistant", "content": ""})),
        (110, chunk({"content": "Hel"})),
        (130, chunk({"content": "lo"})),
        (131, chunk({}, "stop")),
        (131, DONE),
    )
    assert record.ttfb_ms == 5
    assert record.ttft_ms == 10
    assert record.e2e_ms == 30
    assert record.total_ms == 31
    assert record.ok and record.text == "Hello"
    assert record.chunk_gaps_ms == [20]


def test_itl_uses_usage_tokens_not_chunks() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    record = streamed(
        (110, chunk({"content": "a b "})),
        (150, chunk({"content": "c d e"})),
        (151, chunk({}, "stop", usage=usage)),
        (151, DONE),
    )
    assert record.output_tokens == 5 and record.token_source == "usage"
    assert record.itl_ms == (150 - 110) / (5 - 1)


def test_last_usage_wins_never_a_sum() -> None:
    record = streamed(
        (110, chunk({"content": "a"}, usage={"completion_tokens": 1})),
        (120, chunk({"content": "b"}, "stop", usage={"completion_tokens": 2})),
        (121, DONE),
    )
    assert record.output_tokens == 2 and record.usage_count == 2


def test_estimate_when_no_usage() -> None:
    record = streamed((110, chunk({"content": "x" * 40}, "stop")), (111, DONE))
    assert record.token_source == "estimate" and record.output_tokens == estimate_tokens("x" * 40)


def test_reasoning_and_tool_call_deltas_count_as_first_token() -> None:
    record = streamed(
        (110, chunk({"reasoning": "thinking"})),
        (120, chunk({"content": "ok"}, "stop")),
        (121, DONE),
    )
    assert record.ttft_ms == 10 and record.choices[0].reasoning == "thinking"


def test_tool_call_deltas_assemble_by_index() -> None:
    first = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    record = streamed(
        (110, chunk({"tool_calls": [first]})),
        (111, chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]})),
        (112, chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]})),
        (113, chunk({}, "tool_calls")),
        (113, DONE),
    )
    call = record.choices[0].tool_calls[0]
    assert call["id"] == "call_1" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert record.choices[0].finish_reason == "tool_calls"
    assert record.ttft_ms == 10


def test_midstream_error_is_classified_and_payload_kept() -> None:
    error = {
        "error": {"code": 502, "message": "upstream died"},
        "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}],
    }
    record = streamed(
        (110, chunk({"content": "a"})),
        (120, ServerSentEvent(json.dumps(error))),
        (121, DONE),
    )
    assert record.error_class is ErrorClass.MIDSTREAM_ERROR
    assert record.error_payload == {"code": 502, "message": "upstream died"}
    assert "upstream died" in record.error_detail


def test_missing_done_vs_truncated() -> None:
    # A finish_reason arrived: the answer is complete, only the sentinel is missing. Its
    # measurements stand; contract checks report the missing [DONE] (stream_done_last).
    complete = streamed((110, chunk({"content": "a"}, "stop")))
    assert complete.ok and complete.ttft_ms == 10 and complete.output_tokens == 1
    assert complete.anomalies == [f"{MISSING_DONE}: stream ended without data: [DONE]"]
    truncated = streamed((110, chunk({"content": "a"})))
    assert truncated.error_class is ErrorClass.TRUNCATED_STREAM
    assert truncated.text == "a"  # what arrived is kept


def test_http_status_keeps_envelope() -> None:
    record = RequestRecord(status=401, t0_ns=0, t_end_ns=MS)
    record.response_headers = {"content-type": "application/json"}
    record.body = b'{"message": "Invalid key", "statusCode": 401, "path": "/v1/chat"}'
    record.finish()
    assert record.error_class is ErrorClass.HTTP_STATUS
    assert record.json["statusCode"] == 401
    assert "401" in record.error_detail


def test_event_after_done_is_an_anomaly() -> None:
    record = streamed((110, chunk({"content": "a"}, "stop")), (111, DONE), (112, DONE))
    assert record.ok and record.done_index == 1
    assert any("after [DONE]" in a for a in record.anomalies)


def test_sample_is_json_ready() -> None:
    record = streamed((110, chunk({"content": "a"}, "stop")), (111, DONE))
    sample = build_sample(
        record,
        scenario="s",
        stage="1 users",
        users=1,
        worker="local",
        t_offset_s=0.0,
        warmup=False,
    )
    json.dumps(sample)
    assert sample["ttft_ms"] == 10 and sample["error_class"] is None


def test_error_event_with_plain_text_data_is_a_midstream_error() -> None:
    record = streamed(
        (110, chunk({"content": "a"})),
        (120, ServerSentEvent("upstream overloaded", event="error")),
    )
    assert record.error_class is ErrorClass.MIDSTREAM_ERROR
    assert "upstream overloaded" in record.error_detail


def test_non_2xx_framed_as_sse_keeps_the_error_payload() -> None:
    record = RequestRecord(stream=True, status=429, t0_ns=0, t_end_ns=MS)
    record.response_headers = {"content-type": "text/event-stream"}
    envelope = {"error": {"code": 429, "message": "slow down"}}
    record.events = [TimedEvent(MS, ServerSentEvent(json.dumps(envelope)))]
    record.finish()
    assert record.error_class is ErrorClass.RATE_LIMITED
    assert record.error_payload == envelope["error"] and "slow down" in record.error_detail


def test_transport_failure_after_complete_stream_is_an_anomaly_not_an_error() -> None:
    record = RequestRecord(stream=True, status=200, t0_ns=0)
    record.response_headers = {"content-type": "text/event-stream"}
    record.events = [TimedEvent(MS, chunk({"content": "a"}, "stop")), TimedEvent(MS, DONE)]
    record.transport_error = ErrorClass.TIMEOUT_IDLE
    record.transport_detail = "ReadTimeout"
    record.finish()
    assert record.ok and any("timeout_idle after [DONE]" in a for a in record.anomalies)


def test_2xx_without_any_choice_is_an_empty_response() -> None:
    for body in (b'{"id": "x", "choices": null}', b'{"id": "x", "choices": []}', b'{"id": "x"}'):
        record = RequestRecord(status=200, t0_ns=0, t_end_ns=MS, body=body)
        record.response_headers = {"content-type": "application/json"}
        assert record.finish().error_class is ErrorClass.EMPTY_RESPONSE, body
    usage_only = ServerSentEvent(json.dumps({"id": "c", "choices": [], "usage": {}}))
    assert streamed((110, usage_only), (111, DONE)).error_class is ErrorClass.EMPTY_RESPONSE
