"""A LitServe server with its OpenAISpec and a tiny stand-in model (run in LitServe's own venv).

Usage: ``python litserve_app.py PORT`` (listens on 127.0.0.1:PORT).

Everything on the wire is LitServe's: request parsing and validation, the response, chunk and
error JSON, SSE framing, ``[DONE]``, ids, usage placement. The model only does what a decoder
does: it produces one word per step of a fixed reply, stops at ``max_tokens`` words or before a
``stop`` sequence, and reports its token counts the way LitServe documents (usage keys on the
last item it yields). A prompt containing ``[fail after two words]`` makes it raise after two
words, to show how LitServe reports a model error. chatprobe's tests never import this file:
they talk to it over HTTP.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import litserve as ls
from litserve.specs.openai import OpenAISpec

# A prompt containing this makes the model fail after two words (how a decoder error looks
# when LitServe streams it).
FAIL_AFTER_TWO_WORDS = "[fail after two words]"
REPLY = (
    "Hello from a tiny LitServe model. It yields one word at a time, like a real decoder, "
    "until it reaches the end of its reply."
)


def words_of(content: Any) -> int:
    """Whitespace words in a message's content (a string or a list of content parts)."""
    if isinstance(content, str):
        return len(content.split())
    if isinstance(content, list):
        return sum(len(str(getattr(part, "text", "") or "").split()) for part in content)
    return 0


class TinyModel(ls.LitAPI):
    def setup(self, device: str) -> None:
        self.reply = REPLY

    def predict(self, request: Any, context: Any) -> Iterator[Any]:
        text = self.reply
        stops = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
        for stop in stops:
            if stop and stop in text:
                text = text[: text.index(stop)]
        words = [w if i == 0 else " " + w for i, w in enumerate(text.split(" ")) if w]
        limit = request.max_completion_tokens or request.max_tokens
        if limit is not None:
            words = words[: max(limit, 0)]
        prompt = sum(words_of(message.content) for message in request.messages)
        fail = any(FAIL_AFTER_TWO_WORDS in str(message.content) for message in request.messages)
        for i, word in enumerate(words):
            if fail and i == 2:
                raise RuntimeError("the tiny model failed on purpose")
            if i < len(words) - 1:
                yield word
            else:
                yield {
                    "role": "assistant",
                    "content": word,
                    "prompt_tokens": prompt,
                    "completion_tokens": len(words),
                    "total_tokens": prompt + len(words),
                }


if __name__ == "__main__":
    server = ls.LitServer(
        TinyModel(spec=OpenAISpec()), accelerator="cpu", devices=1, workers_per_device=1
    )
    server.run(host="127.0.0.1", port=int(sys.argv[1]), generate_client_file=False)
