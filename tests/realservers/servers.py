"""Real OpenAI-compatible servers this project did not write, installed from PyPI and run here.

Each server lives in a venv of its own under a cache folder (``$CHATPROBE_REALSERVERS_CACHE``,
else ``$XDG_CACHE_HOME/chatprobe-realservers``, else ``~/.cache/chatprobe-realservers``), so
its pinned dependencies never touch chatprobe's venv. A venv is named after a hash of its
requirements and the Python version: changing a pin builds a new one, an unchanged one is
reused between runs. It is built under a file lock (several sessions may share the cache) and
marked complete only after ``pip install`` succeeded, so a half-built venv is rebuilt.

``python -m tests.realservers.servers prepare`` builds the venvs ahead of the tests (``.ci/run``
does) and prints how long each took; the session fixtures in ``conftest.py`` build them when
missing and start each server on 127.0.0.1 on a free port, as a process group of its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from chatprobe.emulator.certs import Certificates, make_certificates

HERE = Path(__file__).resolve().parent
# The variable that turns "cannot install" from a skip into a failure (set by .ci/run).
REQUIRE_ENV = "CHATPROBE_REALSERVERS_REQUIRED"
CACHE_ENV = "CHATPROBE_REALSERVERS_CACHE"
PIP_TIMEOUT_S = 900
STOP_GRACE_S = 10


class ServerUnavailable(RuntimeError):
    """The server cannot be installed or started here (the message says why)."""


def cache_root() -> Path:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chatprobe-realservers"


@dataclass(frozen=True)
class ServerSpec:
    """How to install, start and address one server.

    ``command`` gets the venv, the port and a scratch folder (the server's working directory)
    and returns the argv; ``env`` the variables added to a clean environment. ``ready_path`` is
    polled until it answers 200: it must only do so once the model is served. ``tls_args``,
    where the server can serve HTTPS itself, gives the arguments that make it do so with a
    certificate and key (files).
    """

    name: str
    title: str
    requirements: tuple[str, ...]
    model: str
    ready_path: str
    command: Callable[[Path, int, Path], list[str]]
    env: Callable[[str], dict[str, str]]
    needs_key: bool
    startup_timeout_s: float = 120.0
    tls_args: Callable[[Path, Path], list[str]] | None = None

    def venv_dir(self) -> Path:
        text = "\n".join((f"python{sys.version_info[0]}.{sys.version_info[1]}", *self.requirements))
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        return cache_root() / f"{self.name}-{digest}"

    def python(self) -> Path:
        return self.venv_dir() / "bin" / "python"


def _litellm_command(venv: Path, port: int, workdir: Path) -> list[str]:
    # The proxy's own console script; `--config` is the committed file next to this module.
    return [
        str(venv / "bin" / "litellm"),
        *("--config", str(HERE / "litellm_config.yaml")),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--num_workers", "1"),
    ]


def _litellm_tls_args(cert: Path, key: Path) -> list[str]:
    # uvicorn's TLS, as the proxy passes it on
    return ["--ssl_certfile_path", str(cert), "--ssl_keyfile_path", str(key)]


def _litellm_env(key: str) -> dict[str, str]:
    return {
        "LITELLM_MASTER_KEY": key,  # read by litellm_config.yaml (os.environ/...)
        # Never reach the internet: the model cost map is read from the package, not fetched.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
    }


def _litserve_command(venv: Path, port: int, workdir: Path) -> list[str]:
    return [str(venv / "bin" / "python"), str(HERE / "litserve_app.py"), str(port)]


def _litserve_env(key: str) -> dict[str, str]:
    return {}


LITELLM = ServerSpec(
    name="litellm",
    title="LiteLLM proxy (mock model)",
    requirements=(
        "litellm[proxy]==1.106.12",
        # The proxy's auth-error handler imports prisma, which the [proxy] extra does not
        # install (only [extra-proxy] does, with a database stack). LiteLLM's container image
        # ships it; without it every request without a key ends in a plain-text 500.
        "prisma==0.15.0",
    ),
    model="mock-chat",
    ready_path="/v1/models",
    command=_litellm_command,
    env=_litellm_env,
    needs_key=True,
    startup_timeout_s=180.0,
    tls_args=_litellm_tls_args,
)

LITSERVE = ServerSpec(
    name="litserve",
    title="LitServe OpenAISpec (tiny word-by-word model)",
    requirements=("litserve==0.2.19",),
    model="tiny-lm",
    ready_path="/health",
    command=_litserve_command,
    env=_litserve_env,
    needs_key=False,
)

SERVERS: dict[str, ServerSpec] = {spec.name: spec for spec in (LITELLM, LITSERVE)}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_venv(spec: ServerSpec) -> Path:
    """The server's venv, built from PyPI if missing; ServerUnavailable when pip fails."""
    venv = spec.venv_dir()
    marker = venv / ".chatprobe-complete"
    with _locked(venv.with_name(venv.name + ".lock")):
        if marker.is_file():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        steps = (
            [sys.executable, "-m", "venv", str(venv)],
            [
                str(venv / "bin" / "python"),
                *("-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
                *spec.requirements,
            ],
        )
        for argv in steps:
            try:
                done = subprocess.run(
                    argv, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
                )
            except subprocess.TimeoutExpired as exc:
                shutil.rmtree(venv, ignore_errors=True)
                raise ServerUnavailable(f"{spec.name}: {argv[2:5]} timed out") from exc
            if done.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                errors = [line for line in done.stderr.splitlines() if "WARNING" not in line]
                reason = (errors or done.stderr.splitlines() or ["no output"])[-1]
                raise ServerUnavailable(f"cannot install {' '.join(spec.requirements)}: {reason}")
        marker.write_text("\n".join(spec.requirements) + "\n", encoding="utf-8")
    return venv


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    """One started server: its URL, the key it expects, its process group and log."""

    spec: ServerSpec
    port: int
    key: str
    process: subprocess.Popen[bytes]
    log_path: Path
    version: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    certificates: Certificates | None = None  # served over HTTPS with these

    @property
    def origin(self) -> str:
        scheme = "https" if self.certificates is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What an HTTP client trusts to reach it: the test CA over HTTPS."""
        if self.certificates is None:
            return True
        return ssl.create_default_context(cafile=str(self.certificates.ca_file))

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """End the whole process group: TERM, then KILL after a grace period; remove the
        certificate files, if any."""
        try:
            self._stop_processes()
        finally:
            if self.certificates is not None:
                self.certificates.remove()

    def _stop_processes(self) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_GRACE_S)
        # Workers that outlived their parent are still in the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def installed_version(spec: ServerSpec, package: str) -> str:
    done = subprocess.run(
        [
            str(spec.python()),
            "-c",
            f"import importlib.metadata as m; print(m.version({package!r}))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout.strip()


def _clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update({"PYTHONUNBUFFERED": "1", "NO_COLOR": "1", **extra})
    return env


def start(spec: ServerSpec, workdir: Path, *, tls: bool = False) -> RunningServer:
    """Start ``spec`` on a free loopback port and wait until it serves; ServerUnavailable if not.
    With ``tls`` it serves HTTPS, with a certificate from a CA generated for the run."""
    if tls and spec.tls_args is None:
        raise ServerUnavailable(f"{spec.name} cannot serve HTTPS here")
    venv = ensure_venv(spec)
    workdir.mkdir(parents=True, exist_ok=True)
    certificates = make_certificates() if tls else None
    key = "sk-realserver-" + secrets.token_hex(12) if spec.needs_key else "any-key-works"
    last_error = ""
    for attempt in range(2):  # a second port if another process took the first one meanwhile
        port = free_port()
        log_path = workdir / f"{spec.name}-{port}.log"
        argv = spec.command(venv, port, workdir)
        if certificates is not None and spec.tls_args is not None:
            argv += spec.tls_args(certificates.cert_file, certificates.key_file)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv,
                cwd=workdir,
                env=_clean_env(spec.env(key)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = RunningServer(spec, port, key, process, log_path)
        server.certificates = certificates
        try:
            _wait_ready(server)
        except ServerUnavailable as exc:
            server.certificates = None  # kept for the next attempt, removed below
            server.stop()
            last_error = f"{exc}\n--- {log_path.name} (last lines) ---\n{server.log_tail()}"
            if attempt == 0 and "exited" in str(exc):
                continue
            break
        package = spec.requirements[0].split("[")[0].split("==")[0]
        server.version = installed_version(spec, package)
        return server
    if certificates is not None:
        certificates.remove()
    raise ServerUnavailable(f"{spec.name} did not start: {last_error}")


def _wait_ready(server: RunningServer) -> None:
    url = server.origin + server.spec.ready_path
    headers = {"Authorization": f"Bearer {server.key}"}
    deadline = time.monotonic() + server.spec.startup_timeout_s
    with httpx.Client(timeout=5.0, verify=server.verify) as client:
        while time.monotonic() < deadline:
            code = server.process.poll()
            if code is not None:
                raise ServerUnavailable(f"{server.spec.name} exited with status {code}")
            try:
                if client.get(url, headers=headers).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
    raise ServerUnavailable(
        f"{server.spec.name} not ready at {url} after {server.spec.startup_timeout_s:.0f} s"
    )


def main(argv: list[str]) -> int:
    """``prepare [NAME ...]``: build the venvs now (default: every server); print the times."""
    if not argv or argv[0] != "prepare":
        print("usage: python -m tests.realservers.servers prepare [NAME ...]", file=sys.stderr)
        return 2
    names = argv[1:] or list(SERVERS)
    for name in names:
        spec = SERVERS[name]
        started = time.monotonic()
        cached = (spec.venv_dir() / ".chatprobe-complete").is_file()
        try:
            venv = ensure_venv(spec)
        except ServerUnavailable as exc:
            print(f"realservers: {name}: {exc}", file=sys.stderr)
            return 1
        how = "cached" if cached else "installed"
        print(f"realservers: {name}: {how} in {time.monotonic() - started:.1f}s ({venv})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
