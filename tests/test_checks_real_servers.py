"""Checks for what real servers get wrong (issue 12 item 6): error `code` and `param`, the
models endpoint, max_tokens and `length`, schema findings once, auth cases judged once.

The bodies are the ones LiteLLM's proxy and LitServe send (docs/real-servers.md); the real
servers themselves run in tests/realservers/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from chatprobe.checks import CheckContext, evaluate, registered
from chatprobe.client import ChatClient
from chatprobe.errors import ConfigError
from chatprobe.profiles import ProviderProfile, custom_profile, load_profile
from chatprobe.record import RequestRecord
from chatprobe.suites.loader import load_suite
from chatprobe.suites.model import CaseRun, Expect
from tests.fake_servers.scripted import ScriptedServer, plain

ENDPOINT = custom_profile("http://127.0.0.1:4000/v1", "LOCAL_KEY", name="local", models=["m"])
HELLO = {"messages": [{"role": "user", "content": "Hi"}], "model": "m"}


def run_case(body: dict[str, Any] | None = None, **kw: Any) -> CaseRun:
    return CaseRun(
        suite="t",
        case="c",
        provider=kw.pop("provider", "local"),
        model=kw.pop("model", "m"),
        model_id=kw.pop("model_id", "m"),
        source="t.yaml:1",
        body={**HELLO, **(body or {})} if kw.get("endpoint", "chat") == "chat" else None,
        **kw,
    )


def answer(status: int, body: Any, *, method: str = "POST") -> RequestRecord:
    record = RequestRecord(provider="local", status=status, method=method, t0_ns=0, t_end_ns=1)
    record.response_headers = {"content-type": "application/json"}
    record.body = orjson.dumps(body)
    return record.finish()


def judge(record: RequestRecord, run: CaseRun, profile: ProviderProfile = ENDPOINT):
    return evaluate(CheckContext.for_case(profile, run), record, run)


def paths(evaluation: Any, name: str) -> list[str]:
    return [f.path for f in evaluation.results[name].findings]


LITELLM_401 = {
    "error": {
        "message": "Authentication Error, No api key passed in.",
        "type": "auth_error",
        "param": "None",
        "code": "401",
    }
}


# ---------------------------------------------------------------------- error code and param
def test_litellm_401_code_and_param_are_flagged() -> None:
    run = run_case(api_key="missing", expect=Expect.from_dict({"status": 401}))
    evaluation = judge(answer(401, LITELLM_401), run)
    assert paths(evaluation, "error_code_documented") == ["/body/error/code"]
    assert (
        "HTTP status as a string" in evaluation.results["error_code_documented"].findings[0].message
    )
    assert paths(evaluation, "error_param_null") == ["/body/error/param"]
    # What the 401 gets right stays right: the status, the envelope's shape.
    for name in ("auth_401", "strict_error_envelope", "expected_status", "bad_request_4xx"):
        assert evaluation.results[name].status in ("pass", "skip"), name


@pytest.mark.parametrize(
    ("code", "param", "code_found", "param_found"),
    [
        ("invalid_api_key", None, False, False),  # OpenAI's own
        (None, "messages", False, False),
        ("400", None, True, False),  # the status as a string
        ("404", "null", True, True),  # a status other than the response's, a null as text
        ("rate_limit_exceeded", "", False, True),
        ("\u00b2", None, False, False),  # a digit to str.isdigit, not a status
    ],
)
def test_error_code_and_param_rules(
    code: str | None, param: str | None, code_found: bool, param_found: bool
) -> None:
    body = {
        "error": {"message": "x", "type": "invalid_request_error", "param": param, "code": code}
    }
    evaluation = judge(answer(400, body), run_case(expect=Expect.from_dict({"status": "4xx"})))
    assert bool(paths(evaluation, "error_code_documented")) is code_found
    assert bool(paths(evaluation, "error_param_null")) is param_found


def test_integer_codes_are_the_status_checks_business() -> None:
    """OpenRouter documents an integer code equal to the status: error_code_documented does
    not apply; the status as a string is the envelope schema's finding, not a mismatch."""
    openrouter = load_profile("openrouter")
    run = run_case(provider="openrouter", expect=Expect.from_dict({"status": 401}))
    evaluation = judge(answer(401, {"error": {"code": 401, "message": "bad key"}}), run, openrouter)
    assert evaluation.results["error_code_documented"].status == "skip"
    assert evaluation.results["error_status_matches_code"].status == "pass"
    evaluation = judge(answer(401, {"error": {"code": "401", "message": "bad"}}), run, openrouter)
    assert evaluation.results["error_status_matches_code"].status == "pass"
    assert paths(evaluation, "provider_error_envelope") == ["/body/error/code"]
    evaluation = judge(answer(401, {"error": {"code": 402, "message": "x"}}), run, openrouter)
    assert paths(evaluation, "error_status_matches_code") == ["/body/error/code"]


# ---------------------------------------------------------------------- once, not twice
def test_schema_problems_reported_once_for_an_openai_strict_endpoint() -> None:
    body = {  # LiteLLM: no logprobs, no refusal
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Hello"},
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    evaluation = judge(answer(200, body), run_case())
    assert evaluation.results["strict_response_schema"].status == "fail"
    assert evaluation.results["provider_response_schema"].status == "skip"
    error = judge(
        answer(422, {"detail": "bad"}), run_case(expect=Expect.from_dict({"status": 422}))
    )
    assert error.results["strict_error_envelope"].status == "fail"
    assert error.results["provider_error_envelope"].status == "skip"
    # A provider with a level of its own keeps both facts.
    aimlapi = load_profile("aimlapi")
    run = run_case(provider="aimlapi", expect=Expect.from_dict({"status": 400}))
    both = judge(answer(400, {"detail": "bad"}), run, aimlapi)
    assert both.results["provider_error_envelope"].status == "fail"


def test_auth_cases_are_judged_by_auth_401_alone() -> None:
    """LitServe takes no key: a valid body with a wrong key gets 200. One finding."""
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}}],
    }
    for key in ("invalid", "missing"):
        run = run_case(api_key=key, expect=Expect.from_dict({"status": 401}))
        evaluation = judge(answer(200, body), run)
        assert paths(evaluation, "auth_401") == ["/status"]
        assert evaluation.results["bad_request_4xx"].status == "skip"
        assert evaluation.results["expected_status"].status == "skip"


# ---------------------------------------------------------------------- max_tokens -> length
def plain_answer(finish: str, tokens: int, n: int = 1) -> RequestRecord:
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": "w " * tokens},
            "finish_reason": finish,
        }
        for i in range(n)
    ]
    usage = {"prompt_tokens": 2, "completion_tokens": tokens * n, "total_tokens": 2 + tokens * n}
    body = {"id": "x", "object": "chat.completion", "created": 1, "model": "m"}
    return answer(200, {**body, "choices": choices, "usage": usage})


def test_max_tokens_used_up_must_finish_length() -> None:
    run = run_case({"max_tokens": 2})
    evaluation = judge(plain_answer("stop", 2), run)  # LitServe: cut by max_tokens, "stop"
    assert paths(evaluation, "max_tokens_finish_length") == ["/body/choices/0/finish_reason"]
    assert evaluation.results["max_tokens_honoured"].status == "pass"
    assert (
        judge(plain_answer("length", 2), run).results["max_tokens_finish_length"].status == "pass"
    )
    # Fewer tokens: the model stopped by itself. More: max_tokens_honoured's finding alone.
    assert judge(plain_answer("stop", 1), run).results["max_tokens_finish_length"].status == "skip"
    more = judge(plain_answer("stop", 20), run)
    assert more.results["max_tokens_finish_length"].status == "skip"
    assert more.results["max_tokens_honoured"].status == "fail"
    # n choices: usage counts them all.
    two = judge(plain_answer("stop", 2, n=2), run_case({"max_tokens": 2, "n": 2}))
    assert paths(two, "max_tokens_finish_length") == [
        "/body/choices/0/finish_reason",
        "/body/choices/1/finish_reason",
    ]


# ---------------------------------------------------------------------- GET /models
MODELS_LIST = {
    "object": "list",
    "data": [{"id": "m", "object": "model", "created": 1, "owned_by": "x"}],
}


def test_models_list_model_rules() -> None:
    run = run_case(endpoint="models", expect=Expect.from_dict({"status": 200}))
    listed = judge(answer(200, MODELS_LIST, method="GET"), run)
    assert listed.outcome == "passed", listed.summary()
    assert listed.results["models_list_model"].status == "pass"
    # Chat checks have nothing to say about a models list; generic ones still judge it.
    assert listed.results["strict_response_schema"].status == "skip"
    assert listed.results["assistant_message"].status == "skip"
    assert listed.results["content_type"].status == "pass"
    missing = judge(answer(404, {"detail": "Not Found"}, method="GET"), run)
    (finding,) = missing.results["models_list_model"].findings
    assert finding.path == "/status" and "GET /models" in finding.message
    other = {"object": "list", "data": [{"id": "n", "object": "model"}]}
    (unlisted,) = judge(answer(200, other, method="GET"), run).results["models_list_model"].findings
    assert unlisted.path == "/body/data" and '["n"]' in unlisted.message
    assert paths(judge(answer(200, [], method="GET"), run), "models_list_model") == ["/body"]
    # ...and models_list_model never judges a chat completion.
    assert judge(plain_answer("stop", 1), run_case()).results["models_list_model"].status == "skip"


def test_a_listed_echo_name_counts() -> None:
    """AI/ML API lists `google/...` names it echoes; either the id or the echo counts."""
    aimlapi = load_profile("aimlapi")
    run = run_case(
        provider="aimlapi",
        model="gemini-2.0-flash-exp",
        model_id="gemini-2.0-flash-exp",
        endpoint="models",
        expect=Expect.from_dict({"status": 200}),
    )
    body = {"object": "list", "data": [{"id": "google/gemini-2.0-flash-exp", "object": "model"}]}
    assert (
        judge(answer(200, body, method="GET"), run, aimlapi).results["models_list_model"].status
        == "pass"
    )


def test_every_check_names_the_endpoints_it_judges() -> None:
    for name, chk in registered().items():
        assert chk.endpoints and chk.endpoints <= {"chat", "models"}, name
    assert registered()["models_list_model"].endpoints == {"models"}


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.close()


def test_list_models_over_http(server: ScriptedServer) -> None:
    server.scripts["listing"] = [("send", plain(200, orjson.dumps(MODELS_LIST)))]
    server.scripts["nolisting"] = [("send", plain(404, b'{"detail":"Not Found"}'))]
    for script, status in (("listing", 200), ("nolisting", 404)):
        profile = custom_profile(server.url(script), "TEST_KEY", name="scripted")
        with ChatClient(profile, api_key="sk-test-secret-value-123456") as client:
            record = client.list_models()
        assert (record.method, record.status, record.error_class is None) == (
            "GET",
            status,
            status == 200,
        )
        assert record.url.endswith(f"/{script}/models")
        assert record.request_headers["Authorization"] != "Bearer sk-test-secret-value-123456"


def test_suite_endpoint_models(tmp_path: Any) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        "defaults: {request: {body: {max_tokens: 4}}}\n"
        "cases:\n  - name: list\n    request: {endpoint: models}\n"
        "    expect: {status: 200}\n",
        encoding="utf-8",
    )
    runs = load_suite(path).runs
    assert runs and all(r.endpoint == "models" and r.body is None for r in runs)
    assert all(r.raw_body is None and not r.stream for r in runs)
    path.write_text(
        "cases:\n  - name: list\n    request: {endpoint: models, body: {x: 1}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"models.yaml:3: .*no body"):
        load_suite(path)
