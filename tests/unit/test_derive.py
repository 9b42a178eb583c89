"""Derived suites: committed and fresh, every documented parameter, both sides of every bound.

The coverage test computes the parameters and bounds from the request schemas itself (its own
small walk of each top-level property and its anyOf/oneOf branches), independently of
``chatprobe.suites.derive``, then looks for the cases in the committed suite files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatprobe import specs
from chatprobe.paths import project_root
from chatprobe.suites import load_suite
from chatprobe.suites.derive import derive_levels, render_suite, write_suites

ROOT = project_root()
DERIVED = ROOT / "suites" / "derived"
LEVELS = sorted(derive_levels())
NUMERIC = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
SIZES = ("minLength", "maxLength", "minItems", "maxItems")


def test_levels_cover_every_provider() -> None:
    assert LEVELS == ["aimlapi", "apilaplas", "openrouter"]


def test_committed_derived_suites_are_fresh(tmp_path: Path) -> None:
    written = write_suites(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in DERIVED.glob("*.yaml"))
    for path in written:
        committed = DERIVED / path.name
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"{committed} is stale: run `chatprobe derive` and record the new cases"
        )


def test_output_is_deterministic() -> None:
    assert render_suite("aimlapi", ["aimlapi"]) == render_suite("aimlapi", ["aimlapi"])


def _resolve(node: Any, level: str) -> dict[str, Any]:
    while isinstance(node, dict) and "$ref" in node:
        where, _, pointer = str(node["$ref"]).partition("#")
        doc = specs.schema(Path(where).parent.name or level, Path(where).stem or "request")
        for part in filter(None, pointer.split("/")):
            doc = doc[part]
        node = doc
    return node if isinstance(node, dict) else {}


def _bounds(prop: dict[str, Any], level: str) -> list[tuple[str, Any]]:
    nodes = [_resolve(prop, level)]
    for key in ("anyOf", "oneOf"):
        nodes += [_resolve(b, level) for b in nodes[0].get(key) or []]
    return [(k, n[k]) for n in nodes for k in (*NUMERIC, *SIZES) if k in n]


def _cases(level: str) -> list[dict[str, Any]]:
    return yaml.safe_load((DERIVED / f"{level}.yaml").read_text(encoding="utf-8"))["cases"]


def _succeeds(case: dict[str, Any]) -> bool:
    return (case.get("expect") or {}).get("status", "success") == "success"


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list) else None


def _on_bound(bound: str, limit: Any, value: Any) -> bool:
    if bound in SIZES:
        return _size(value) == limit
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if bound.startswith("exclusive"):
        return value > limit if bound == "exclusiveMinimum" else value < limit
    return value == limit


def _past_bound(bound: str, limit: Any, value: Any) -> bool:
    if bound in SIZES:
        size = _size(value)
        return size is not None and (size < limit if bound.startswith("min") else size > limit)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if bound == "exclusiveMinimum":
        return value <= limit
    if bound == "exclusiveMaximum":
        return value >= limit
    return value < limit if bound == "minimum" else value > limit


@pytest.mark.parametrize("level", LEVELS)
def test_every_parameter_and_both_sides_of_every_bound(level: str) -> None:
    schema = specs.schema(level, "request")
    cases = _cases(level)
    missing: list[str] = []
    for param, prop in schema["properties"].items():
        with_param = [c for c in cases if param in c["request"]["body"]]
        if not any(_succeeds(c) for c in with_param):
            missing.append(f"{param}: no valid case")
        if not any(not _succeeds(c) for c in with_param):
            missing.append(f"{param}: no invalid case")
        for bound, limit in _bounds(prop, level):
            values = [(c["request"]["body"].get(param), _succeeds(c)) for c in with_param]
            on = any(ok and _on_bound(bound, limit, v) for v, ok in values)
            past = any(not ok and _past_bound(bound, limit, v) for v, ok in values)
            if not on and not (param == "model" and bound == "minLength"):
                missing.append(f"{param}: nothing accepted on {bound} {limit}")
            if not past:
                missing.append(f"{param}: nothing refused past {bound} {limit}")
    assert not missing, missing


@pytest.mark.parametrize("level", LEVELS)
def test_expectations_agree_with_the_schema(level: str) -> None:
    validator = specs.validator(level, "request")
    for case in _cases(level):
        body = case["request"]["body"]
        schema_valid = validator.is_valid(body)
        if "unknown" in case["tags"]:
            assert schema_valid and not _succeeds(case), case["name"]
        else:
            assert schema_valid == _succeeds(case), case["name"]
        if not _succeeds(case):
            assert case["expect"]["status"] == "4xx"


def test_max_tokens_minimum_expects_its_effect() -> None:
    case = next(c for c in _cases("aimlapi") if c["name"] == "max_tokens--minimum-valid")
    assert case["request"]["body"]["max_tokens"] == 1
    rules = {r["path"]: r for r in case["expect"]["match"]}
    assert rules["usage.completion_tokens"]["range"] == {"max": 1}
    assert rules["choices.0.finish_reason"]["equals"] == "length"


@pytest.mark.parametrize("level", LEVELS)
def test_derived_suites_load_and_run_on_their_providers(level: str) -> None:
    suite = load_suite(DERIVED / f"{level}.yaml")
    assert suite.name == f"derived/{level}"
    assert {r.provider for r in suite.runs} == set(derive_levels()[level])


def test_derive_check_command() -> None:
    cmd = [sys.executable, "-m", "chatprobe.cli", "derive", "--check"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "up to date" in done.stdout
    bad = subprocess.run([*cmd, "--level", "nope"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "unknown schema level with providers 'nope'" in bad.stderr
