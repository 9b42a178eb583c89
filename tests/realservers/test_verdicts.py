"""The verdict table's comparison (no server needed: runs in the fast lane)."""

from __future__ import annotations

from chatprobe.checks import registered

from .verdicts import LITELLM, LITSERVE, MATRICES, matrix_differences


def test_every_registered_check_has_a_verdict_for_both_servers() -> None:
    """A new check fails here (fast lane) until its verdicts are entered, as the lane would."""
    for name, table in MATRICES.items():
        assert set(table) == set(registered()), name
        assert set(table.values()) <= {"pass", "fail", "skip"}, name


def test_schema_problems_are_judged_by_the_strict_checks_alone() -> None:
    for table in (LITELLM, LITSERVE):
        assert table["provider_response_schema"] == table["provider_error_envelope"] == "skip"


def test_a_new_check_asks_for_its_verdict_and_a_changed_cell_is_named() -> None:
    matrix = dict(LITSERVE)
    matrix.update(a_new_check="fail", stream_same_id_created="pass")
    del matrix["models_list_model"]
    assert matrix_differences("litserve", matrix) == [
        "new check 'a_new_check' (fail against litserve): enter the verdict it deserves "
        "in tests/realservers/verdicts.py",
        "check 'models_list_model' no longer in the matrix (expected fail)",
        "stream_same_id_created: pass, expected fail",
    ]
