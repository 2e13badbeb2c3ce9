"""``--since`` / ``--until``: a stretch of the reader's own clock.

Both take a date (``2026-06-01``) or a date and time (``2026-06-01T08:00``, ``2026-06-01
08:00:30``) on the reader's clock (the ``local_time`` of records, the time the reader showed).
``--since`` is inclusive. ``--until`` with a date includes that whole day; with a time it is
exclusive. A record whose reader date is invalid has no place on the clock: it is left out as
soon as either bound is given.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from ..errors import InputError
from ..model import Record


def _parse(text: str, option: str, *, end: bool) -> dt.datetime:
    value = text.strip()
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            start = dt.datetime.combine(day, dt.time())
            return start + dt.timedelta(days=1) if end else start
        parsed = dt.datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        raise InputError(f"{option} {text!r}: use a date (2026-06-01) or a date and time "
                         "(2026-06-01T08:00)") from None
    if parsed.tzinfo is not None:
        raise InputError(f"{option} {text!r}: give the reader's clock time, without a zone")
    return parsed


@dataclasses.dataclass(frozen=True)
class Period:
    """``start <= local_time < end``; None on a side means open."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None

    @classmethod
    def parse(cls, since: str | None, until: str | None) -> Period:
        start = None if since is None else _parse(since, "--since", end=False)
        end = None if until is None else _parse(until, "--until", end=True)
        if start is not None and end is not None and end <= start:
            raise InputError("--until is not after --since: the period is empty")
        return cls(start, end)

    @property
    def open(self) -> bool:
        return self.start is None and self.end is None

    def contains(self, local: dt.datetime | None) -> bool:
        if self.open:
            return True
        if local is None:
            return False
        return ((self.start is None or local >= self.start)
                and (self.end is None or local < self.end))

    def select(self, records: tuple[Record, ...]) -> tuple[Record, ...]:
        if self.open:
            return records
        return tuple(r for r in records if self.contains(r.local_time))

    def bounds(self) -> tuple[str | None, str | None]:
        """The bounds as the ISO text ``local_time`` is stored as (seconds precision)."""
        return (None if self.start is None else self.start.isoformat(timespec="seconds"),
                None if self.end is None else self.end.isoformat(timespec="seconds"))


#: no bounds: every record
ALL = Period()
