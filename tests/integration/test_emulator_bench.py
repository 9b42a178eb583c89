"""Streams/s of the emulator at zero latency (prints the figure; asserts correctness only).

Run ``pytest -s -m slow tests/integration/test_emulator_bench.py`` to see it; docs/emulator.md
has the figures measured on the project machine.
"""

from __future__ import annotations

import os

import pytest

from chatprobe.emulator import measure_streams_per_second


@pytest.mark.slow
@pytest.mark.parametrize("distinct", [False, True], ids=["one-prompt", "distinct-prompts"])
def test_streams_per_second_at_zero_latency(distinct: bool) -> None:
    two_cpus = len(os.sched_getaffinity(0)) >= 2
    result = measure_streams_per_second(
        duration=2.0,
        connections=16,
        tokens=64,
        distinct_prompts=distinct,
        emulator_cpu=0 if two_cpus else None,
        client_cpu=1 if two_cpus else None,
    )
    print("\n" + result.summary())
    assert result.errors == 0
    assert result.streams > 0 and result.emulator_cpu_s > 0
