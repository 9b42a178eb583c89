"""``chatprobe init``: the scaffolded project reads back as chatprobe reads it, existing files
are never replaced without --force, and bad arguments are one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chatprobe.load.scenario import load_scenario
from chatprobe.paths import suite_files
from chatprobe.profiles import emulated_profiles, list_profiles, load_profile
from chatprobe.project import PROJECT_ENV, current_project
from chatprobe.suites.loader import load_suite
from tests.reliability_support import run_cli

ARGS = ("--base-url", "http://127.0.0.1:8000/v1", "--api-key-env", "LOCAL_KEY")
FILES = [
    ".github/workflows/chatprobe.yml",
    ".gitignore",
    "chatprobe.toml",
    "profiles/gw.yaml",
    "scenarios/smoke.yaml",
    "suites/starter.yaml",
]


def test_init_writes_a_project_chatprobe_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = run_cli("init", *ARGS, "--model", "tiny,big", "--name", "gw", "proj", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    root = tmp_path / "proj"
    written = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert written == FILES
    assert "chatprobe check --record-mode once" in done.stdout

    monkeypatch.delenv(PROJECT_ENV, raising=False)
    monkeypatch.chdir(root / "suites")  # found from below, like pytest's rootdir
    project = current_project()
    assert project.root == root
    assert project.providers == ("gw",)
    assert "gw" in list_profiles()
    profile = load_profile("gw")
    assert profile.custom_endpoint  # a real endpoint: never emulated, recorded live
    assert "gw" not in emulated_profiles()
    assert list(profile.models) == ["tiny", "big"]
    assert profile.success_status == (200,)
    assert profile.base_url == "http://127.0.0.1:8000/v1"
    files = suite_files()
    assert files[0] == root / "suites" / "starter.yaml"
    runs = load_suite(files[0]).runs
    assert {r.provider for r in runs if r.provider == "gw"} == {"gw"}
    scenario = load_scenario("smoke")  # the project's smoke replaces the built-in one
    assert [(t.provider, t.model) for t in scenario.targets] == [("gw", "tiny")]
    workflow = yaml.safe_load((root / ".github/workflows/chatprobe.yml").read_text())
    steps = workflow["jobs"]["contract"]["steps"]
    runs_text = "\n".join(str(s.get("run", "")) for s in steps)
    assert "chatprobe check" in runs_text and "GITHUB_STEP_SUMMARY" in runs_text
    assert "--record" not in runs_text and "--live" not in runs_text  # CI replays, offline
    assert "/results/" in (root / ".gitignore").read_text()


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    (tmp_path / "chatprobe.toml").write_text("# mine\n")
    done = run_cli("init", *ARGS, "--model", "m", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert "chatprobe.toml" in done.stderr and "--force" in done.stderr
    assert (tmp_path / "chatprobe.toml").read_text() == "# mine\n"
    assert not (tmp_path / "profiles").exists()  # nothing written at all
    done = run_cli("init", *ARGS, "--model", "m", "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "providers = [" in (tmp_path / "chatprobe.toml").read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--base-url", "localhost:8000", "--api-key-env", "K", "--model", "m"),
         "--base-url must be an http:// or https:// URL"),
        (("--base-url", "http://h/v1", "--api-key-env", "my key", "--model", "m"),
         "--api-key-env takes the NAME of an environment variable"),
        ((*ARGS, "--model", "m", "--name", "Bad Name"), "--name must be lower case"),
        (ARGS, "Missing option '--model'"),
    ],
)  # fmt: skip
def test_bad_arguments_are_one_line(tmp_path: Path, argv: tuple[str, ...], message: str) -> None:
    done = run_cli("init", *argv, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("chatprobe: error: ") and message in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
