"""Polite load: how a load run holds back when a server asks it to or cannot be reached.

Pure (no gevent, no locust): the users decide *how long* to wait here and do the waiting
themselves (a gevent wait that the end of the run cuts short). Two rules, each per the
party that caused it:

* **Retry-After, per target.** A ``429`` (``rate_limited``) or ``503`` (``unavailable``)
  answer carrying ``Retry-After`` (seconds or an HTTP date, parsed once by
  :func:`chatprobe.transport.retry_after_s`) holds *that target*: every user about to send
  to it waits until the time the server named (:class:`TargetHold`); users sending to
  other targets go on. A later answer can only lengthen the hold.
* **Exponential backoff, per user.** A request that failed at the connection level (refused,
  DNS, TLS, connect timeout, reset before any response: ``status`` is None), or a 429/503
  without ``Retry-After``, makes the user that sent it wait before its next request:
  ``min(cap, base x 2^(n-1))`` for its n-th failure in a row, half of it fixed and half
  drawn at random (jitter, so users that failed together do not come back together).
  Any other answer resets the count (:class:`Backoff`).

What each sample carries so that :mod:`chatprobe.metrics` can report it: ``retry_after_s``
(the server's ask, read from the response headers when the sample is built) and
``backoff_s`` (the backoff this request caused, from :func:`after_request`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from chatprobe.record import ErrorClass, RequestRecord
from chatprobe.transport import retry_after_s

__all__ = [
    "BACKOFF_BASE_S",
    "BACKOFF_CAP_S",
    "CONNECTION_FAILURES",
    "HOLD_CLASSES",
    "Backoff",
    "TargetHold",
    "after_request",
    "record_retry_after_s",
]

BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 30.0

HOLD_CLASSES = frozenset({ErrorClass.RATE_LIMITED, ErrorClass.UNAVAILABLE})
"""Answers whose ``Retry-After`` holds the target."""

CONNECTION_FAILURES = frozenset(
    {
        ErrorClass.CONNECT_ERROR,
        ErrorClass.TLS_ERROR,
        ErrorClass.TIMEOUT_CONNECT,
        ErrorClass.CONNECTION_RESET,
    }
)
"""Failures that back off when no response head arrived (a reset mid-stream does not)."""


@dataclass(slots=True)
class Backoff:
    """One user's exponential backoff with jitter: :meth:`failed` gives the next delay."""

    base_s: float = BACKOFF_BASE_S
    cap_s: float = BACKOFF_CAP_S
    failures: int = 0
    rng: random.Random = field(default_factory=random.Random)
    resume_at: float = 0.0  # time.monotonic() before which its user sends nothing

    def failed(self) -> float:
        """One more failure in a row: the seconds to wait before the next request."""
        ceiling = min(self.cap_s, self.base_s * 2.0**self.failures)
        self.failures += 1
        return ceiling / 2 + self.rng.uniform(0.0, ceiling / 2)

    def succeeded(self) -> None:
        self.failures = 0


@dataclass(slots=True)
class TargetHold:
    """Until when (a ``time.monotonic`` value) a target's users hold back."""

    until: float = 0.0

    def hold(self, seconds: float, now: float) -> None:
        self.until = max(self.until, now + seconds)

    def remaining(self, now: float) -> float:
        return max(0.0, self.until - now)


def record_retry_after_s(record: RequestRecord) -> float | None:
    """The ``Retry-After`` of a 429 or 503 answer, in seconds (None: absent or unreadable)."""
    if record.status not in (429, 503):
        return None
    return retry_after_s(record.response_headers.get("retry-after"))


def after_request(
    record: RequestRecord, backoff: Backoff, hold: TargetHold, now: float
) -> tuple[float | None, float | None]:
    """Apply both rules to a finished ``record``: ``(retry_after_s, backoff_s)``, the
    Retry-After that now holds the target (None: none) and the backoff its user must take
    before its next request (None: none)."""
    cls = record.error_class
    if cls in HOLD_CLASSES:
        wait = record_retry_after_s(record)
        if wait is not None:
            hold.hold(wait, now)
            return wait, None
        return None, backoff.failed()
    if cls in CONNECTION_FAILURES and record.status is None:
        return None, backoff.failed()
    backoff.succeeded()
    return None, None
