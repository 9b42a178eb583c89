"""Seeded text, the emulator's tokenizer, and tool-call arguments.

No model is involved: a completion is drawn from a fixed word list by a generator seeded from
``(seed, model id, messages, choice index)``, so the same request to the same emulator seed
always yields the same text. The request's ``stop`` and ``max_tokens`` do not enter the seed:
they only cut the text, which is what makes them testable (ask once, then ask again with a
stop string taken from the first answer).

The tokenizer is deliberately simple and is the *only* one the emulator uses, so usage is
exactly consistent with the text: a token is a run of word characters (``\\w+``) or one
punctuation character; whitespace is not a token. Generated text is a sequence of *pieces*,
each exactly one token (a word, with its leading space, or a punctuation mark), so
``completion_tokens == len(pieces) == count_tokens("".join(pieces))``.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable
from typing import Any

import orjson

__all__ = [
    "IMAGE_TOKENS",
    "WORDS",
    "count_tokens",
    "generate_pieces",
    "split_pieces",
    "text_seed",
    "tokens_of",
    "tool_arguments",
]

_TOKEN = re.compile(r"\w+|[^\w\s]")
# A piece: optional whitespace then one token. Joined, the pieces give back the string.
_PIECE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+$")

IMAGE_TOKENS = 258
"""Prompt tokens counted per image content part (Gemini bills an image as 258 tokens)."""

# A fixed vocabulary. A few non-ASCII words make clients decode multi-byte UTF-8 split across
# network reads; every word is one ``\w+`` run so it counts as exactly one token.
WORDS: tuple[str, ...] = tuple(
    """
    the a of and to in is it that for on with as was at by this be from are or an not have
    but which one all were when we there can more if will their has been some would what
    about them so other into time only could new these two may first then do any like my
    now over such our man me even most made after also did many before must through back
    years where much your way well down should because each just those people how too
    little state good very make world still own see men work long get here between both
    life being under never day same another know while last might us great old year off
    come since against go came right used take three river stone lamp garden harbor signal
    window copper meadow lantern orbit cedar ferry granite pixel tunnel violet wagon marble
    kettle beacon canyon delta ember fjord glacier hollow island jetty kiln ledger mosaic
    nectar oasis prism quarry saddle thistle umber vessel willow zenith café über naïve
    façade déjà smörgåsbord 東京 数据 模型 время данные
    """.split()  # noqa: SIM905 - a word list reads better as text
)
_SPACED = tuple(" " + w for w in WORDS)
_COMMA, _END_MARKS = ",", (".", ".", ".", ".", "!", "?")


def count_tokens(text: str) -> int:
    """Tokens in ``text`` by the emulator's rule (words and punctuation marks)."""
    return len(_TOKEN.findall(text))


def tokens_of(text: str) -> list[str]:
    """The tokens of ``text`` by the emulator's rule (``len`` is :func:`count_tokens`)."""
    return _TOKEN.findall(text)


def split_pieces(text: str) -> list[str]:
    """Split ``text`` into pieces of one token each (leading whitespace kept with the token).

    Trailing whitespace becomes a last piece of its own, holding no token.
    """
    return _PIECE.findall(text)


def text_seed(seed: int, model_id: str, messages: Any, choice: int) -> int:
    """A 64-bit seed for one choice's text, from the emulator seed and the request."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(seed.to_bytes(8, "little", signed=True))
    digest.update(model_id.encode())
    digest.update(orjson.dumps(messages, option=orjson.OPT_SORT_KEYS))
    digest.update(choice.to_bytes(4, "little"))
    return int.from_bytes(digest.digest(), "little")


def generate_pieces(text_seed_value: int, length: int) -> list[str]:
    """``length`` one-token pieces of sentence-like text (capitalised, commas, full stops)."""
    draw = random.Random(text_seed_value).random
    pieces: list[str] = []
    append = pieces.append
    words = _SPACED
    n_words = len(words)
    while len(pieces) < length:
        sentence = 4 + int(draw() * 10)
        for position in range(sentence):
            if len(pieces) >= length:
                break
            word = words[int(draw() * n_words)]
            if position == 0:
                word = word[0] + word[1].upper() + word[2:]
            append(word if pieces else word[1:])
            last = position == sentence - 1
            if len(pieces) < length and (last or draw() < 0.1):
                append(_END_MARKS[int(draw() * len(_END_MARKS))] if last else _COMMA)
    return pieces


def tool_arguments(rng: random.Random, parameters: Any) -> dict[str, Any]:
    """Arguments for a function from its JSON Schema ``parameters``, drawn from ``rng``.

    Every declared property gets a value of its declared type (an ``enum`` picks one of its
    values), so the result is valid for simple schemas; anything the schema does not say
    becomes a word.
    """
    value = _value_for(rng, parameters if isinstance(parameters, dict) else {}, depth=0)
    return value if isinstance(value, dict) else {}


def _value_for(rng: random.Random, schema: dict[str, Any], depth: int) -> Any:
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[rng.randrange(len(enum))]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or ["null"]
        kind = kinds[0]
    properties = schema.get("properties")
    if kind == "object" or (kind is None and isinstance(properties, dict)):
        if depth > 4 or not isinstance(properties, dict):
            return {}
        return {
            str(name): _value_for(rng, sub if isinstance(sub, dict) else {}, depth + 1)
            for name, sub in properties.items()
        }
    if kind == "array":
        items = schema.get("items")
        return [_value_for(rng, items if isinstance(items, dict) else {}, depth + 1)]
    if kind == "integer":
        return rng.randint(1, 100)
    if kind == "number":
        return round(rng.uniform(0, 100), 1)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    word = WORDS[rng.randrange(len(WORDS))]
    return word[:1].upper() + word[1:]


def iter_text_parts(content: Any) -> Iterable[str]:
    """The text of a message ``content`` (a string or a list of content parts)."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]
