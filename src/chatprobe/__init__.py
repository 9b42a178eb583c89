"""chatprobe: conformance and load testing for OpenAI-compatible chat-completion providers."""

from chatprobe.client import ChatClient, Timeouts
from chatprobe.profiles import ProviderProfile, custom_profile, list_profiles, load_profile
from chatprobe.record import ErrorClass, RequestRecord
from chatprobe.sse import Comment, ServerSentEvent, SSEDecoder

__version__ = "0.1.0"

__all__ = [
    "ChatClient",
    "Comment",
    "ErrorClass",
    "ProviderProfile",
    "RequestRecord",
    "SSEDecoder",
    "ServerSentEvent",
    "Timeouts",
    "__version__",
    "custom_profile",
    "list_profiles",
    "load_profile",
]
