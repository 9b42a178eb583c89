"""``profiles.json``: the provider profiles as they were when a run was made.

A report of a past run must describe that run, not today's profiles: a price edited after the
run, or a deviation reason reworded, must not change an old report. So every run (load and
check) writes a snapshot of each profile it used into its results folder, and reports read
prices, price sources, documented deviations and model families from there, never from
``specs/providers/``.

What a snapshot holds per provider: title, base URL, the *name* of the key variable (never a
key), schema level, documented success statuses, documented deviations with their reasons,
disabled checks, and per model its id, echo, family, whether it is a free variant, and its
price with the price's source (documented or assumed). ``source`` and ``sha256`` identify
the profile file that was read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatprobe.profiles import Pricing, ProviderProfile
from chatprobe.results.folder import PROFILES, read_json, utc_now_iso, write_json_atomic

__all__ = [
    "SNAPSHOT_VERSION",
    "ModelSnapshot",
    "ProfileSnapshot",
    "snapshot_profiles",
    "write_profiles",
]

SNAPSHOT_VERSION = 1


def _file_digest(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _profile_doc(profile: ProviderProfile) -> dict[str, Any]:
    models = {}
    for name, info in profile.models.items():
        price = info.pricing
        models[name] = {
            "id": info.id,
            "echo": info.echo,
            "family": info.family,
            "free": info.free,
            "pricing": (
                {
                    "input_per_mtok": price.input_per_mtok,
                    "output_per_mtok": price.output_per_mtok,
                    "input_per_kimage": price.input_per_kimage,
                    "source": price.source,
                    "kind": price.kind,
                }
                if price is not None
                else None
            ),
        }
    return {
        "name": profile.name,
        "title": profile.title,
        "base_url": profile.base_url,
        "api_key_env": profile.api_key_env,
        "schema_level": profile.schema_level,
        "success_status": list(profile.success_status),
        "custom_endpoint": profile.custom_endpoint,
        "passthrough_models": profile.passthrough_models,
        "deviations": dict(profile.deviations),
        "disabled_checks": list(profile.disabled_checks),
        "models": models,
        "source": profile.source,
        "sha256": _file_digest(profile.source) if profile.source else None,
    }


def snapshot_profiles(profiles: Iterable[ProviderProfile]) -> dict[str, Any]:
    """The ``profiles.json`` document for these profiles (each once, by name)."""
    docs: dict[str, Any] = {}
    for profile in profiles:
        docs.setdefault(profile.name, _profile_doc(profile))
    return {"schema_version": SNAPSHOT_VERSION, "captured_at": utc_now_iso(), "profiles": docs}


def write_profiles(run_dir: Path | str, profiles: Iterable[ProviderProfile]) -> Path:
    """Write ``<run_dir>/profiles.json`` (atomically, scrubbed)."""
    return write_json_atomic(Path(run_dir) / PROFILES, snapshot_profiles(profiles))


@dataclass(frozen=True, slots=True)
class ModelSnapshot:
    """What a snapshot says about one provider x model."""

    family: str
    free: bool
    pricing: Pricing | None


@dataclass
class ProfileSnapshot:
    """A loaded ``profiles.json`` (or, for folders written before snapshots existed, what
    ``plan.json`` recorded: prices only; see :meth:`from_legacy_plan`)."""

    profiles: dict[str, dict[str, Any]]
    legacy: bool = False  # reconstructed from an older folder's plan.json

    @classmethod
    def read(cls, run_dir: Path | str) -> ProfileSnapshot | None:
        """The folder's snapshot, or None when it has none (an older folder)."""
        path = Path(run_dir) / PROFILES
        if not path.is_file():
            return None
        data = read_json(path)
        profiles = data.get("profiles") if isinstance(data, dict) else None
        return cls({str(k): v for k, v in (profiles or {}).items() if isinstance(v, dict)})

    @classmethod
    def from_legacy_plan(cls, plan: dict[str, Any]) -> ProfileSnapshot:
        """Prices an older ``plan.json`` captured at run time (``price_*`` per target)."""
        profiles: dict[str, dict[str, Any]] = {}
        for target in plan.get("targets") or []:
            if not isinstance(target, dict):
                continue
            provider = profiles.setdefault(
                str(target.get("provider")), {"models": {}, "deviations": {}}
            )
            price_in, price_out = target.get("price_in_per_mtok"), target.get("price_out_per_mtok")
            source = str(target.get("price_source") or "")
            pricing = None
            if isinstance(price_in, int | float) and isinstance(price_out, int | float):
                pricing = {
                    "input_per_mtok": price_in,
                    "output_per_mtok": price_out,
                    "source": source,
                }
            provider["models"][str(target.get("model"))] = {"pricing": pricing}
        return cls(profiles, legacy=True)

    def deviation(self, provider: str, check: str) -> str | None:
        """The documented reason for a deviation, or None when the snapshot has none."""
        reasons = (self.profiles.get(provider) or {}).get("deviations") or {}
        reason = reasons.get(check)
        return str(reason) if reason is not None else None

    def model(self, provider: str, model: str) -> ModelSnapshot | None:
        """Family, free flag and price of a provider x model, or None when not captured."""
        doc = self.profiles.get(provider)
        if doc is None:
            return None
        models = doc.get("models") or {}
        info = models.get(model)
        if info is None:
            info = next((m for m in models.values() if model in (m.get("id"), m.get("echo"))), None)
        if info is None:
            if doc.get("passthrough_models"):
                return ModelSnapshot(family=model, free=False, pricing=None)
            return None
        price = info.get("pricing")
        pricing = None
        if isinstance(price, dict):
            pricing = Pricing(
                input_per_mtok=float(price.get("input_per_mtok") or 0.0),
                output_per_mtok=float(price.get("output_per_mtok") or 0.0),
                input_per_kimage=float(price.get("input_per_kimage") or 0.0),
                source=str(price.get("source") or ""),
            )
        return ModelSnapshot(
            family=str(info.get("family") or model),
            free=bool(info.get("free", False)),
            pricing=pricing,
        )
