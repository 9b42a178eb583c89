"""What `chatprobe calibrate` recommends: processes only where CPUs for them exist."""

from __future__ import annotations

import pytest

from chatprobe.calibrate import load_cpus, recommend_processes


@pytest.mark.parametrize(
    ("cpus", "local_emulator", "expected"),
    [(2, True, 1), (2, False, 2), (8, True, 7), (1, True, 1), (1, False, 1)],
)
def test_a_local_emulator_keeps_its_cpu(cpus: int, local_emulator: bool, expected: int) -> None:
    assert load_cpus(cpus, local_emulator=local_emulator) == expected


def test_a_healthy_process_stays_alone() -> None:
    assert recommend_processes(0.3, 0.4, 1, threshold_ms=5.0, cpus=4) == 1


def test_a_busy_or_late_process_spreads_its_users() -> None:
    assert recommend_processes(0.3, 0.96, 1, threshold_ms=5.0, cpus=4) == 2
    assert recommend_processes(12.0, 0.5, 1, threshold_ms=5.0, cpus=4) == 2
    assert recommend_processes(12.0, 0.9, 2, threshold_ms=5.0, cpus=8) == 4


def test_never_more_processes_than_cpus_for_them() -> None:
    assert recommend_processes(12.0, 0.99, 1, threshold_ms=5.0, cpus=1) == 1
    assert recommend_processes(12.0, 0.99, 1, threshold_ms=5.0, cpus=3) == 2
