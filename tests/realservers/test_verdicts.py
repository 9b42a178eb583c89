"""The verdict table's comparison (no server needed: runs in the fast lane)."""

from __future__ import annotations

from .verdicts import LITSERVE, matrix_differences


def _today() -> dict[str, str]:
    matrix = dict(LITSERVE)
    matrix.update(provider_response_schema="fail", provider_error_envelope="fail")
    return matrix


def test_the_matrix_as_expected_has_no_differences() -> None:
    assert matrix_differences("litserve", _today()) == []


def test_a_schema_pair_counts_as_one_cell_whichever_check_keeps_the_finding() -> None:
    matrix = _today()
    matrix.update(strict_response_schema="skip", provider_response_schema="fail")
    assert matrix_differences("litserve", matrix) == []
    del matrix["provider_error_envelope"]
    assert matrix_differences("litserve", matrix) == []  # strict_error_envelope still fails
    matrix["strict_error_envelope"] = "pass"
    assert matrix_differences("litserve", matrix) == ["strict_error_envelope: pass, expected fail"]


def test_a_new_check_asks_for_its_verdict_and_a_changed_cell_is_named() -> None:
    matrix = _today()
    matrix.update(models_list_model="fail", stream_same_id_created="pass")
    assert matrix_differences("litserve", matrix) == [
        "new check 'models_list_model' (fail against litserve): enter the verdict it deserves "
        "in tests/realservers/verdicts.py",
        "stream_same_id_created: pass, expected fail",
    ]
