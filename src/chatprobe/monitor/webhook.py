"""Events posted to a webhook (``--webhook URL``): JSON, retried, never fatal.

Each event is one ``POST`` with ``Content-Type: application/json`` and this body::

    {"source": "chatprobe monitor", "version": "0.9.0", "id": 12,
     "kind": "outage_started", "time": "2026-12-03T10:05:00Z", "t": 1796292300.0,
     "clock": 1.0, "provider": "openrouter", "model": "gemini-2.0-flash-001",
     "data_source": "live", "subject": "", "message": "probe plain failed (...)",
     "details": {...}}

``time``/``t`` are monitor time (``clock`` > 1: compressed, not the wall clock). Nothing
secret is sent: no key, no header, no base URL (a URL can carry credentials); the body is
scrubbed like everything chatprobe writes. The URL itself is treated as a secret (chat
webhooks embed a token in it): it is registered with the scrubber, so it never appears in
the history's ``runs.argv``, in logs or in messages.

Delivery runs in a background thread, so a slow receiver never delays a probe. A 2xx answer
is delivered; anything else (an error status, a refused connection, a timeout) is retried
after 1, 2, 4 ... seconds (real time), up to ``attempts`` tries; a failure is logged in one
line and stored in ``events.delivered`` (``ok`` or ``failed: <why>``), never raised. At exit,
events still queued get ``drain_s`` seconds to go out.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from chatprobe._version import __version__
from chatprobe.monitor.clock import iso
from chatprobe.monitor.store import History, StoredEvent, TargetRow
from chatprobe.scrub import register_secret, scrub_obj, scrub_text
from chatprobe.transport import USER_AGENT, TLSConfig

__all__ = ["Webhook", "event_payload"]


def event_payload(target: TargetRow, stored: StoredEvent, *, clock: float) -> dict[str, Any]:
    """The JSON body posted for one event (module docstring)."""
    event = stored.event
    body = {
        "source": "chatprobe monitor",
        "version": __version__,
        "id": stored.id,
        "kind": event.kind,
        "time": iso(event.t),
        "t": event.t,
        "clock": clock,
        "provider": target.provider,
        "model": target.model,
        "data_source": target.data_source,
        "subject": event.subject,
        "message": event.message,
        "details": event.details,
    }
    scrubbed: dict[str, Any] = scrub_obj(body)  # type: ignore[assignment]
    return scrubbed


class Webhook:
    """Posts events in a background thread (module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        history: History | None = None,
        tls: TLSConfig | None = None,
        say: Callable[[str], None] = lambda line: None,
        attempts: int = 4,
        backoff_s: float = 1.0,
        timeout_s: float = 10.0,
        drain_s: float = 10.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("the webhook must be an http:// or https:// URL")
        register_secret(url)
        self.url = url
        self.history = history
        self.say = say
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.drain_s = drain_s
        self.delivered = 0
        self.failed = 0
        self._queue: queue.Queue[tuple[int, bytes] | None] = queue.Queue()
        self._closing = threading.Event()
        verify = (tls or TLSConfig()).context()
        self._http = httpx.Client(
            verify=verify, trust_env=False, follow_redirects=False, timeout=timeout_s
        )
        self._thread = threading.Thread(target=self._work, name="chatprobe-webhook", daemon=True)
        self._thread.start()

    def post(self, target: TargetRow, stored: StoredEvent, *, clock: float) -> None:
        """Queue one event for delivery."""
        body = orjson.dumps(event_payload(target, stored, clock=clock))
        self._queue.put((stored.id, body))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            event_id, body = item
            outcome = self._deliver(body)
            if outcome == "ok":
                self.delivered += 1
            else:
                self.failed += 1
                self.say(f"webhook: event {event_id} not delivered ({outcome})")
            if self.history is not None:
                try:
                    self.history.mark_delivered(event_id, outcome)
                except Exception as exc:  # the history is closing: the delivery still happened
                    self.say(f"webhook: could not record delivery of event {event_id}: {exc}")

    def _deliver(self, body: bytes) -> str:
        why = ""
        for attempt in range(self.attempts):
            if attempt and not self._closing.is_set():  # closing: retry at once, within drain_s
                self._closing.wait(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = self._http.post(
                    self.url,
                    content=body,
                    headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
                )
            except Exception as exc:  # refused, timed out, or the client closed at exit
                why = type(exc).__name__
                continue
            if 200 <= response.status_code < 300:
                return "ok"
            why = f"HTTP {response.status_code}"
        return scrub_text(f"failed: {why} after {self.attempts} attempts")

    def close(self) -> None:
        """Deliver what is queued (at most ``drain_s`` seconds), then stop."""
        self._closing.set()
        self._queue.put(None)
        self._thread.join(self.drain_s)
        if self._thread.is_alive():
            left = self._queue.qsize()
            self.say(f"webhook: gave up on {left} queued event(s) at exit")
        self._http.close()
