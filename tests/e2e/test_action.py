"""The GitHub Action (``action.yml``) and the workflows chatprobe writes or runs, checked for
shape since they cannot run here: a composite action whose steps name a shell, whose
expressions name declared inputs and earlier steps, whose scripts are valid bash, and whose
chatprobe command lines use options the commands have."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from chatprobe.cli import cli
from chatprobe.scaffold import WORKFLOW, plan_project

REPO = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def _options(command: str) -> set[str]:
    cmd = cli.get_command(click.Context(cli), command)
    assert cmd is not None, command
    return {opt for param in cmd.params for opt in getattr(param, "opts", ())}


def _scripts(steps: list[dict[str, Any]]) -> list[str]:
    return [str(step["run"]) for step in steps if "run" in step]


def _used_options(script: str) -> dict[str, set[str]]:
    """chatprobe subcommand -> the options a script passes it (direct or via args=(...))."""
    used: dict[str, set[str]] = {}
    command = None
    for line in script.splitlines():
        direct = re.search(r"chatprobe (check|load|report|init|run)\b(.*)", line)
        built = re.search(r"args=\((check|load|report)\b(.*)", line)
        if direct or built:
            match = direct or built
            assert match is not None
            command = match.group(1)
            rest = match.group(2)
        elif command and "args+=" in line:
            rest = line
        else:
            continue
        used.setdefault(command, set()).update(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest))
    return used


def test_the_action_is_a_composite_with_declared_inputs_and_steps() -> None:
    assert ACTION["runs"]["using"] == "composite"
    assert ACTION["name"] and ACTION["description"]
    inputs = set(ACTION["inputs"])
    assert {
        "providers",
        "base-url",
        "model",
        "api-key-env",
        "record-mode",
        "load-duration",
    } <= inputs
    steps = ACTION["runs"]["steps"]
    seen: set[str] = set()
    for step in steps:
        assert ("run" in step) != ("uses" in step), step
        if "run" in step:
            assert step["shell"] == "bash", step
        text = yaml.safe_dump(step)
        for expr in EXPRESSION.findall(text):
            for name in re.findall(r"inputs\.([\w-]+)", expr):
                assert name in inputs, name
            for name in re.findall(r"steps\.([\w-]+)\.outputs", expr):
                assert name in seen, f"{name} is used before it runs"
        if "run" in step:  # inputs reach scripts through env, never pasted into the code
            assert not re.search(r"\$\{\{\s*inputs\.", step["run"]), step["run"]
        if "id" in step:
            seen.add(step["id"])
    for output in ACTION["outputs"].values():
        for name in re.findall(r"steps\.([\w-]+)\.outputs", output["value"]):
            assert name in seen
    uses = [step["uses"] for step in steps if "uses" in step]
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    summary = "\n".join(_scripts(steps))
    assert "GITHUB_STEP_SUMMARY" in summary and "report.md" in summary
    assert "junit.xml" in yaml.safe_dump(steps)


def _workflows() -> dict[str, list[dict[str, Any]]]:
    scaffold = plan_project("http://127.0.0.1:8000/v1", "KEY", ["m"])
    written = yaml.safe_load(scaffold.files[WORKFLOW])
    return {
        "action.yml": ACTION["runs"]["steps"],
        "chatprobe init's workflow": written["jobs"]["contract"]["steps"],
    }


def test_this_repository_runs_its_own_action() -> None:
    ours = yaml.safe_load((REPO / ".github/workflows/contract.yml").read_text(encoding="utf-8"))
    steps = ours["jobs"]["contract"]["steps"]
    action = [s for s in steps if s.get("uses") == "./"]
    assert len(action) == 1
    assert set(action[0].get("with") or {}) <= set(ACTION["inputs"])


@pytest.mark.parametrize("name", list(_workflows()))
def test_every_chatprobe_option_in_the_scripts_exists(name: str) -> None:
    steps = _workflows()[name]
    found = False
    for script in _scripts(steps):
        for command, options in _used_options(script).items():
            found = True
            unknown = options - _options(command)
            assert not unknown, f"{name}: chatprobe {command} has no {sorted(unknown)}"
    assert found


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("name", list(_workflows()))
def test_every_script_is_valid_bash(name: str) -> None:
    for script in _scripts(_workflows()[name]):
        text = EXPRESSION.sub("placeholder", script)
        done = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
        assert done.returncode == 0, f"{name}: {done.stderr}\n{text}"
