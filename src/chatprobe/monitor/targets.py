"""Which provider x model pairs the monitor watches, and where their requests go.

The command line's vocabulary is the one ``check`` and ``load`` share
(:mod:`chatprobe.commands.options`): ``--provider NAME|FILE`` and ``--model ID``, or
``--base-url URL --api-key-env VAR --model ID``. Pairs:

* ``--provider P --model M``: P x M for every M that P serves (a model no provider serves
  is an error);
* ``--provider P`` alone: P's default model (its first that is not a rate-limited free
  variant), or the project's ``models`` that P serves;
* nothing: the project's ``providers`` (else every shipped profile), as above.

Live or emulated, decided once for every target (as ``chatprobe load`` does): a custom
endpoint is always live; ``--emulator-url`` points every target at a running emulator (the
way to watch a scheduled outage: ``chatprobe emulate --clock ... --schedule ...``);
``--emulator`` starts one in this process; ``--no-emulator`` requires every key; by default
the emulator stands in when a key is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chatprobe.errors import ChatprobeError, MissingKeyError, UnknownNameError
from chatprobe.profiles import ProviderProfile, builtin_profiles, load_profile

__all__ = ["MonitorTarget", "Placement", "place_targets", "target_pairs"]


@dataclass(frozen=True, slots=True)
class MonitorTarget:
    """One provider x model the monitor watches."""

    ref: str  # what load_profile takes: a profile name or a profile file
    profile: ProviderProfile  # the documented profile (what the checks judge against)
    model: str  # canonical model name
    send_to: ProviderProfile  # where requests go (the emulator's base URL when emulated)
    api_key: str | None
    data_source: str  # live | emulated

    @property
    def label(self) -> str:
        return f"{self.profile.name}/{self.model}"

    @property
    def provider(self) -> str:
        return self.profile.name


def target_pairs(
    refs: Sequence[str], models: Sequence[str], *, project_models: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """``(profile ref, canonical model)`` pairs for the command line (module docstring)."""
    refs = list(refs) or builtin_profiles()
    pairs: list[tuple[str, str]] = []
    wanted = list(models) or list(project_models)
    for ref in refs:
        profile = load_profile(ref)
        if not wanted:
            pairs.append((ref, profile.default_model))
            continue
        served = []
        for name in wanted:
            try:
                served.append(profile.model(name).name)
            except UnknownNameError:
                continue
        if not served and not models:  # the project's models: this provider has none of them
            served = [profile.default_model]
        pairs.extend((ref, m) for m in dict.fromkeys(served))
    if models:
        unserved = [
            name for name in models if not any(_serves(load_profile(ref), name) for ref in refs)
        ]
        if unserved:
            known = sorted({m for ref in refs for m in load_profile(ref).models})
            raise UnknownNameError("model for the selected providers", unserved[0], known)
    if not pairs:
        raise ChatprobeError("no provider x model to monitor")
    return list(dict.fromkeys(pairs))


def _serves(profile: ProviderProfile, name: str) -> bool:
    try:
        profile.model(name)
    except UnknownNameError:
        return False
    return True


@dataclass
class Placement:
    """Targets with their destination, and the emulator this process started (if any)."""

    targets: list[MonitorTarget]
    emulator: Any = None  # chatprobe.emulator.Emulator when started here
    notes: list[str] | None = None

    def close(self) -> None:
        if self.emulator is not None:
            self.emulator.close()
            self.emulator = None


def place_targets(
    pairs: Sequence[tuple[str, str]],
    *,
    emulator: bool | None = None,
    emulator_url: str | None = None,
) -> Placement:
    """Decide live or emulated for every pair (module docstring) and point them there."""
    profiles = {ref: load_profile(ref) for ref, _ in pairs}
    custom = [p.name for p in profiles.values() if p.custom_endpoint]
    notes: list[str] = []
    if custom and (emulator or emulator_url):
        raise ChatprobeError(
            f"{', '.join(dict.fromkeys(custom))} is a custom endpoint, always called live; "
            "drop --emulator/--emulator-url"
        )
    if emulator_url and emulator is False:
        raise ChatprobeError("--emulator-url and --no-emulator exclude each other")
    missing = [p for p in profiles.values() if p.api_key() is None]
    if custom:
        use = False
    elif emulator_url or emulator:
        use = True
    elif emulator is False:
        use = False
    else:
        use = bool(missing)
        if use:
            names = ", ".join(f"{p.name} (${p.api_key_env})" for p in missing)
            notes.append(f"no key for {names}: every target is served by the emulator")
    if not use:
        for profile in profiles.values():
            if profile.api_key() is None:
                raise MissingKeyError(
                    profile.api_key_env, profile.name, "Or monitor the emulator: --emulator."
                )
        targets = [
            MonitorTarget(ref, profiles[ref], model, profiles[ref], profiles[ref].api_key(), "live")
            for ref, model in pairs
        ]
        return Placement(targets, None, notes)
    from chatprobe.emulator import DEMO_KEY
    from chatprobe.load.plan import EmulatorTarget

    started = None
    root = emulator_url
    if root is None:
        from chatprobe.emulator import Emulator, EmulatorConfig

        served = tuple(dict.fromkeys(p.source or p.name for p in profiles.values()))
        started = Emulator.in_thread(EmulatorConfig(providers=served))
        root = started.url()
        notes.append(f"emulator started at {root}")
    where = EmulatorTarget(root.rstrip("/"))
    targets = [
        MonitorTarget(
            ref,
            profiles[ref],
            model,
            profiles[ref].with_base_url(where.base_url(ref)),
            DEMO_KEY,
            "emulated",
        )
        for ref, model in pairs
    ]
    return Placement(targets, started, notes)
