"""The one Server-Sent Events decoder: sans-IO, fed bytes at any split, yields events.

Follows the WHATWG "event stream interpretation" rules:

* lines end with CRLF, LF or CR (never U+2028 and friends, which model output contains);
* a leading UTF-8 BOM is dropped once, even when split across feeds;
* ``:`` starts a comment line (OpenRouter sends ``: OPENROUTER PROCESSING`` keep-alives);
* ``data`` lines accumulate joined by ``\\n``; ``event``, ``id`` (no NUL) and ``retry``
  (ASCII digits only) set their buffers; unknown fields are ignored;
* a blank line dispatches; an event with no data is not dispatched.

Two things go beyond the letter of the standard because a harness must report what a
provider did rather than hide it: comments are returned (as :class:`Comment`) so checks can
see keep-alives, and at end of stream :meth:`SSEDecoder.flush` returns an event that was
never terminated by a blank line, marked ``terminated=False``, instead of silently
discarding it. Checks flag such framing; metrics can still use the data.

The decoder knows nothing about JSON or OpenAI chunks; :mod:`chatprobe.record` interprets
``[DONE]`` and payloads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DONE", "Comment", "SSEDecoder", "ServerSentEvent"]

DONE = "[DONE]"
_BOM = b"\xef\xbb\xbf"
_EOL = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event."""

    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None
    terminated: bool = True

    @property
    def is_done(self) -> bool:
        """True for the OpenAI end-of-stream sentinel ``data: [DONE]``."""
        return self.data.strip() == DONE


@dataclass(frozen=True, slots=True)
class Comment:
    """A comment line (``: text``), without the colon and one leading space."""

    text: str


class SSEDecoder:
    """Incremental decoder: ``decode(bytes) -> events`` then ``flush() -> events``.

    Splits may fall anywhere, including inside a CRLF pair, a multi-byte UTF-8 character
    or the BOM; the output is the same as decoding the whole stream at once.
    """

    __slots__ = (
        "_buf",
        "_data",
        "_event",
        "_has_data",
        "_last_id",
        "_retry",
        "_skip_lf",
        "_started",
    )

    def __init__(self) -> None:
        self._buf = b""
        self._started = False  # BOM handled
        self._skip_lf = False  # previous feed ended with CR: a leading LF belongs to it
        self._data: list[str] = []
        self._has_data = False
        self._event = ""
        self._last_id = ""
        self._retry: int | None = None

    @property
    def last_event_id(self) -> str:
        return self._last_id

    def decode(self, chunk: bytes) -> list[ServerSentEvent | Comment]:
        """Feed bytes; return the events and comments completed by them."""
        if not chunk:
            return []
        if (
            self._started
            and not self._buf
            and not self._skip_lf
            and chunk.find(b"\n") == len(chunk) - 1
            and b"\r" not in chunk
        ):
            # Fast path: exactly one complete LF-terminated line, as a line-reading
            # transport (the load user) feeds it. Same result as the general path.
            out: list[ServerSentEvent | Comment] = []
            self._line(chunk[:-1], out)
            return out
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buf = self._buf + chunk if self._buf else chunk
        if not self._started:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._buf = buf
                return []
            self._started = True
            if buf.startswith(_BOM):
                buf = buf[3:]
        out = []
        if b"\r" not in buf:
            # Fast path: LF-only framing, the common case.
            *lines, rest = buf.split(b"\n")
        else:
            lines, rest = _split_mixed(buf)
            if rest == b"" and buf.endswith(b"\r"):
                self._skip_lf = True
        self._buf = rest
        # The two lines that make up almost every event, ``data: ...`` and the blank line
        # that dispatches it, are handled inline (the same steps as ``_line`` and
        # ``_dispatch``); anything else goes through ``_line``.
        data = self._data
        for raw in lines:
            if raw[:5] == b"data:":
                data.append((raw[6:] if raw[5:6] == b" " else raw[5:]).decode("utf-8", "replace"))
                self._has_data = True
            elif raw:
                self._line(raw, out)
            else:
                if self._has_data:
                    out.append(
                        _new_event(
                            data[0] if len(data) == 1 else "\n".join(data),
                            self._event or "message",
                            self._last_id,
                            self._retry,
                            True,
                        )
                    )
                    self._retry = None
                self._data = data = []
                self._has_data = False
                self._event = ""
        return out

    def flush(self) -> list[ServerSentEvent | Comment]:
        """End of stream: process an unterminated last line and a pending event."""
        out: list[ServerSentEvent | Comment] = []
        if self._buf:
            buf, self._buf = self._buf, b""
            if not self._started and buf.startswith(_BOM[: len(buf)]):
                buf = b""
            if buf:
                self._line(buf, out)
        if self._has_data:
            out.append(self._dispatch(terminated=False))
        self._data = []
        self._has_data = False
        self._event = ""
        return out

    def _line(self, raw: bytes, out: list[ServerSentEvent | Comment]) -> None:
        if not raw:
            if self._has_data:
                out.append(self._dispatch(terminated=True))
            else:
                self._event = ""
            self._data = []
            self._has_data = False
            self._event = ""
            return
        if raw[:5] == b"data:":
            # Fast path for the line that matters. The prefix is ASCII, so decoding the
            # rest alone gives the same text as decoding the whole line.
            value_bytes = raw[6:] if raw[5:6] == b" " else raw[5:]
            self._data.append(value_bytes.decode("utf-8", "replace"))
            self._has_data = True
            return
        line = raw.decode("utf-8", "replace")
        if line[0] == ":":
            text = line[1:]
            out.append(Comment(text[1:] if text[:1] == " " else text))
            return
        field, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
            self._has_data = True
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\x00" not in value:
                self._last_id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        # any other field is ignored, as the standard says

    def _dispatch(self, *, terminated: bool) -> ServerSentEvent:
        data = self._data
        event = _new_event(
            data[0] if len(data) == 1 else "\n".join(data),
            self._event or "message",
            self._last_id,
            self._retry,
            terminated,
        )
        self._retry = None
        return event


_EVENT_SLOTS = tuple(
    ServerSentEvent.__dict__[name].__set__
    for name in ("data", "event", "id", "retry", "terminated")
)


def _new_event(
    data: str, event: str, id: str, retry: int | None, terminated: bool
) -> ServerSentEvent:
    """``ServerSentEvent(data, event, id, retry, terminated)``, without its ``__init__``.

    A frozen dataclass's ``__init__`` assigns through ``object.__setattr__``; the decoder
    makes one event per chunk on the load hot path, so it fills the slots directly.
    """
    item = object.__new__(ServerSentEvent)
    set_data, set_event, set_id, set_retry, set_terminated = _EVENT_SLOTS
    set_data(item, data)
    set_event(item, event)
    set_id(item, id)
    set_retry(item, retry)
    set_terminated(item, terminated)
    return item


def _split_mixed(buf: bytes) -> tuple[list[bytes], bytes]:
    """Split on CRLF, LF or CR; return complete lines and the unterminated rest.

    A CR at the very end counts as a terminator (the caller remembers to drop a following
    LF), so a lone CR never waits for more input.
    """
    *lines, rest = _EOL.split(buf)
    return lines, rest
