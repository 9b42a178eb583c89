"""The run plan: a scenario resolved against provider profiles, ready for the locust child.

``chatprobe load`` writes it as ``plan.json`` in the results folder and points the child at
it with ``$CHATPROBE_LOAD_PLAN``; every locust process (master and workers) reads the same
plan, so they agree on targets, prompts and the timeline. The plan holds no secret: a live
target names the environment variable of its key (``key_env``), read by the child; an
emulated target carries the emulator's public demo key.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from chatprobe.errors import ConfigError, MissingKeyError
from chatprobe.load.conversation import ConversationSpec
from chatprobe.load.prompts import build_prompts, prompt_tokens
from chatprobe.load.scenario import OpenLoop, Scenario, Stage, Target
from chatprobe.load.trace import Trace
from chatprobe.profiles import load_profile
from chatprobe.transport import Timeouts, TLSConfig

__all__ = ["PLAN_ENV", "EmulatorTarget", "RunPlan", "TargetPlan", "build_plan", "read_plan"]

PLAN_ENV = "CHATPROBE_LOAD_PLAN"
EMULATOR_KEY = "chatprobe-emulator-key"  # the emulator's public demo key, not a secret


@dataclass(frozen=True, slots=True)
class EmulatorTarget:
    """A running emulator, by its root URL ``http://HOST:PORT`` (``https://`` when it serves
    TLS).

    Provider base URLs follow the emulator's layout (``/<provider>/v1``, or
    ``/<provider>/api/v1`` for a profile whose real base URL ends in ``/api/v1``).
    """

    root: str

    def base_url(self, provider: str) -> str:
        """The emulated base URL of ``provider`` (a profile name or a profile file)."""
        from urllib.parse import urlsplit

        from chatprobe.emulator.server import base_url_for

        parts = urlsplit(self.root)
        if not parts.hostname or not parts.port:
            raise ConfigError(f"emulator URL needs a host and a port: {self.root}")
        profile = load_profile(provider)
        return base_url_for(
            [profile], parts.port, parts.hostname, profile.name, tls=parts.scheme == "https"
        )


@dataclass(slots=True)
class TargetPlan:
    provider: str
    model: str  # canonical
    model_id: str  # sent
    url: str  # full chat-completions URL
    data_source: str  # live | emulated
    headers: dict[str, str] = field(default_factory=dict)  # profile headers, no credentials
    key_env: str | None = None  # live: the variable holding the key
    demo_key: str | None = None  # emulated: the emulator's public key

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}"

    def api_key(self) -> str | None:
        if self.demo_key:
            return self.demo_key
        if self.key_env:
            from chatprobe.scrub import register_secret

            key = os.environ.get(self.key_env) or None
            register_secret(key)
            return key
        return None


@dataclass(slots=True)
class RunPlan:
    scenario: str
    out_dir: str
    data_source: str
    targets: list[TargetPlan]
    prompts: list[list[dict[str, Any]]]
    stages: list[Stage]
    # each prompt's length as sent, by chatprobe.tokens (a sample's input_tokens); parallel
    # to prompts, empty in plans written before it existed
    prompt_tokens: list[int] = field(default_factory=list)
    scenario_path: str | None = None
    mix: str = "interleave"
    prompt_order: str = "round_robin"
    max_tokens: int = 64
    request: dict[str, Any] = field(default_factory=dict)
    shape_kind: str = "users"
    think_time_s: float = 0.0
    open_loop: OpenLoop | None = None
    requests: int | None = None
    seed: int = 1
    slo: dict[str, float] = field(default_factory=dict)  # the scenario's limits ({}: none)
    slo_attainment: float | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    tls: TLSConfig = field(default_factory=TLSConfig)  # a CA bundle's path, never a secret
    drivers: int = 1  # processes running users: 1, or the number of locust workers
    stop_timeout_s: float = 30.0
    status_interval_s: float = 1.0
    manage_end: bool = True  # chatprobe ends the run itself (False: locust's -t does)
    conversation: ConversationSpec | None = None  # sessions of turns (None: single requests)
    trace: Trace | None = None  # a trace replay's requests (None: no trace)
    conformance_share: float = 1.0  # share of streams the load checks judge (load.conformance)
    timing_bound_ms: float = 5.0  # p99 client timing error bound that marks a run

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.stages)

    @property
    def max_tokens_requested(self) -> int | None:
        """The output cap every request asks for (a sample's ``max_tokens``): the
        scenario's ``max_tokens``, unless its ``request`` block sets one of its own."""
        from chatprobe.record import requested_max_tokens

        return requested_max_tokens({"max_tokens": self.max_tokens, **self.request})

    def to_json(self) -> bytes:
        data = asdict(self)
        data["trace"] = self.trace.to_dict() if self.trace is not None else None
        return orjson.dumps(data, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunPlan:
        """A plan from ``plan.json``; fields this version does not know (such as the prices
        that older plans carried, now in ``profiles.json``) are ignored."""
        known = set(cls.__dataclass_fields__)
        data = {k: v for k, v in data.items() if k in known}
        target_fields = set(TargetPlan.__dataclass_fields__)
        data["targets"] = [
            TargetPlan(**{k: v for k, v in t.items() if k in target_fields})
            for t in data["targets"]
        ]
        data["stages"] = [Stage(**s) for s in data["stages"]]
        data["open_loop"] = OpenLoop(**data["open_loop"]) if data.get("open_loop") else None
        data["timeouts"] = Timeouts(**data["timeouts"])
        data["tls"] = TLSConfig(**data.get("tls") or {})
        if data.get("conversation"):
            data["conversation"] = ConversationSpec.from_dict(data["conversation"])
        if data.get("trace"):
            data["trace"] = Trace.from_dict(data["trace"])
        return cls(**data)

    def write(self, path: Path) -> Path:
        from chatprobe.results import write_text_atomic

        return write_text_atomic(path, self.to_json())


def read_plan(path: str | Path) -> RunPlan:
    try:
        data = orjson.loads(Path(path).read_bytes())
        return RunPlan.from_dict(data)
    except OSError as exc:
        raise ConfigError(f"cannot read the run plan: {exc.strerror}", path=str(path)) from None
    except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
        raise ConfigError(f"not a run plan: {exc}", path=str(path)) from None


def resolve_target(target: Target, emulator: EmulatorTarget | None) -> TargetPlan:
    """Profile lookup for one pair: live (key variable named) or pointed at the emulator."""
    profile = load_profile(target.provider)
    info = profile.model(target.model)
    common: dict[str, Any] = {
        "provider": profile.name,
        "model": info.name,
        "model_id": info.id,
        "headers": dict(profile.headers),
    }
    if emulator is not None:
        url = emulator.base_url(target.provider).rstrip("/") + "/chat/completions"
        return TargetPlan(url=url, data_source="emulated", demo_key=EMULATOR_KEY, **common)
    return TargetPlan(
        url=profile.chat_url, data_source="live", key_env=profile.api_key_env, **common
    )


def missing_keys(targets: list[Target]) -> list[tuple[str, str]]:
    """``(provider, variable)`` for each target provider whose key is not set."""
    out = []
    for target in targets:
        profile = load_profile(target.provider)
        if not profile.api_key() and (profile.name, profile.api_key_env) not in out:
            out.append((profile.name, profile.api_key_env))
    return out


def build_plan(
    scenario: Scenario,
    *,
    out_dir: Path,
    emulator: EmulatorTarget | None,
    drivers: int = 1,
    tls: TLSConfig | None = None,
) -> RunPlan:
    """Resolve ``scenario``; with ``emulator`` None every target is live and needs its key.
    ``tls`` says which certificates the locust children trust."""
    if emulator is None:
        for target in scenario.targets:
            profile = load_profile(target.provider)
            if not profile.api_key():
                raise MissingKeyError(
                    profile.api_key_env, profile.name, "Or run against the emulator: --emulator."
                )
    targets = [resolve_target(t, emulator) for t in scenario.targets]
    labels = [t.label for t in targets]
    for i, label in enumerate(labels):
        if labels.index(label) != i:
            raise ConfigError(f"target {label} is listed twice", path=scenario.path)
    # A trace builds each request's prompt to its own length (load/trace.py), in the
    # load processes: the pool is not used.
    prompts = build_prompts(scenario.prompts, scenario.seed) if scenario.trace is None else []
    return RunPlan(
        scenario=scenario.name,
        scenario_path=scenario.path,
        out_dir=str(out_dir),
        data_source="emulated" if emulator is not None else "live",
        targets=targets,
        prompts=prompts,
        prompt_tokens=prompt_tokens(prompts),
        stages=list(scenario.stages),
        mix=scenario.mix,
        prompt_order=scenario.prompts.order,
        max_tokens=scenario.max_tokens,
        request=dict(scenario.request),
        shape_kind=scenario.shape_kind,
        think_time_s=scenario.think_time_s,
        open_loop=scenario.open_loop,
        requests=scenario.requests,
        seed=scenario.seed,
        slo=dict(scenario.slo),
        slo_attainment=scenario.slo_attainment,
        timeouts=scenario.timeouts,
        tls=tls or TLSConfig(),
        drivers=max(1, drivers),
        stop_timeout_s=min(scenario.timeouts.total or 30.0, 30.0),
        conversation=scenario.conversation,
        trace=scenario.trace,
        conformance_share=scenario.conformance_share,
        timing_bound_ms=scenario.timing_bound_ms,
    )
