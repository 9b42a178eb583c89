"""Run the emulator beside a test or a load run: in a thread, or in a child process.

::

    with Emulator.in_thread(EmulatorConfig(zero_latency=True)) as emu:
        url = emu.base_url("openrouter")      # http://127.0.0.1:PORT/openrouter/api/v1
        ...                                   # send requests with key DEMO_KEY
        truth = emu.truth()                   # ground truth, oldest first (dicts)

    with Emulator.in_subprocess(config, cpu=1) as emu:   # its own interpreter, pinned
        ...

    with Emulator.in_thread(tls=True) as emu:  # HTTPS; trust emu.ca_file (--ca-bundle)
        ...

A thread shares the GIL with the caller, which is fine for tests at low load; load runs and
benchmarks use a subprocess so the emulator has a core of its own. Both bind an ephemeral
port unless the config names one, and both stop cleanly on ``close()`` or leaving the
``with`` block.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import httpx

from chatprobe.emulator.config import EmulatorConfig
from chatprobe.emulator.eventloop import new_event_loop
from chatprobe.emulator.models import served_profile
from chatprobe.emulator.server import EmulatorServer, base_url_for, root_url
from chatprobe.errors import ChatprobeError
from chatprobe.profiles import ProviderProfile, list_profiles

__all__ = ["Emulator", "EmulatorStartError"]

READY = re.compile(r"listening on https?://\S+:(\d+)")
CA_LINE = re.compile(r"CA certificate: (\S+)")


class EmulatorStartError(ChatprobeError):
    """The emulator did not come up (port taken, bad configuration, child died)."""


class Emulator:
    """Handle on a running emulator; make one with :meth:`in_thread` or :meth:`in_subprocess`."""

    def __init__(self, config: EmulatorConfig, profiles: list[ProviderProfile], port: int) -> None:
        self.config = config
        self.profiles = profiles
        self.port = port
        self.host = config.host
        self.ca_file: str | None = None  # with config.tls: the CA a client must trust
        self._closed = False
        # thread mode
        self._server: EmulatorServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # subprocess mode
        self._process: subprocess.Popen[str] | None = None
        self._http: httpx.Client | None = None

    # ------------------------------------------------------------------ starting
    @classmethod
    def in_thread(cls, config: EmulatorConfig | None = None, **changes: Any) -> Emulator:
        """Start in a daemon thread with its own event loop; returns once listening."""
        config = _config(config, changes)
        server = EmulatorServer(config)  # profile errors raise here, in the caller
        loop = new_event_loop()
        started: queue.Queue[BaseException | int] = queue.Queue()

        def main() -> None:
            asyncio.set_event_loop(loop)
            try:
                started.put(loop.run_until_complete(server.start()))
            except BaseException as exc:  # reported to the caller below
                started.put(exc)
                loop.close()
                return
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(server.stop())
                loop.close()

        thread = threading.Thread(target=main, name="chatprobe-emulator", daemon=True)
        thread.start()
        result = started.get(timeout=30)
        if isinstance(result, BaseException):
            raise EmulatorStartError(f"emulator did not start: {result}") from result
        emulator = cls(config, server.profiles, result)
        emulator._server, emulator._loop, emulator._thread = server, loop, thread
        emulator.ca_file = server.ca_file
        return emulator

    @classmethod
    def in_subprocess(
        cls,
        config: EmulatorConfig | None = None,
        *,
        cpu: int | None = None,
        ready_timeout: float = 30.0,
        **changes: Any,
    ) -> Emulator:
        """Start ``chatprobe emulate`` as a child process (pinned to ``cpu`` if given)."""
        config = _config(config, changes)
        profiles = [served_profile(n) for n in (config.providers or tuple(list_profiles()))]
        args = [sys.executable, "-m", "chatprobe.cli", "emulate", *config.to_args()]
        if cpu is not None:
            args += ["--cpu", str(cpu)]
        errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - read after a failed start
        process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=errors,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def drain() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=drain, name="chatprobe-emulator-stdout", daemon=True).start()
        deadline = time.monotonic() + ready_timeout
        port = None
        ca_file = None
        while port is None:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                process.kill()
                process.wait()
                errors.seek(0)
                detail = errors.read().strip().splitlines()
                raise EmulatorStartError(
                    "emulator subprocess did not start: "
                    + (detail[-1] if detail else f"no ready line within {ready_timeout}s")
                )
            ca = CA_LINE.search(line)
            if ca:
                ca_file = ca.group(1)
            found = READY.search(line)
            if found:
                port = int(found.group(1))
        errors.close()
        emulator = cls(config, profiles, port)
        emulator._process = process
        emulator.ca_file = ca_file
        verify: Any = True
        if ca_file:
            import ssl

            verify = ssl.create_default_context(cafile=ca_file)
        emulator._http = httpx.Client(trust_env=False, timeout=30.0, verify=verify)
        return emulator

    # ------------------------------------------------------------------ addresses
    @property
    def providers(self) -> list[str]:
        return [p.name for p in self.profiles]

    @property
    def pid(self) -> int:
        """The process serving: the child's pid, or this process's in thread mode."""
        return self._process.pid if self._process is not None else os.getpid()

    def url(self, path: str = "") -> str:
        """``http://HOST:PORT`` (``https://`` with ``config.tls``) + ``path``."""
        return root_url(self.host, self.port, tls=self.config.tls) + path

    def base_url(self, provider: str | None = None) -> str:
        """The base URL a client of ``provider`` should use (``.../chat/completions`` below it)."""
        return base_url_for(self.profiles, self.port, self.host, provider, tls=self.config.tls)

    def profile(self, provider: str) -> ProviderProfile:
        """``provider``'s profile pointed at this emulator (for :class:`ChatClient`)."""
        for p in self.profiles:
            if p.name == provider:
                return p.with_base_url(self.base_url(provider))
        return served_profile(provider).with_base_url(self.base_url(provider))

    # ------------------------------------------------------------------ ground truth
    def truth(self, since: int = 0) -> list[dict[str, Any]]:
        """Ground-truth records with a sequence number above ``since`` (see ``truth.py``)."""
        if self._server is not None:
            return self._call(lambda s: s.truth.since(since))
        return self._get("/_chatprobe/requests", {"since": since})

    def stats(self) -> dict[str, Any]:
        """Counters: received, completed, in_flight, by_status, by_fault, by_outcome, ..."""
        if self._server is not None:
            return self._call(lambda s: s.responder.stats())
        return self._get("/_chatprobe/stats")

    def schedule(self) -> dict[str, Any]:
        """The scheduled windows: real start/end (``perf_counter_ns``), clock, counts.

        ``{"clock", "t0_ns", "now_s", "windows": [{name, kind, params, start_s, end_s,
        start_ns, end_ns, requests, by_status, by_outcome, faulted}], "outside": {...}}``
        """
        if self._server is not None:
            return self._call(lambda s: s.responder.schedule_summary())
        return self._get("/_chatprobe/schedule")

    def reset(self) -> None:
        """Forget the ground truth and the rate-limit windows; restart the schedule clock."""
        if self._server is not None:
            self._call(lambda s: s.responder.reset())
            return
        assert self._http is not None
        self._http.post(self.url("/_chatprobe/reset")).raise_for_status()

    def _call(self, fn: Any) -> Any:
        assert self._loop is not None and self._server is not None
        server = self._server

        async def run() -> Any:
            return fn(server)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        assert self._http is not None
        response = self._http.get(self.url(path), params=params)
        response.raise_for_status()
        return response.json()

    # ------------------------------------------------------------------ stopping
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten child process must not outlive us
        process = getattr(self, "_process", None)
        if process is not None and process.poll() is None:
            process.kill()


def _config(config: EmulatorConfig | None, changes: dict[str, Any]) -> EmulatorConfig:
    config = config or EmulatorConfig()
    return config.with_(**changes) if changes else config
