"""Where a process's samples go: the one sample sink per locust process, by role.

Every sample is built by :func:`chatprobe.results.build_sample`, encoded by
:func:`~chatprobe.results.encode_sample` and written by the one
:class:`~chatprobe.results.SampleWriter`. The per-request path calls :meth:`SampleSink.add`
and knows nothing of roles:

* :class:`LocalSink` (one process): appended to ``samples.jsonl`` and flushed, one line per
  request.
* :class:`WorkerSink`: kept in memory as JSON lines and shipped to the master every half
  second (``chatprobe_batch`` messages) and with locust's own ``report_to_master`` (every
  3 s); when the worker's users have stopped, the rest goes in one ``chatprobe_final``
  message with the worker's total (and what the run adds: aborted requests, CPU, ...), so
  the master knows it has everything. A killed worker loses at most its last half second.
* :class:`MasterSink`: writes what ``chatprobe_batch``, ``worker_report`` and
  ``chatprobe_final`` bring, and knows which workers reported everything
  (:meth:`MasterSink.workers_summary`, :meth:`MasterSink.waiting_for`).

Local and master sinks hand each sample they keep to ``counted`` (the live progress and the
request-count end). Locust child only (gevent).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import orjson

from chatprobe.results import SampleWriter, encode_sample

__all__ = ["SHIP_INTERVAL_S", "LocalSink", "MasterSink", "SampleSink", "WorkerSink"]

SHIP_INTERVAL_S = 0.5  # workers send samples to the master at least this often

Counted = Callable[[dict[str, Any]], None]


class SampleSink:
    """Takes each finished sample of this process (the base keeps none)."""

    def __init__(self) -> None:
        self.produced = 0  # samples made in this process

    def add(self, sample: dict[str, Any]) -> None:
        self.produced += 1

    def close(self) -> None:
        return None


class LocalSink(SampleSink):
    """One process: every sample appended to ``samples.jsonl`` at once."""

    def __init__(self, path: Path, counted: Counted) -> None:
        super().__init__()
        self.writer = SampleWriter(path)
        self.counted = counted

    def add(self, sample: dict[str, Any]) -> None:
        self.produced += 1
        self.writer.write(sample)
        self.counted(sample)

    def close(self) -> None:
        self.writer.close()


class WorkerSink(SampleSink):
    """A worker: samples shipped to the master in batches, then one final message.

    ``final_extra`` adds the run's own totals to the final message (read by
    :meth:`MasterSink.final_total`).
    """

    def __init__(self, runner: Any, final_extra: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self.runner = runner
        self.final_extra = final_extra
        self.pending: list[bytes] = []  # JSON lines not yet shipped
        self.final_sent = False

    def add(self, sample: dict[str, Any]) -> None:
        self.produced += 1
        self.pending.append(encode_sample(sample))

    def start(self) -> None:
        gevent.spawn(self._ship_loop)

    def _take(self) -> list[bytes]:
        batch, self.pending = self.pending, []
        return batch

    def on_report_to_master(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        if self.pending:
            batch = self._take()
            data["chatprobe"] = {"blob": b"".join(batch), "n": len(batch)}

    def _ship_loop(self) -> None:
        """Ship every half second as well, so a killed worker loses little."""
        while not self.final_sent:
            gevent.sleep(SHIP_INTERVAL_S)
            if self.pending and not self.final_sent:
                batch = self._take()
                try:
                    self.runner.send_message(
                        "chatprobe_batch", {"blob": b"".join(batch), "n": len(batch)}
                    )
                except Exception:  # the master is gone or reconnecting: retry next time
                    self.pending[:0] = batch

    def ship_final(self) -> None:
        """The rest of the samples and the worker's totals, once."""
        if self.final_sent:
            return
        self.final_sent = True
        batch = self._take()
        self.runner.send_message(
            "chatprobe_final",
            {
                **self.final_extra(),
                "blob": b"".join(batch),
                "n": len(batch),
                "produced": self.produced,
            },
        )


class MasterSink(SampleSink):
    """The master: writes its workers' samples and tracks who has reported everything."""

    def __init__(self, path: Path, runner: Any, counted: Counted) -> None:
        super().__init__()
        self.writer = SampleWriter(path)
        self.runner = runner
        self.counted = counted
        self.workers_seen: dict[str, int] = {}  # client id -> worker index
        self.worker_samples: dict[str, int] = {}
        self.finals: dict[str, dict[str, Any]] = {}  # client id -> its final message, no blob
        runner.register_message("chatprobe_final", self._on_final)
        runner.register_message("chatprobe_batch", self._on_batch)

    def add(self, sample: dict[str, Any]) -> None:  # a master runs no users; kept anyway
        self.produced += 1
        self.writer.write(sample)
        self.counted(sample)

    def close(self) -> None:
        self.writer.close()

    def on_worker_connect(self, client_id: str, **_: Any) -> None:
        self.workers_seen.setdefault(client_id, self.runner.get_worker_index(client_id))

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        batch = data.get("chatprobe")
        if batch:
            self._ingest(client_id, batch["blob"], int(batch["n"]))

    def _on_batch(self, environment: Any, msg: Any, **_: Any) -> None:
        self._ingest(msg.node_id, msg.data["blob"], int(msg.data["n"]))

    def _on_final(self, environment: Any, msg: Any, **_: Any) -> None:
        data = msg.data
        self.workers_seen.setdefault(msg.node_id, int(data.get("index", 0)))
        self._ingest(msg.node_id, data["blob"], int(data["n"]))
        self.finals[msg.node_id] = {k: v for k, v in data.items() if k != "blob"}

    def _ingest(self, client_id: str, blob: bytes, n: int) -> None:
        if not blob:
            return
        self.workers_seen.setdefault(client_id, self.runner.get_worker_index(client_id))
        self.worker_samples[client_id] = self.worker_samples.get(client_id, 0) + n
        self.writer.write_lines(blob, n)
        for line in blob.splitlines():
            try:
                self.counted(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue

    def final_total(self, key: str) -> float:
        """The sum of ``key`` over the final messages received."""
        return sum(float(final.get(key, 0) or 0) for final in self.finals.values())

    def worker_name(self, client_id: str) -> str:
        return f"worker-{self.workers_seen.get(client_id, 0)}"

    def waiting_for(self) -> list[str]:
        """Workers that are alive and have not yet sent their final batch."""
        missing = {c.id for c in self.runner.clients.missing}
        return [cid for cid in self.workers_seen if cid not in self.finals and cid not in missing]

    def workers_summary(self, expected: int) -> dict[str, Any]:
        lost = [
            {
                "worker": f"worker-{index}",
                "client_id": cid,
                "samples_received": self.worker_samples.get(cid, 0),
            }
            for cid, index in sorted(self.workers_seen.items(), key=lambda kv: kv[1])
            if cid not in self.finals
        ]
        incomplete = [
            {
                "worker": self.worker_name(cid),
                "produced": int(final["produced"]),
                "received": self.worker_samples.get(cid, 0),
            }
            for cid, final in self.finals.items()
            if int(final["produced"]) != self.worker_samples.get(cid, 0)
        ]
        return {
            "expected": expected,
            "seen": len(self.workers_seen),
            "reported": len(self.finals),
            "lost": lost,
            "incomplete": incomplete,
        }
