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

The zone, one rule for every command (:func:`zone_for`): ``--tz ZONE`` (an IANA name such
as ``Europe/Berlin``), else this machine's zone (:func:`machine_zone`): ``$TZ`` if it names an
IANA zone, else the zone the ``/etc/localtime`` link points to (what systemd's
``timedatectl`` sets, localtime(5)), else what ``tzlocal`` finds (``/etc/timezone``,
distribution files), else an ``/etc/localtime`` copied as a file (many containers) named by
the zone file with the same bytes, else ``UTC``. The commands say which zone they used and
where it came from.
"""

from __future__ import annotations

import bisect
import datetime as dt
import operator
import os
import warnings
import zoneinfo
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec

from .. import logs
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
#: one instant, naive and in UTC: record times are placed by arithmetic from them (_at)
_NAIVE_EPOCH = dt.datetime(2000, 1, 1)
_UTC_EPOCH = _NAIVE_EPOCH.replace(tzinfo=_UTC)


# -- the zone -----------------------------------------------------------------------------------

def _valid_key(key: str) -> bool:
    try:
        zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


class Zone(msgspec.Struct, frozen=True):
    """The zone records are placed in, and where it came from (shown to the user)."""

    tzinfo: zoneinfo.ZoneInfo
    #: the IANA name, or None for a zone file whose name could not be found
    name: str | None
    #: where it came from: ``--tz``, ``$TZ``, ``/etc/localtime``, ...
    origin: str

    def describe(self) -> str:
        return f"{self.name or 'the zone in /etc/localtime'} (from {self.origin})"


def _canonical_names(directory: Path) -> set[str]:
    """The canonical zone names listed in ``zone1970.tab`` (no backward-compatible links)."""
    try:
        text = (directory / "zone1970.tab").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return set()
    return {line.split("\t")[2] for line in text.splitlines()
            if line and not line.startswith("#") and line.count("\t") >= 2}


def zone_name_of_file(path: Path, directories: Sequence[str] | None = None) -> str | None:
    """The IANA name of a zone file that was copied rather than linked (``/etc/localtime`` in
    many containers): the zone whose file in the system's zone directories has the same
    bytes. A canonical name (``zone1970.tab``) wins over a backward-compatible alias, then
    the shortest; None when nothing matches."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(b"TZif"):
        return None
    matches: list[tuple[bool, int, str]] = []
    for directory in zoneinfo.TZPATH if directories is None else directories:
        base = Path(directory)
        canonical = _canonical_names(base)
        for key in zoneinfo.available_timezones():
            candidate = base / key
            try:
                if candidate.stat().st_size == len(data) and candidate.read_bytes() == data:
                    matches.append((key not in canonical, len(key), key))
            except OSError:
                continue
        if matches:
            return min(matches)[2]
    return None


def _linked_name(localtime: Path) -> str | None:
    """The zone name in the target of an ``/etc/localtime`` link (``.../zoneinfo/NAME``)."""
    try:
        target = str(localtime.resolve()) if localtime.is_symlink() else ""
    except OSError:
        return None
    marker = "zoneinfo/"
    if marker not in target:
        return None
    key = target.rsplit(marker, 1)[1]
    for prefix in ("posix/", "right/"):
        key = key.removeprefix(prefix)
    return key if _valid_key(key) else None


def machine_zone(localtime: Path = Path("/etc/localtime")) -> Zone:
    """This machine's zone, and where it was found: ``$TZ`` when it names an IANA zone; else
    the zone the ``/etc/localtime`` link points to; else what ``tzlocal`` finds
    (``/etc/timezone``, distribution files); else, for an ``/etc/localtime`` copied as a file
    (many containers), the zone whose file has the same bytes, or that file itself; else UTC.

    The link comes before tzlocal only to spare its cost (about 12 ms, most of a small dump's
    start-up: it tries each tail of the link's target as a zone name, and each miss imports
    and searches the ``tzdata`` package) and changes no zone: tzlocal reads the same link,
    and where ``/etc/timezone`` names another zone tzlocal ignores that file (or fails, and
    the link was used anyway). Only where ``/etc/timezone`` names the link's zone by an alias
    (``US/Eastern`` for ``America/New_York``) is the link's name now the one shown."""
    tz = os.environ.get("TZ", "").strip().lstrip(":")
    if tz and _valid_key(tz):
        return Zone(zoneinfo.ZoneInfo(tz), tz, "$TZ")
    linked = _linked_name(localtime)
    if linked is not None:
        return Zone(zoneinfo.ZoneInfo(linked), linked, str(localtime))
    name = None
    if not tz:  # tzlocal would return an unusable $TZ as it is
        import tzlocal  # only here: most machines are answered by the link above

        logs.ready()  # tzlocal logs (through logging): its warnings written as ours

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                name = tzlocal.get_localzone_name()
        except (zoneinfo.ZoneInfoNotFoundError, LookupError, ValueError, OSError):
            name = None
    if name and _valid_key(name):
        return Zone(zoneinfo.ZoneInfo(name), name, "the system's zone setting")
    if localtime.is_file():
        found = zone_name_of_file(localtime)
        if found is not None:
            return Zone(zoneinfo.ZoneInfo(found), found,
                        f"{localtime}, a copied zone file matched by content")
        try:
            with localtime.open("rb") as handle:
                return Zone(zoneinfo.ZoneInfo.from_file(handle), None, str(localtime))
        except (OSError, ValueError):
            pass
    return Zone(zoneinfo.ZoneInfo("UTC"), "UTC", "no zone set on this machine")


def zone_for(name: str | None) -> Zone:
    """The zone of ``--tz NAME``, or this machine's zone when ``name`` is None: the one rule
    every command uses (docs/formats.md, "Time")."""
    if name is None:
        return machine_zone()
    try:
        return Zone(zoneinfo.ZoneInfo(name), name, "--tz")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise InputError(f"unknown time zone {name!r} (use an IANA name such as "
                         "Europe/Berlin)") from None


def system_zone_name() -> str:
    """The machine's IANA zone name (``UTC`` when it has none that can be named)."""
    return machine_zone().name or "UTC"


def resolve_zone(name: str | None) -> zoneinfo.ZoneInfo:
    """The zone ``name`` (an IANA key), or the machine's zone when ``name`` is None."""
    return zone_for(name).tzinfo


# -- segments -----------------------------------------------------------------------------------

class Segment(msgspec.Struct, frozen=True):
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


def _at(record: Record, local: dt.datetime, offset: dt.timedelta | None) -> Record:
    """``record`` (made at the reader time ``local``) placed with the segment's ``offset``."""
    try:
        # (local - offset) with the UTC zone, by arithmetic on an aware datetime: exactly
        # what .replace(tzinfo=UTC) of it gives, at a fifth of the cost (once a record)
        utc = None if offset is None else _UTC_EPOCH + (local - (_NAIVE_EPOCH + offset))
    except OverflowError:  # an offset that places the record outside the calendar
        utc = None
    return record.placed(utc, NO_ANCHOR if utc is None else OK)


def place_records(records: Sequence[Record], clock: dt.datetime | None,
                  zone: dt.tzinfo) -> list[Record]:
    """``records`` with ``utc`` and ``time_status`` filled in, in the same order."""
    out = list(records)
    place_in_list(out, clock, zone)
    return out


def place_in_list(records: list[Record], clock: dt.datetime | None, zone: dt.tzinfo) -> None:
    """:func:`place_records` on a list the caller owns, replacing each record by its placed
    copy as it goes: the unplaced one is freed at once, so placing a dump does not hold it
    twice (the ``dump`` command's peak memory)."""
    changes = time_changes(records)
    parts = segments(changes, clock, zone)
    change_ids = [change.record_id for change in changes]
    for index, record in enumerate(records):
        local = record.local_time
        if local is None:
            records[index] = record.placed(None, INVALID)
        elif record.source in ID_SOURCES:
            segment = parts[bisect.bisect_right(change_ids, record.record_id)]
            records[index] = _at(record, local, segment.offset)
        else:
            matches = [segment for segment in parts if segment.contains(local)]
            if len(matches) == 1:
                records[index] = _at(record, local, matches[0].offset)
            else:
                records[index] = record.placed(None, AMBIGUOUS)


def place_dump_owned(dump: Dump, zone: str | Zone | zoneinfo.ZoneInfo | None = None) -> Dump:
    """:func:`place` for a caller that drops ``dump`` right after (the ``dump`` command):
    the same result, in records sorted as every format writes them, made without holding
    the dump twice."""
    if isinstance(zone, Zone):
        zone = zone.tzinfo
    tz = zone if isinstance(zone, zoneinfo.ZoneInfo) else resolve_zone(zone)
    records = list(dump.records)
    clock, empty = dump.device.clock, msgspec.structs.replace(dump, records=())
    del dump  # the caller's reference is the only other one left to the records' tuple
    place_in_list(records, clock, tz)
    # the formats' order (source, then id; stable): two sorts on existing values, so no
    # key tuples are made per record
    records.sort(key=operator.attrgetter("record_id"))
    records.sort(key=operator.attrgetter("source"))
    return msgspec.structs.replace(empty, records=tuple(records), timezone=tz.key)


def place(dump: Dump, zone: str | Zone | zoneinfo.ZoneInfo | None = None) -> Dump:
    """The dump with every record placed in time (see the module docstring), and
    ``dump.timezone`` set to the zone's name. ``zone=None`` uses the machine's zone."""
    if isinstance(zone, Zone):
        zone = zone.tzinfo
    tz = zone if isinstance(zone, zoneinfo.ZoneInfo) else resolve_zone(zone)
    records = place_records(dump.records, dump.device.clock, tz)
    return msgspec.structs.replace(dump, records=tuple(records), timezone=tz.key)
