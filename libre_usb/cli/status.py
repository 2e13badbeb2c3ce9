"""What a person sees on stderr while a command reads a reader: one progress line that is
redrawn in place, then a one-line summary. Only on a terminal, and never with ``--quiet``:
when stderr is a file or a pipe nothing is written here at all."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from .. import logs
from ..model import Dump

#: carriage return + "erase to the end of the line": the old line goes whatever its length
ERASE = "\r\033[K"


def human_bytes(count: float) -> str:
    for unit in ("B", "kB", "MB"):
        if count < 1000 or unit == "MB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def elapsed_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class StatusLine:
    """``update(command, records, bytes)`` redraws the line (at most ``per_second`` times a
    second); ``finish(summary)`` erases it and prints the summary, if any, on a line of its
    own. Disabled, it writes nothing at all."""

    def __init__(self, *, enabled: bool, stream: TextIO | None = None, per_second: float = 8,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.started = clock()
        self._interval = 1 / per_second
        self._last_draw = float("-inf")
        self._shown = False
        # a log message (a retry, --debug output) must not land at the end of the line: a
        # filter on logging's handlers erases it first (a line is shown on terminals only:
        # importing logging then is no cost worth sparing)
        self._handlers: list[Any] = []
        if enabled:
            import logging

            logs.ready()
            self._handlers = list(logging.getLogger().handlers)
        for handler in self._handlers:
            handler.addFilter(self._erase_first)

    def _erase_first(self, record: object) -> bool:
        """The log filter: erase the line before the record is written; let it pass."""
        self.clear()
        return True

    def clear(self) -> None:
        """Erase the line, if it is shown; the next update draws it again."""
        if self._shown:
            self.stream.write(ERASE)
            self.stream.flush()
            self._shown = False

    def line(self, command: str, records: int, nbytes: int, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        return (f"reading {command} {records} records, {human_bytes(nbytes)}, "
                f"{human_bytes(nbytes / elapsed)}/s, {elapsed_text(elapsed)}")

    def update(self, command: str, records: int, nbytes: int) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if now - self._last_draw < self._interval:
            return
        self._last_draw = now
        # never wider than the terminal: a wrapped line could not be erased with \r
        import shutil  # only for a status line shown (on a terminal): 5 ms of start-up

        width = shutil.get_terminal_size((80, 24)).columns - 1
        self.stream.write(ERASE + self.line(command, records, nbytes, now)[:width])
        self.stream.flush()
        self._shown = True

    def finish(self, summary: str | None = None) -> None:
        if not self.enabled:
            return
        for handler in self._handlers:
            handler.removeFilter(self._erase_first)
        self.clear()
        if summary:
            self.stream.write(summary + "\n")
        self.stream.flush()


def dump_summary(dump: Dump, destination: str, seconds: float) -> str:
    """``1440 records (history 1344, scans 60, ...) in 0:07 -> reader.json``: every kind the
    dump holds, in the order of the formats."""
    counts = {name: n for name, n in dump.counts().items() if n}
    parts = ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in counts.items())
    total = sum(counts.values())
    return (f"{total} records" + (f" ({parts})" if parts else "")
            + f" in {elapsed_text(seconds)} -> {destination}")
