"""Placing reader records in absolute time: fills ``utc`` and ``time_status`` of every record.

A reader stores naive wall-clock times (month, day, two-digit year + 2000, hour, minute[,
second]) from its own clock, which the user sets by hand. The rule used here:

1. **Constant offset per segment.** Between two recorded time changes the reader's clock runs
   at a constant offset from UTC: readers do not follow daylight-saving time by themselves, so
   a clock that nobody touched keeps the offset it was set with, summer or winter. The records
   split into *segments* at the time-change records (``$arresult?`` type 5 on the Libre
   family, ``$result?`` type 6 on the Neo and InsuLinx).

2. **The newest segment is anchored at the dump.** We assume the reader's clock is correct
   local time in the zone at the moment of the dump, so the newest segment's offset is
   ``zone.utcoffset(reader clock)``. The reader's clock is the one the dump read
   (``DeviceInfo.clock``), never the host's, so the result is deterministic: the same dump and
   zone always give the same times. A clock that falls in a DST fold or gap takes the offset
   before the transition (``fold=0``).

3. **Each time change gives the previous segment's offset.** A change from ``old`` to ``new``
   (reader clock before and after) happened at the instant ``U = new - offset_later``, so the
   segment before it ran at ``offset_earlier = old - U``. Walking from the newest change to
   the oldest gives every segment's offset. The time-change record itself is placed at ``U``.
   A time change with an invalid old or new time breaks the chain: the segments before it
   cannot be anchored.

4. **Which segment a record is in.**
   ``$arresult?``/``$result?`` records share one id space with the time-change records and
   ids grow with time, so a record belongs to the segment opened by the last time change
   whose id is not greater than its own. ``$history?`` records have their own id space, so
   they are matched by local time against each segment's window: from the ``new`` time of
   the change that opened it to the ``old`` time of the change that closed it (both
   inclusive; the oldest segment is open to the past, the newest to the future). A history
   record whose local time lies in more than one window (the clock was set back, so an hour
   or so of clock readings happened twice) or in none (the clock was set forward over it) is
   **ambiguous**: ``utc`` stays ``None``. Nothing is guessed silently.

``time_status`` values:

=============  ==========================================================================
``ok``         ``utc`` = local time - the offset of the record's segment
``ambiguous``  a ``$history?`` record in several segment windows, or in none; ``utc`` None
``invalid``    the reader's date of the record is invalid (255s, impossible date); ``utc``
               None
``no_anchor``  the segment has no known offset: the reader's clock at the dump was invalid,
               or a time change in the chain has an invalid time; ``utc`` None
``""``         not placed (no zone was given)
=============  ==========================================================================

On meters without seconds (Neo, InsuLinx) time changes are known to the minute, so offsets of
earlier segments are exact to the minute.

The zone: ``--tz ZONE`` (an IANA name such as ``Europe/Berlin``), by default the machine's
zone found with the standard library only (:func:`system_zone_name`): ``$TZ`` if it names an
IANA zone, else the target of the ``/etc/localtime`` link below a ``zoneinfo`` directory, else
``/etc/timezone``, else ``UTC``.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import os
import zoneinfo
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import InputError
from ..model import Dump, Record, TimeChangeRecord

OK = "ok"
AMBIGUOUS = "ambiguous"
INVALID = "invalid"
NO_ANCHOR = "no_anchor"
#: every value ``time_status`` takes once placed
STATUSES = (OK, AMBIGUOUS, INVALID, NO_ANCHOR)

#: record sources whose ids share the id space of the time-change records
ID_SOURCES = frozenset({"$arresult?", "$result?", "db:results"})

_UTC = dt.timezone.utc


# -- the zone -----------------------------------------------------------------------------------

def _valid_key(key: str) -> bool:
    try:
        zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def system_zone_name(*, environ: dict[str, str] | None = None,
                     localtime: Path = Path("/etc/localtime"),
                     timezone_file: Path = Path("/etc/timezone")) -> str:
    """The machine's IANA zone name, found without third-party code (see module docstring)."""
    env = os.environ if environ is None else environ
    tz = env.get("TZ", "").strip().lstrip(":")
    if tz and _valid_key(tz):
        return tz
    try:
        target = str(localtime.resolve()) if localtime.is_symlink() else ""
    except OSError:
        target = ""
    marker = "zoneinfo/"
    if marker in target:
        key = target.rsplit(marker, 1)[1]
        for prefix in ("posix/", "right/"):
            key = key.removeprefix(prefix)
        if _valid_key(key):
            return key
    try:
        key = timezone_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        key = ""
    if key and _valid_key(key):
        return key
    return "UTC"


def resolve_zone(name: str | None) -> zoneinfo.ZoneInfo:
    """The zone ``name`` (an IANA key), or the machine's zone when ``name`` is None."""
    key = system_zone_name() if name is None else name
    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise InputError(f"unknown time zone {key!r} (use an IANA name such as "
                         "Europe/Berlin)") from None


# -- segments -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Segment:
    """A stretch of records over which the reader's clock had one offset from UTC."""

    #: id of the time change that opened the segment; None for the oldest segment
    opened_by: int | None
    #: reader clock minus UTC; None when the segment cannot be anchored
    offset: dt.timedelta | None
    #: reader clock when the segment began (``new`` of the opening change); None: open
    start: dt.datetime | None
    #: reader clock when it ended (``old`` of the closing change); None: open (newest)
    end: dt.datetime | None

    def contains(self, local: dt.datetime) -> bool:
        after_start = self.start is None or self.start <= local
        return after_start and (self.end is None or local <= self.end)


def time_changes(records: Iterable[Record]) -> list[TimeChangeRecord]:
    """The time-change records, oldest (lowest id) first."""
    changes = [r for r in records if isinstance(r, TimeChangeRecord)]
    return sorted(changes, key=lambda r: r.record_id)


def segments(changes: Sequence[TimeChangeRecord], clock: dt.datetime | None,
             zone: dt.tzinfo) -> list[Segment]:
    """One segment per time change plus the oldest one, oldest first, with their offsets."""
    count = len(changes)
    offsets: list[dt.timedelta | None] = [None] * (count + 1)
    if clock is not None:
        offsets[count] = zone.utcoffset(clock.replace(tzinfo=None, fold=0))
    for k in range(count, 0, -1):
        change = changes[k - 1]
        later = offsets[k]
        if later is None or change.new_time is None or change.old_time is None:
            offsets[k - 1] = None
            continue
        try:
            instant = change.new_time - later  # naive UTC
            offsets[k - 1] = change.old_time - instant
        except OverflowError:  # chained changes whose offsets add up past the calendar
            offsets[k - 1] = None
    out: list[Segment] = []
    for k in range(count + 1):
        start = changes[k - 1].new_time if k > 0 else None
        end = changes[k].old_time if k < count else None
        opened_by = changes[k - 1].record_id if k > 0 else None
        # an invalid boundary time leaves the window open on that side only if it is the
        # oldest/newest; otherwise the window is unknown and matches nothing
        if (k > 0 and start is None) or (k < count and end is None):
            out.append(Segment(opened_by, offsets[k], dt.datetime.max, dt.datetime.min))
        else:
            out.append(Segment(opened_by, offsets[k], start, end))
    return out


def _placed(record: Record, utc: dt.datetime | None, status: str) -> Record:
    return dataclasses.replace(record, utc=utc, time_status=status)


def _at(record: Record, segment: Segment) -> Record:
    assert record.local_time is not None
    if segment.offset is None:
        return _placed(record, None, NO_ANCHOR)
    try:
        utc = (record.local_time - segment.offset).replace(tzinfo=_UTC)
    except OverflowError:  # an offset that places the record outside the calendar
        return _placed(record, None, NO_ANCHOR)
    return _placed(record, utc, OK)


def place_records(records: Sequence[Record], clock: dt.datetime | None,
                  zone: dt.tzinfo) -> list[Record]:
    """``records`` with ``utc`` and ``time_status`` filled in, in the same order."""
    changes = time_changes(records)
    parts = segments(changes, clock, zone)
    change_ids = [change.record_id for change in changes]
    out: list[Record] = []
    for record in records:
        if record.local_time is None:
            out.append(_placed(record, None, INVALID))
        elif record.source in ID_SOURCES:
            out.append(_at(record, parts[bisect.bisect_right(change_ids, record.record_id)]))
        else:
            matches = [segment for segment in parts if segment.contains(record.local_time)]
            if len(matches) == 1:
                out.append(_at(record, matches[0]))
            else:
                out.append(_placed(record, None, AMBIGUOUS))
    return out


def place(dump: Dump, zone: str | zoneinfo.ZoneInfo | None = None) -> Dump:
    """The dump with every record placed in time (see the module docstring), and
    ``dump.timezone`` set to the zone's name. ``zone=None`` uses the machine's zone."""
    tz = zone if isinstance(zone, zoneinfo.ZoneInfo) else resolve_zone(zone)
    records = place_records(dump.records, dump.device.clock, tz)
    return dataclasses.replace(dump, records=tuple(records), timezone=tz.key)
