"""The emulator's ground-truth log: finished records are kept out of the garbage collector's
view (a busy emulator's full collections stalled every stream), and read back unchanged."""

from __future__ import annotations

import gc

from chatprobe.emulator.truth import TruthLog


def _finished(log: TruthLog, n: int) -> None:
    for i in range(n):
        record = log.open(1_000 + i, "/v1/chat/completions", "openrouter")
        record.status, record.stream = 200, True
        record.faults.append("stall=2")
        record.finish_reasons.append("stop")
        record.event_times_ns = [1, 2, 3]
        log.close(record, "complete")


def test_finished_records_read_back_as_they_were_written() -> None:
    log = TruthLog()
    _finished(log, 3)
    in_flight = log.open(5_000, "/v1/chat/completions", "openrouter")
    out = log.since()
    assert [r["seq"] for r in out] == [1, 2, 3, 4]  # arrival order, in flight included
    assert out[0]["faults"] == ["stall=2"] and out[0]["finish_reasons"] == ["stop"]
    assert out[0]["event_times_ns"] == [1, 2, 3] and out[0]["windows"] == []
    assert out[0]["outcome"] == "complete" and out[3]["outcome"] == "in_flight"
    assert out[3] == in_flight.to_dict()
    assert [r["seq"] for r in log.since(2)] == [3, 4]


def test_finished_records_leave_the_collectors_view() -> None:
    log = TruthLog()
    _finished(log, 100)
    gc.collect()
    gc.collect()
    assert not any(gc.is_tracked(r) for r in log._closed)


def test_a_reset_forgets_records_in_flight_and_finished() -> None:
    log = TruthLog()
    _finished(log, 2)
    open_one = log.open(9_000, "/v1/chat/completions", "openrouter")
    log.reset()
    log.close(open_one, "complete")  # finishes after the reset: counted, not kept
    assert log.since() == [] and log.stats()["completed"] == 1
