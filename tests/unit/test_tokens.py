"""chatprobe.tokens: a real tokenizer (cl100k_base) from packaged data, never downloaded."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap

import pytest

from chatprobe import tokens
from chatprobe.tokens import TokenizerUnavailable, count_messages, count_tokens, text_of_tokens


def test_counts_are_cl100k_base_counts() -> None:
    # Known cl100k_base tokenizations: "Hello" "," " world" "!" and digits in threes.
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("1234567") == 3
    assert count_tokens("") == 0
    # a special-token marker in a prompt is text, never a control token (and never an error)
    assert count_tokens("<|endoftext|>") > 1


def test_synthetic_text_has_exactly_the_length_asked_for() -> None:
    rng = random.Random(7)
    for n in [*range(1, 40), 128, 1000, 8192]:
        assert count_tokens(text_of_tokens(n, rng)) == n
    assert text_of_tokens(0, rng) == ""
    assert text_of_tokens(50, random.Random(1)) == text_of_tokens(50, random.Random(1))


def test_messages_count_their_texts() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hello, world!"}, {"x": 1}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}],
        },
    ]
    expected = sum(
        map(count_tokens, ["Be brief.", "Hello, world!", "get_weather", '{"city": "Oslo"}'])
    )
    assert count_messages(messages) == expected


def test_the_vocabulary_loads_with_no_network() -> None:
    """A fresh interpreter whose sockets all fail still builds the encoding (no download,
    no cache folder), from the file the package ships."""
    code = textwrap.dedent(
        """
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network used")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        import random
        from chatprobe.tokens import count_tokens, text_of_tokens
        print(count_tokens(text_of_tokens(512, random.Random(0))))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "512"


def test_a_changed_vocabulary_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "_CL100K_SHA256", "0" * 64)
    tokens.encoding.cache_clear()
    try:
        with pytest.raises(TokenizerUnavailable, match="not OpenAI's cl100k_base"):
            tokens.encoding()
    finally:
        monkeypatch.undo()
        tokens.encoding.cache_clear()
    assert count_tokens("Hello, world!") == 4
