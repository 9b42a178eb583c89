"""The verdicts each real server deserves from ``chatprobe check``, by check name.

One table per server: every registered check with the conformance-matrix cell the server
earns ("pass", "fail", "skip"), each "fail" with the bytes that earn it (the wire facts are
pinned by ``test_<server>.py::test_wire_*`` and written up in ``docs/real-servers.md``).
A check added to chatprobe fails the lane's matrix test (``test_common.py``) until its
verdict against both servers is entered here.

The ``provider_*`` schema checks repeat the ``strict_*`` ones for an ``openai-strict``
endpoint today (issue 12 asks for each problem once, without saying which check keeps it),
so each pair is compared as one cell: "fail" when either fails, else the ``strict_*`` cell.
``test_common.py::test_schema_findings_reported_once`` covers the repetition.
"""

from __future__ import annotations

from typing import Final

# provider_* check -> the strict_* check it repeats for an openai-strict endpoint.
SCHEMA_PAIRS: Final = {
    "provider_response_schema": "strict_response_schema",
    "provider_error_envelope": "strict_error_envelope",
}

LITELLM: Final[dict[str, str]] = {
    "assistant_message": "pass",
    # A wrong key gets 400 {"error": {"message": "No connected db.", ...}}: without a
    # database the proxy cannot look a virtual key up, and says so with a 400.
    "auth_401": "fail",
    # The mock model accepts top_p 5, temperature -1, max_tokens 0 or "16", messages [] and
    # an unknown role with 200: the proxy forwards without validating and the mock answers.
    "bad_request_4xx": "fail",
    "content_type": "pass",
    "error_status_matches_code": "skip",
    "expected_status": "fail",
    "extra_fields": "pass",
    # max-tokens-1 ends "stop" not "length"; the usage chunk has one choice; no tool calls.
    "field_match": "fail",
    "finish_reason_documented": "pass",
    "finish_reason_openai": "pass",
    "id_format": "skip",
    "id_present": "pass",
    "json_body": "pass",
    # The mock always answers its whole fixed reply (20 tokens), whatever max_tokens says.
    "max_tokens_honoured": "fail",
    "midstream_error": "pass",
    "midstream_error_shape": "skip",
    "model_echo": "pass",
    "n_honoured": "pass",
    "object_constant": "pass",
    "response_complete": "pass",
    "retry_after_429": "skip",
    "sse_framing": "pass",
    "status_documented": "pass",
    "status_openai": "pass",
    # ... and whatever stop says.
    "stop_honoured": "fail",
    "stream_done_last": "pass",
    "stream_empty_choices": "pass",
    # The usage chunk carries choices [{"index": 0, "delta": {}}] instead of [].
    "stream_include_usage": "fail",
    # n=2 streamed: only choice 0 ever gets a finish_reason.
    "stream_one_finish_reason": "fail",
    "stream_same_id_created": "pass",
    "strict_error_envelope": "pass",
    # Choices without logprobs, messages without refusal, chunks without finish_reason.
    "strict_response_schema": "fail",
    "tool_call_arguments_json": "skip",
    "tool_call_finish_reason": "skip",
    "tool_call_index": "skip",
    # tool_choice "required" or a named function: the mock answers text.
    "tool_choice_honoured": "fail",
    "usage_arithmetic": "pass",
    "usage_present": "pass",
    "usage_prompt_tokens_zero": "pass",
}

LITSERVE: Final[dict[str, str]] = {
    "assistant_message": "pass",
    # No key is checked on the OpenAI route (LitServe's own key, if set, is X-API-Key):
    # a wrong or missing key gets 200.
    "auth_401": "fail",
    # Out-of-range values, messages [], an unknown role and an unknown model get 200;
    # max_tokens 0 gets 500 {"detail": "Internal Server Error"}.
    "bad_request_4xx": "fail",
    "content_type": "pass",
    "error_status_matches_code": "skip",
    "expected_status": "fail",
    # A warning: messages and deltas carry name and tool_call_id (null).
    "extra_fields": "pass",
    # finish_reason is always "stop", also when max_tokens cut the answer; tool cases get 422.
    "field_match": "fail",
    "finish_reason_documented": "pass",
    "finish_reason_openai": "pass",
    "id_format": "skip",
    "id_present": "pass",
    "json_body": "pass",
    "max_tokens_honoured": "pass",
    "midstream_error": "pass",
    "midstream_error_shape": "skip",
    # A warning: any model name is served and echoed back.
    "model_echo": "pass",
    "n_honoured": "pass",
    "object_constant": "pass",
    "response_complete": "pass",
    "retry_after_429": "skip",
    "sse_framing": "pass",
    "status_documented": "pass",
    "status_openai": "pass",
    "stop_honoured": "pass",
    "stream_done_last": "pass",
    "stream_empty_choices": "pass",
    # Usage rides on the finish chunk, whose choices are not [].
    "stream_include_usage": "fail",
    "stream_one_finish_reason": "pass",
    # Every chunk has a new id (chatcmpl- and 6 random hex digits per chunk).
    "stream_same_id_created": "fail",
    # Errors are FastAPI's {"detail": ...}, never OpenAI's {"error": {...}}.
    "strict_error_envelope": "fail",
    # tool_calls: null in messages and deltas; system_fingerprint: null in chunks.
    "strict_response_schema": "fail",
    "tool_call_arguments_json": "skip",
    "tool_call_finish_reason": "skip",
    "tool_call_index": "skip",
    # Never judged: LitServe refuses tool_choice "required" and named tools with 422.
    "tool_choice_honoured": "pass",
    "usage_arithmetic": "pass",
    "usage_present": "pass",
    "usage_prompt_tokens_zero": "pass",
}

MATRICES: Final[dict[str, dict[str, str]]] = {"litellm": LITELLM, "litserve": LITSERVE}


def matrix_differences(server: str, matrix: dict[str, str]) -> list[str]:
    """Lines naming every check whose cell differs from the table (or is missing from it)."""
    expected = MATRICES[server]
    matrix = dict(matrix)
    for provider_check, strict_check in SCHEMA_PAIRS.items():
        pair = (matrix.pop(provider_check, None), matrix.get(strict_check))
        if "fail" in pair:
            matrix[strict_check] = "fail"
    lines = []
    for check in sorted(set(matrix) | set(expected)):
        got, want = matrix.get(check), expected.get(check)
        if want is None:
            lines.append(
                f"new check {check!r} ({got} against {server}): enter the verdict it "
                "deserves in tests/realservers/verdicts.py"
            )
        elif got is None:
            lines.append(f"check {check!r} no longer in the matrix (expected {want})")
        elif got != want:
            lines.append(f"{check}: {got}, expected {want}")
    return lines
