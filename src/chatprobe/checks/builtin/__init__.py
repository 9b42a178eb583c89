"""The built-in checks, one module per concern; importing this package registers them all.

Sources are cited in each check's ``source``: ``OpenAI ref`` is
``shared/reference/openai-chat-completions.openapi.yaml`` (a JSON pointer into it follows),
``seed NNN`` a file in ``shared/seeds/``, ``DESIGN`` a line of ``shared/DESIGN.md``, and
``profile`` a field of ``specs/providers/<name>.yaml``.
"""

from chatprobe.checks.builtin import content, envelope, expect, http, models, schema, stream

__all__ = ["content", "envelope", "expect", "http", "models", "schema", "stream"]
