"""docs/results-format.md says what the code writes: the sample fields (name, type, unit, in
order), the folder's file names, and every key of a summary group."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from chatprobe.metrics import Cost, GroupFigures, HeldBack, RateLimited, Slo, StageFigures
from chatprobe.results import SAMPLE_FIELDS, folder

DOC = Path(__file__).parents[1] / "docs" / "results-format.md"


def _section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _table(section: str) -> list[list[str]]:
    rows = []
    for line in section.splitlines():
        if line.startswith("| `"):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            rows.append([c.strip().replace("\\|", "|") for c in cells])
    return rows


def test_sample_fields_table_matches_the_definition() -> None:
    rows = _table(_section("Sample fields"))
    documented = [(name.strip("`"), kind, unit) for name, kind, unit, _meaning in rows]
    defined = [(f.name, f.type, f.unit) for f in SAMPLE_FIELDS]
    assert documented == defined
    assert all(meaning for *_, meaning in rows)


def test_every_file_of_a_folder_is_documented() -> None:
    files = DOC.read_text().split("## Sample fields")[0]  # the file table comes first
    names = [
        value
        for name, value in vars(folder).items()
        if name.isupper() and isinstance(value, str) and "." in value
    ]
    assert len(names) >= 9
    for name in names:
        assert f"`{name}`" in files, name
    assert "`locust_*.csv`" in files  # LOCUST_CSV_PREFIX


def test_every_summary_key_is_documented() -> None:
    summary = _section("`summary.json`")
    for cls in (GroupFigures, Cost, Slo, RateLimited, HeldBack, StageFigures):
        for f in dataclasses.fields(cls):
            if f.metadata.get("json", True):
                assert re.search(rf"\b{f.name}\b", summary), (cls.__name__, f.name)
