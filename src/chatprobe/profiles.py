"""Provider profiles: where a provider is and how it behaves.

Profiles are found by name in the project's ``paths.profiles`` folders, then among the
built-in ones (``specs/providers/*.yaml``); the project's wins (:mod:`chatprobe.paths`).

A profile is validated against ``specs/profile.schema.yaml``; a broken one fails with the
file, line and field. A custom provider can be a profile file given by path, or built from
``--base-url``/``--api-key-env`` with :func:`custom_profile`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from chatprobe.errors import MissingKeyError, UnknownNameError
from chatprobe.paths import find_named, names_in, profile_dirs, specs_dir
from chatprobe.scrub import register_secret
from chatprobe.specs import profile_validator, raise_schema_error
from chatprobe.yamlfile import load_yaml

__all__ = [
    "LatencyModel",
    "ModelInfo",
    "Pricing",
    "ProviderProfile",
    "builtin_profiles",
    "custom_profile",
    "emulated_profiles",
    "list_profiles",
    "load_profile",
]


@dataclass(frozen=True, slots=True)
class Pricing:
    """USD prices; ``source`` says whether they are documented or assumed."""

    input_per_mtok: float
    output_per_mtok: float
    input_per_kimage: float = 0.0
    source: str = ""

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        """USD for these token counts (the one cost formula; linear, so totals work too)."""
        return (
            prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok
        ) / 1e6

    @property
    def kind(self) -> str:
        """``documented`` when the source says so (a provider's own page), else ``assumed``."""
        return "documented" if self.source.strip().lower().startswith("documented") else "assumed"


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """How the emulator serves one model (the profile's ``emulator:`` block).

    Latency is lognormal with the given median (ms) and sigma. ``prompt_tokens_zero`` makes
    the emulator reproduce a documented quirk: usage reporting ``prompt_tokens: 0`` for a
    non-empty prompt. ``capacity`` is the model's server capacity (slots, tokens_per_s,
    prefill_ms_per_1k; ``chatprobe.emulator.capacity``), None for none.
    ``reasoning_tokens`` makes it a reasoning model thinking (min, max) tokens before it
    answers, streamed as ``reasoning`` says (None: the provider's usual field). ``dialect``
    lists dialect knobs (``chatprobe.emulator.dialect``) the model is served with.
    """

    ttft_ms: float = 20.0
    ttft_sigma: float = 0.2
    itl_ms: float = 2.0
    itl_sigma: float = 0.1
    tokens_per_chunk: int = 1
    prompt_tokens_zero: bool = False
    capacity: Mapping[str, float] | None = None
    reasoning_tokens: tuple[int, int] | None = None
    reasoning: str | None = None
    dialect: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str  # canonical name
    id: str  # sent to the provider
    echo: str  # returned by the provider in `model`
    family: str
    context_window: int | None = None
    free: bool = False
    rate_limit_rpm: int | None = None
    pricing: Pricing | None = None
    latency: LatencyModel = field(default_factory=LatencyModel)


@dataclass(frozen=True, slots=True)
class ProviderProfile:
    name: str
    title: str
    base_url: str
    api_key_env: str
    schema_level: str = "openai-strict"
    headers: dict[str, str] = field(default_factory=dict)
    models: dict[str, ModelInfo] = field(default_factory=dict)
    success_status: tuple[int, ...] = (200,)
    id_pattern: str | None = None
    error_envelope: str = "openai"
    stream_usage: str = "include_usage"
    model_echo_prefix: str = ""
    sse_comment: str | None = None
    finish_reasons_extra: tuple[str, ...] = ()
    extra_fields: tuple[str, ...] = ()
    status_equals_error_code: bool = False
    deviations: dict[str, str] = field(default_factory=dict)
    disabled_checks: tuple[str, ...] = ()
    rate_limits: dict[str, int] = field(default_factory=dict)
    docs: tuple[str, ...] = ()
    source: str = ""  # the file it was loaded from
    passthrough_models: bool = False  # custom endpoints: any model name is sent as given
    custom_endpoint: bool = False  # written for --base-url: never emulated (see the schema)
    # What people read in reports and the terminal (default: name); a custom endpoint's is
    # its host and port (the naming rule: chatprobe.endpoints).
    display_name: str = ""

    def __post_init__(self) -> None:
        if not self.display_name:
            object.__setattr__(self, "display_name", self.name)

    @property
    def chat_url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    @property
    def models_url(self) -> str:
        return self.base_url.rstrip("/") + "/models"

    @property
    def default_model(self) -> str:
        """The model a command uses when none is named: the first that is not a
        rate-limited free variant (else the first)."""
        for name, info in self.models.items():
            if not info.free:
                return name
        return next(iter(self.models))

    def model(self, name: str) -> ModelInfo:
        """Look a model up by canonical name or by the provider's id."""
        if name in self.models:
            return self.models[name]
        if self.passthrough_models:
            return ModelInfo(name=name, id=name, echo=name, family=name)
        for info in self.models.values():
            if name in (info.id, info.echo):
                return info
        raise UnknownNameError(f"model for provider {self.name!r}", name, list(self.models))

    def api_key(self) -> str | None:
        """The key from the environment (registered for scrubbing), or None."""
        key = os.environ.get(self.api_key_env) or None
        register_secret(key)
        return key

    def require_key(self) -> str:
        key = self.api_key()
        if key is None:
            raise MissingKeyError(self.api_key_env, self.name)
        return key

    def with_base_url(self, base_url: str) -> ProviderProfile:
        """A copy pointed elsewhere (the emulator, a proxy)."""
        from dataclasses import replace

        return replace(self, base_url=base_url)


def list_profiles() -> list[str]:
    """Names of the known profiles: the project's and the built-in ones."""
    return names_in(profile_dirs())


def builtin_profiles() -> list[str]:
    """Names of the profiles shipped with chatprobe (``specs/providers/``)."""
    return names_in([specs_dir() / "providers"])


def emulated_profiles() -> list[str]:
    """The known profiles the emulator can stand in for: all but real endpoints
    (``custom_endpoint: true``, such as the profile ``chatprobe init`` writes)."""
    return [name for name in list_profiles() if not load_profile(name).custom_endpoint]


@cache
def _load_path(path: str) -> ProviderProfile:
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise doc.error("a provider profile must be a mapping")
    raise_schema_error(doc, profile_validator())
    data: dict[str, Any] = doc.data
    conv = data.get("conventions") or {}
    models = {}
    for name, m in data["models"].items():
        pricing = Pricing(**m["pricing"]) if m.get("pricing") else None
        models[str(name)] = ModelInfo(
            name=str(name),
            id=m["id"],
            echo=m.get("echo", m["id"]),
            family=m.get("family", str(name)),
            context_window=m.get("context_window"),
            free=bool(m.get("free", False)),
            rate_limit_rpm=m.get("rate_limit_rpm"),
            pricing=pricing,
            latency=_latency_model(m.get("emulator") or {}),
        )
    from chatprobe.specs import levels

    level = data.get("schema_level", "openai-strict")
    if levels() and level not in levels():
        raise doc.error(
            f"unknown schema level {level!r} (known: {', '.join(levels())})", ("schema_level",)
        )
    return ProviderProfile(
        name=data["name"],
        title=data.get("title", data["name"]),
        base_url=data["base_url"],
        api_key_env=data["api_key_env"],
        schema_level=level,
        headers=dict(data.get("headers") or {}),
        models=models,
        success_status=tuple(conv.get("success_status", [200])),
        id_pattern=conv.get("id_pattern"),
        error_envelope=conv.get("error_envelope", "openai"),
        stream_usage=conv.get("stream_usage", "include_usage"),
        model_echo_prefix=conv.get("model_echo_prefix", ""),
        sse_comment=conv.get("sse_comment"),
        finish_reasons_extra=tuple(conv.get("finish_reasons_extra", ())),
        extra_fields=tuple(conv.get("extra_fields", ())),
        status_equals_error_code=bool(conv.get("status_equals_error_code", False)),
        deviations=dict(data.get("deviations") or {}),
        disabled_checks=tuple(data.get("disabled_checks") or ()),
        rate_limits=dict(data.get("rate_limits") or {}),
        docs=tuple(data.get("docs") or ()),
        source=path,
        custom_endpoint=bool(data.get("custom_endpoint", False)),
        display_name=str(data.get("display_name") or data["name"]),
    )


def _latency_model(block: dict[str, Any]) -> LatencyModel:
    reasoning = block.get("reasoning_tokens")
    if "dialect" in block:
        block = {**block, "dialect": tuple(block["dialect"])}
    if isinstance(reasoning, int):
        block = {**block, "reasoning_tokens": (reasoning, reasoning)}
    elif isinstance(reasoning, list):
        block = {**block, "reasoning_tokens": (reasoning[0], reasoning[1])}
    return LatencyModel(**block)


def load_profile(name_or_path: str) -> ProviderProfile:
    """A known profile by name (the project's first, then built-in), or any profile file."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        return _load_path(str(candidate))
    path = find_named(profile_dirs(), name_or_path) if "/" not in name_or_path else None
    if path is None:
        raise UnknownNameError("provider", name_or_path, list_profiles())
    return _load_path(str(path))


def custom_profile(
    base_url: str,
    api_key_env: str,
    *,
    name: str = "custom",
    models: list[str] | None = None,
) -> ProviderProfile:
    """A profile for any OpenAI-compatible endpoint given on the command line."""
    infos = {m: ModelInfo(name=m, id=m, echo=m, family=m) for m in (models or [])}
    return ProviderProfile(
        name=name,
        title=name,
        base_url=base_url,
        api_key_env=api_key_env,
        models=infos,
        success_status=(200,),
        source="<command line>",
        passthrough_models=True,
        custom_endpoint=True,
    )
