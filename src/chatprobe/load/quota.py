"""The request quota of a run that counts requests (``requests: N``): who may send the next.

Without a count every request may start. With one, a local run keeps a counter; in a
distributed run the master holds the count and grants workers tickets in blocks (a worker
asks for as many as it has users, ``chatprobe_tickets``; the master answers
``chatprobe_grant`` with what is left and whether that was the last). Locust child only
(gevent).
"""

from __future__ import annotations

from typing import Any

from gevent.event import Event

__all__ = ["RequestQuota"]

ASK_AGAIN_S = 5.0  # a worker that got no answer asks again after this long


class RequestQuota:
    """``take()``: may one more request start?"""

    def __init__(self, requests: int | None) -> None:
        self.requests = requests
        self.remaining = requests  # local counter, or the master's pool of tickets
        self.role = "local"
        self.runner: Any = None
        self._tickets = 0  # worker: granted and not yet used
        self._exhausted = False
        self._asking = False
        self._granted = Event()

    def bind(self, role: str, runner: Any) -> None:
        self.role = role
        self.runner = runner
        if role == "worker":
            runner.register_message("chatprobe_grant", self._on_grant)
        elif role == "master":
            runner.register_message("chatprobe_tickets", self._on_tickets)

    def take(self) -> bool:
        """May one more request start? Always yes unless the run counts requests."""
        if self.requests is None:
            return True
        if self.role != "worker":
            assert self.remaining is not None
            if self.remaining <= 0:
                return False
            self.remaining -= 1
            return True
        while True:
            if self._tickets > 0:
                self._tickets -= 1
                return True
            if self._exhausted:
                return False
            if not self._asking:
                self._asking = True
                self._granted.clear()
                want = max(1, self.runner.user_count)
                self.runner.send_message("chatprobe_tickets", {"n": want})
            if not self._granted.wait(timeout=ASK_AGAIN_S):
                self._asking = False  # ask again

    def _on_grant(self, environment: Any, msg: Any, **_: Any) -> None:
        self._tickets += int(msg.data["n"])
        self._exhausted = bool(msg.data["exhausted"])
        self._asking = False
        self._granted.set()

    def _on_tickets(self, environment: Any, msg: Any, **_: Any) -> None:
        assert self.remaining is not None
        grant = max(0, min(int(msg.data["n"]), self.remaining))
        self.remaining -= grant
        self.runner.send_message(
            "chatprobe_grant",
            {"n": grant, "exhausted": self.remaining <= 0},
            client_id=msg.node_id,
        )
