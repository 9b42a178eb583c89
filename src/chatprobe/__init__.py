"""chatprobe: conformance and load testing for OpenAI-compatible chat-completion providers.

The public names below are imported lazily (PEP 562): ``import chatprobe`` stays cheap, which
matters because the pytest plugin (``chatprobe.pytest_plugin.plugin``) is loaded into every
pytest run and must not pull in httpx and jsonschema until a suite file is collected.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from chatprobe._version import __version__

_EXPORTS = {
    "ChatClient": "chatprobe.client",
    "Timeouts": "chatprobe.transport",
    "TLSConfig": "chatprobe.transport",
    "ProviderProfile": "chatprobe.profiles",
    "custom_profile": "chatprobe.profiles",
    "list_profiles": "chatprobe.profiles",
    "load_profile": "chatprobe.profiles",
    "ErrorClass": "chatprobe.record",
    "RequestRecord": "chatprobe.record",
    "Comment": "chatprobe.sse",
    "SSEDecoder": "chatprobe.sse",
    "ServerSentEvent": "chatprobe.sse",
}

__all__ = [
    "ChatClient",
    "Comment",
    "ErrorClass",
    "ProviderProfile",
    "RequestRecord",
    "SSEDecoder",
    "ServerSentEvent",
    "TLSConfig",
    "Timeouts",
    "__version__",
    "custom_profile",
    "list_profiles",
    "load_profile",
]

if TYPE_CHECKING:
    from chatprobe.client import ChatClient
    from chatprobe.profiles import ProviderProfile, custom_profile, list_profiles, load_profile
    from chatprobe.record import ErrorClass, RequestRecord
    from chatprobe.sse import Comment, ServerSentEvent, SSEDecoder
    from chatprobe.transport import Timeouts, TLSConfig


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'chatprobe' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
