"""Keep secrets off disk: scrub headers, bodies and free text before anything is written.

Two layers: header names that always carry credentials are redacted whatever their value,
and every key chatprobe reads from the environment is registered here, so its exact value
is replaced wherever it appears (a provider echoing the key in an error message, a URL with
``?key=``, an exception string). A pattern pass catches key-shaped strings that were never
registered, such as a key pasted into a suite file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = [
    "REDACTED",
    "SENSITIVE_HEADERS",
    "register_secret",
    "scrub_headers",
    "scrub_obj",
    "scrub_text",
]

REDACTED = "<redacted>"

SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "cookie",
        "set-cookie",
        "x-goog-api-key",
        "openai-organization",
        "openai-project",
    }
)

# Key-shaped strings: OpenAI/OpenRouter style sk-..., and bearer tokens.
_PATTERNS = (
    re.compile(r"sk-(?:or-v1-)?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/\-]{8,}=*"),
)

_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret so every later scrub replaces it (values under 6 chars are ignored)."""
    if value and len(value) >= 6:
        _secrets.add(value)


def scrub_text(text: str) -> str:
    """Replace registered secrets and key-shaped strings in ``text``."""
    if not text:
        return text
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


def scrub_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Return a copy with credential headers redacted and other values text-scrubbed."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in items:
        if name.lower() in SENSITIVE_HEADERS:
            out[name] = REDACTED
        else:
            out[name] = scrub_text(str(value))
    return out


def scrub_obj(obj: object) -> object:
    """Scrub every string inside a JSON-like structure (dicts, lists, strings)."""
    if isinstance(obj, str):
        return scrub_text(obj)
    if isinstance(obj, dict):
        return {k: scrub_obj(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [scrub_obj(v) for v in obj]
    return obj
