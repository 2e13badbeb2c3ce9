"""CSV lines made as text, the way ``csv.writer`` makes them, for writers of many rows.

``csv.writer`` takes a list of cells and decides for each whether to quote it; for years of
rows whose cells are mostly numbers and times, that is most of a CSV export's time. A writer
that knows which of its cells can hold text asks :func:`quoting` which characters make this
Python's csv module quote a cell (probed once, not assumed: the rules have changed between
versions), quotes those cells itself (:class:`Quote`) and joins the line.
"""

from __future__ import annotations

import csv
import functools
import io
import re


@functools.cache
def quoting(terminator: str) -> re.Pattern[str] | None:
    """The characters that make ``csv.writer`` (``lineterminator=terminator``, its other
    settings the defaults) quote a cell: a cell with one of them is written as
    :func:`quoted` writes it, any other as it is, an empty cell as nothing. None when the
    module writes some probe otherwise (the caller then leaves the rows to it)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=terminator)
    special = []
    for code in [*range(128), 0x85, 0xA0, 0x2028, 0x2029, 0xFEFF]:
        cell = f"a{chr(code)}b"
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([cell, "", "x", ""])
        if buffer.getvalue() == f"{quoted(cell)},,x,{terminator}":
            special.append(chr(code))
        elif buffer.getvalue() != f"{cell},,x,{terminator}":
            return None
    return re.compile("[" + re.escape("".join(special)) + "]")


def quoted(cell: str) -> str:
    """A cell in quotes, its own quotes doubled."""
    return '"' + cell.replace('"', '""') + '"'


class Quote:
    """A text cell as csv.writer writes it (:func:`quoting`), the last few remembered (for
    cells that repeat: units, sources, statuses, values)."""

    def __init__(self, special: re.Pattern[str]) -> None:
        self.search = special.search
        self.known: dict[str, str] = {}

    def __call__(self, cell: str) -> str:
        found = self.known.get(cell)
        if found is None:
            found = quoted(cell) if self.search(cell) else cell
            if len(self.known) >= 4096:
                self.known.clear()
            self.known[cell] = found
        return found
