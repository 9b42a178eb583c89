"""Errors chatprobe raises for things a user can fix.

Everything a user can cause is a :class:`ChatprobeError`; the CLI prints ``str(exc)`` on one
line and exits non-zero, never a traceback. Provider misbehaviour is *not* an exception: it
is classified into a record's ``error_class`` (see :mod:`chatprobe.record`) and counted.

::

    ChatprobeError
    ├── ConfigError          a spec, suite, profile, scenario or results file is wrong:
    │                        carries path, line and field
    ├── UnknownNameError     an unknown provider, model, check, schema level or kind
    ├── MissingKeyError      the API-key environment variable is not set
    └── CassetteError        replay asked for a recording that is missing or unreadable
"""

from __future__ import annotations

__all__ = [
    "CassetteError",
    "ChatprobeError",
    "ConfigError",
    "MissingKeyError",
    "UnknownNameError",
]


class ChatprobeError(Exception):
    """Base class: a user-fixable problem with a one-line message."""


class ConfigError(ChatprobeError):
    """A configuration file is invalid; the message names file, line and field."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.detail = message
        where = ""
        if path:
            where = f"{path}:{line}: " if line else f"{path}: "
        at = f"{field}: " if field else ""
        super().__init__(f"{where}{at}{message}")


class UnknownNameError(ChatprobeError):
    """An unknown name was asked for; the message lists the known ones."""

    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]) -> None:
        self.kind = kind
        self.name = name
        self.known = list(known)
        listing = ", ".join(sorted(self.known)) or "none"
        super().__init__(f"unknown {kind} {name!r} (known: {listing})")


class MissingKeyError(ChatprobeError):
    """The provider's API-key variable is not set."""

    def __init__(self, variable: str, provider: str, hint: str = "") -> None:
        self.variable = variable
        self.provider = provider
        extra = f" {hint}" if hint else ""
        super().__init__(
            f"environment variable {variable} is not set: provider {provider!r} needs an "
            f"API key for live calls or recording.{extra}"
        )


class CassetteError(ChatprobeError):
    """A cassette needed for replay is missing or corrupt."""
