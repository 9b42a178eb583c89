"""Run one :class:`~chatprobe.suites.model.CaseRun`: send it (replayed, recorded or live), judge it.

Modes (chosen once per session, see :class:`RunConfig`):

``replay``  (record mode ``none``, the default) requests go to the provider's real base URL and
            are answered by vcrpy from ``cassettes/``; a missing cassette is an error that says
            how to record it. No network, no key.
``record``  (``once``, ``new_episodes``, ``all``) requests really go out and are written to
            cassettes. Without the provider's key in the environment (or with ``emulator``),
            they go to a per-provider emulator that serves the provider's real paths; the
            cassettes are marked as emulated recordings.
``live``    no cassettes at all; the real provider (key required) or, with ``emulator``, the
            emulator.

Fault-injection cases (``request.fault``) only make sense against the emulator: live or
recording runs against a real provider skip them; replay uses their emulated recordings. A
custom endpoint given with ``--base-url`` is never emulated, so they are skipped for it in
every mode. A case that needs a key that is not set (live, or recording a provider that is
never emulated) is skipped, its message naming the variable.

Replay reads ``cassette_dir`` first; a case of a built-in suite (``builtin_suites``) whose
cassette the project does not have is replayed from chatprobe's own recordings
(``builtin_cassettes``). Recording always writes to ``cassette_dir``.

The runner is independent of pytest: the plugin, ``chatprobe check`` and tests use it alike.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatprobe.checks import CheckContext, Evaluation, evaluate
from chatprobe.client import ChatClient, new_http_client
from chatprobe.errors import CassetteError, ChatprobeError, MissingKeyError
from chatprobe.profiles import ProviderProfile, load_profile
from chatprobe.record import RequestRecord
from chatprobe.scrub import scrub_text
from chatprobe.suites.model import INVALID_KEY, CaseRun
from chatprobe.transport import Timeouts, TLSConfig

__all__ = [
    "DATA_SOURCES",
    "FAULT_HEADER",
    "CaseResult",
    "RunConfig",
    "Runner",
    "record_hint",
]

FAULT_HEADER = "X-Chatprobe-Fault"
REPLAY_KEY = "chatprobe-replay-key"  # sent in replay; never reaches anything
EXCERPT = 200  # characters of model output kept in contract.json (escaped by every renderer)
DATA_SOURCES = ("replayed", "replayed (emulated recording)", "emulated", "live")


def record_hint(case: CaseRun, profile: ProviderProfile | None = None) -> str:
    """The command that records ``case``'s cassette (``profile``: the case's provider)."""
    if profile is not None and profile.custom_endpoint:
        target = f"--base-url {profile.base_url} --api-key-env {profile.api_key_env}"
    else:
        target = f"--provider {case.profile_ref}"
    return f"chatprobe check --record {target} --model {case.model} -k '{case.case}'"


@dataclass(frozen=True, slots=True)
class RunConfig:
    """How a session sends requests."""

    record_mode: str = "none"  # none | once | new_episodes | all
    live: bool = False
    emulator: bool = False  # force the emulator as the target (record or live)
    cassette_dir: Path = Path("cassettes")
    timeouts: Timeouts = field(default_factory=Timeouts)
    tls: TLSConfig = field(default_factory=TLSConfig)
    builtin_suites: Path | None = None  # chatprobe's own suites ...
    builtin_cassettes: Path | None = None  # ... and their recordings, replayed as a fallback

    @property
    def mode(self) -> str:
        if self.live:
            return "live"
        return "replay" if self.record_mode == "none" else "record"


@dataclass(slots=True)
class CaseResult:
    """The outcome of one case run, ready for pytest and for ``contract.json``."""

    case: CaseRun
    outcome: str  # passed | failed | deviation | skipped | xfailed | error
    message: str = ""
    evaluation: Evaluation | None = None
    record: RequestRecord | None = None
    data_source: str = ""
    cassette: str = ""
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """One entry of ``contract.json``'s ``results`` (see docs/results-format.md)."""
        evaluation = self.evaluation
        return {
            "case": self.case.case,
            "suite": self.case.suite,
            "provider": self.case.provider,
            "model": self.case.model,
            "outcome": self.outcome,
            "duration_s": round(self.duration_s, 6),
            "findings": [f.to_dict() for f in evaluation.findings] if evaluation else [],
            "deviations": evaluation.deviations if evaluation else [],
            # additions beyond the documented keys:
            "id": self.case.id,
            "message": scrub_text(self.message),
            "checks": evaluation.statuses() if evaluation else {},
            "data_source": self.data_source,
            "cassette": self.cassette,
            "status": self.record.status if self.record else None,
            "request_id": self.record.request_id or None if self.record else None,
            "error_class": (
                self.record.error_class.value if self.record and self.record.error_class else None
            ),
            "source": self.case.source,
            "output_excerpt": scrub_text(self.record.text[:EXCERPT]) if self.record else "",
        }


class Runner:
    """Runs cases for one session; owns the emulators it starts (call :meth:`close`)."""

    def __init__(self, config: RunConfig | None = None) -> None:
        self.config = config or RunConfig()
        self._session: Any = None
        self._http: Any = None  # one httpx.Client for the session (an SSL context costs ~40 ms)
        self._emulators: dict[str, Any] = {}
        self._keys: dict[str, str] = {}

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        for emulator in self._emulators.values():
            emulator.close()
        self._emulators.clear()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ targets
    def _vcr(self) -> Any:
        if self._session is None:
            from chatprobe.cassettes import Session

            self._session = Session(self.config.record_mode)
        return self._session

    def _use_emulator(self, profile: ProviderProfile) -> bool:
        if self.config.mode == "replay" or profile.custom_endpoint:
            return False
        return self.config.emulator or (self.config.mode == "record" and profile.api_key() is None)

    def _emulator_profile(self, profile: ProviderProfile) -> tuple[ProviderProfile, str]:
        """The profile pointed at this provider's emulator, and the key it accepts."""
        if profile.name not in self._emulators:
            from chatprobe.emulator import DEMO_KEY, Emulator, EmulatorConfig

            key = profile.api_key() or DEMO_KEY  # a key in the environment flows through
            emulator = Emulator.in_thread(
                EmulatorConfig(
                    providers=(profile.source or profile.name,),
                    keys=(key,),
                    zero_latency=True,
                    output_tokens=(3, 12),  # short answers keep cassettes small
                    rate_limit_rpm=0,  # recording many cases must not trip the :free limit
                    seed=0,
                )
            )
            self._emulators[profile.name] = emulator
            self._keys[profile.name] = key
            if self.config.mode == "record":  # stored under the real provider's URL
                self._vcr().rewrite[emulator.url()] = profile.base_url
        emulator = self._emulators[profile.name]
        return profile.with_base_url(emulator.base_url()), self._keys[profile.name]

    # ------------------------------------------------------------------ running
    def run(self, case: CaseRun) -> CaseResult:
        started = time.perf_counter()
        result = self._run(case)
        result.duration_s = time.perf_counter() - started
        return result

    def _run(self, case: CaseRun) -> CaseResult:
        if case.skip:
            return CaseResult(case, "skipped", message=case.skip)
        cfg = self.config
        try:
            profile = load_profile(case.profile_ref)
            emulated = self._use_emulator(profile)
            if case.fault and profile.custom_endpoint:
                return CaseResult(
                    case,
                    "skipped",
                    message=f"fault injection ({', '.join(case.fault)}) needs the emulator; "
                    f"{profile.name} is a real endpoint (--base-url), never emulated",
                )
            if case.fault and cfg.mode != "replay" and not emulated:
                return CaseResult(
                    case,
                    "skipped",
                    message=f"fault injection ({', '.join(case.fault)}) needs the emulator; "
                    "live runs against a real provider skip it",
                )
            if emulated:
                target, valid_key = self._emulator_profile(profile)
            elif cfg.mode == "replay":
                target, valid_key = profile, REPLAY_KEY
            else:
                target, valid_key = profile, profile.require_key()
            key = {"valid": valid_key, "invalid": INVALID_KEY, "missing": ""}[case.api_key]
            headers = dict(case.headers)
            if case.fault:
                headers[FAULT_HEADER] = ",".join(case.fault)
            if cfg.mode == "live":
                record = self._send(target, case, key, headers)
                source = "emulated" if emulated else "live"
                return self._judge(case, profile, record, source, "")
            return self._with_cassette(case, profile, target, key, headers, emulated)
        except MissingKeyError as exc:  # nothing to judge: skipped, naming the variable
            return CaseResult(case, "skipped", message=scrub_text(str(exc)))
        except ChatprobeError as exc:
            return CaseResult(case, "error", message=scrub_text(str(exc)))

    def _with_cassette(
        self,
        case: CaseRun,
        profile: ProviderProfile,
        target: ProviderProfile,
        key: str,
        headers: dict[str, str],
        emulated: bool,
    ) -> CaseResult:
        from chatprobe.cassettes import cassette_metadata

        path = self._cassette_path(case)
        shown = _shown(path)
        if self.config.mode == "replay" and not path.is_file():
            raise CassetteError(
                f"no cassette {shown} for {case.id}; record it with: {record_hint(case, profile)}"
            )
        metadata: dict[str, Any] = {
            "recorded_from": "emulator" if emulated else "live",
            "provider": case.provider,
            "model": case.model,
            "suite": case.suite,
            "case": case.case,
        }
        if case.fault:
            metadata["fault"] = list(case.fault)
        with self._vcr().use(path, metadata) as cassette:
            before = cassette.play_count
            record = self._send(target, case, key, headers)
            played = cassette.play_count > before
            meta = cassette_metadata(cassette)
        if self.config.mode == "replay" and not played:
            raise CassetteError(
                f"cassette {shown} has no recording matching this request (method, path, "
                f"body): the case changed since it was recorded; re-record with: "
                f"{record_hint(case, profile).replace('--record', '--record-mode all')}"
            )
        if not played and "CannotOverwriteExistingCassette" in record.transport_detail:
            raise CassetteError(
                f"cassette {shown} exists but does not match this request; replace it with "
                "--record-mode all"
            )
        if played:
            from_emulator = meta.get("recorded_from") == "emulator"
            source = "replayed (emulated recording)" if from_emulator else "replayed"
        else:
            source = "emulated" if emulated else "live"
        return self._judge(case, profile, record, source, shown)

    def _cassette_path(self, case: CaseRun) -> Path:
        path = self.config.cassette_dir / Path(str(case.cassette))
        builtin_suites, builtin_cassettes = (
            self.config.builtin_suites,
            self.config.builtin_cassettes,
        )
        if (
            self.config.mode == "replay"
            and not path.is_file()
            and builtin_suites is not None
            and builtin_cassettes is not None
            and Path(case.source.rsplit(":", 1)[0]).resolve().is_relative_to(builtin_suites)
        ):
            shipped = builtin_cassettes / Path(str(case.cassette))
            if shipped.is_file():
                return shipped
        return path

    def _client(self) -> Any:
        if self._http is None:
            self._http = new_http_client(self.config.tls)
        return self._http

    @contextmanager
    def client(
        self, profile: ProviderProfile, *, cassette: Path, metadata: dict[str, Any]
    ) -> Iterator[ChatClient]:
        """A :class:`ChatClient` for ``profile`` in this session's mode, for Python tests
        (the ``chatprobe_client`` fixture): replayed from ``cassette``, recorded into it (from
        the provider with its key, else the emulator) or live. Raises
        :class:`MissingKeyError` when the mode needs a key that is not set and
        :class:`CassetteError` when replay has no cassette."""
        emulated = self._use_emulator(profile)
        if emulated:
            target, key = self._emulator_profile(profile)
        elif self.config.mode == "replay":
            target, key = profile, REPLAY_KEY
        else:
            target, key = profile, profile.require_key()
        chat = ChatClient(target, api_key=key, timeouts=self.config.timeouts, http=self._client())
        if self.config.mode == "live":
            yield chat
            return
        if self.config.mode == "replay" and not cassette.is_file():
            raise CassetteError(
                f"no cassette {_shown(cassette)}; record it with: pytest "
                "--chatprobe-record-mode once"
            )
        with self._vcr().use(
            cassette, {"recorded_from": "emulator" if emulated else "live", **metadata}
        ):
            yield chat

    def _send(
        self, target: ProviderProfile, case: CaseRun, key: str, headers: dict[str, str]
    ) -> RequestRecord:
        with ChatClient(
            target, api_key=None, timeouts=self.config.timeouts, http=self._client()
        ) as client:
            if case.endpoint == "models":
                record = client.list_models(headers=headers, api_key=key)
            else:
                record = client.chat(
                    case.sent_body or {},
                    headers=headers,
                    api_key=key,
                    raw_body=case.raw_body,
                )
        record.model = case.model
        record.model_id = record.model_id or case.model_id
        return record

    def _judge(
        self,
        case: CaseRun,
        profile: ProviderProfile,
        record: RequestRecord,
        source: str,
        cassette: str,
    ) -> CaseResult:
        ctx = CheckContext.for_case(profile, case)
        evaluation = evaluate(ctx, record, case)
        outcome = evaluation.outcome
        message = scrub_text(evaluation.summary())
        if case.xfail:
            if outcome == "failed":
                outcome, message = "xfailed", f"{case.xfail}\n{message}"
            else:
                outcome = "failed"
                message = (
                    f"expected to fail ({case.xfail}) but passed: remove the xfail override "
                    f"in {case.source}"
                )
        return CaseResult(
            case,
            outcome,
            message=message,
            evaluation=evaluation,
            record=record,
            data_source=source,
            cassette=cassette,
        )


def _shown(path: Path) -> str:
    """A path relative to the working directory when possible (shorter messages)."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
