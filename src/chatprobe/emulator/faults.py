"""Fault kinds the emulator can inject, and how they are asked for.

Per request, with the header ``X-Chatprobe-Fault: kind[,kind...]`` where each item may carry
a parameter, ``kind=param`` (``stall=2``: two seconds). By configured rates
(``--fault KIND[:PARAM]=RATE``): for each request one draw in [0, 1), a function of ``(seed,
request sequence)``, picks at most one configured fault (rates add up to <= 1). The draws
are a golden-ratio sequence rather than independent, so any run of consecutive requests
meets each rate within about two requests (10 % of 100 streams is 8 to 12, never 4 or 16).

Each kind, what the emulator sends, and the default parameter:

=====================  =============================================================  ======
kind (aliases)         what is sent                                                   param
=====================  =============================================================  ======
rate_limit_429 (429)   429 in the provider's envelope, ``Retry-After``                 1 s
server_500 (500)       500 in the provider's envelope                                 -
bad_gateway_502 (502)  502 in the provider's envelope                                 -
unavailable_503 (503)  503 in the provider's envelope, ``Retry-After``                 1 s
no_credits             out of credits: 402 (OpenRouter), 403 (AI/ML API), 429 (openai) -
html_error             a proxy's HTML error page (``text/html``)                      502
slow_headers           wait before the status line                                    1 s
stall                  no bytes at all for N s, half-way through the body             2 s
reset_midstream        TCP reset (SO_LINGER 0) after the first N content chunks       half
truncated_body         plain: a ``Content-Length`` larger than the body, then close;  half
                       stream: connection closed without the terminating chunk
truncated_stream       stream: HTTP-complete, but events stop half-way (no finish,    half
                       no ``[DONE]``)
malformed_json_chunk   one data event (plain: the body) is cut-off JSON               half
missing_done           stream ends without ``data: [DONE]``                           -
midstream_error        stream: after N chunks, a data event with a top-level          half
                       ``error`` and ``finish_reason: "error"`` (OpenRouter style),
                       HTTP 200; plain: a 200 body holding ``error``
empty_200              200 with an empty body (stream: no events at all)              -
stream_rule            a stream that breaks one rule of the stream contract (below),  RULE
                       from half-way on; everything else about it is right
=====================  =============================================================  ======

"half" means half the content chunks (at least one is sent first). Stream-only kinds are
ignored, and not recorded, for plain requests.

Stream rules (``stream_rule=RULE`` in the header, ``--fault stream_rule:RULE=RATE``), each
breaking exactly one check a client can run on every stream under load:

=================  =========================================================================
rule               what the stream does
=================  =========================================================================
id_changes         chunks from half-way on carry another ``id``
created_changes    chunks from half-way on carry another ``created``
two_finish_reasons the first choice's finish chunk also comes half-way (then the content
                   goes on and the finish chunk comes again at the end)
usage_not_final    a usage chunk half-way, before the content ends
missing_done       no ``data: [DONE]``
error_in_200       an error event half-way inside the HTTP 200 stream (``midstream_error``)
=================  =========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from chatprobe.errors import ConfigError

__all__ = [
    "ALIASES",
    "FAULT_KINDS",
    "STATUS_FAULTS",
    "STREAM_ONLY",
    "STREAM_RULES",
    "Fault",
    "FaultRate",
    "parse_fault_header",
    "parse_fault_rate",
]

FAULT_KINDS: tuple[str, ...] = (
    "rate_limit_429",
    "server_500",
    "bad_gateway_502",
    "unavailable_503",
    "no_credits",
    "html_error",
    "slow_headers",
    "stall",
    "reset_midstream",
    "truncated_body",
    "truncated_stream",
    "malformed_json_chunk",
    "missing_done",
    "midstream_error",
    "empty_200",
    "stream_rule",
)
STREAM_RULES: tuple[str, ...] = (
    "id_changes",
    "created_changes",
    "two_finish_reasons",
    "usage_not_final",
    "missing_done",
    "error_in_200",
)
ALIASES = {
    "429": "rate_limit_429",
    "500": "server_500",
    "502": "bad_gateway_502",
    "503": "unavailable_503",
}
STATUS_FAULTS = frozenset(
    {
        "rate_limit_429",
        "server_500",
        "bad_gateway_502",
        "unavailable_503",
        "no_credits",
        "html_error",
    }
)
STREAM_ONLY = frozenset({"truncated_stream", "missing_done", "stream_rule"})
# Parameters are seconds for these kinds, a chunk index for the "half" kinds, a status code
# for html_error.
_SECONDS = frozenset({"rate_limit_429", "unavailable_503", "slow_headers", "stall"})


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault to apply to one request; ``param`` None means the kind's default.

    ``rule`` is the broken rule of a ``stream_rule`` fault (:data:`STREAM_RULES`).
    """

    kind: str
    param: float | None = None
    rule: str | None = None

    def __str__(self) -> str:
        if self.rule is not None:
            return f"{self.kind}={self.rule}"
        return self.kind if self.param is None else f"{self.kind}={self.param:g}"


@dataclass(frozen=True, slots=True)
class FaultRate:
    """A fault injected into a share ``rate`` (0..1) of requests."""

    fault: Fault
    rate: float

    def __str__(self) -> str:
        fault = self.fault
        param = "" if fault.param is None else f":{fault.param:g}"
        if fault.rule is not None:
            param = f":{fault.rule}"
        return f"{fault.kind}{param}={self.rate:g}"


def _kind(name: str) -> str | None:
    name = name.strip().lower()
    name = ALIASES.get(name, name)
    return name if name in FAULT_KINDS else None


def _fault(kind: str, text: str) -> Fault:
    """A fault of ``kind`` with its parameter from ``text``; ValueError when it is bad."""
    if kind == "stream_rule":
        rule = text.strip().lower()
        if rule not in STREAM_RULES:
            raise ValueError(text)
        return Fault(kind, rule=rule)
    return Fault(kind, _param(kind, text))


def _param(kind: str, text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    value = float(text)  # ValueError is handled by the callers
    if value < 0 or value != value:
        raise ValueError(text)
    if kind not in _SECONDS:
        value = float(int(value))
    return value


def parse_fault_header(value: str) -> tuple[list[Fault], list[str]]:
    """Faults from an ``X-Chatprobe-Fault`` value, and the items that were not understood."""
    faults: list[Fault] = []
    unknown: list[str] = []
    for item in value.split(","):
        if not item.strip():
            continue
        name, _, param = item.partition("=")
        kind = _kind(name)
        if kind is None:
            unknown.append(item.strip())
            continue
        try:
            faults.append(_fault(kind, param))
        except ValueError:
            unknown.append(item.strip())
    return faults, unknown


def parse_fault_rate(text: str, *, source: str = "--fault") -> FaultRate:
    """``KIND[:PARAM]=RATE`` (e.g. ``429=0.1``, ``stall:3=0.01``) from the command line."""
    spec, sep, rate_text = text.partition("=")
    name, _, param = spec.partition(":")
    kind = _kind(name)
    known = ", ".join([*FAULT_KINDS, *ALIASES])
    if kind is None:
        raise ConfigError(f"unknown fault kind {name.strip()!r} (known: {known})", field=source)
    if not sep:
        raise ConfigError(f"expected KIND[:PARAM]=RATE, got {text!r}", field=source)
    try:
        rate = float(rate_text)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"rate must be a number in 0..1, got {rate_text!r}", field=source)
    try:
        fault = _fault(kind, param)
    except ValueError:
        hint = f" (rules: {', '.join(STREAM_RULES)})" if kind == "stream_rule" else ""
        raise ConfigError(f"bad parameter {param!r} for fault {kind}{hint}", field=source) from None
    return FaultRate(fault, rate)
