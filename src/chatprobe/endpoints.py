"""Custom endpoints (``--base-url URL --api-key-env VAR --model ID``) as profile files.

Every component resolves providers with ``load_profile(name_or_path)`` (the pytest plugin,
``plan.json`` read by locust children, the emulator), so a file path is what crosses process
boundaries: :func:`materialise_endpoint` writes the endpoint as a validated profile document
(:func:`endpoint_document`, the one builder) to a stable temporary location (same endpoint,
key variable and models -> same path), and :func:`record_profiles` copies the profile files a
run used into its results folder.

:func:`provider_refs` turns a command line's provider choices (shipped names, profile files,
or one ``--base-url`` endpoint) into what to pass on. The click options that feed it live in
:mod:`chatprobe.commands.options`; this module knows nothing about click.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from chatprobe.errors import ChatprobeError, MissingKeyError
from chatprobe.profiles import list_profiles, load_profile

__all__ = [
    "PROFILE_DIR_ENV",
    "custom_endpoint_name",
    "endpoint_document",
    "is_profile_file",
    "materialise_endpoint",
    "profile_dir",
    "provider_refs",
    "record_profiles",
]

PROFILE_DIR_ENV = "CHATPROBE_PROFILE_DIR"
"""Where materialised endpoint profiles go (default: ``<tmp>/chatprobe-profiles``)."""

_VARIABLE = re.compile(r"^[A-Z_][A-Z0-9_]*$")


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
