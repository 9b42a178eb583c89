"""Prompt pools for load runs: fixed text, seeded synthetic text of a token-length distribution,
or a file.

The pool is built once, before the run (by ``chatprobe load``, so every locust worker sends
the same prompts), as a list of ``messages`` arrays, with each prompt's length in tokens
(:func:`prompt_tokens`) beside it in the plan. Lengths are counted, and synthetic prompts
built to them exactly, with chatprobe's tokenizer (:mod:`chatprobe.tokens`, cl100k_base,
shipped with its vocabulary): "512 input tokens" is 512 real BPE tokens, not 2,048
characters. Providers tokenize differently, so the ``prompt_tokens`` they report differs;
the load figures report by how much (``lengths.input_ratio``).
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import orjson

from chatprobe.errors import ConfigError
from chatprobe.load.scenario import PromptSpec
from chatprobe.tokens import count_messages, text_of_tokens

__all__ = ["build_prompts", "draw_length", "prompt_tokens"]

Messages = list[dict[str, Any]]


def draw_length(dist: dict[str, Any], rng: random.Random) -> int:
    """One length from a scenario's token distribution (``fixed``, ``uniform``, ``normal``
    or ``lognormal``; clamped to ``min``..``max``)."""
    kind = dist.get("distribution", "normal")
    mean = float(dist["mean"])
    std = float(dist.get("std", mean / 4))
    lo = int(dist.get("min", 1))
    hi = int(dist.get("max", 10**9))
    if kind == "fixed":
        value = mean
    elif kind == "uniform":
        value = rng.uniform(lo, hi)
    elif kind == "lognormal":
        # Parameters chosen so the distribution's mean and std are the ones given.
        sigma2 = math.log(1 + (std / mean) ** 2)
        value = rng.lognormvariate(math.log(mean) - sigma2 / 2, math.sqrt(sigma2))
    else:
        value = rng.gauss(mean, std)
    return int(min(hi, max(lo, round(value))))


def build_prompts(spec: PromptSpec, seed: int) -> list[Messages]:
    """The prompt pool: one ``messages`` list per prompt, system message first if given."""
    if spec.kind == "synthetic":
        rng = random.Random(f"chatprobe-prompts:{seed}")
        texts = [
            text_of_tokens(draw_length(spec.distribution, rng), rng) for _ in range(spec.count)
        ]
        pool: list[Messages] = [[{"role": "user", "content": t}] for t in texts]
    elif spec.kind == "file":
        assert spec.file is not None
        pool = _read_file(Path(spec.file))
    else:
        pool = [[{"role": "user", "content": t}] for t in spec.texts]
    if spec.system:
        pool = [[{"role": "system", "content": spec.system}, *m] for m in pool]
    return pool


def prompt_tokens(pool: list[Messages]) -> list[int]:
    """Each prompt's length as sent, by chatprobe's tokenizer (the samples' ``input_tokens``)."""
    return [count_messages(messages) for messages in pool]


def _read_file(path: Path) -> list[Messages]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason})", path=str(path)) from None
    pool: list[Messages] = []
    jsonl = path.suffix == ".jsonl"
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if not jsonl:
            pool.append([{"role": "user", "content": line.strip()}])
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"not JSON: {exc}", path=str(path), line=number) from None
        pool.append(_messages(item, str(path), number))
    if not pool:
        raise ConfigError("no prompts in file", path=str(path))
    return pool


def _messages(item: Any, path: str, line: int) -> Messages:
    if isinstance(item, str) and item:
        return [{"role": "user", "content": item}]
    if isinstance(item, dict):
        if isinstance(item.get("prompt"), str) and item["prompt"]:
            return [{"role": "user", "content": item["prompt"]}]
        messages = item.get("messages")
        if (
            isinstance(messages, list)
            and messages
            and all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages)
        ):
            return messages
    raise ConfigError(
        'expected a string, {"prompt": str} or {"messages": [{role, content}, ...]}',
        path=path,
        line=line,
        field="prompt",
    )
