"""``chatprobe run``'s closing recap: what its steps found, in a few lines.

The steps' own output (pytest's progress, the matrix, the load tables) scrolls past on
stderr; the recap says what a user needs from it: the contract tally, failures first
(:func:`chatprobe.report.headline.contract_tally`), and one line per load target with the
figures ``summary.json`` holds (TTFB beside TTFT). stdout keeps only the report's path.
"""

from __future__ import annotations

from pathlib import Path

from chatprobe.errors import ChatprobeError
from chatprobe.output.load import summary_row, target_label
from chatprobe.results.folder import CONTRACT, SUMMARY, read_json

__all__ = ["recap_lines"]


def recap_lines(folders: list[Path]) -> list[str]:
    """The recap of a run's results folders (contract runs first, then load runs)."""
    from chatprobe.output.contract import contract_figures_of
    from chatprobe.report.headline import contract_tally

    checks: list[str] = []
    loads: list[str] = []
    for folder in sorted(folders):
        try:
            contract = read_json(folder / CONTRACT) if (folder / CONTRACT).is_file() else None
            summary = read_json(folder / SUMMARY) if (folder / SUMMARY).is_file() else None
        except ChatprobeError:
            continue  # the report says what is wrong with a folder
        if isinstance(contract, dict):
            source = contract.get("data_source") or "?"
            tally = " ".join(contract_tally(contract_figures_of(contract)))
            checks.append(f"contract checks ({source}): {tally}")
        if isinstance(summary, dict):
            for g in summary.get("groups") or []:
                cells = summary_row(g)
                loads.append(
                    f"load ({summary.get('data_source') or '?'}): {target_label(summary, g)}: "
                    f"{cells['requests']} requests, {cells['errors']} errors, TTFB p50 "
                    f"{cells['TTFB p50']} ms, TTFT p50 {cells['TTFT p50']} ms, "
                    f"ITL p50 {cells['ITL p50']} ms"
                )
    return checks + loads
