"""Command-line options shared by every command that talks to providers.

One way to name providers everywhere: ``--provider NAME`` (a shipped profile),
``--provider path/to/profile.yaml`` (a custom profile file), or ``--base-url URL
--api-key-env VAR --model ID`` for any OpenAI-compatible endpoint without a profile.

A ``--base-url`` endpoint is *materialised* as a profile file
(:func:`materialise_endpoint`): every component resolves providers with
``load_profile(name_or_path)`` (the pytest plugin, ``plan.json`` read by locust children,
the emulator), so a file path is what crosses process boundaries. The file is written to a
stable temporary location (same endpoint, key variable and models -> same path) and, with
:func:`record_profiles`, copied into the results folder of the run that used it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
import yaml

from chatprobe.errors import ChatprobeError, MissingKeyError
from chatprobe.profiles import ProviderProfile, list_profiles, load_profile

__all__ = [
    "custom_endpoint_name",
    "is_profile_file",
    "materialise_endpoint",
    "provider_options",
    "provider_refs",
    "record_profiles",
    "resolve_providers",
    "transport_options",
]

F = TypeVar("F", bound=Callable[..., Any])

PROFILE_DIR_ENV = "CHATPROBE_PROFILE_DIR"
"""Where materialised endpoint profiles go (default: ``<tmp>/chatprobe-profiles``)."""

_VARIABLE = re.compile(r"^[A-Z_][A-Z0-9_]*$")


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
            help="Canonical model name or provider model id (repeatable). With --base-url: "
            "the model id(s) the endpoint serves (required).",
        ),
        click.option(
            "--base-url",
            default=None,
            metavar="URL",
            help="Any OpenAI-compatible endpoint (e.g. http://localhost:8000/v1), used instead "
            "of a profile; needs --api-key-env and --model.",
        ),
        click.option(
            "--api-key-env",
            default=None,
            metavar="VAR",
            help="Environment variable holding the key for --base-url (set it to any value "
            "for a server without keys).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


# ---------------------------------------------------------------------------- materialising


def custom_endpoint_name(base_url: str) -> str:
    """A profile name from the URL's host and port: ``http://localhost:8000/v1`` ->
    ``localhost-8000``; it matches the profile schema's name pattern and never shadows a
    shipped profile."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "endpoint").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    raw = f"{host}-{port}" if port else host
    name = re.sub(r"[^a-z0-9_-]+", "-", raw).strip("-_") or "endpoint"
    if not name[0].isalnum():
        name = f"endpoint-{name}"
    if name in list_profiles():
        name = f"{name}-custom"
    return name


def _normalise_url(base_url: str) -> str:
    url = base_url.strip().rstrip("/")
    if url.endswith("/chat/completions"):  # the full endpoint pasted by mistake
        url = url[: -len("/chat/completions")]
    if not url.startswith(("http://", "https://")) or not urlsplit(url).hostname:
        raise ChatprobeError(
            f"--base-url must be an http:// or https:// URL such as http://localhost:8000/v1, "
            f"got {base_url!r}"
        )
    return url


def _check_endpoint_args(base_url: str, api_key_env: str | None, models: Sequence[str]) -> None:
    if not api_key_env:
        raise ChatprobeError(
            "--base-url needs --api-key-env VAR: the environment variable holding the "
            "endpoint's key (for a server without keys, set it to any value)"
        )
    if not _VARIABLE.match(api_key_env):
        raise ChatprobeError(
            f"--api-key-env takes the NAME of an environment variable (upper case, e.g. "
            f"MY_API_KEY), got {api_key_env!r}"
        )
    if not models:
        raise ChatprobeError(
            "--base-url needs --model ID: the model id the endpoint serves (repeatable)"
        )


def profile_dir() -> Path:
    """Where materialised profiles are written (``$CHATPROBE_PROFILE_DIR`` or the temp dir)."""
    configured = os.environ.get(PROFILE_DIR_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "chatprobe-profiles"


def endpoint_document(base_url: str, api_key_env: str, models: Sequence[str]) -> dict[str, Any]:
    """The profile of a plain OpenAI-compatible endpoint: what OpenAI documents, nothing more."""
    url = _normalise_url(base_url)
    name = custom_endpoint_name(url)
    return {
        "name": name,
        "title": f"{name} (custom endpoint {url})",
        "docs": ["OpenAI chat completions reference (the endpoint claims compatibility)"],
        "base_url": url,
        "api_key_env": api_key_env,
        "schema_level": "openai-strict",
        "custom_endpoint": True,
        "conventions": {
            "success_status": [200],
            "error_envelope": "openai",
            "stream_usage": "include_usage",
        },
        "models": {model: {"id": model} for model in dict.fromkeys(models)},
        "deviations": {},
    }


def materialise_endpoint(
    base_url: str, api_key_env: str | None, models: Sequence[str], *, require_key: bool = True
) -> Path:
    """Write ``--base-url/--api-key-env/--model`` as a validated profile file; return its path.

    The path is stable: the same URL, variable and models always give the same file (the name
    carries a hash of the content), so parallel runs against different endpoints or models
    never overwrite each other. The key variable must be set (``MissingKeyError`` naming it,
    before anything starts) unless ``require_key`` is False.
    """
    _check_endpoint_args(base_url, api_key_env, models)
    assert api_key_env is not None
    document = endpoint_document(base_url, api_key_env, models)
    text = (
        f"# Written by chatprobe for --base-url {document['base_url']} --api-key-env "
        f"{api_key_env}: a plain OpenAI-compatible endpoint.\n# To document deviations, copy "
        "this file, add `deviations:` and pass it with --provider FILE.\n"
        + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    )
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    folder = profile_dir()
    path = folder / f"{document['name']}-{digest}.yaml"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)  # readers (other processes) never see half a file
    profile = load_profile(str(path))  # validated like any profile file
    if require_key and profile.api_key() is None:
        raise MissingKeyError(
            api_key_env,
            profile.name,
            f"For a server that takes no key, set it to any value (export {api_key_env}=none).",
        )
    return path


def is_profile_file(ref: str) -> bool:
    """Whether a ``--provider`` value names a file rather than a shipped profile."""
    candidate = Path(ref)
    return candidate.suffix in (".yaml", ".yml") or candidate.is_file()


def provider_refs(
    providers: Sequence[str],
    base_url: str | None = None,
    api_key_env: str | None = None,
    models: Sequence[str] = (),
    *,
    require_key: bool = True,
) -> list[str]:
    """What to pass on as ``--provider`` (names or profile paths) for the command line's
    choices: the given ones, or the materialised ``--base-url`` endpoint. Empty: the
    command's default (every shipped profile)."""
    if base_url:
        if providers:
            raise ChatprobeError("give --provider or --base-url, not both")
        return [str(materialise_endpoint(base_url, api_key_env, models, require_key=require_key))]
    if api_key_env:
        raise ChatprobeError("--api-key-env is only used with --base-url URL")
    for ref in providers:
        load_profile(ref)  # unknown names and broken files fail here, in one line
    return list(providers)


def resolve_providers(
    providers: Sequence[str],
    base_url: str | None = None,
    api_key_env: str | None = None,
    models: Sequence[str] = (),
) -> list[ProviderProfile]:
    """Profiles for the command line's choices, in the order given."""
    refs = provider_refs(providers, base_url, api_key_env, models) or list_profiles()
    profiles = [load_profile(ref) for ref in refs]
    for model in models:
        if not any(_serves(p, model) for p in profiles):
            # Let the first profile raise the precise "unknown model" error.
            profiles[0].model(model)
    return profiles


def record_profiles(run_dir: Path, refs: Sequence[str]) -> list[Path]:
    """Copy the profile files among ``refs`` (not shipped names) into ``run_dir``, for the
    record: ``<run_dir>/profile-<name>.yaml``."""
    copied = []
    for ref in refs:
        if not is_profile_file(ref):
            continue
        profile = load_profile(ref)
        target = run_dir / f"profile-{profile.name}.yaml"
        shutil.copyfile(ref, target)
        copied.append(target)
    return copied


def _serves(profile: ProviderProfile, model: str) -> bool:
    try:
        profile.model(model)
    except ChatprobeError:
        return False
    return True


# ---------------------------------------------------------------------------- transport


def _timeout_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from chatprobe.durations import parse_timeout

    parse_timeout(value, what=param.opts[0])  # a ConfigError: one line, exit 2
    return value


_TIMEOUT_HELP = {
    "connect": "TCP connect and TLS handshake",
    "first_byte": "request sent until the response head arrives",
    "idle": "longest gap between body bytes (a stall) before timeout_idle",
    "total": "the whole exchange",
}


def transport_options(func: F) -> F:
    """Add ``--ca-bundle``, ``--insecure`` and the four timeouts to a command; the command
    receives them as one ``transport`` argument (:class:`chatprobe.transport.TransportOptions`).
    """
    from chatprobe.transport import DEFAULT_TIMEOUTS, TIMEOUT_FIELDS, TransportOptions

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(f"{name}_timeout") for name in TIMEOUT_FIELDS}
        kwargs["transport"] = TransportOptions(
            ca_bundle=kwargs.pop("ca_bundle"),
            insecure=kwargs.pop("insecure"),
            timeouts={name: value for name, value in given.items() if value is not None},
        )
        return func(*args, **kwargs)

    options = [
        click.option(
            "--ca-bundle",
            default=None,
            metavar="PATH",
            help="PEM file of CA certificates to trust instead of the system's (a company CA, "
            "a self-signed server). Default: $SSL_CERT_FILE, else $REQUESTS_CA_BUNDLE, else "
            "the system store.",
        ),
        click.option(
            "--insecure",
            is_flag=True,
            help="Do not verify TLS certificates at all (never against a provider you pay).",
        ),
    ]
    for name in TIMEOUT_FIELDS:
        default = getattr(DEFAULT_TIMEOUTS, name)
        options.append(
            click.option(
                f"--{name.replace('_', '-')}-timeout",
                f"{name}_timeout",
                default=None,
                metavar="DURATION",
                callback=_timeout_value,
                help=f"Timeout: {_TIMEOUT_HELP[name]}; seconds or 500ms, 2s, 1m; none: no "
                f"limit. [default: {'none' if default is None else f'{default:g}s'}, or the "
                "scenario's]",
            )
        )
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]
