"""Command-line options shared by every command that talks to providers.

One way to name providers everywhere: ``--provider NAME`` (a shipped profile),
``--provider path/to/profile.yaml`` (a custom profile file), or ``--base-url URL
--api-key-env VAR [--model ID]`` for any OpenAI-compatible endpoint without a profile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from chatprobe.errors import ChatprobeError
from chatprobe.profiles import ProviderProfile, custom_profile, list_profiles, load_profile

__all__ = ["provider_options", "resolve_providers"]

F = TypeVar("F", bound=Callable[..., Any])


def provider_options(func: F) -> F:
    """Add ``--provider``, ``--model``, ``--base-url`` and ``--api-key-env`` to a command."""
    options = [
        click.option(
            "--provider",
            "providers",
            multiple=True,
            metavar="NAME|FILE",
            help="Provider profile name (see `chatprobe providers`) or a profile YAML file. "
            "Repeatable. Default: every shipped profile.",
        ),
        click.option(
            "--model",
            "models",
            multiple=True,
            metavar="MODEL",
            help="Canonical model name or provider model id. Repeatable. Default: the "
            "profile's models.",
        ),
        click.option(
            "--base-url",
            default=None,
            metavar="URL",
            help="A custom OpenAI-compatible endpoint (e.g. https://host/v1), used instead of "
            "a profile.",
        ),
        click.option(
            "--api-key-env",
            default=None,
            metavar="VAR",
            help="Environment variable holding the key for --base-url.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def resolve_providers(
    providers: Sequence[str],
    base_url: str | None = None,
    api_key_env: str | None = None,
    models: Sequence[str] = (),
) -> list[ProviderProfile]:
    """Profiles for the command line's choices, in the order given."""
    if base_url:
        if not api_key_env:
            raise ChatprobeError("--base-url needs --api-key-env VAR naming the key variable")
        if not base_url.startswith(("http://", "https://")):
            raise ChatprobeError(f"--base-url must start with http:// or https://: {base_url}")
        return [custom_profile(base_url, api_key_env, models=list(models))]
    if api_key_env:
        raise ChatprobeError("--api-key-env is only used with --base-url")
    names = list(providers) or list_profiles()
    profiles = [load_profile(name) for name in names]
    for model in models:
        if not any(_serves(p, model) for p in profiles):
            # Let the first profile raise the precise "unknown model" error.
            profiles[0].model(model)
    return profiles


def _serves(profile: ProviderProfile, model: str) -> bool:
    try:
        profile.model(model)
    except ChatprobeError:
        return False
    return True
