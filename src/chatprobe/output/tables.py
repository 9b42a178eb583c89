"""Terminal tables that never cut an id.

rich folds or ellipsizes a cell when a table is wider than the console, and a console that
is not a terminal (a pipe, a CI log) is 80 columns wide: check names and
``provider/model`` labels came out as ``127-0-0-1-8731/g`` + ``oogle/gemini...``. So a
:class:`TextTable` is drawn with rich only on a terminal where it fits whole (its id
columns never wrap, its prose columns may); anywhere else it is laid out plainly: a title
line, a header, a dashed rule, one row per line, columns two spaces apart, right-aligned
numbers, nothing wrapped, folded or cut. A long row is then a long line, which is what a
log viewer, ``grep`` and ``cut`` expect.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from chatprobe.output import is_terminal

__all__ = ["Column", "TextTable", "print_lines", "print_table"]


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    align: str = "left"  # left | right | center
    prose: bool = False  # descriptions may wrap on a terminal; ids and figures never do


@dataclass
class TextTable:
    """A table of plain-text cells; ``style`` gives a rich style for a cell (terminal only)."""

    columns: list[Column]
    title: str = ""
    rows: list[list[str]] = field(default_factory=list)
    style: Callable[[int, str], str] | None = None  # (column index, text) -> rich style

    def add_row(self, *cells: object) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(["" if c is None else str(c) for c in cells])

    def plain(self) -> str:
        """The plain layout (module docstring); every cell whole."""
        widths = [
            max([len(col.header), *(len(row[k]) for row in self.rows)])
            for k, col in enumerate(self.columns)
        ]

        def line(cells: list[str]) -> str:
            out = []
            for k, (col, text) in enumerate(zip(self.columns, cells, strict=True)):
                last = k == len(cells) - 1
                if col.align == "right":
                    out.append(text.rjust(widths[k]))
                elif col.align == "center":
                    out.append(text.center(widths[k]))
                else:
                    out.append(text if last else text.ljust(widths[k]))
            return "  ".join(out).rstrip()

        lines = [self.title] if self.title else []
        lines.append(line([c.header for c in self.columns]))
        rule = [
            "-" * (len(col.header) if col.prose and k == len(widths) - 1 else w)
            for k, (col, w) in enumerate(zip(self.columns, widths, strict=True))
        ]  # a long last column of prose (a source) gets a rule as long as its header
        lines.append("  ".join(rule))
        lines += [line(row) for row in self.rows]
        return "\n".join(lines)

    def rich(self) -> Any:
        """The same table for rich: id columns never wrap, prose columns fold."""
        from rich.table import Table
        from rich.text import Text

        table = Table(title=self.title or None)
        for col in self.columns:
            table.add_column(
                col.header,
                justify=col.align,  # type: ignore[arg-type]
                no_wrap=not col.prose,
                overflow="fold",
                min_width=None if col.prose else len(col.header),
            )
        for row in self.rows:
            cells = []
            for k, text in enumerate(row):
                style = self.style(k, text) if self.style else ""
                cells.append(Text(text, style=style or ""))
            table.add_row(*cells)
        return table


PROSE_MIN = 12
"""The narrowest a prose column gets on a terminal before the plain layout is used."""


def _fits(table: TextTable, width: int) -> bool:
    """Does the rich table fit ``width`` columns with every id column whole? Each column
    takes its cells plus two of padding and one rule; prose columns may fold."""
    needed = 1
    for k, col in enumerate(table.columns):
        widest = max([len(col.header), *(len(row[k]) for row in table.rows)])
        needed += (min(widest, PROSE_MIN) if col.prose else widest) + 3
    return needed <= width


def print_table(table: TextTable, stream: TextIO | None = None) -> None:
    """Draw ``table`` on ``stream`` (default stdout): rich on a terminal where it fits whole,
    else the plain layout."""
    stream = stream if stream is not None else sys.stdout
    if is_terminal(stream):
        from rich.console import Console

        console = Console(file=stream)
        if _fits(table, console.width):
            console.print(table.rich())
            return
    stream.write(table.plain() + "\n")
    stream.flush()


def print_lines(lines: list[str] | tuple[str, ...], stream: TextIO | None = None) -> None:
    """Plain lines, never wrapped (rich wraps at 80 columns where there is no terminal)."""
    stream = stream if stream is not None else sys.stdout
    for line in lines:
        stream.write(line + "\n")
    stream.flush()
