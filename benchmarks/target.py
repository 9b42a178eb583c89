"""The emulator as a benchmark target: one pinned subprocess, one request shape.

Every benchmark sends the same request: a streamed chat completion to the OpenRouter dialect
of the emulator (the richest stream: role chunk, content chunks, a usage chunk, ``[DONE]``),
asking for exactly ``TOKENS`` output tokens (``max_tokens`` and the emulator's
``X-Chatprobe-Output-Tokens`` header), one token per chunk, so a stream is 64 content events.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from benchmarks.harness import EMULATOR_CPU

__all__ = ["MODEL_ID", "PROVIDER", "TOKENS", "Target", "emulator"]

PROVIDER = "openrouter"
MODEL_ID = "google/gemini-2.0-flash-001"
TOKENS = 64


@dataclass(slots=True)
class Target:
    """What a client needs to reach the emulator, and a handle for its ground truth."""

    url: str
    body: bytes
    headers: dict[str, str]
    pid: int | None
    emu: Any
    ca_file: str | None = None  # tls: the emulator's CA certificate

    def truth(self, since: int = 0) -> list[dict[str, Any]]:
        return self.emu.truth(since=since)  # type: ignore[no-any-return]

    def last_seq(self) -> int:
        return int(self.emu.stats().get("last_seq", 0))


@contextmanager
def emulator(
    *, cpu: int | None = EMULATOR_CPU, tokens: int = TOKENS, **config: Any
) -> Iterator[Target]:
    """Start ``chatprobe emulate`` pinned to ``cpu`` with ``config`` (EmulatorConfig fields)."""
    from chatprobe.emulator import DEMO_KEY, Emulator, EmulatorConfig

    cfg = EmulatorConfig(
        providers=(PROVIDER,),
        rate_limit_rpm=0,
        tokens_per_chunk=1,
        output_tokens=(tokens, tokens),
        **config,
    )
    with Emulator.in_subprocess(cfg, cpu=cpu) as emu:
        body = orjson.dumps(
            {
                "model": MODEL_ID,
                "messages": [{"role": "user", "content": "Tell me about benchmarks."}],
                "stream": True,
                "max_tokens": tokens,
            }
        )
        headers = {
            "Authorization": f"Bearer {DEMO_KEY}",
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",
            "X-Chatprobe-Output-Tokens": str(tokens),
        }
        process = getattr(emu, "_process", None)
        yield Target(
            url=emu.base_url(PROVIDER) + "/chat/completions",
            body=body,
            headers=headers,
            pid=process.pid if process is not None else None,
            emu=emu,
            ca_file=str(emu.ca_file) if getattr(emu, "ca_file", None) else None,
        )
