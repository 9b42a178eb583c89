"""Fixtures for the real-server lane: install, start, and run chatprobe against each server.

``realservers`` is one lab for this package's tests: it starts each server the first time a
test asks for it (installing its venv if missing) and runs each chatprobe command against it
once, as a real subprocess of the CLI; tests read the cached results. Servers are stopped
(whole process group) after the package's last test, so they never idle beside the rest of
the suite. Without PyPI the venv cannot be built and the tests skip, unless
``CHATPROBE_REALSERVERS_REQUIRED=1`` (set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatprobe.paths import project_root
from chatprobe.sse import SSEDecoder

from .servers import REQUIRE_ENV, SERVERS, RunningServer, ServerUnavailable, start

ROOT = project_root()
KEY_VAR = "REALSERVER_API_KEY"
PROVIDER_KEY_VARS = ("AIMLAPI_API_KEY", "APILAPLAS_API_KEY", "OPENROUTER_API_KEY")
# The load run's bounds (2 users, at most 400 requests, at most 5 s) live in this scenario.
LOAD_SCENARIO = Path(__file__).with_name("short-load.yaml")
LOAD_MAX_REQUESTS = 400
RUN_SECONDS = 5  # `chatprobe run --duration`: its load part runs the compare scenario this long


@dataclass
class Command:
    """One finished chatprobe command: argv, exit status, output, and the folder it wrote."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    out: Path

    def explain(self) -> str:
        return (
            f"$ chatprobe {' '.join(self.argv)}\nexit {self.returncode}\n"
            f"--- stdout (end) ---\n{self.stdout[-4000:]}\n--- stderr (end) ---\n"
            f"{self.stderr[-3000:]}"
        )

    def folders(self) -> list[Path]:
        return sorted(p for p in self.out.iterdir() if p.is_dir()) if self.out.is_dir() else []

    def only_folder(self) -> Path:
        folders = self.folders()
        assert len(folders) == 1, f"expected one results folder in {self.out}: {folders}"
        return folders[0]


@dataclass
class Contract:
    """``contract.json`` of a check against one endpoint, with lookups by case and check."""

    data: dict[str, Any]

    @property
    def provider(self) -> str:
        """The endpoint's name in the results (one endpoint per check here)."""
        (name,) = self.data["matrix"]
        return str(name)

    @property
    def matrix(self) -> dict[str, str]:
        return dict(self.data["matrix"][self.provider])

    def result(self, case: str) -> dict[str, Any]:
        """The result of ``suite::case`` (e.g. ``errors::bad-key``)."""
        suite, name = case.split("::")
        found = [r for r in self.data["results"] if r["suite"] == suite and r["case"] == name]
        assert len(found) == 1, f"{case}: {len(found)} results"
        return found[0]

    def checks(self, case: str) -> set[str]:
        """Names of the checks with a finding on ``case``."""
        return {f["check"] for f in self.result(case)["findings"]}

    def findings(self, case: str, check: str) -> list[dict[str, Any]]:
        return [f for f in self.result(case)["findings"] if f["check"] == check]

    def all_findings(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        for result in self.data["results"]:
            for finding in result["findings"]:
                yield result, finding


@dataclass
class ServerUnderTest:
    """A started server plus the chatprobe commands run against it (each run at most once)."""

    server: RunningServer
    folder: Path
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.server.spec.name

    @property
    def model(self) -> str:
        return self.server.spec.model

    # ------------------------------------------------------------------ raw HTTP
    def post(self, body: dict[str, Any], *, key: str | None = "valid") -> httpx.Response:
        """POST /v1/chat/completions with ``body`` (``model`` filled in); ``key``: "valid",
        None (no Authorization header) or the key to send."""
        headers = {}
        if key is not None:
            headers["Authorization"] = f"Bearer {self.server.key if key == 'valid' else key}"
        with httpx.Client(timeout=30, verify=self.server.verify) as client:
            return client.post(
                self.server.base_url + "/chat/completions",
                json={"model": self.model, **body},
                headers=headers,
            )

    def get(self, path: str) -> httpx.Response:
        with httpx.Client(timeout=30, verify=self.server.verify) as client:
            return client.get(
                self.server.base_url + path,
                headers={"Authorization": f"Bearer {self.server.key}"},
            )

    def stream(self, body: dict[str, Any]) -> list[Any]:
        """The data payloads of a streamed answer, JSON-decoded except ``[DONE]`` (kept as
        the string), in order; every event must be terminated by a blank line."""
        response = self.post({**body, "stream": True})
        assert response.status_code == 200, response.text
        decoder = SSEDecoder()
        events = [*decoder.decode(response.content), *decoder.flush()]
        payloads: list[Any] = []
        for event in events:
            if not hasattr(event, "data"):
                continue  # an SSE comment
            assert event.terminated, f"unterminated event: {event.data!r}"
            payloads.append(event.data if event.is_done else json.loads(event.data))
        return payloads

    # ------------------------------------------------------------------ chatprobe
    def endpoint_args(self) -> list[str]:
        trust = self.server.certificates
        return [
            *("--base-url", self.server.base_url),
            *("--api-key-env", KEY_VAR, "--model", self.model),
            *(("--ca-bundle", str(trust.ca_file)) if trust is not None else ()),
        ]

    def chatprobe(self, label: str, *args: str, timeout: float) -> Command:
        out = self.folder / label
        out.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in PROVIDER_KEY_VARS}
        env.update(
            {
                KEY_VAR: self.server.key,
                "CHATPROBE_RESULTS": str(out),
                "CHATPROBE_PROFILE_DIR": str(self.folder / "profiles"),
                "PYTHONUNBUFFERED": "1",
                "COLUMNS": "200",
            }
        )
        argv = list(args)
        done = subprocess.run(
            [sys.executable, "-m", "chatprobe.cli", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=ROOT,
            check=False,
        )
        (out / "command.log").write_text(
            Command(argv, done.returncode, done.stdout, done.stderr, out).explain(),
            encoding="utf-8",
        )
        return Command(argv, done.returncode, done.stdout, done.stderr, out)

    def _once(self, label: str, *args: str, timeout: float) -> Command:
        if label not in self._cache:
            self._cache[label] = self.chatprobe(label, *args, timeout=timeout)
        result: Command = self._cache[label]
        return result

    def check(self, label: str = "check", suites: Path | None = None) -> Command:
        """``chatprobe check --live`` against the server: the project's suites' generic
        cases, or the ``suites`` given."""
        extra = ("--suites", str(suites)) if suites else ()
        return self._once(label, "check", "--live", *self.endpoint_args(), *extra, timeout=300)

    def contract(self, label: str = "check", suites: Path | None = None) -> Contract:
        folder = self.check(label, suites).only_folder()
        data = json.loads((folder / "contract.json").read_text(encoding="utf-8"))
        return Contract(data)

    def load(self) -> Command:
        """A short closed-loop ``chatprobe load``: bounded in time, users and requests."""
        return self._once(
            "load",
            *("load", str(LOAD_SCENARIO)),
            *self.endpoint_args(),
            *("--quiet", "--out", str(self.folder / "load")),
            timeout=180,
        )

    def run(self) -> Command:
        """``chatprobe run``: contract checks, a short load and the report."""
        return self._once(
            "run",
            "run",
            *self.endpoint_args(),
            *("--duration", str(RUN_SECONDS)),
            *("--results", str(self.folder / "run-results")),
            *("--out", str(self.folder / "run" / "report")),
            timeout=300,
        )


class Lab:
    """Starts each server on first use; stops all of them at the end of the session."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._servers: dict[str, ServerUnderTest] = {}
        self._failed: dict[str, str] = {}

    def __call__(self, name: str, *, tls: bool = False) -> ServerUnderTest:
        """The server ``name``, started on first use (``tls``: a second one, over HTTPS)."""
        label = f"{name}-tls" if tls else name
        if label not in self._servers:
            try:
                server = start(SERVERS[name], self.folder / "server-logs", tls=tls)
            except ServerUnavailable as exc:
                self._failed[label] = str(exc)
            else:
                self._servers[label] = ServerUnderTest(server, self.folder / label)
        if label in self._failed:
            self._give_up(self._failed[label])
        return self._servers[label]

    @staticmethod
    def _give_up(reason: str) -> None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)

    def close(self) -> None:
        for sut in self._servers.values():
            sut.server.stop()


@pytest.fixture(scope="package")
def realservers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("realservers"))
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture(scope="package")
def litellm(realservers: Lab) -> ServerUnderTest:
    return realservers("litellm")


@pytest.fixture(scope="package")
def litserve(realservers: Lab) -> ServerUnderTest:
    return realservers("litserve")
