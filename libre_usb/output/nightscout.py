"""``nightscout``: entries and treatments as JSON ready for a Nightscout server's API.

The tool never posts (it opens no socket); docs/formats.md shows the ``curl`` lines.

* **entries** (``/api/v1/entries``, ``/api/v3/entries``): history and scans as ``sgv``
  (scans with ``direction`` from their trend arrow), strip tests as ``mbg``; always mg/dL, as
  Nightscout stores glucose.
* **treatments** (``/api/v1/treatments``, ``/api/v3/treatments``): rapid-acting insulin as
  ``Correction Bolus`` (``insulin``), carbs as ``Carb Correction`` (``carbs``), notes as
  ``Note``, exercise as ``Exercise``, a new sensor as ``Sensor Start``; everything else the
  reader holds (long-acting insulin, which Nightscout has no type for and must not count as a
  bolus; ketones, medication, clock changes, readings flagged invalid, undecoded records, new
  kinds) as a ``Note`` whose ``notes`` says what it is.

Every document carries what API v3 requires of a new document (``identifier``, ``date`` in
epoch milliseconds, ``utcOffset`` in minutes, ``app``) and what API v1 clients read
(``dateString`` / ``created_at`` in UTC, ``device`` / ``enteredBy``). The ``identifier`` is a
UUID (version 5) of reader serial, source command, record id and part
(:mod:`libre_usb.output.identity`): the same record always gets the same identifier, so
re-posting overlapping dumps never duplicates (API v3 de-duplicates by it).

A record the timeline could not place in UTC (ambiguous, unanchored or invalid reader time,
or no zone) has no ``date`` to give: it is left out, and counted (:func:`left_out`).
"""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import operator
import os
import uuid
import zoneinfo
from collections.abc import Callable
from typing import IO, Any, cast

from ..devices import MODELS
from ..jsonsafe import dumps_fast
from ..model import (
    DeviceInfo,
    Dump,
    ExerciseRecord,
    FoodRecord,
    GlucoseRecord,
    HistoryRecord,
    InsulinRecord,
    NoteRecord,
    ReadingRecord,
    Record,
    ScanRecord,
)
from . import describe
from .gcpause import no_cyclic_gc
from .identity import parts

APP = "libre-dump"
#: the namespace of our identifiers (a fixed UUID; the name is never looked up)
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "nightscout.libre-dump.invalid")
#: trend arrow (model.TREND_NAMES) -> Nightscout direction
DIRECTIONS = {0: "NONE", 1: "SingleDown", 2: "FortyFiveDown", 3: "Flat", 4: "FortyFiveUp",
              5: "SingleUp"}
#: where a LO or HI reading is put (the range limits LibreView and Tidepool use)
LOW, HIGH = 40, 500


def identifier(serial: str, source: str, record_id: int, part: int, what: str = "") -> str:
    """``str(uuid.uuid5(NAMESPACE, name))`` of ``serial/source/record_id/part[/what]``,
    computed without the ``uuid.UUID`` object (RFC 4122 4.3: the SHA-1 of namespace and
    name, version 5 and the variant set in the first 16 bytes); a test compares it with
    :func:`uuid.uuid5`."""
    return _Identifiers(serial)(source, record_id, part, what)


class _Identifiers:
    """:func:`identifier` for one reader: the SHA-1 of the namespace, the serial and each
    source is taken once and copied for every record (the same digest, less hashing)."""

    def __init__(self, serial: str) -> None:
        self.serial = serial
        self.bases: dict[str, Any] = {}

    def __call__(self, source: str, record_id: int, part: int, what: str = "") -> str:
        base = self.bases.get(source)
        if base is None:
            base = self.bases[source] = hashlib.sha1(
                _NAMESPACE_BYTES + f"{self.serial}/{source}/".encode(),
                usedforsecurity=False)
        digest = base.copy()
        digest.update((f"{record_id}/{part}/{what}" if what
                       else f"{record_id}/{part}").encode("utf-8"))
        text = digest.hexdigest()
        return (f"{text[:8]}-{text[8:12]}-5{text[13:16]}-{_VARIANT[text[16]]}{text[17:20]}-"
                f"{text[20:32]}")


_NAMESPACE_BYTES = NAMESPACE.bytes
#: the hex digit holding the variant bits: its two high bits set to 10
_VARIANT = {f"{n:x}": f"{n & 0x3 | 0x8:x}" for n in range(16)}


def _iso(when: dt.datetime) -> str:
    if when.tzinfo is dt.timezone.utc and when.year >= 1000:
        # what the general form below writes, for the UTC times the timeline places
        text = when.isoformat()  # (faster than with timespec=)
        if len(text) == 25:  # whole seconds: "YYYY-MM-DDTHH:MM:SS+00:00"
            return text[:19] + ".000Z"
        return when.isoformat(timespec="milliseconds")[:-6] + "Z"  # without "+00:00"
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{when.microsecond // 1000:03d}Z"


def _glucose(record: HistoryRecord | ReadingRecord) -> int | None:
    if record.invalid:
        return None
    if record.glucose_mg_dl is not None:
        return record.glucose_mg_dl
    out_of_range = getattr(record, "out_of_range", None)
    return {"LO": LOW, "HI": HIGH}.get(out_of_range or "")


_GLUCOSE_CLASSES = (HistoryRecord, ScanRecord, GlucoseRecord)
#: documents oldest first, then by identifier
_ORDER = operator.itemgetter("date", "identifier")


def _offsets(zone: dt.tzinfo | None) -> Callable[[dt.datetime], dt.timedelta | None]:
    """The function giving ``zone``'s offset at the reader time that reads as a record's UTC
    time (``zone.utcoffset(when.replace(tzinfo=None))``). A ``ZoneInfo`` reads only the wall
    fields and ``fold`` of the time it is given, not its ``tzinfo``: it is called with the
    time as it is, without a naive copy made first (a test compares both around the changes
    of several zones)."""
    if zone is None:
        return lambda when: None
    if type(zone) is zoneinfo.ZoneInfo:
        return zone.utcoffset
    return lambda when: zone.utcoffset(when.replace(tzinfo=None))


def left_out(dump: Dump) -> int:
    """Records without a place in UTC: not in this format."""
    return sum(1 for record in dump.records if record.utc is None)


def documents(dump: Dump) -> dict[str, list[dict[str, Any]]]:
    """``{"entries": [...], "treatments": [...]}``, each oldest first."""
    docs = Documents(dump.device, dump.timezone)
    add = docs.add
    for record, part in zip(dump.records, parts(dump.records), strict=True):
        add(record, part)
    return docs.result()


class Documents:
    """The documents of one reader's records, made one record at a time (:meth:`add`), or
    one glucose entry at a time from values already at hand (:meth:`entry`, for
    :mod:`libre_usb.archive.stored`, which reads them from the archive's text)."""

    def __init__(self, device: DeviceInfo, timezone: str | None) -> None:
        serial = device.serial or ""
        model = MODELS.get(device.model)
        self.device = f"{model.title if model else device.model} {serial}".strip()
        zone = None
        if timezone is not None:
            from .timeline import resolve_zone

            zone = resolve_zone(timezone)
        #: the zone's offset at the reader time that reads as a UTC time (:func:`_offsets`)
        self.offset_at = _offsets(zone)
        self.entries: list[dict[str, Any]] = []
        self.treatments: list[dict[str, Any]] = []
        self.name = _Identifiers(serial)

    def result(self) -> dict[str, list[dict[str, Any]]]:
        """The documents, each list oldest first (then by identifier)."""
        self.entries.sort(key=_ORDER)
        self.treatments.sort(key=_ORDER)
        return {"entries": self.entries, "treatments": self.treatments}

    def entry(self, kind: str, value: int, direction: str | None, date_string: str,
              date: int, wall: dt.datetime, source: str, record_id: int, part: int) -> None:
        """An ``sgv`` or ``mbg`` entry: ``date_string`` and ``date`` are the UTC time as
        ``dateString`` and epoch milliseconds, ``wall`` the same time (its wall fields are
        what the zone's offset is read at)."""
        offset = self.offset_at(wall)
        utc_offset = 0 if offset is None else int(offset.total_seconds() // 60)
        if direction is not None:
            self.entries.append({
                "type": kind, kind: value, "direction": direction, "dateString": date_string,
                "device": self.device, "identifier": self.name(source, record_id, part),
                "date": date, "utcOffset": utc_offset, "app": APP})
        else:
            self.entries.append({
                "type": kind, kind: value, "dateString": date_string, "device": self.device,
                "identifier": self.name(source, record_id, part), "date": date,
                "utcOffset": utc_offset, "app": APP})

    def _treatment(self, record: Record, part: int, event: str,
                   when: dt.datetime | None = None, what: str = "", **fields: Any) -> None:
        at = when or record.utc
        assert at is not None
        offset = self.offset_at(at)
        # (an entry's own fields are written out in :meth:`entry`, in this order too)
        self.treatments.append({
            "eventType": event, "created_at": _iso(at), **fields, "enteredBy": APP,
            "identifier": self.name(record.source, record.record_id, part, what),
            "date": int(at.timestamp() * 1000),
            "utcOffset": 0 if offset is None else int(offset.total_seconds() // 60),
            "app": APP})

    def add(self, record: Record, part: int) -> None:
        """The documents of one record (none when it has no place in UTC)."""
        when = record.utc
        if when is None:
            return
        treatment = self._treatment
        if isinstance(record, _GLUCOSE_CLASSES):
            value = _glucose(record)
            if value is None:
                treatment(record, part, "Note", notes=describe.text(record))
            else:
                self.entry(
                    "mbg" if isinstance(record, GlucoseRecord) else "sgv", value,
                    DIRECTIONS.get(record.trend, "NOT COMPUTABLE")
                    if isinstance(record, ScanRecord) and record.trend is not None else None,
                    _iso(when), int(when.timestamp() * 1000), when, record.source,
                    record.record_id, part)
            if isinstance(record, HistoryRecord) and record.first_after_insertion:
                start = when - dt.timedelta(minutes=record.sensor_runtime_min or 0)
                treatment(record, part, "Sensor Start", when=start, what="sensor-start",
                          notes="New sensor (first reading after insertion)")
        elif isinstance(record, InsulinRecord):
            if record.units is not None and "long" not in record.insulin_type:
                treatment(record, part, "Correction Bolus", insulin=float(record.units),
                          notes=f"{record.insulin_type} insulin")
            else:
                amount = ("no amount" if record.units is None
                          else f"{describe.amount(record.units)} U")
                treatment(record, part, "Note",
                          notes=f"{record.insulin_type} insulin, {amount}")
        elif isinstance(record, FoodRecord):
            if record.carbs_g is not None:
                treatment(record, part, "Carb Correction", carbs=record.carbs_g)
            else:
                treatment(record, part, "Note", notes="Food, no amount")
        elif isinstance(record, NoteRecord):
            treatment(record, part, "Note", notes=record.text)
        elif isinstance(record, ExerciseRecord):
            treatment(record, part, "Exercise", notes="Exercise")
        else:
            treatment(record, part, "Note", notes=describe.text(record))


def write(dump: Dump, out: IO[str], part: str | None = None) -> None:
    """The documents as ``json.dump(..., ensure_ascii=False, indent=1)`` writes them, made
    by msgspec (:func:`libre_usb.jsonsafe.dumps_fast`)."""
    with no_cyclic_gc():  # a document per record, none in a cycle (libre_usb.output.gcpause)
        docs = documents(dump)
    text = dumps_fast(docs if part is None else docs[part], 1)
    del docs  # (the documents, a few times the size of the text, freed before it is written)
    write_text(text, out)


def write_text(text: bytes, out: IO[str]) -> None:
    """The documents laid out by ``dumps_fast(documents, 1)``, written with their final
    line end."""
    raw = _utf8_buffer(out)
    if raw is None:
        out.write(text.decode("utf-8"))
        out.write("\n")
    else:  # tens of MB: not decoded into a str only to be encoded again
        out.flush()
        raw.write(text)
        raw.write(b"\n")


def _utf8_buffer(out: IO[str]) -> IO[bytes] | None:
    """The binary stream under ``out`` when writing UTF-8 bytes to it writes what
    ``out.write`` would (a UTF-8 text file, no newline translation on this system)."""
    raw = getattr(out, "buffer", None)
    encoding = getattr(out, "encoding", None)
    if raw is None or not isinstance(encoding, str) or os.linesep != "\n":
        return None
    try:
        if codecs.lookup(encoding).name != "utf-8":
            return None
    except LookupError:
        return None
    return cast("IO[bytes]", raw)
