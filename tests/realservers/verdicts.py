"""The verdicts each real server deserves from ``chatprobe check``, by check name.

One table per server: every registered check with the conformance-matrix cell the server
earns ("pass", "fail", "skip"), each "fail" with the bytes that earn it (the wire facts are
pinned by ``test_<server>.py::test_wire_*`` and written up in ``docs/real-servers.md``).
A check added to chatprobe fails the lane's matrix test (``test_common.py``) until its
verdict against both servers is entered here.

A ``--base-url`` endpoint's schema level is ``openai-strict``, so the ``strict_*`` schema
checks report each schema problem and the ``provider_*`` ones skip (issue 12: once, not
twice; ``test_common.py::test_schema_findings_reported_once``).
"""

from __future__ import annotations

from typing import Final

LITELLM: Final[dict[str, str]] = {
    "answer_after_reasoning": "skip",  # no reasoning model behind it
    "assistant_message": "pass",
    # A wrong key gets 400 {"error": {"message": "No connected db.", ...}}: without a
    # database the proxy cannot look a virtual key up, and says so with a 400.
    "auth_401": "fail",
    # The mock model accepts top_p 5, temperature -1, max_tokens 0 or "16", messages [] and
    # an unknown role with 200: the proxy forwards without validating and the mock answers.
    "bad_request_4xx": "fail",
    "content_type": "pass",
    # 401 {"error": {..., "code": "401"}}, 400 {... "code": "400"}: the HTTP status as a
    # string where OpenAI names the error (invalid_api_key, model_not_found).
    "error_code_documented": "fail",
    # 401 {"error": {..., "param": "None"}}: Python's str(None).
    "error_param_null": "fail",
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
    # Never judged: the mock's reply never ends exactly at the limit (it ignores it).
    "max_tokens_finish_length": "skip",
    # The mock always answers its whole fixed reply (20 tokens), whatever max_tokens says.
    "max_tokens_honoured": "fail",
    "midstream_error": "pass",
    "midstream_error_shape": "skip",
    "model_echo": "pass",
    # GET /v1/models lists mock-chat.
    "models_list_model": "pass",
    "n_honoured": "pass",
    "object_constant": "pass",
    "provider_error_envelope": "skip",
    "provider_response_schema": "skip",
    "response_complete": "pass",
    "retry_after_429": "skip",
    "sse_framing": "pass",
    "status_documented": "pass",
    "status_openai": "pass",
    # ... and whatever stop says.
    "stop_honoured": "fail",
    # A warning: chunks of up to three characters split tokens (19 tokens in 26 chunks).
    "stream_chunk_granularity": "pass",
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
    "answer_after_reasoning": "skip",  # no reasoning model behind it
    "assistant_message": "pass",
    # No key is checked on the OpenAI route (LitServe's own key, if set, is X-API-Key):
    # a wrong or missing key gets 200.
    "auth_401": "fail",
    # Out-of-range values, messages [], an unknown role and an unknown model get 200;
    # max_tokens 0 gets 500 {"detail": "Internal Server Error"}.
    "bad_request_4xx": "fail",
    "content_type": "pass",
    # Errors are FastAPI's {"detail": ...}: no OpenAI error object to judge.
    "error_code_documented": "skip",
    "error_param_null": "skip",
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
    # max_tokens 1 -> one token and finish_reason "stop" (LitServe writes "stop" always).
    "max_tokens_finish_length": "fail",
    "max_tokens_honoured": "pass",
    "midstream_error": "pass",
    "midstream_error_shape": "skip",
    # A warning: any model name is served and echoed back.
    "model_echo": "pass",
    # GET /v1/models -> 404 {"detail": "Not Found"}.
    "models_list_model": "fail",
    "n_honoured": "pass",
    "object_constant": "pass",
    "provider_error_envelope": "skip",
    "provider_response_schema": "skip",
    "response_complete": "pass",
    "retry_after_429": "skip",
    "sse_framing": "pass",
    "status_documented": "pass",
    "status_openai": "pass",
    "stop_honoured": "pass",
    # One word per chunk, one token per word.
    "stream_chunk_granularity": "pass",
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
