"""What a round sends: contract cases and latency probes, each with a fresh nonce.

A *round* is every probe of one target, sent one after another (or ``parallel`` at a time):

* **contract probes**: the cases of the monitor suite (``loadtests/monitor.yaml`` unless
  ``--suite`` names another; ``--case`` picks some) for the target's provider and model,
  judged by the registered checks exactly as ``chatprobe check`` judges them;
* **latency probes** (``latency-<N>``): one streamed request per input size (default 100
  and 1,000 tokens) with ``stream_options.include_usage`` and at most
  :data:`LATENCY_MAX_TOKENS` output tokens. The prompt is built to N tokens by
  chatprobe's tokenizer (:mod:`chatprobe.tokens`, cl100k_base; other models' tokenizers
  differ a little); the provider's reported ``prompt_tokens`` is stored beside the
  requested N (``input_tokens``).

Every probe's prompt starts with a fresh random nonce (``[probe 1a2b3c4d]``), so no prefix
cache (vLLM's automatic prefix caching, a provider's prompt cache) can serve a probe from an
earlier one and flatter its TTFT. A contract case gets the nonce in front of its first
message's text (cases sending a raw body are sent as they are).

Uptime counts the probes that expect success (:mod:`chatprobe.monitor.uptime`): every latency
probe, and the contract cases with a valid key, no injected fault and an expected success
status. An error case (a wrong key) is judged by its checks but is not counted.
"""

from __future__ import annotations

import copy
import dataclasses
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatprobe.checks import CheckContext, Evaluation, evaluate
from chatprobe.client import ChatClient
from chatprobe.errors import ConfigError
from chatprobe.profiles import ProviderProfile
from chatprobe.record import ErrorClass, RequestRecord
from chatprobe.results.samples import build_sample
from chatprobe.suites.model import INVALID_KEY, CaseRun
from chatprobe.suites.runner import FAULT_HEADER
from chatprobe.tokens import count_tokens, text_of_tokens

__all__ = [
    "DEFAULT_SIZES",
    "LATENCY_MAX_TOKENS",
    "MONITOR_SUITE",
    "ProbeResult",
    "ProbeSpec",
    "contract_specs",
    "latency_body",
    "latency_name",
    "new_nonce",
    "round_specs",
    "run_probe",
    "unavailable",
]

MONITOR_SUITE = "monitor.yaml"
"""The built-in monitor suite, in the built-in ``loadtests/`` folder (not in ``suites/``:
``chatprobe check`` does not run it)."""
DEFAULT_SIZES = (100, 1000)
"""Latency probes' input sizes in (approximate) tokens."""
LATENCY_MAX_TOKENS = 64
"""Output limit of a latency probe: enough tokens for ITL, few enough to stay cheap."""
SCENARIO = "monitor"  # the samples' scenario field
WORKER = "monitor"  # the samples' worker field


def latency_name(tokens: int) -> str:
    return f"latency-{tokens}"


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """One probe of a round."""

    kind: str  # contract | latency
    name: str
    case: CaseRun | None = None
    input_tokens: int | None = None

    @property
    def counted(self) -> bool:
        """Whether the probe expects success (counted in uptime, module docstring)."""
        if self.case is None:
            return True
        case = self.case
        return case.expect.status.success and case.api_key == "valid" and not case.fault


def round_specs(
    ref: str,
    model: str,
    *,
    suite: Path | str | None = None,
    cases: Sequence[str] = (),
    sizes: Sequence[int] = DEFAULT_SIZES,
    emulated: bool = False,
) -> list[ProbeSpec]:
    """A target's round: the suite's cases for ``ref`` x ``model`` (``cases`` picks some by
    name; a case that names no model is sent to the target's model), then one latency probe
    per size. Fault-injection cases need the emulator and are left out for a live target.
    Raises :class:`ConfigError` when a named case does not exist or nothing is left to
    send."""
    from chatprobe.paths import builtin
    from chatprobe.profiles import load_profile
    from chatprobe.suites import load_suite

    path = Path(suite) if suite is not None else builtin("loadtests") / MONITOR_SUITE
    profile = load_profile(ref)
    custom = [ref] if profile.custom_endpoint or Path(ref).suffix in (".yaml", ".yml") else []
    loaded = load_suite(path, custom=custom)
    unknown = [name for name in cases if name not in loaded.cases]
    if unknown:
        raise ConfigError(
            f"no case {unknown[0]!r} in the suite (cases: {', '.join(loaded.cases)})",
            path=str(path),
            field="--case",
        )
    info = profile.model(model)
    first = next(iter(profile.models), info.name)
    runs = []
    for name in loaded.cases:
        if cases and name not in cases:
            continue
        mine = [r for r in loaded.runs if r.provider == profile.name and r.case == name]
        exact = [r for r in mine if r.model == info.name]
        if exact:
            runs += exact
        elif mine and mine[0].model == first and mine[0].raw_body is None:
            # A case that names no model runs on the provider's first one: monitor it on
            # the target's model instead.
            body = None if mine[0].body is None else {**mine[0].body, "model": info.id}
            runs.append(dataclasses.replace(mine[0], model=info.name, model_id=info.id, body=body))
    runs = [r for r in runs if emulated or not r.fault]
    specs = contract_specs(runs)
    specs += [ProbeSpec("latency", latency_name(n), input_tokens=n) for n in sizes]
    if not specs:
        raise ConfigError(f"nothing to send to {profile.name}/{model}", path=str(path))
    return specs


def contract_specs(runs: Sequence[CaseRun]) -> list[ProbeSpec]:
    return [ProbeSpec("contract", run.case, case=run) for run in runs]


def new_nonce() -> str:
    return secrets.token_hex(4)


def latency_body(tokens: int, nonce: str, rng: random.Random) -> dict[str, Any]:
    """A streamed request of about ``tokens`` prompt tokens starting with the nonce."""
    head = f"[probe {nonce}] Read the notes below, then reply with one short sentence.\n\n"
    filler = text_of_tokens(max(1, tokens - count_tokens(head)), rng)
    return {
        "messages": [{"role": "user", "content": head + filler}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": LATENCY_MAX_TOKENS,
    }


def _with_nonce(body: dict[str, Any], nonce: str) -> dict[str, Any]:
    """``body`` with ``[probe NONCE]`` in front of its first message's text."""
    body = copy.deepcopy(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
        return body
    first = messages[0]
    tag = f"[probe {nonce}] "
    content = first.get("content")
    if isinstance(content, str):
        first["content"] = tag + content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                part["text"] = tag + part["text"]
                break
    return body


def unavailable(record: RequestRecord) -> bool:
    """Whether the exchange failed on the provider's side in a way that asks a polite client
    to stop for now: no response at all, a 5xx, or a 429."""
    return record.status is None or record.status >= 500 or record.status == 429


@dataclass(slots=True)
class ProbeResult:
    spec: ProbeSpec
    record: RequestRecord
    sample: dict[str, Any]
    evaluation: Evaluation | None = None
    nonce: str = ""

    @property
    def outcome(self) -> str:
        cls = self.record.error_class
        return "ok" if cls is None else cls.value

    @property
    def rate_limited(self) -> bool:
        return self.record.error_class is ErrorClass.RATE_LIMITED


def run_probe(
    client: ChatClient,
    spec: ProbeSpec,
    *,
    profile: ProviderProfile,
    model: str,
    api_key: str | None,
    emulated: bool,
    t_offset_s: float,
    rng: random.Random,
) -> ProbeResult:
    """Send one probe with a fresh nonce, judge it (contract probes) and build its sample.

    ``profile`` is the documented profile the checks judge against; ``client`` sends to
    wherever the target lives (the provider, or the emulator standing in for it).
    """
    nonce = new_nonce()
    evaluation = None
    if spec.case is None:
        body = latency_body(spec.input_tokens or DEFAULT_SIZES[0], nonce, rng)
        record = client.chat(body, model=model, api_key=api_key)
    else:
        case = spec.case
        key = {"valid": api_key or "", "invalid": INVALID_KEY, "missing": ""}[case.api_key]
        headers = dict(case.headers)
        if case.fault and emulated:
            headers[FAULT_HEADER] = ",".join(case.fault)
        if case.endpoint == "models":
            record = client.list_models(headers=headers, api_key=key)
        elif case.raw_body is not None:
            record = client.chat({}, headers=headers, api_key=key, raw_body=case.raw_body)
        else:
            body = _with_nonce(case.sent_body or {}, nonce)
            case = dataclasses.replace(case, body=body)
            record = client.chat(body, headers=headers, api_key=key)
        record.model = case.model
        record.model_id = record.model_id or case.model_id
        evaluation = evaluate(CheckContext.for_case(profile, case), record, case)
    record.model = model
    sample = build_sample(
        record,
        scenario=SCENARIO,
        stage=spec.name,
        users=1,
        worker=WORKER,
        t_offset_s=t_offset_s,
        warmup=False,
    )
    return ProbeResult(spec, record, sample, evaluation, nonce)
