"""Profiles as the emulator serves them: the documented models plus the emulator-only ones.

``specs/emulator/models.yaml`` lists models no provider documents (a reasoning model, ...);
the emulator serves them under every profile so their streams can be tested offline. A
client addressing one through the emulator uses :func:`served_profile` (or
``Emulator.profile(provider)``), which holds them; ``chatprobe.profiles.load_profile`` stays
the documented profile.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

from chatprobe.paths import specs_dir
from chatprobe.profiles import ModelInfo, ProviderProfile, load_profile

__all__ = ["emulated_models", "served_profile"]


@cache
def emulated_models() -> dict[str, ModelInfo]:
    """The emulator-only models by canonical name (empty when the file is absent)."""
    path = specs_dir() / "emulator" / "models.yaml"
    if not path.is_file():
        return {}
    return dict(load_profile(str(path)).models)


def served_profile(name_or_path: str) -> ProviderProfile:
    """``name_or_path``'s profile with the emulator-only models added (its own win)."""
    profile = load_profile(name_or_path)
    extra = {k: v for k, v in emulated_models().items() if k not in profile.models}
    if not extra:
        return profile
    return replace(profile, models={**profile.models, **extra})
