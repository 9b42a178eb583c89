"""Reading rendered reports back in tests: HTML tables by id, Markdown tables, text."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

__all__ = ["TableParser", "md_tables", "md_unescape", "norm"]


class TableParser(HTMLParser):
    """Collects every <table> as {id: [[cell text, ...], ...]} (header row first); the ids of
    tables folded inside ``<details class="fold">`` go to ``folded``."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.folded: set[str] = set()
        self._details = 0
        self._id: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "details":
            self._details += 1
        elif tag == "table":
            self._id = dict(attrs).get("id") or f"t{len(self.tables)}"
            self.tables[self._id] = []
            if self._details:
                self.folded.add(self._id)
        elif tag == "tr" and self._id:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "details":
            self._details -= 1
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._id:
            self.tables[self._id].append(self._row)
            self._row = None
        elif tag == "table":
            self._id = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def md_tables(text: str) -> list[list[list[str]]]:
    """Markdown tables as rows of unescaped cell text (separator rows dropped)."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            if all(re.fullmatch(r"\s*-+:?\s*", c) for c in cells):
                continue
            current.append([md_unescape(c.strip()) for c in cells])
        elif current:
            tables.append(current)
            current = []
    return tables


def md_unescape(cell: str) -> str:
    return html.unescape(re.sub(r"\\(.)", r"\1", cell))


def norm(text: str) -> str:
    return " ".join(text.split())
