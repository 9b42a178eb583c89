"""chatprobe as a user gets it: ``python -m build`` makes an sdist and a wheel (built from the
sdist), the wheel installs into a fresh virtual environment, and in an empty folder the whole
user journey works: ``chatprobe init`` for an endpoint (here ``chatprobe emulate``),
``chatprobe check --record-mode once``, a replaying ``chatprobe check`` without the key, a
10 s ``chatprobe load``, ``chatprobe report``; ``chatprobe providers`` lists the three
documented providers.

Offline: the build uses this environment's setuptools (``--no-isolation``) and the new
environment gets the wheel with ``--no-deps``, plus a ``.pth`` line naming this
environment's site-packages for the dependencies (a plain path line: the editable install's
own finder there is not run, so ``import chatprobe`` is the wheel's). Every step is bounded
in time; the emulator is stopped by its process id.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
KEY = "WHEEL_TEST_KEY"


def _run(*argv: str, cwd: Path, env: dict[str, str], timeout: float = 180) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 0, (
        f"{argv}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO),
         cwd=REPO, env=env, timeout=300)  # fmt: skip
    return out


def test_the_wheel_carries_the_data_and_complete_metadata(dist: Path) -> None:
    from chatprobe import __version__

    wheel = next(dist.glob("*.whl"))
    assert wheel.name == f"chatprobe-{__version__}-py3-none-any.whl"
    assert next(dist.glob("*.tar.gz")).name == f"chatprobe-{__version__}.tar.gz"
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "chatprobe/py.typed",
        "chatprobe/report/templates/index.html.j2",
        "chatprobe/_data/specs/profile.schema.yaml",
        "chatprobe/_data/specs/config.schema.yaml",
        "chatprobe/_data/specs/schemas/openai-strict/chunk.yaml",
        "chatprobe/_data/specs/providers/openrouter.yaml",
        "chatprobe/_data/suites/basic.yaml",
        "chatprobe/_data/suites/derived/aimlapi.yaml",
        "chatprobe/_data/loadtests/locustfile.py",
        "chatprobe/_data/loadtests/scenarios/smoke.yaml",
        "chatprobe/_data/loadtests/prompts/questions.txt",
        "chatprobe/_data/cassettes/aimlapi/basic/hello--gemini-2.0-flash-exp.yaml",
        f"chatprobe-{__version__}.dist-info/licenses/LICENSE",
    ):
        assert required in names, required
    for folder in ("specs", "suites", "loadtests", "cassettes"):  # every file of each folder
        shipped = {n for n in names if n.startswith(f"chatprobe/_data/{folder}/")}
        tracked = {f"chatprobe/_data/{p.relative_to(REPO).as_posix()}"
                   for p in (REPO / folder).rglob("*") if p.is_file()}  # fmt: skip
        assert shipped == tracked, sorted(shipped ^ tracked)[:5]
    assert not any("__pycache__" in n or n.startswith("tests/") for n in names)
    meta = zipfile.ZipFile(wheel).read(f"chatprobe-{__version__}.dist-info/METADATA").decode()
    for field in ("License-Expression: MIT", "Project-URL: Source", "Classifier: Typing :: Typed",
                  "Requires-Python: >=3.11", "Description-Content-Type: text/markdown",
                  "# chatprobe"):  # fmt: skip
        assert field in meta, field
    entry_points = (
        zipfile.ZipFile(wheel).read(f"chatprobe-{__version__}.dist-info/entry_points.txt").decode()
    )
    assert "chatprobe = chatprobe.cli:main" in entry_points
    assert "chatprobe = chatprobe.pytest_plugin.plugin" in entry_points


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment with the wheel; dependencies from this environment (offline)."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True,
                   timeout=120)  # fmt: skip
    python = root / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(next(dist.glob("*.whl"))),
         cwd=root, env=dict(os.environ), timeout=180)  # fmt: skip
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout.strip()
    )  # fmt: skip
    (site / "zz-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return root


def _env(venv: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_API_KEY") and not k.startswith("CHATPROBE_")}  # fmt: skip
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.pop(KEY, None)
    env.update(extra)
    return env


@pytest.fixture
def emulator(venv: Path, tmp_path: Path) -> Iterator[str]:
    """``chatprobe emulate`` from the wheel on a free port; yields the OpenRouter base URL."""
    log = tmp_path / "emulate.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [str(venv / "bin" / "chatprobe"), "emulate", "--port", "0", "--provider",
             "openrouter", "--seed", "1"],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, env=_env(venv),
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None and time.monotonic() < deadline and process.poll() is None:
            found = re.search(r"openrouter: (http://127\.0\.0\.1:\d+/\S+)", log.read_text())
            url = found.group(1) if found else None
            time.sleep(0.1)
        assert url, log.read_text()
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _contract(folder: Path) -> dict[str, str]:
    run = sorted(p for p in (folder / "results").iterdir() if (p / "contract.json").is_file())[-1]
    data = json.loads((run / "contract.json").read_text())
    return {"data_source": data["data_source"],
            **{r["id"]: r["outcome"] for r in data["results"]}}  # fmt: skip


def test_the_user_journey_from_an_installed_wheel(
    venv: Path, emulator: str, tmp_path: Path
) -> None:
    chatprobe = str(venv / "bin" / "chatprobe")
    # The wheel's own chatprobe is the one that runs, with its data in the package.
    where = _run(str(venv / "bin" / "python"), "-c",
                 "import chatprobe, chatprobe.paths as p; print(chatprobe.__file__); "
                 "print(p.builtin('specs'))", cwd=tmp_path, env=_env(venv))  # fmt: skip
    assert all(line.startswith(str(venv)) for line in where.split()), where

    empty = tmp_path / "empty"
    empty.mkdir()
    listed = _run(chatprobe, "providers", cwd=empty, env=_env(venv))
    for name in ("aimlapi", "apilaplas", "openrouter"):
        assert f"({name})" in listed

    project = tmp_path / "project"
    project.mkdir()
    _run(chatprobe, "init", "--base-url", emulator, "--api-key-env", KEY, "--model",
         "google/gemini-2.0-flash-001", "--name", "gateway",
         cwd=project, env=_env(venv))  # fmt: skip
    assert (project / "profiles" / "gateway.yaml").is_file()
    keyed = _env(venv, **{KEY: "chatprobe-emulator-key"})

    def check(*args: str, env: dict[str, str]) -> dict[str, str]:
        done = subprocess.run([chatprobe, "check", *args], cwd=project, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert "Traceback" not in done.stdout + done.stderr
        # 0: every case passed; 1: a case failed its checks (this endpoint answers errors in
        # OpenRouter's envelope, which a plain OpenAI profile does not document)
        assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
        return _contract(project)

    recorded = check("--record-mode", "once", env=keyed)
    assert recorded.pop("data_source") == "live"
    assert any(k.startswith("hello[gateway-") for k in recorded)  # the starter suite ran
    assert any(k.startswith("stream-basic[") for k in recorded)  # and the built-in suites
    assert list((project / "cassettes" / "gateway").rglob("*.yaml"))
    replayed = check(env=_env(venv))  # no key: the cassettes answer, as in the user's CI
    assert replayed.pop("data_source") == "replayed"
    assert replayed == recorded

    _run(chatprobe, "load", "--duration", "10s", "--quiet", cwd=project, env=keyed,
         timeout=180)  # fmt: skip
    summaries = list((project / "results").glob("*/summary.json"))
    assert len(summaries) == 1
    samples = (summaries[0].parent / "samples.jsonl").read_text().splitlines()
    assert samples and all(json.loads(line)["provider"] == "gateway" for line in samples)

    index = _run(chatprobe, "report", cwd=project, env=_env(venv)).strip().splitlines()[-1]
    assert Path(index).is_file() and Path(index).is_relative_to(project / "reports")
    assert (Path(index).parent / "report.md").is_file()
    listed = _run(chatprobe, "providers", cwd=project, env=_env(venv))
    for name in ("aimlapi", "apilaplas", "openrouter", "gateway"):
        assert f"({name})" in listed
