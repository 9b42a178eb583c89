"""The prefix cache: blocks of the prompt seen before, reported as cached_tokens, with truth."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chatprobe.emulator import Emulator, EmulatorConfig, count_tokens
from chatprobe.emulator.capacity import Capacity
from chatprobe.emulator.prefix import (
    PrefixCache,
    PrefixCacheSettings,
    block_hashes,
    prompt_stream,
)
from chatprobe.errors import ConfigError
from tests.emulator_support import OPENROUTER_MODEL, chunks, post_raw

SYSTEM = " ".join(f"rule{i}." for i in range(40))  # 80 tokens
BLOCK = 16


# ---------------------------------------------------------------------------- pieces


def test_the_prompt_stream_counts_what_usage_counts() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": [{"type": "text", "text": "Look:"}, _image("a")]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"function": {"name": "lookup", "arguments": '{"q": "x"}'}}],
        },
    ]
    stream = prompt_stream(messages)
    assert len(stream) == 80 + 2 + 258 + 1 + count_tokens('{"q": "x"}')
    assert stream[0].startswith("system") and stream[80].startswith("user")


def _image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": f"https://example.com/{url}.png"}}


def test_a_block_matches_only_with_everything_before_it() -> None:
    one = block_hashes([f"t{i}" for i in range(64)], BLOCK)
    other = block_hashes(["x"] + [f"t{i}" for i in range(1, 64)], BLOCK)
    assert len(one) == 4 and all(a != b for a, b in zip(one, other, strict=True))
    assert block_hashes([f"t{i}" for i in range(40)], BLOCK) == one[:2]


def test_lookup_stops_at_the_first_miss_and_keeps_the_last_token_uncached() -> None:
    cache = PrefixCache(PrefixCacheSettings(tokens=10_000, block=BLOCK))
    keys = block_hashes([f"t{i}" for i in range(64)], BLOCK)
    assert cache.lookup(keys, 64) == 0
    cache.store(keys[:3])
    assert cache.lookup(keys, 64) == 48
    cache.store(keys)
    assert cache.lookup(keys, 64) == 48  # all 64 seen, but the last token is computed
    assert cache.lookup(keys, 70) == 64


def test_the_cache_forgets_the_least_recently_used_blocks() -> None:
    cache = PrefixCache(PrefixCacheSettings(tokens=4 * BLOCK, block=BLOCK))
    first = block_hashes([f"a{i}" for i in range(48)], BLOCK)
    second = block_hashes([f"b{i}" for i in range(48)], BLOCK)
    cache.store(first)
    cache.store(second)  # 6 blocks into room for 4: first's two oldest go
    assert cache.lookup(first, 100) == 0
    assert cache.lookup(second, 100) == 48


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("on", PrefixCacheSettings()),
        ("tokens=5000,block=8", PrefixCacheSettings(tokens=5000, block=8)),
        ("off", None),
    ],
)
def test_settings_parse(text: str, expected: PrefixCacheSettings | None) -> None:
    assert PrefixCacheSettings.parse(text) == expected


@pytest.mark.parametrize("text", ["size=3", "block=0", "tokens=4,block=8", "tokens=many"])
def test_bad_settings_are_one_clear_error(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        PrefixCacheSettings.parse(text)
    assert info.value.field == "--prefix-cache"


# ---------------------------------------------------------------------------- the server


@pytest.fixture
def emu() -> Iterator[Emulator]:
    config = EmulatorConfig(
        providers=("openrouter",),
        zero_latency=True,
        rate_limit_rpm=0,
        prefix_cache=PrefixCacheSettings(block=BLOCK),
    )
    with Emulator.in_thread(config) as emulator:
        yield emulator


def _ask(emu: Emulator, messages: list[dict[str, Any]], stream: bool = False) -> dict[str, Any]:
    response = post_raw(emu, {"model": OPENROUTER_MODEL, "messages": messages, "stream": stream})
    assert response.status_code == 200
    if stream:
        usage = next(c["usage"] for c in chunks(response.content) if c.get("usage"))
        return {"usage": usage, "text": None}
    body = response.json()
    return {"usage": body["usage"], "text": body["choices"][0]["message"]["content"]}


def test_a_repeated_prompt_is_cached_but_its_last_token(emu: Emulator) -> None:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hello."}]
    first = _ask(emu, messages)["usage"]
    second = _ask(emu, messages, stream=True)["usage"]
    assert first["prompt_tokens_details"] == {"cached_tokens": 0}
    prompt = second["prompt_tokens"]
    assert second["prompt_tokens_details"] == {"cached_tokens": (prompt - 1) // BLOCK * BLOCK}
    truth = emu.truth()
    assert [t["cached_tokens"] for t in truth] == [0, (prompt - 1) // BLOCK * BLOCK]


def test_a_conversation_finds_its_history(emu: Emulator) -> None:
    """Turn k's prompt holds turns 1..k-1 and their answers: all of it but a block is cached."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    reported, previous = [], 0
    for turn in range(4):
        messages.append({"role": "user", "content": f"Question number {turn}?"})
        answer = _ask(emu, messages)
        usage = answer["usage"]
        cached = usage["prompt_tokens_details"]["cached_tokens"]
        if turn:  # the previous prompt and its answer, in whole blocks
            assert cached == previous // BLOCK * BLOCK
        reported.append((cached, usage["prompt_tokens"]))
        previous = usage["prompt_tokens"] + usage["completion_tokens"]
        messages.append({"role": "assistant", "content": answer["text"]})
    truth = emu.truth()
    assert [t["cached_tokens"] for t in truth] == [c for c, _ in reported]
    hit_rate = sum(c for c, _ in reported) / sum(p for _, p in reported)
    stats = emu.stats()["prefix_cache"][f"openrouter/{_canonical()}"]
    assert stats["cached_tokens"] / stats["prompt_tokens"] == pytest.approx(hit_rate)
    assert hit_rate > 0.5


def _canonical() -> str:
    return "gemini-2.0-flash-001"


def test_only_the_shared_prefix_is_cached(emu: Emulator) -> None:
    _ask(emu, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "One."}])
    other = _ask(emu, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Two"}])
    assert other["usage"]["prompt_tokens_details"]["cached_tokens"] == 80  # the system prompt
    fresh = _ask(
        emu, [{"role": "system", "content": "Different."}, {"role": "user", "content": "x"}]
    )
    assert fresh["usage"]["prompt_tokens_details"]["cached_tokens"] == 0


def test_reset_forgets_the_prefixes(emu: Emulator) -> None:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hello."}]
    _ask(emu, messages)
    emu.reset()
    assert _ask(emu, messages)["usage"]["prompt_tokens_details"]["cached_tokens"] == 0


def test_without_a_prefix_cache_usage_has_no_details() -> None:
    with Emulator.in_thread(EmulatorConfig(providers=("openrouter",), zero_latency=True)) as emu:
        usage = _ask(emu, [{"role": "user", "content": "Hello."}])["usage"]
        truth = emu.truth()
    assert "prompt_tokens_details" not in usage and truth[0]["cached_tokens"] is None


def test_only_uncached_tokens_are_prefilled() -> None:
    config = EmulatorConfig(
        providers=("openrouter",),
        ttft_ms=1,
        itl_ms=1,
        sigma=0.0,
        rate_limit_rpm=0,
        capacity=Capacity(prefill_ms_per_1k=100),
        prefix_cache=PrefixCacheSettings(block=BLOCK),
    )
    messages = [{"role": "system", "content": SYSTEM * 4}, {"role": "user", "content": "Hi."}]
    with Emulator.in_thread(config) as emu:
        _ask(emu, messages)
        _ask(emu, messages)
        cold, warm = emu.truth()
    assert cold["cached_tokens"] == 0 and warm["cached_tokens"] > 0
    assert warm["prefill_ms"] < cold["prefill_ms"]


def test_a_scenario_block_turns_it_on() -> None:
    from chatprobe.load.launcher import emulator_config
    from chatprobe.load.scenario import parse_scenario

    base = "targets:\n  - {provider: openrouter, model: gemini-2.0-flash-001}\n"
    config = emulator_config(parse_scenario(base + "emulator: {prefix_cache: true}\n"), None)
    assert config.prefix_cache == PrefixCacheSettings()
    sized = base + "emulator: {prefix_cache: {tokens: 4096, block: 32}}\n"
    assert emulator_config(parse_scenario(sized), None).prefix_cache == PrefixCacheSettings(
        4096, 32
    )
    with pytest.raises(ConfigError) as info:
        parse_scenario(base + "emulator: {prefix_cache: {tokens: 8, block: 32}}\n", "bad.yaml")
    assert str(info.value).startswith("bad.yaml:3: emulator.prefix_cache: ")
