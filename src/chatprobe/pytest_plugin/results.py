"""Contract results: the ``contract.json`` document and the one-line terminal summary.

Format: ``docs/results-format.md`` (``contract.json``). Beyond the documented keys, each result
carries ``output_excerpt`` (documented) and ``id``, ``message``, ``checks`` (check ->
pass|warn|fail|deviation|expected|skip), ``data_source``, ``cassette``, ``status``,
``error_class`` and ``source``; the document adds
``counts`` (outcome -> n), ``warnings`` (provider -> check -> n) and ``display_names``
(provider id -> what people call it: the naming rule of :mod:`chatprobe.endpoints`).

Everything here works on the entries themselves (``CaseResult.to_dict()``), the plain data
that travels from xdist workers on their reports, so a parallel run writes what a serial
one does.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "build_contract",
    "data_source_of",
    "display_names_of",
    "summary_line",
    "write_contract",
]

SCHEMA_VERSION = 1


Entry = Mapping[str, Any]


def data_source_of(results: Iterable[Entry]) -> str:
    sources = sorted({str(r["data_source"]) for r in results if r.get("data_source")})
    if not sources:
        return "none"
    return sources[0] if len(sources) == 1 else "mixed: " + ", ".join(sources)


def display_names_of(results: Iterable[Entry], refs: Mapping[str, str]) -> dict[str, str]:
    """Provider id -> display name for the providers in ``results``; ``refs`` maps an id to
    what :func:`chatprobe.profiles.load_profile` takes (a profile file for custom ones)."""
    from chatprobe.errors import ChatprobeError
    from chatprobe.profiles import load_profile

    shown: dict[str, str] = {}
    for provider in dict.fromkeys(str(r["provider"]) for r in results if r.get("provider")):
        try:
            shown[provider] = load_profile(refs.get(provider, provider)).display_name
        except ChatprobeError:
            shown[provider] = provider
    return shown


def build_contract(
    results: Sequence[Entry], display_names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    from chatprobe.checks import registered, worst

    checks = registered()
    cells: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    warnings: dict[str, Counter[str]] = defaultdict(Counter)
    for result in results:
        provider = result.get("provider")
        if provider is None:
            continue  # a suite that did not load judged nothing
        for name, status in (result.get("checks") or {}).items():
            if status == "expected":
                continue  # a fault the case injected on purpose says nothing about the provider
            cells[provider][name].append(status)
            if status == "warn":
                warnings[provider][name] += 1
    matrix = {
        provider: {name: worst(by_check.get(name, [])) for name in checks}
        for provider, by_check in sorted(cells.items())
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "data_source": data_source_of(results),
        "checks": {name: chk.describe() for name, chk in checks.items()},
        "results": [dict(r) for r in results],
        "matrix": matrix,
        "counts": dict(sorted(Counter(r["outcome"] for r in results).items())),
        "warnings": {p: dict(sorted(c.items())) for p, c in sorted(warnings.items())},
        "display_names": {p: (display_names or {}).get(p, p) for p in matrix},
    }


def write_contract(
    path: Path, results: Sequence[Entry], display_names: Mapping[str, str] | None = None
) -> Path:
    """Write ``contract.json`` atomically, scrubbed (``chatprobe.results``)."""
    from chatprobe.results import write_json_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(path, build_contract(results, display_names))


def summary_line(results: Sequence[Entry]) -> str:
    """The session's tally, failures first (:func:`chatprobe.report.headline.contract_tally`):
    ``chatprobe: 527 cases conform to their provider's documented contract, 521 of them with
    documented deviations from OpenAI: status_openai 273, ... Data: replayed.``"""
    from chatprobe.metrics import contract_figures
    from chatprobe.report.headline import contract_tally

    tally = " ".join(contract_tally(contract_figures(results)))
    return f"chatprobe: {tally} Data: {data_source_of(results)}."
