"""The emulator's configuration: one frozen dataclass shared by the CLI and the Python API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from chatprobe.emulator.capacity import Capacity
from chatprobe.emulator.dialect import parse_knobs
from chatprobe.emulator.faults import FaultRate
from chatprobe.emulator.prefix import PrefixCacheSettings
from chatprobe.emulator.schedule import Window, check_names, window_from
from chatprobe.errors import ConfigError
from chatprobe.profiles import LatencyModel

__all__ = ["DEFAULT_MAX_BODY", "DEMO_KEY", "BlockError", "EmulatorConfig", "block_changes"]

DEMO_KEY = "chatprobe-emulator-key"
"""The API key the emulator accepts unless told otherwise. Not a secret."""

DEFAULT_MAX_BODY = 1024 * 1024


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """What the emulator serves and how.

    ``providers`` are profile names (or profile file paths) from ``specs/providers/``; empty
    means every shipped profile. Latency overrides (``ttft_ms``, ``itl_ms``, ``sigma``,
    ``tokens_per_chunk``) replace the matching field of every model's profile ``emulator:``
    block; ``zero_latency`` sends everything at once. ``rate_limit_rpm``: None keeps each
    model's documented limit (OpenRouter ``:free``: 20/min per key), 0 disables limits, N
    replaces the limit of the models that have one. ``output_tokens`` is the (min, max)
    natural completion length; the header ``X-Chatprobe-Output-Tokens: N`` fixes it per
    request. ``truth_cap`` bounds the ground-truth records kept in memory (oldest dropped).
    ``capacity``: None keeps each model's profile ``capacity:`` (none by default); a
    :class:`~chatprobe.emulator.capacity.Capacity` replaces it for every model
    (``Capacity()`` switches capacity off everywhere). ``schedule``: windows of outages,
    latency steps and contract changes (:mod:`chatprobe.emulator.schedule`) on a clock
    running ``clock`` times faster than the wall clock. ``prefix_cache``: each model keeps
    an LRU of prompt prefixes and reports ``cached_tokens`` (None: off). ``dialect``:
    dialect knobs (``knob[=value]`` items, :mod:`chatprobe.emulator.dialect`) for every
    request.
    ``tls`` serves HTTPS with a certificate generated at start (see
    :mod:`chatprobe.emulator.certs`; clients pass its CA file with ``--ca-bundle``).
    ``replay``: cassette files or folders; when given, recorded streams are served with
    their recorded timing instead of emulated answers, ``replay_speed`` times faster
    (:mod:`chatprobe.emulator.replay`).
    """

    providers: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 0
    keys: tuple[str, ...] = (DEMO_KEY,)
    auth: bool = True
    ttft_ms: float | None = None
    itl_ms: float | None = None
    sigma: float | None = None
    zero_latency: bool = False
    tokens_per_chunk: int | None = None
    output_tokens: tuple[int, int] = (16, 96)
    faults: tuple[FaultRate, ...] = ()
    rate_limit_rpm: int | None = None
    max_body: int = DEFAULT_MAX_BODY
    truth_cap: int = 100_000
    truth_jsonl: str | None = None
    record_event_times: bool = False
    comment_interval_s: float = 1.0
    emulate_quirks: bool = True
    capacity: Capacity | None = None
    schedule: tuple[Window, ...] = ()
    clock: float = 1.0
    prefix_cache: PrefixCacheSettings | None = None
    dialect: tuple[str, ...] = ()
    tls: bool = False
    replay: tuple[str, ...] = ()
    replay_speed: float = 1.0

    def __post_init__(self) -> None:
        lo, hi = self.output_tokens
        if not 1 <= lo <= hi:
            raise ConfigError(f"need 1 <= min <= max, got {lo}:{hi}", field="output_tokens")
        total = sum(f.rate for f in self.faults)
        if total > 1.0 + 1e-9:
            raise ConfigError(f"fault rates add up to {total:g}, more than 1", field="--fault")
        if self.tokens_per_chunk is not None and self.tokens_per_chunk < 1:
            raise ConfigError("must be at least 1", field="tokens_per_chunk")
        for name in ("ttft_ms", "itl_ms", "sigma"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError("must not be negative", field=name)
        if self.max_body < 1:
            raise ConfigError("must be at least 1", field="max_body")
        if not self.clock > 0:
            raise ConfigError("must be a positive number", field="clock")
        if not self.replay_speed > 0:
            raise ConfigError("must be a positive number", field="--replay-speed")
        check_names(self.schedule)
        parse_knobs(self.dialect)  # an unknown knob fails here, naming --dialect

    def with_(self, **changes: object) -> EmulatorConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def latency(self, model: LatencyModel) -> LatencyModel:
        """A model's latency with this configuration's overrides applied."""
        if self.zero_latency:
            return replace(
                model,
                ttft_ms=0.0,
                itl_ms=0.0,
                ttft_sigma=0.0,
                itl_sigma=0.0,
                tokens_per_chunk=self.tokens_per_chunk or model.tokens_per_chunk,
            )
        return replace(
            model,
            ttft_ms=model.ttft_ms if self.ttft_ms is None else self.ttft_ms,
            itl_ms=model.itl_ms if self.itl_ms is None else self.itl_ms,
            ttft_sigma=model.ttft_sigma if self.sigma is None else self.sigma,
            itl_sigma=model.itl_sigma if self.sigma is None else self.sigma,
            tokens_per_chunk=self.tokens_per_chunk or model.tokens_per_chunk,
        )

    def to_args(self) -> list[str]:
        """``chatprobe emulate`` arguments that reproduce this configuration."""
        args: list[str] = []
        for provider in self.providers:
            args += ["--provider", provider]
        args += ["--host", self.host, "--port", str(self.port), "--seed", str(self.seed)]
        if not self.auth:
            args.append("--no-auth")
        for key in self.keys:
            args += ["--key", key]
        for name, flag in (("ttft_ms", "--ttft-ms"), ("itl_ms", "--itl-ms"), ("sigma", "--sigma")):
            value = getattr(self, name)
            if value is not None:
                args += [flag, repr(float(value))]
        if self.zero_latency:
            args.append("--zero-latency")
        if self.tokens_per_chunk is not None:
            args += ["--tokens-per-chunk", str(self.tokens_per_chunk)]
        args += ["--output-tokens", f"{self.output_tokens[0]}:{self.output_tokens[1]}"]
        for fault in self.faults:
            args += ["--fault", str(fault)]
        if self.rate_limit_rpm is not None:
            args += ["--rate-limit-rpm", str(self.rate_limit_rpm)]
        args += ["--max-body", str(self.max_body), "--truth-cap", str(self.truth_cap)]
        if self.truth_jsonl:
            args += ["--truth-jsonl", self.truth_jsonl]
        if self.record_event_times:
            args.append("--record-event-times")
        args += ["--comment-interval", repr(self.comment_interval_s)]
        if not self.emulate_quirks:
            args.append("--no-quirks")
        if self.capacity is not None:
            args += ["--capacity", str(self.capacity)]
        for window in self.schedule:
            args += ["--schedule", str(window)]
        if self.clock != 1.0:
            args += ["--clock", repr(self.clock)]
        if self.prefix_cache is not None:
            args += ["--prefix-cache", str(self.prefix_cache)]
        for knob in self.dialect:
            args += ["--dialect", knob]
        if self.tls:
            args.append("--tls")
        for path in self.replay:
            args += ["--replay", path]
        if self.replay_speed != 1.0:
            args += ["--replay-speed", repr(self.replay_speed)]
        return args

    def capacity_for(self, model: LatencyModel) -> Capacity | None:
        """The capacity a model is served with (None: unlimited, the engine is not used)."""
        capacity = self.capacity
        if capacity is None and model.capacity:
            capacity = Capacity.from_mapping(model.capacity)
        return capacity if capacity is not None and capacity.enabled else None


class BlockError(ConfigError):
    """A bad value in a scenario's ``emulator:`` block; ``where`` is its path in the block."""

    def __init__(self, message: str, where: tuple[str | int, ...]) -> None:
        super().__init__(message, field=".".join(str(w) for w in ("emulator", *where)))
        self.where = where


def block_changes(block: Mapping[str, Any]) -> dict[str, Any]:
    """:class:`EmulatorConfig` changes for the emulator features of a scenario's block.

    Covers ``capacity``, ``schedule``, ``clock``, ``prefix_cache`` and ``dialect``; the
    launcher maps
    the older keys (latency, faults, output tokens, seed) itself. Raises
    :class:`BlockError` naming the key at fault.
    """
    changes: dict[str, Any] = {}
    if "capacity" in block:
        raw = block["capacity"]
        try:
            if isinstance(raw, str):
                changes["capacity"] = Capacity.parse(raw, source="capacity")
            elif isinstance(raw, Mapping):
                changes["capacity"] = Capacity.from_mapping(raw)
            else:
                raise ConfigError("expected a mapping or 'off'")
        except ConfigError as exc:
            raise BlockError(exc.detail, ("capacity",)) from None
    raw_windows = block.get("schedule") or []
    windows = []
    for i, item in enumerate(raw_windows):
        try:
            windows.append(window_from(item, index=i, source=f"schedule[{i}]"))
        except ConfigError as exc:
            raise BlockError(exc.detail, ("schedule", i)) from None
    if windows:
        try:
            check_names(windows)
        except ConfigError as exc:
            raise BlockError(exc.detail, ("schedule",)) from None
        changes["schedule"] = tuple(windows)
    if "clock" in block:
        clock = block["clock"]
        if not isinstance(clock, int | float) or isinstance(clock, bool) or clock <= 0:
            raise BlockError("must be a positive number", ("clock",))
        changes["clock"] = float(clock)
    if "prefix_cache" in block:
        raw = block["prefix_cache"]
        try:
            if raw is True:
                changes["prefix_cache"] = PrefixCacheSettings()
            elif raw is False or raw in ("off", None):
                changes["prefix_cache"] = None
            elif isinstance(raw, Mapping):
                changes["prefix_cache"] = PrefixCacheSettings.from_mapping(raw)
            else:
                raise ConfigError("expected true, false or {tokens, block}")
        except ConfigError as exc:
            raise BlockError(exc.detail, ("prefix_cache",)) from None
    if "dialect" in block:
        raw = block["dialect"]
        items = [raw] if isinstance(raw, str) else list(raw or ())
        try:
            parse_knobs(items, source="dialect")
        except ConfigError as exc:
            raise BlockError(exc.detail, ("dialect",)) from None
        changes["dialect"] = tuple(i.strip() for it in items for i in it.split(",") if i.strip())
    return changes
