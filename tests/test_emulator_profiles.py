"""Documented behaviour per provider profile, seen through chatprobe's own client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from chatprobe import specs
from chatprobe.client import ChatClient
from chatprobe.emulator import DEMO_KEY, Emulator, EmulatorConfig, count_tokens
from chatprobe.emulator.text import IMAGE_TOKENS
from chatprobe.profiles import ProviderProfile, list_profiles, load_profile
from chatprobe.record import RequestRecord
from chatprobe.sse import Comment

PROFILES = list_profiles()
PROMPT = "Describe a quiet harbor at dawn, please."
MESSAGES = [{"role": "user", "content": PROMPT}]


# Served by the shared ``emulator`` fixture (tests/conftest.py).
EMULATOR_CONFIG = EmulatorConfig(zero_latency=True, rate_limit_rpm=0, output_tokens=(20, 40))


def _client(emulator: Emulator, provider: str) -> ChatClient:
    return ChatClient(emulator.profile(provider), api_key=DEMO_KEY)


def _models(provider: str) -> list[str]:
    return list(load_profile(provider).models)


def _chat(
    emulator: Emulator, provider: str, model: str | None = None, **body: Any
) -> RequestRecord:
    model = model or _models(provider)[0]
    with _client(emulator, provider) as client:
        return client.chat({"messages": MESSAGES, **body}, model=model)


def _truth(emulator: Emulator, record: RequestRecord) -> dict[str, Any]:
    request_id = record.response_headers["x-chatprobe-request-id"]
    found = [t for t in emulator.truth() if t["request_id"] == request_id]
    assert len(found) == 1
    return found[0]


def _level(profile: ProviderProfile) -> str:
    return profile.schema_level


# ---------------------------------------------------------------- success, ids, echo, usage
@pytest.mark.parametrize("provider", PROFILES)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_success_shape(emulator: Emulator, provider: str, stream: bool) -> None:
    profile = load_profile(provider)
    for model in profile.models.values():
        record = _chat(emulator, provider, model.name, stream=stream)
        assert record.ok, record.summary_line()
        assert record.status == profile.success_status[0]
        payloads = record.chunks if stream else [record.json]
        kind = "chunk" if stream else "response"
        ids = {p["id"] for p in payloads}
        assert len(ids) == 1, "one id across the whole stream"
        assert re.match(profile.id_pattern or ".", ids.pop())
        for payload in payloads:
            assert payload["model"] == model.echo
            violations = specs.validate(_level(profile), kind, payload)
            assert not violations, violations
            for choice in payload["choices"]:
                assert "logprobs" in choice and choice["logprobs"] is None
        assert record.text
        if record.token_source == "usage":
            assert count_tokens(record.text) == record.output_tokens
        truth = _truth(emulator, record)
        assert truth["tokens_sent"] == truth["completion_tokens"]
        if record.usage is not None:
            assert record.usage["completion_tokens"] == count_tokens(record.text)
            expected_prompt = 0 if model.latency.prompt_tokens_zero else count_tokens(PROMPT)
            assert record.usage["prompt_tokens"] == expected_prompt
            assert record.usage["total_tokens"] == (
                record.usage["prompt_tokens"] + record.usage["completion_tokens"]
            )


def test_prompt_tokens_zero_quirk_is_documented_and_switchable() -> None:
    profile = load_profile("aimlapi")
    assert profile.models["gemini-1.5-flash"].latency.prompt_tokens_zero
    assert "usage_prompt_tokens_zero" in profile.deviations
    with Emulator.in_thread(providers=("aimlapi",), zero_latency=True, emulate_quirks=False) as e:
        record = _chat(e, "aimlapi", "gemini-1.5-flash")
    assert record.usage is not None and record.usage["prompt_tokens"] == count_tokens(PROMPT)


def test_openrouter_stream_usage_with_cost_last_and_processing_comments(emulator: Emulator) -> None:
    profile = load_profile("openrouter")
    model = profile.models["gemini-2.0-flash-001"]
    record = _chat(emulator, "openrouter", model.name, stream=True)  # no include_usage asked
    assert record.ok
    first_data = next(i for i, e in enumerate(record.events) if not isinstance(e.item, Comment))
    comments = [e.item.text for e in record.events[:first_data]]
    assert comments and all(c == "OPENROUTER PROCESSING" for c in comments)
    last = record.chunks[-1]
    assert last["choices"] == [] and record.usage_count == 1
    usage = last["usage"]
    assert model.pricing is not None
    expected = model.pricing.cost(usage["prompt_tokens"], usage["completion_tokens"])
    assert usage["cost"] == pytest.approx(expected) and usage["cost"] > 0
    assert all("native_finish_reason" in c["choices"][0] for c in record.chunks[:-1])
    assert {c["provider"] for c in record.chunks} == {"Google"}
    plain = _chat(emulator, "openrouter", model.name)
    assert plain.usage is not None and plain.usage["cost"] > 0


@pytest.mark.parametrize("provider", ["aimlapi", "apilaplas"])
def test_include_usage_only_when_asked(emulator: Emulator, provider: str) -> None:
    without = _chat(emulator, provider, stream=True)
    assert without.ok and without.usage is None and without.token_source == "estimate"
    with_usage = _chat(emulator, provider, stream=True, stream_options={"include_usage": True})
    assert with_usage.ok and with_usage.usage_count == 1
    assert with_usage.chunks[-1]["choices"] == []
    assert with_usage.usage is not None
    assert with_usage.usage["completion_tokens"] == count_tokens(with_usage.text)


# ---------------------------------------------------------------- request parameters
@pytest.mark.parametrize("provider", PROFILES)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_max_tokens_one(emulator: Emulator, provider: str, stream: bool) -> None:
    record = _chat(
        emulator,
        provider,
        stream=stream,
        max_tokens=1,
        stream_options={"include_usage": True} if stream else None,
    )
    assert record.ok
    assert record.choices[0].finish_reason == "length"
    assert count_tokens(record.text) == 1
    assert record.usage is not None and record.usage["completion_tokens"] == 1


@pytest.mark.parametrize("provider", PROFILES)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_stop_sequence_cuts_the_text(emulator: Emulator, provider: str, stream: bool) -> None:
    full = _chat(emulator, provider).text
    words = full.split(" ")
    stop = " " + words[4]  # the fifth word: text must end right before it
    cut = _chat(emulator, provider, stream=stream, stop=[stop, "never-occurs"])
    assert cut.ok
    assert cut.text == full[: full.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_n_choices_and_image_parts(emulator: Emulator) -> None:
    content = [
        {"type": "text", "text": "What is in these images?"},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/a.jpg"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    with _client(emulator, "openrouter") as client:
        record = client.chat(
            {"messages": [{"role": "user", "content": content}], "n": 2},
            model="gemini-2.0-flash-001",
        )
    assert record.ok
    assert sorted(record.choices) == [0, 1]
    assert record.choices[0].content != record.choices[1].content
    usage = record.usage
    assert usage is not None
    assert usage["prompt_tokens"] == count_tokens("What is in these images?") + 2 * IMAGE_TOKENS
    assert usage["completion_tokens"] == sum(
        count_tokens(c.content) for c in record.choices.values()
    )
    price = load_profile("openrouter").models["gemini-2.0-flash-001"].pricing
    assert price is not None
    expected = price.cost(usage["prompt_tokens"], usage["completion_tokens"]) + 2 * 0.026 / 1000
    assert usage["cost"] == pytest.approx(expected)


@pytest.mark.parametrize("provider", PROFILES)
def test_tool_choice_rules(emulator: Emulator, provider: str) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "integer"}}},
        },
    }
    asked = [{"role": "user", "content": "Use lookup_order for my order."}]
    not_asked = [{"role": "user", "content": "Just say hello."}]
    with _client(emulator, provider) as client:
        model = _models(provider)[0]
        auto_hit = client.chat({"messages": asked, "tools": [tool]}, model=model)
        auto_miss = client.chat({"messages": not_asked, "tools": [tool]}, model=model)
        named = client.chat(
            {
                "messages": not_asked,
                "tools": [tool],
                "tool_choice": {"type": "function", "function": {"name": "lookup_order"}},
            },
            model=model,
        )
        none = client.chat({"messages": asked, "tools": [tool], "tool_choice": "none"}, model=model)
        streamed = client.chat({"messages": asked, "tools": [tool], "stream": True}, model=model)
    assert auto_hit.choices[0].finish_reason == "tool_calls"
    assert auto_miss.choices[0].finish_reason == "stop" and auto_miss.text
    assert named.choices[0].tool_calls[0]["function"]["name"] == "lookup_order"
    assert none.choices[0].finish_reason == "stop"
    assert streamed.ok and streamed.choices[0].finish_reason == "tool_calls"
    call = streamed.choices[0].tool_calls[0]
    assert call["index"] == 0 and call["id"] and call["type"] == "function"
    assert call["function"] == auto_hit.choices[0].tool_calls[0]["function"]
    assert len(streamed.chunks) > 3, "arguments arrive split across several chunks"


# ---------------------------------------------------------------- errors
def _error_ok(profile: ProviderProfile, record: RequestRecord, status: int) -> dict[str, Any]:
    assert record.status == status
    assert record.json is not None
    violations = specs.validate(profile.schema_level, "error", record.json)
    assert not violations, violations
    if profile.error_envelope == "openrouter":
        assert record.json["error"]["code"] == status
    elif profile.error_envelope == "aimlapi":
        assert record.json["statusCode"] == status
    assert record.response_headers.get("x-chatprobe-request-id")
    return record.json  # type: ignore[no-any-return]


def _message(body: dict[str, Any]) -> str:
    message = (
        body["error"]["message"]
        if "error" in body and isinstance(body["error"], dict)
        else body["message"]
    )
    return " ".join(message) if isinstance(message, list) else str(message)


@pytest.mark.parametrize("provider", PROFILES)
def test_validation_400_names_the_field(emulator: Emulator, provider: str) -> None:
    profile = load_profile(provider)
    bad_top_p = _chat(emulator, provider, top_p=-0.5)  # below every documented minimum
    assert "top_p" in _message(_error_ok(profile, bad_top_p, 400))
    bad_role = _chat(emulator, provider, messages=[{"content": "no role"}])
    assert "messages.0" in _message(_error_ok(profile, bad_role, 400))
    with _client(emulator, provider) as client:
        not_json = client.chat({}, model=_models(provider)[0], raw_body=b"{not json")
    assert "JSON" in _message(_error_ok(profile, not_json, 400))


def test_aimlapi_bad_body_lists_every_rule(emulator: Emulator) -> None:
    record = _chat(emulator, "aimlapi", top_p=0.05, max_tokens=0)
    body = _error_ok(load_profile("aimlapi"), record, 400)
    assert isinstance(body["message"], list) and len(body["message"]) == 2
    assert body["message"][0].startswith("max_tokens") and body["message"][1].startswith("top_p")


@pytest.mark.parametrize("provider", PROFILES)
def test_auth_401(emulator: Emulator, provider: str) -> None:
    profile = load_profile(provider)
    with ChatClient(emulator.profile(provider)) as client:
        missing = client.chat({"messages": MESSAGES}, model=_models(provider)[0])
        wrong = client.chat({"messages": MESSAGES}, model=_models(provider)[0], api_key="nope-123")
    _error_ok(profile, missing, 401)
    _error_ok(profile, wrong, 401)
    assert missing.error_class is not None and missing.error_class.value == "http_status"


@pytest.mark.parametrize("provider", PROFILES)
def test_unknown_model_404(emulator: Emulator, provider: str) -> None:
    with _client(emulator, provider) as client:
        record = client.chat({"messages": MESSAGES, "model": "no-such/model"})
    assert "no-such/model" in _message(_error_ok(load_profile(provider), record, 404))


@pytest.fixture(scope="module")
def limited() -> Iterator[Emulator]:
    config = EmulatorConfig(zero_latency=True, rate_limit_rpm=3, max_body=4096)
    with Emulator.in_thread(config) as emulator:
        yield emulator


@pytest.mark.parametrize("provider", PROFILES)
def test_body_too_large_413(limited: Emulator, provider: str) -> None:
    big = [{"role": "user", "content": "x" * 5000}]
    record = _chat(limited, provider, messages=big)
    _error_ok(load_profile(provider), record, 413)
    after = _chat(limited, provider)  # the connection and the server carry on
    assert after.ok


def test_free_model_rate_limit_per_key(limited: Emulator) -> None:
    profile = load_profile("openrouter")
    free = next(m for m in profile.models.values() if m.free)
    assert free.rate_limit_rpm == 20  # documented; the test configures 3 to stay fast
    limited.reset()  # forget earlier tests' requests (truth and rate-limit windows)
    records = [_chat(limited, "openrouter", free.name) for _ in range(4)]
    assert [r.status for r in records] == [200, 200, 200, 429]
    body = _error_ok(profile, records[-1], 429)
    assert "Rate limit" in body["error"]["message"]
    assert 0 < int(records[-1].response_headers["retry-after"]) <= 60
    paid = _chat(limited, "openrouter", "gemini-2.0-flash-001")
    assert paid.ok, "only the :free model is limited"
    with ChatClient(limited.profile("openrouter"), api_key="other-key") as client:
        other = client.chat({"messages": MESSAGES}, model=free.name)
    assert other.status == 401, "unknown keys never reach the limiter"


def test_rate_limit_other_key_has_its_own_window() -> None:
    config = EmulatorConfig(
        providers=("openrouter",), zero_latency=True, rate_limit_rpm=1, keys=("key-a", "key-b")
    )
    with Emulator.in_thread(config) as emulator:
        free = next(m for m in load_profile("openrouter").models.values() if m.free).name
        statuses = []
        for key in ("key-a", "key-a", "key-b"):
            with ChatClient(emulator.profile("openrouter"), api_key=key) as client:
                statuses.append(client.chat({"messages": MESSAGES}, model=free).status)
    assert statuses == [200, 429, 200]


# ---------------------------------------------------------------- determinism and addressing
def test_same_seed_same_text_other_seed_other_text() -> None:
    texts = []
    for seed in (7, 7, 8):
        with Emulator.in_thread(providers=("openrouter",), zero_latency=True, seed=seed) as e:
            texts.append(_chat(e, "openrouter", "gemini-2.0-flash-001").text)
    assert texts[0] == texts[1] != texts[2]


def test_single_provider_serves_bare_paths_and_control_endpoints() -> None:
    with Emulator.in_thread(providers=("openrouter",), zero_latency=True) as emulator:
        assert emulator.base_url() == emulator.url("/api/v1")
        headers = {"Authorization": f"Bearer {DEMO_KEY}"}
        body = {"model": "google/gemini-2.0-flash-001", "messages": MESSAGES}
        with httpx.Client(trust_env=False) as http:
            for path in ("/v1", "/api/v1", "/openrouter/v1", "/openrouter/api/v1"):
                response = http.post(
                    emulator.url(path + "/chat/completions"), json=body, headers=headers
                )
                assert response.status_code == 200, path
            assert http.get(emulator.url("/v1/models")).status_code == 200
            assert http.get(emulator.url("/elsewhere")).status_code == 404
            truth = http.get(emulator.url("/_chatprobe/requests"), params={"since": 2}).json()
            assert [t["seq"] for t in truth] == [3, 4]
            stats = http.get(emulator.url("/_chatprobe/stats")).json()
            assert stats["received"] == 4 and stats["by_status"] == {"200": 4}
            assert http.post(emulator.url("/_chatprobe/reset")).status_code == 200
        assert emulator.truth() == [] and emulator.stats()["received"] == 0
