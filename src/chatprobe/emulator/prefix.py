"""A prefix cache per model: which part of a prompt the server has seen before.

Like vLLM's automatic prefix caching: the prompt is a stream of tokens (the emulator's
tokenizer over every message, each message's first token tagged with its role) cut into
blocks of ``block`` tokens; block ``i`` is keyed by a hash chained over blocks ``0..i``, so a
block only matches when everything before it matches too. A request's cached tokens are its
leading blocks found in the cache, at most ``prompt_tokens - 1`` (the last token is always
computed). Afterwards the blocks of the prompt *and of the prompt followed by the answer* (as
the assistant message a client sends back in the next turn) are stored, so a conversation's
next turn finds its history. The cache is an LRU capped at ``tokens`` tokens.

Enabled with ``--prefix-cache`` (``tokens=N,block=B``), a scenario's ``emulator.prefix_cache``
or ``EmulatorConfig(prefix_cache=PrefixCacheSettings(...))``; usage then reports
``prompt_tokens_details.cached_tokens`` and a capacity model prefills only the rest.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chatprobe.emulator.text import IMAGE_TOKENS, iter_text_parts, tokens_of
from chatprobe.errors import ConfigError

__all__ = ["PrefixCache", "PrefixCacheSettings", "block_hashes", "prompt_stream"]


@dataclass(frozen=True, slots=True)
class PrefixCacheSettings:
    """Size (tokens) and block size (tokens) of each model's prefix cache."""

    tokens: int = 1_000_000  # about a small GPU's KV cache
    block: int = 16  # vLLM's default block size

    def __post_init__(self) -> None:
        if self.block < 1:
            raise ConfigError("block must be at least 1", field="prefix_cache")
        if self.tokens < self.block:
            raise ConfigError("tokens must be at least one block", field="prefix_cache")

    def __str__(self) -> str:
        return f"tokens={self.tokens},block={self.block}"

    @classmethod
    def parse(cls, text: str, *, source: str = "--prefix-cache") -> PrefixCacheSettings | None:
        """``tokens=200000,block=16`` (any subset), ``on`` (defaults) or ``off`` (None)."""
        text = text.strip().lower()
        if text in ("off", "none", "false"):
            return None
        if text in ("on", "true", ""):
            return cls()
        values: dict[str, str] = {}
        for item in text.split(","):
            name, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"expected tokens=N,block=B, got {item.strip()!r}", field=source)
            values[name.strip()] = value.strip()
        return cls.from_mapping(values, source=source)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, source: str = "prefix_cache"
    ) -> PrefixCacheSettings:
        unknown = [k for k in data if k not in ("tokens", "block")]
        if unknown:
            raise ConfigError(
                f"unknown prefix cache setting {unknown[0]!r} (known: tokens, block)", field=source
            )
        default = cls()
        try:
            return cls(
                tokens=int(data.get("tokens", default.tokens)),
                block=int(data.get("block", default.block)),
            )
        except ValueError:
            raise ConfigError(
                f"bad prefix cache {dict(data)!r}: integers expected", field=source
            ) from None
        except ConfigError as exc:
            raise ConfigError(exc.detail, field=source) from None


def prompt_stream(messages: Iterable[Any]) -> list[str]:
    """The prompt as tokens, as many as usage counts (before any quirk), roles folded in."""
    out: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        tokens = tokens_of("".join(iter_text_parts(content)))
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                tokens += tokens_of(str(function.get("name", "")))
                tokens += tokens_of(str(function.get("arguments", "")))
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    url = str((part.get("image_url") or {}).get("url", ""))
                    mark = "\x00image:" + hashlib.blake2b(url.encode(), digest_size=8).hexdigest()
                    tokens += [mark] * IMAGE_TOKENS
        if tokens:
            tokens[0] = f"{message.get('role')}\x1f{tokens[0]}"
        out += tokens
    return out


def block_hashes(stream: list[str], block: int) -> list[bytes]:
    """One chained hash per full block of ``stream``."""
    hashes: list[bytes] = []
    previous = b""
    for start in range(0, len(stream) - block + 1, block):
        data = previous + "\x1e".join(stream[start : start + block]).encode()
        previous = hashlib.blake2b(data, digest_size=12).digest()
        hashes.append(previous)
    return hashes


class PrefixCache:
    """One model's cache of block hashes, least recently used first."""

    def __init__(self, settings: PrefixCacheSettings) -> None:
        self.block = settings.block
        self.max_blocks = max(1, settings.tokens // settings.block)
        self._blocks: OrderedDict[bytes, None] = OrderedDict()
        self.lookups = 0
        self.hit_tokens = 0
        self.prompt_tokens = 0

    def lookup(self, prompt: list[bytes], prompt_tokens: int) -> int:
        """Cached tokens of a prompt (its leading blocks found), touching what it found."""
        blocks = self._blocks
        found = 0
        for key in prompt:
            if key not in blocks:
                break
            blocks.move_to_end(key)
            found += 1
        cached = found * self.block
        if cached >= prompt_tokens:  # the last token is always computed
            cached = max(0, (prompt_tokens - 1) // self.block * self.block)
        self.lookups += 1
        self.hit_tokens += cached
        self.prompt_tokens += prompt_tokens
        return cached

    def store(self, keys: list[bytes]) -> None:
        """Remember ``keys`` as most recently used; evict the oldest beyond the cap."""
        blocks = self._blocks
        for key in keys:
            blocks[key] = None
            blocks.move_to_end(key)
        while len(blocks) > self.max_blocks:
            blocks.popitem(last=False)

    def clear(self) -> None:
        self._blocks.clear()
        self.lookups = self.hit_tokens = self.prompt_tokens = 0

    def snapshot(self) -> dict[str, Any]:
        return {
            "blocks": len(self._blocks),
            "tokens": len(self._blocks) * self.block,
            "lookups": self.lookups,
            "cached_tokens": self.hit_tokens,
            "prompt_tokens": self.prompt_tokens,
        }
