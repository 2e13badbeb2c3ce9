"""Diff a reader's records against one or more captured uploads, and list what they reveal.

Matching is per kind (upload-format.md section 3):

===========================  ==============================================================
kind                         reader record <-> upload entry
===========================  ==============================================================
history                      ``$history?`` reading <-> ``scheduledContinuousGlucoseEntries``
scan                         scan <-> ``unscheduledContinuousGlucoseEntries`` (+ trendArrow)
glucose                      strip glucose <-> ``bloodGlucoseEntries``
ketone                       strip ketone <-> ``ketoneEntries`` (mmol/L)
insulin                      insulin <-> ``insulinEntries`` (insulinType and units)
food                         food <-> ``foodEntries`` (gramsCarbs)
exercise, medication, note   <-> ``genericEntries`` exercise / medication / customnote (text)
sensorstart                  first history reading of a sensor <-> generic ``sensorstart``
time_change                  time change <-> ``isFirstAfterTimeChange`` on the first glucose
                             entry after it (:func:`~.build.first_after_time_changes`)
current                      (nothing on a reader) <-> ``currentGlucoseEntries``
other                        unknown reader records <-> generic entries of other types
===========================  ==============================================================

Times: the reader's local clock is compared with the wall clock of the upload's local
``timestamp``. When an entry's ``timestamp`` carries no local offset (``…Z`` or none), its
``factoryTimestamp`` (UTC) is moved to local time with ``tz`` if given, else with the
offset the upload itself shows (``timestamp`` minus ``factoryTimestamp`` of its other
entries, or of ``deviceSettings.timestamp``). When the reader record has been placed in UTC
by the timeline (``record.utc``), agreeing UTC instants count as a match too (a vendor may
copy the reader's clock or correct it). Two times match within ``time_tolerance`` seconds
(default 60).

Values: glucose in mg/dL, insulin units and grams match within ``value_tolerance``
(default 0.05: readers store whole mg/dL, half units and whole grams, so this only absorbs
float printing); ketones in mmol/L within 0.005 (uploads round to 0.01). Booleans may be JSON
bools or the strings "true"/"false".

Pairing, for each kind: (1) same ``recordNumber``, time within tolerance, same values;
(2) same ``recordNumber``, time within tolerance; (3) time within tolerance, same values;
(4) nearest time within tolerance; (5) same ``recordNumber`` with the time off by more than
the tolerance. Steps 3 and 4 (for uploads that number entries their own way) never take an
entry whose ``recordNumber`` is another reader record's id of the same kind. Pairs with a
difference are "changed"; the rest are "reader only" and "upload only". Readings the reader
marks invalid are not expected in an upload: they are listed as "not expected", and are
"changed" only if an upload carries them anyway.

Several uploads are merged first: entries with the same kind, ``recordNumber``, values and
time (to the second) are one entry, carried by every upload listed in ``carriers``.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from ..errors import InputError
from ..model import (
    Dump,
    ExerciseRecord,
    FoodRecord,
    GlucoseRecord,
    HistoryRecord,
    InsulinRecord,
    KetoneRecord,
    MedicationRecord,
    NoteRecord,
    Record,
    ScanRecord,
    TimeChangeRecord,
    UnknownRecord,
)
from ..output.libreview import (
    ANNOTATION_KEY,
    GENERIC_PREFIX,
    TREND_ARROWS,
    TREND_NONE,
    decode_reading_identifier,
    first_after_time_changes,
    insulin_type_name,
    is_placeholder,
    is_uploadable,
    not_uploadable_reason,
    place_local,
    resolve_tz,
    sensor_start_minutes,
)
from .load import SECRET, Upload, UploadEntry, is_secret_name, parse_time

DEFAULT_TIME_TOLERANCE = 60.0
DEFAULT_VALUE_TOLERANCE = 0.05
KETONE_TOLERANCE = 0.005
KETONE_FACTOR = 18

#: every kind, in report order, with its title
KINDS: dict[str, str] = {
    "history": "Sensor history (scheduled)",
    "scan": "Scans (unscheduled)",
    "glucose": "Blood glucose strips",
    "ketone": "Ketone strips",
    "insulin": "Insulin",
    "food": "Food",
    "exercise": "Exercise",
    "medication": "Medication",
    "note": "Notes",
    "sensorstart": "Sensor starts",
    "time_change": "Time changes",
    "current": "Current glucose (phone only)",
    "other": "Other records and entries",
}

LIST_KINDS = {
    "scheduledContinuousGlucoseEntries": "history",
    "unscheduledContinuousGlucoseEntries": "scan",
    "bloodGlucoseEntries": "glucose",
    "ketoneEntries": "ketone",
    "insulinEntries": "insulin",
    "foodEntries": "food",
    "currentGlucoseEntries": "current",
}
GENERIC_KINDS = {
    "exercise": "exercise",
    "medication": "medication",
    "customnote": "note",
    "sensorstart": "sensorstart",
}
_GLUCOSE_KINDS = ("history", "scan", "glucose")
_NO_TREND = {"notcomputable", "undetermined", "notdetermined", "none", ""}


# -- result types -----------------------------------------------------------------------------


@dataclasses.dataclass
class ReaderItem:
    """A reader record as the diff sees it."""

    kind: str
    record: Record
    record_number: int
    #: reader clock (naive); for a sensor start the start time
    local: dt.datetime | None
    #: set only when the timeline placed the record
    utc: dt.datetime | None
    values: dict[str, Any]
    #: False for records an upload is not expected to hold (invalid readings, unknown types)
    expected: bool = True
    note: str = ""


@dataclasses.dataclass
class UploadItem:
    """An upload entry (merged over every upload that carried it)."""

    kind: str
    entry: UploadEntry
    record_number: int | None
    local: dt.datetime | None
    utc: dt.datetime | None
    values: dict[str, Any]
    first_after_time_change: bool
    #: set when ``local`` was made from a UTC time with this zone (``--tz``): the reader's
    #: clock is then placed in the zone and compared in UTC, as the builder does
    zone: dt.tzinfo | None
    #: indices (into the upload list) of the uploads that carried this entry, in order
    carriers: list[int]
    #: ``(upload index, JSON path)`` of every copy
    paths: list[tuple[int, str]]


@dataclasses.dataclass
class Difference:
    field: str
    reader: Any
    upload: Any


@dataclasses.dataclass
class Pair:
    reader: ReaderItem
    upload: UploadItem
    #: how they were paired: "recordNumber", "time", "recordNumber (time differs)", ...
    by: str
    #: upload time minus reader time, seconds; None when one side has no usable time
    time_delta: float | None
    differences: list[Difference]


@dataclasses.dataclass
class KindResult:
    kind: str
    matched: list[Pair] = dataclasses.field(default_factory=list)
    changed: list[Pair] = dataclasses.field(default_factory=list)
    reader_only: list[ReaderItem] = dataclasses.field(default_factory=list)
    upload_only: list[UploadItem] = dataclasses.field(default_factory=list)
    #: reader records no upload is expected to hold (kept and shown, not a difference)
    not_expected: list[ReaderItem] = dataclasses.field(default_factory=list)

    @property
    def differs(self) -> bool:
        return bool(self.changed or self.reader_only or self.upload_only)

    def counts(self) -> dict[str, int]:
        return {"matched": len(self.matched), "changed": len(self.changed),
                "reader_only": len(self.reader_only), "upload_only": len(self.upload_only),
                "not_expected": len(self.not_expected)}


@dataclasses.dataclass
class PrivacyItem:
    """One identifying or personal field found in the uploads."""

    #: JSON path with list indices written ``[]``, or ``request ...`` for capture metadata
    path: str
    category: str
    what: str
    #: the value as sent; None for credentials (only their presence is shown)
    value: str | None
    #: how many entries/places carried this value
    count: int
    uploads: list[int]


@dataclasses.dataclass
class UnexplainedField:
    """A field of the upload that no reader record explains."""

    path: str
    what: str
    example: str | None
    count: int
    uploads: list[int]


@dataclasses.dataclass
class UploadSummary:
    index: int
    label: str
    container: str
    file: str
    method: str | None
    url: str | None
    host: str | None
    server_address: str | None
    time: dt.datetime | None
    encoding: str | None
    size: int
    entries: dict[str, int]


@dataclasses.dataclass
class DiffResult:
    reader: dict[str, Any]
    uploads: list[UploadSummary]
    kinds: dict[str, KindResult]
    privacy: list[PrivacyItem]
    unexplained: list[UnexplainedField]
    warnings: list[str]
    settings: dict[str, Any]
    #: upload entries that were copies of an entry already seen
    duplicates: int

    @property
    def identical(self) -> bool:
        """True when the uploads hold exactly the reader's records (exit code 0)."""
        return not any(result.differs for result in self.kinds.values())

    def counts(self) -> dict[str, dict[str, int]]:
        return {kind: result.counts() for kind, result in self.kinds.items()}


# -- reader side ------------------------------------------------------------------------------


def trend_name(trend: int | None) -> str | None:
    name = TREND_ARROWS.get(trend or 0)
    return name


def _norm_trend(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return None if text.strip().lower() in _NO_TREND else text


def _reading_values(record: HistoryRecord | ScanRecord | GlucoseRecord) -> dict[str, Any]:
    out_of_range = getattr(record, "out_of_range", None)
    values: dict[str, Any] = ({"range": out_of_range} if out_of_range
                              else {"mg_dl": record.glucose_mg_dl})
    if isinstance(record, ScanRecord):
        values["trend"] = trend_name(record.trend)
    return values


def _ketone_mmol(record: KetoneRecord) -> Decimal | None:
    try:
        return Decimal(int(record.value_raw)) / KETONE_FACTOR
    except ValueError:
        return record.ketone_mmol_l


def reader_items(records: Iterable[Record]) -> Iterator[ReaderItem]:
    """Every reader record as a :class:`ReaderItem` (time changes are handled apart)."""
    for record in records:
        expected = is_uploadable(record)
        note = "" if expected else not_uploadable_reason(record)

        def item(kind: str, values: dict[str, Any], record: Record = record,
                 expected: bool = expected, note: str = note) -> ReaderItem:
            return ReaderItem(kind=kind, record=record, record_number=record.record_id,
                              local=record.local_time, utc=record.utc, values=values,
                              expected=expected, note=note)

        if isinstance(record, HistoryRecord):
            yield item("history", _reading_values(record))
            if record.first_after_insertion and expected and record.local_time is not None:
                try:
                    delta = dt.timedelta(minutes=sensor_start_minutes(record))
                    local = record.local_time - delta
                    utc = None if record.utc is None else record.utc - delta
                except OverflowError:  # only a hostile saved dump gets here
                    raise InputError(
                        f"history record {record.record_id}: a sensor runtime of "
                        f"{record.sensor_runtime_min} minutes is out of range") from None
                yield ReaderItem(kind="sensorstart", record=record,
                                 record_number=record.record_id, local=local, utc=utc,
                                 values={})
        elif isinstance(record, (ScanRecord, GlucoseRecord)):
            kind = "scan" if isinstance(record, ScanRecord) else "glucose"
            yield item(kind, _reading_values(record))
        elif isinstance(record, KetoneRecord):
            values: dict[str, Any] = ({"range": record.out_of_range} if record.out_of_range
                                      else {"mmol_l": _ketone_mmol(record)})
            yield item("ketone", values)
        elif isinstance(record, InsulinRecord):
            yield item("insulin", {
                "insulin_type": insulin_type_name(record.insulin_type),
                "units": record.units})
        elif isinstance(record, FoodRecord):
            yield item("food", {"carbs_g": record.carbs_g})
        elif isinstance(record, ExerciseRecord):
            yield item("exercise", {})
        elif isinstance(record, MedicationRecord):
            yield item("medication", {})
        elif isinstance(record, NoteRecord):
            yield item("note", {"text": record.text})
        elif isinstance(record, TimeChangeRecord):
            continue
        else:
            fields = list(record.fields) if isinstance(record, UnknownRecord) else []
            yield item("other", {"fields": fields}, expected=False)


# -- upload side ------------------------------------------------------------------------------


def entry_kind(entry: UploadEntry) -> str:
    if entry.list_name == "genericEntries":
        kind_name = str(entry.values.get("type", ""))
        suffix = kind_name[len(GENERIC_PREFIX):] if kind_name.startswith(GENERIC_PREFIX) \
            else kind_name
        return GENERIC_KINDS.get(suffix, "other")
    return LIST_KINDS.get(entry.list_name, "other")


def _entry_values(kind: str, entry: UploadEntry) -> dict[str, Any]:
    values = entry.values
    flags = entry.flags
    if kind in (*_GLUCOSE_KINDS, "current"):
        out: dict[str, Any] = {"mg_dl": values.get("mg_dl")}
        if flags.get("lowOutOfRange"):
            out["range"] = "LO"
        elif flags.get("highOutOfRange"):
            out["range"] = "HI"
        if kind in ("scan", "current"):
            out["trend"] = _norm_trend(values.get("trend"))
        return out
    if kind == "ketone":
        mmol = values.get("mmol_l")
        if mmol is None and values.get("mg_dl") is not None:
            mmol = values["mg_dl"] / KETONE_FACTOR
        out = {"mmol_l": mmol}
        if flags.get("lowOutOfRange"):
            out["range"] = "LO"
        elif flags.get("highOutOfRange"):
            out["range"] = "HI"
        return out
    if kind == "insulin":
        return {"insulin_type": values.get("insulin_type"), "units": values.get("units")}
    if kind == "food":
        return {"carbs_g": values.get("carbs_g")}
    if kind == "note":
        return {"text": values.get("text")}
    if kind == "other":
        return {key: value for key, value in values.items()}
    return {}


class _Clock:
    """Local and UTC times of an upload's entries (see the module docstring)."""

    def __init__(self, upload: Upload, tz: dt.tzinfo | None) -> None:
        self.tz = tz
        offsets: Counter[dt.timedelta] = Counter()
        for entry in upload.entries:
            stamp = entry.timestamp
            if stamp is not None and stamp.offset is not None and not stamp.zulu:
                offsets[stamp.offset] += 1
        self.offset: dt.timedelta | None = offsets.most_common(1)[0][0] if offsets else None
        if self.offset is None:
            settings = upload.device_data.get("deviceSettings")
            text = settings.get("timestamp") if isinstance(settings, dict) else None
            if isinstance(text, str):
                try:
                    parsed = parse_time(text)
                except ValueError:
                    parsed = None
                if parsed is not None and not parsed.zulu:
                    self.offset = parsed.offset
        self.inconsistent: list[str] = []
        self.unplaced: list[str] = []

    def place(self, entry: UploadEntry, tolerance: float
              ) -> tuple[dt.datetime | None, dt.datetime | None, dt.tzinfo | None]:
        stamp = entry.timestamp
        utc = entry.factory or (stamp.instant if stamp is not None else None)
        if stamp is not None and stamp.offset is not None and not stamp.zulu:
            instant = stamp.instant
            if (entry.factory is not None and instant is not None
                    and abs((instant - entry.factory).total_seconds()) > tolerance):
                self.inconsistent.append(entry.path)
            return stamp.wall, utc, None
        if utc is not None:
            if self.tz is not None:
                return utc.astimezone(self.tz).replace(tzinfo=None), utc, self.tz
            if self.offset is not None:
                return (utc + self.offset).replace(tzinfo=None), utc, None
            self.unplaced.append(entry.path)
            return None, utc, None
        assert stamp is not None  # load.py guarantees one of the two
        return stamp.wall, None, None


def _freeze(values: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((key, repr(value)) for key, value in values.items()))


def upload_items(uploads: Sequence[Upload], tz: dt.tzinfo | None, tolerance: float,
                 warnings: list[str]) -> tuple[dict[str, list[UploadItem]], int]:
    """Every entry of every upload, duplicates merged; and the number of copies merged."""
    merged: dict[tuple[Any, ...], UploadItem] = {}
    by_kind: dict[str, list[UploadItem]] = defaultdict(list)
    duplicates = 0
    number_values: dict[tuple[str, int], set[tuple[tuple[str, str], ...]]] = defaultdict(set)
    for index, upload in enumerate(uploads):
        clock = _Clock(upload, tz)
        for entry in upload.entries:
            kind = entry_kind(entry)
            local, utc, zone = clock.place(entry, tolerance)
            values = _entry_values(kind, entry)
            frozen = _freeze(values)
            when = (local or utc)
            second = when.replace(microsecond=0) if when is not None else None
            key = (kind, entry.record_number, frozen, second)
            if entry.record_number is not None:
                number_values[(kind, entry.record_number)].add(frozen)
            flag = bool(entry.flags.get("isFirstAfterTimeChange"))
            if key in merged and merged[key].first_after_time_change == flag:
                item = merged[key]
                duplicates += 1
                if index not in item.carriers:
                    item.carriers.append(index)
                item.paths.append((index, entry.path))
                continue
            item = UploadItem(kind=kind, entry=entry, record_number=entry.record_number,
                              local=local, utc=utc, values=values,
                              first_after_time_change=flag, zone=zone, carriers=[index],
                              paths=[(index, entry.path)])
            merged[key] = item
            by_kind[kind].append(item)
        label = upload.label()
        if clock.inconsistent:
            warnings.append(f"{label}: {len(clock.inconsistent)} entries have a timestamp "
                            f"that is not the same instant as their factoryTimestamp "
                            f"(first: {clock.inconsistent[0]})")
        if clock.unplaced:
            warnings.append(f"{label}: {len(clock.unplaced)} entries carry only UTC times and "
                            "the upload shows no local offset; pass --tz ZONE to compare "
                            f"them with the reader's clock (first: {clock.unplaced[0]})")
    conflicts = [key for key, seen in number_values.items() if len(seen) > 1]
    if conflicts and len(uploads) > 1:
        kind, number = conflicts[0]
        warnings.append(f"{len(conflicts)} recordNumbers were sent with different contents "
                        f"(first: {kind} recordNumber {number}); each version is kept")
    return by_kind, duplicates


# -- comparing -------------------------------------------------------------------------------


def _num_diff(out: list[Difference], name: str, reader: Any, upload: Any,
              tolerance: float) -> None:
    if reader is None and upload is None:
        return
    if reader is None or upload is None or abs(float(reader) - float(upload)) > tolerance:
        out.append(Difference(name, _plain(reader), _plain(upload)))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def compare_values(kind: str, reader: dict[str, Any], upload: dict[str, Any],
                   value_tolerance: float) -> list[Difference]:
    """The value differences between a reader item and an upload item of one kind."""
    out: list[Difference] = []
    if kind in _GLUCOSE_KINDS or kind == "ketone":
        # the out-of-range flags only stand for the value when the reader gave none (LO/HI);
        # beside a number they are derived from it, and the number is compared
        if reader.get("range"):
            if reader.get("range") != upload.get("range"):
                unit = "mmol_l" if kind == "ketone" else "mg_dl"
                out.append(Difference("out of range",
                                      reader.get("range") or _plain(reader.get(unit)),
                                      upload.get("range") or _plain(upload.get(unit))))
        elif kind == "ketone":
            _num_diff(out, "mmol/L", reader.get("mmol_l"), upload.get("mmol_l"),
                      KETONE_TOLERANCE)
        else:
            _num_diff(out, "mg/dL", reader.get("mg_dl"), upload.get("mg_dl"), value_tolerance)
        if kind == "scan" and _norm_trend(reader.get("trend")) != upload.get("trend"):
            out.append(Difference("trendArrow", reader.get("trend") or TREND_NONE,
                                  upload.get("trend")))
    elif kind == "insulin":
        if str(reader.get("insulin_type")).lower() != str(upload.get("insulin_type")).lower():
            out.append(Difference("insulinType", reader.get("insulin_type"),
                                  upload.get("insulin_type")))
        _num_diff(out, "units", reader.get("units"), upload.get("units"), value_tolerance)
    elif kind == "food":
        _num_diff(out, "gramsCarbs", reader.get("carbs_g"), upload.get("carbs_g"),
                  value_tolerance)
    elif kind == "note":
        text = upload.get("text")
        if not is_placeholder(text) and text != reader.get("text"):
            out.append(Difference("text", reader.get("text"), text))
    return out


def _delta(reader: ReaderItem, upload: UploadItem) -> float | None:
    """Upload time minus reader time in seconds, the smallest of the comparable ones:

    - the reader's clock against the wall clock of the upload's local ``timestamp``;
    - when the upload entry has only a UTC time and a zone was given, the reader's clock
      placed in that zone (as :func:`~.build.place_local` does) against the UTC time;
    - when the timeline placed the reader record (``utc``), the two UTC instants.

    A vendor that copied the reader's clock matches on the first, one that corrected it
    with the reader's time changes on the last. None when no pair of times is comparable.
    """
    deltas: list[float] = []
    if reader.local is not None and upload.local is not None:
        deltas.append((upload.local - reader.local).total_seconds())
    if upload.zone is not None and upload.utc is not None and reader.local is not None:
        deltas.append((upload.utc - place_local(reader.local, upload.zone)[1]).total_seconds())
    if reader.utc is not None and upload.utc is not None:
        deltas.append((upload.utc - reader.utc).total_seconds())
    return min(deltas, key=abs) if deltas else None


class _Matcher:
    def __init__(self, kind: str, uploads: list[UploadItem], tolerance: float,
                 value_tolerance: float, reader_numbers: set[int]) -> None:
        self.kind = kind
        #: record ids of this kind on the reader: an upload entry carrying one of them is
        #: that record's entry, never paired with another record by time alone
        self.reader_numbers = reader_numbers
        self.tolerance = tolerance
        self.value_tolerance = value_tolerance
        self.used: set[int] = set()
        self.by_number: dict[int | None, list[UploadItem]] = defaultdict(list)
        for item in uploads:
            self.by_number[item.record_number].append(item)
        timed = [(item.local, position, item) for position, item in enumerate(uploads)
                 if item.local is not None]
        timed.sort(key=lambda row: (row[0], row[1]))
        self.timed = [row[2] for row in timed]
        self.times: list[dt.datetime] = [row[0] for row in timed]
        instants = [(item.utc, position, item) for position, item in enumerate(uploads)
                    if item.utc is not None]
        instants.sort(key=lambda row: (row[0], row[1]))
        self.by_instant = [row[2] for row in instants]
        self.instants: list[dt.datetime] = [row[0] for row in instants]

    def diffs(self, reader: ReaderItem, upload: UploadItem) -> list[Difference]:
        return compare_values(self.kind, reader.values, upload.values, self.value_tolerance)

    def _best(self, reader: ReaderItem, candidates: Iterable[UploadItem], strict: bool,
              within: bool, near: bool) -> tuple[UploadItem, float | None] | None:
        best: tuple[UploadItem, float | None] | None = None
        for item in candidates:
            if id(item) in self.used:
                continue
            if (near and item.record_number != reader.record_number
                    and item.record_number in self.reader_numbers):
                continue
            delta = _delta(reader, item)
            in_time = delta is None or abs(delta) <= self.tolerance
            if within != in_time:
                continue
            if strict and self.diffs(reader, item):
                continue
            if best is None or abs(delta or 0) < abs(best[1] or 0):
                best = (item, delta)
        return best

    def _near(self, reader: ReaderItem) -> list[UploadItem]:
        """Upload items whose local time, or UTC instant, is near the reader's."""
        span = dt.timedelta(seconds=self.tolerance)
        found: list[UploadItem] = []
        if reader.local is not None:
            low = bisect.bisect_left(self.times, reader.local - span)
            high = bisect.bisect_right(self.times, reader.local + span)
            found.extend(self.timed[low:high])
        if reader.utc is not None:
            low = bisect.bisect_left(self.instants, reader.utc - span)
            high = bisect.bisect_right(self.instants, reader.utc + span)
            seen = {id(item) for item in found}
            found.extend(item for item in self.by_instant[low:high] if id(item) not in seen)
        return found

    def run(self, readers: list[ReaderItem]) -> tuple[list[Pair], list[ReaderItem]]:
        pairs: list[Pair] = []
        pending = readers
        passes = (
            ("recordNumber", True, True, False),
            ("recordNumber", False, True, False),
            ("time", True, True, True),
            ("time", False, True, True),
            ("recordNumber (time differs)", False, False, False),
        )
        for by, strict, within, near in passes:
            left: list[ReaderItem] = []
            for reader in pending:
                candidates = self._near(reader) if near else self.by_number.get(
                    reader.record_number, [])
                found = self._best(reader, candidates, strict, within, near)
                if found is None:
                    left.append(reader)
                    continue
                item, delta = found
                self.used.add(id(item))
                differences = self.diffs(reader, item)
                if not within:
                    differences.insert(0, Difference("time", _iso(reader.local),
                                                     _iso(item.local)))
                elif delta is None:  # no comparable time on one side: cannot confirm it
                    upload_time = (f"{_iso(item.utc.replace(tzinfo=None))}Z (UTC only; no "
                                   "local offset known)" if item.utc is not None else None)
                    differences.insert(0, Difference("time", _iso(reader.local),
                                                     upload_time or _iso(item.local)))
                pairs.append(Pair(reader=reader, upload=item, by=by, time_delta=delta,
                                  differences=differences))
            pending = left
        return pairs, pending

    def unused(self) -> list[UploadItem]:
        return [item for items in self.by_number.values() for item in items
                if id(item) not in self.used]


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


def _match_kind(kind: str, readers: list[ReaderItem], uploads: list[UploadItem],
                tolerance: float, value_tolerance: float) -> KindResult:
    result = KindResult(kind)
    matcher = _Matcher(kind, uploads, tolerance, value_tolerance,
                       {item.record_number for item in readers})
    expected = [item for item in readers if item.expected]
    unexpected = [item for item in readers if not item.expected]
    pairs, left = matcher.run(expected)
    for pair in pairs:
        (result.changed if pair.differences else result.matched).append(pair)
    result.reader_only.extend(left)
    if unexpected and matcher.unused():
        extra, left_unexpected = matcher.run(unexpected)
        for pair in extra:
            pair.differences.insert(0, Difference("validity", pair.reader.note,
                                                  "uploaded anyway"))
            result.changed.append(pair)
        result.not_expected.extend(left_unexpected)
    else:
        result.not_expected.extend(unexpected)
    result.upload_only.extend(matcher.unused())
    _sort(result)
    return result


def _sort(result: KindResult) -> None:
    def reader_key(item: ReaderItem) -> tuple[Any, ...]:
        return (item.local or dt.datetime.min, item.record_number)

    def upload_key(item: UploadItem) -> tuple[Any, ...]:
        return (item.local or dt.datetime.min, item.record_number or 0)

    result.matched.sort(key=lambda pair: reader_key(pair.reader))
    result.changed.sort(key=lambda pair: reader_key(pair.reader))
    result.reader_only.sort(key=reader_key)
    result.not_expected.sort(key=reader_key)
    result.upload_only.sort(key=upload_key)


def _match_time_changes(records: Sequence[Record], kinds: dict[str, KindResult],
                        flagged: list[UploadItem], tolerance: float) -> KindResult:
    result = KindResult("time_change")
    pair_of: dict[int, Pair] = {}
    for kind in _GLUCOSE_KINDS:
        for known in (*kinds[kind].matched, *kinds[kind].changed):
            pair_of[id(known.reader.record)] = known
    used: set[int] = set()
    pending: list[tuple[ReaderItem, Record | None, Pair | None]] = []
    for change, reading in first_after_time_changes(records):
        values = {"old_time": _iso(change.old_time), "new_time": _iso(change.new_time),
                  "first_reading": None if reading is None else
                  f"{reading.kind.value} {reading.record_id}"}
        item = ReaderItem(kind="time_change", record=change, record_number=change.record_id,
                          local=change.new_time or change.local_time, utc=change.utc,
                          values=values)
        if reading is None:
            item.expected = False
            item.note = "no uploadable glucose reading follows it"
            result.not_expected.append(item)
            continue
        pair = pair_of.get(id(reading))
        if pair is not None and pair.upload.first_after_time_change:
            used.add(id(pair.upload))
            result.matched.append(Pair(reader=item, upload=pair.upload,
                                       by="isFirstAfterTimeChange", time_delta=pair.time_delta,
                                       differences=[]))
        else:
            pending.append((item, reading, pair))
    for item, reading, found in pending:
        assert reading is not None
        best: UploadItem | None = None
        start = item.local
        for candidate in flagged:
            if id(candidate) in used or candidate.local is None or start is None:
                continue
            if candidate.local < start - dt.timedelta(seconds=tolerance):
                continue
            if best is None or candidate.local < best.local:  # type: ignore[operator]
                best = candidate
        expected_entry = f"{reading.kind.value} record {reading.record_id}"
        if best is not None:
            used.add(id(best))
            result.changed.append(Pair(
                reader=item, upload=best, by="isFirstAfterTimeChange", time_delta=None,
                differences=[Difference("flagged entry", expected_entry,
                                        f"{best.kind} recordNumber {best.record_number}")]))
        else:
            item.note = ("the upload does not flag the reading after it "
                         f"({expected_entry}"
                         + (", which is not in the upload)" if found is None else ")"))
            result.reader_only.append(item)
    result.upload_only.extend(item for item in flagged if id(item) not in used)
    _sort(result)
    return result


# -- privacy ----------------------------------------------------------------------------------

#: key name (lower case) -> (category, what it identifies)
_KEY_RULES: dict[str, tuple[str, str]] = {
    "uniqueidentifier": ("device", "unique id of the uploading installation; LibreView binds "
                                   "the login token to it and links every upload from it"),
    "hardwaredescriptor": ("device", "phone or computer model"),
    "hardwarename": ("device", "phone or computer manufacturer"),
    "modelname": ("app", "app bundle id with its country suffix"),
    "ostype": ("device", "operating system"),
    "osversion": ("device", "operating system version"),
    "firmwareversion": ("app", "uploader app version"),
    "gatewaytype": ("app", "uploading app and platform"),
    "serialnumber": ("serial", "a reader or sensor serial number"),
    "serial": ("serial", "a reader or sensor serial number"),
    "sensorserial": ("serial", "a sensor serial number"),
    "activesensor": ("serial", "the active sensor's serial number"),
    "firstname": ("patient", "first name"),
    "lastname": ("patient", "last name"),
    "middleinitial": ("patient", "middle initial"),
    "guardianfirstname": ("patient", "guardian's first name"),
    "guardianlastname": ("patient", "guardian's last name"),
    "dateofbirth": ("patient", "date of birth"),
    "email": ("patient", "e-mail address"),
    "username": ("patient", "account user name"),
    "accountid": ("patient", "account id"),
    "patientname": ("patient", "patient name"),
    "patientid": ("patient", "patient id"),
    "uom": ("setting", "display unit"),
    "selectedlanguage": ("setting", "language and region (hints at your country)"),
    "culture": ("setting", "language and region (hints at your country)"),
    "country": ("setting", "country"),
    "timezone": ("setting", "time zone"),
    "valueglucosetargetrangelowinmgperdl": ("setting", "your glucose target range (low)"),
    "valueglucosetargetrangehighinmgperdl": ("setting", "your glucose target range (high)"),
    "selectedtimeformat": ("setting", "12/24-hour time format"),
    "selectedcarbtype": ("setting", "carbohydrate unit"),
    "isstreaming": ("setting", "whether sensor streaming (Bluetooth) is on"),
}
_PATIENT_PARENT = {"patient"}
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}")
_EMAIL = re.compile(r"[^@\s\"]+@[^@\s\"]+\.[A-Za-z]{2,}")
#: request headers shown with their value (they describe the device, app or you)
_SHOWN_HEADERS = {"user-agent", "abbott-adc-app-platform", "accept-language", "platform",
                  "version", "x-forwarded-for", "x-real-ip", "from", "origin", "referer"}
#: header names the report checks for, shown only as present/absent
AUTH_HEADERS = ("Authorization", "x-newyu-token", "Cookie", "x-api-key",
                "Proxy-Authorization")


#: entry fields that hold measurements or bookkeeping, never identifiers (skipped fast)
_PLAIN_KEYS = {"timestamp", "factorytimestamp", "recordnumber", "valueinmgperdl",
               "valueinmmolperl", "units", "gramscarbs", "insulintype", "trendarrow", "type",
               "isfirstaftertimechange", "lowoutofrange", "highoutofrange", "isactionable",
               "isviewed", "canmerge", "linkedglucoserecordnumber"}


class _Privacy:
    def __init__(self, reader_ids: dict[str, str]) -> None:
        self.items: dict[tuple[str, str, str | None], PrivacyItem] = {}
        self.reader_ids = reader_ids

    def add(self, path: str, category: str, what: str, value: str | None, upload: int,
            count: int = 1) -> None:
        key = (path, what, value)
        item = self.items.get(key)
        if item is None:
            item = PrivacyItem(path=path, category=category, what=what, value=value, count=0,
                               uploads=[])
            self.items[key] = item
        item.count += count
        if upload not in item.uploads:
            item.uploads.append(upload)

    def walk(self, value: Any, path: str, parent: str, upload: int) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                child_path = f"{path}.{key}" if path else str(key)
                if not path and key == ANNOTATION_KEY:
                    continue
                self.field(str(key), child, child_path, parent, upload)
                self.walk(child, child_path, str(key).lower(), upload)
        elif isinstance(value, list):
            for child in value:
                self.walk(child, path + "[]", parent, upload)

    def field(self, key: str, value: Any, path: str, parent: str, upload: int) -> None:
        lower = key.lower()
        if isinstance(value, (dict, list)) or (lower in _PLAIN_KEYS and parent != "devicesettings"):
            return
        text = None if value is None else str(value)
        if is_secret_name(key) or value == SECRET:
            self.add(path, "credential", "login token or credential (value never shown)",
                     None, upload)
            return
        if text is None:
            return
        rule = _KEY_RULES.get(lower)
        if rule is None and parent in _PATIENT_PARENT and lower in ("name", "id"):
            rule = ("patient", f"patient {lower}")
        if lower == "text" and path.endswith("extendedProperties.text"):
            rule = ("note", "note text you typed")
        if lower == "timestamp" and parent == "devicesettings":
            rule = ("time", "local time of the upload, with your UTC offset")
        if rule is not None:
            category, what = rule
            if lower == "modelname":
                country = text.rsplit(".", 1)[-1] if "." in text else ""
                if 2 <= len(country) <= 3 and country.isalpha():
                    what += f" (country: {country.upper()})"
            self.add(path, category, what + self.reader_match(text), text, upload)
            return
        match = self.reader_match(text)
        if match:
            self.add(path, "reader", "a reader identifier" + match, text, upload)
        elif isinstance(value, str) and _UUID.search(text):
            self.add(path, "device", "looks like a unique id (UUID)", text, upload)
        elif isinstance(value, str) and _EMAIL.search(text):
            self.add(path, "patient", "looks like an e-mail address", text, upload)

    def reader_match(self, text: str) -> str:
        for label, identifier in self.reader_ids.items():
            if identifier and text.strip() == identifier:
                return f" -- equals this reader's {label}"
        return ""


def _privacy(uploads: Sequence[Upload], dump: Dump) -> list[PrivacyItem]:
    device = dump.device
    reader_ids = {"serial": device.serial or "", "patient name": device.patient_name or "",
                  "patient id": device.patient_id or ""}
    privacy = _Privacy(reader_ids)
    for index, upload in enumerate(uploads):
        privacy.walk(upload.data, "", "", index)
        if not any(path.split(".")[-1] == "UserToken" for path in upload.secrets):
            privacy.add("UserToken", "credential", "login token in the body", "absent", index)
        # sensor serials in LibreLink-encoded record numbers
        decoded: dict[tuple[str, str], list[int]] = defaultdict(list)
        offsets: Counter[str] = Counter()
        for entry in upload.entries:
            stamp = entry.timestamp
            if stamp is not None and stamp.offset is not None and not stamp.zulu:
                offsets[_offset_text(stamp.offset)] += 1
            number = entry.record_number
            if number is None or abs(number) < 1 << 40:
                continue
            serial, minute = decode_reading_identifier(number)
            pattern = re.sub(r"\[\d+\]", "[]", entry.path) + ".recordNumber"
            decoded[(pattern, serial)].append(minute)
        for (pattern, serial), minutes in decoded.items():
            shown = ", ".join(str(m) for m in sorted(set(minutes))[:5])
            more = "" if len(set(minutes)) <= 5 else ", ..."
            privacy.add(pattern, "serial",
                        "sensor serial (characters 2-11) encoded in LibreLink record numbers; "
                        f"sensor minute {shown}{more}", serial, index, count=len(minutes))
        if offsets:
            privacy.add("measurementLog.*[].timestamp", "time",
                        "UTC offsets of your local times (reveal your time zone)",
                        ", ".join(sorted(offsets)), index, count=sum(offsets.values()))
        source = upload.source
        if source.container != "body":
            for what, value in (("destination host", source.host),
                                ("request URL", source.url),
                                ("server address", source.server_address),
                                ("time of upload (UTC)", _iso_utc(source.time))):
                if value:
                    privacy.add("request", "network", what, value, index)
            names = {name.lower() for name, _ in source.headers}
            for header in AUTH_HEADERS:
                privacy.add(f"request header {header}", "credential",
                            "authentication header (value never shown)",
                            "present" if header.lower() in names else "absent", index)
            for name, value in source.headers:
                lower = name.lower()
                if is_secret_name(name) and lower not in (h.lower() for h in AUTH_HEADERS):
                    privacy.add(f"request header {name}", "credential",
                                "credential-like header (value never shown)", "present", index)
                elif lower in _SHOWN_HEADERS:
                    privacy.add(f"request header {name}", "network",
                                "sent with the upload: describes your device, app or language",
                                value, index)
    order = {"credential": 0, "patient": 1, "note": 2, "serial": 3, "reader": 4, "device": 5,
             "app": 6, "network": 7, "time": 8, "setting": 9}
    return sorted(privacy.items.values(),
                  key=lambda item: (order.get(item.category, 99), item.path, item.value or ""))


def _offset_text(offset: dt.timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _iso_utc(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- unexplained fields -------------------------------------------------------------------------

_COMMON_KEYS = {"recordNumber", "timestamp", "extendedProperties"}
_COMMON_EXT = {"factoryTimestamp"}
_GLUCOSE_EXT = {"isFirstAfterTimeChange", "lowOutOfRange", "highOutOfRange"}
#: per kind: (entry keys, extendedProperties keys) a reader record explains
_EXPLAINED: dict[str, tuple[set[str], set[str]]] = {
    "history": ({"valueInMgPerDl"}, _GLUCOSE_EXT),
    "scan": ({"valueInMgPerDl"}, _GLUCOSE_EXT | {"trendArrow", "isActionable"}),
    "glucose": ({"valueInMgPerDl"}, _GLUCOSE_EXT),
    "ketone": ({"valueInMmolPerL", "valueInMgPerDl"}, {"lowOutOfRange", "highOutOfRange"}),
    "insulin": ({"insulinType", "units"}, set()),
    "food": ({"gramsCarbs"}, set()),
    "exercise": ({"type"}, set()),
    "medication": ({"type"}, set()),
    "note": ({"type"}, {"text"}),
    "sensorstart": ({"type"}, set()),
    "current": ({"valueInMgPerDl"}, _GLUCOSE_EXT | {"trendArrow", "isActionable"}),
    "other": ({"type"}, set()),
}
#: what known fields without a reader counterpart are
_FIELD_NOTES = {
    "capabilities": "entry types the uploading app says it can send",
    "connectedDevices": "insulin pens or other devices linked to the app",
    "forceUpload": "app upload flag",
    "Domain": "service name",
    "linkedGlucoseRecordNumber": "link from a logbook entry to a glucose entry (app "
                                 "bookkeeping)",
    "isViewed": "whether you looked at the value in the app",
    "canMerge": "server-side merge hint",
    "foodType": "meal name chosen by the app (a reader stores none)",
    "gmin": "sensor's lowest reportable glucose",
    "gmax": "sensor's highest reportable glucose",
    "puckGen": "sensor transmitter generation",
    "wearDuration": "sensor wear time in minutes",
    "warmupTime": "sensor warm-up in minutes",
    "productType": "sensor product type",
    "latejoin": "sensor late-join flag",
    "isStreaming": "whether sensor streaming (Bluetooth) is on",
    "action": "deletion marker",
    "intensity": "exercise intensity (a reader stores none)",
    "durationInMinutes": "exercise duration (a reader stores none)",
}
_KNOWN_ENVELOPE = {"DeviceData", "UserToken", "GatewayType", ANNOTATION_KEY}
_KNOWN_DEVICE_DATA = {"header", "deviceSettings", "measurementLog"}
_KNOWN_LOG = set(LIST_KINDS) | {"genericEntries", "device"}
_KNOWN_SETTINGS = {"factoryConfig", "firmwareVersion", "miscellaneous", "timestamp"}


class _Unexplained:
    def __init__(self) -> None:
        self.items: dict[str, UnexplainedField] = {}

    def add(self, path: str, value: Any, upload: int, what: str | None = None) -> None:
        key = path
        name = path.rsplit(".", 1)[-1].split("[", 1)[0]
        item = self.items.get(key)
        if item is None:
            example = None if isinstance(value, (dict, list)) else _short(value)
            if isinstance(value, list):
                example = f"{len(value)} items"
            elif isinstance(value, dict):
                example = f"{{{', '.join(list(value)[:6])}}}"
            item = UnexplainedField(path=path, what=what or _FIELD_NOTES.get(
                name, "no reader record explains it"), example=example, count=0, uploads=[])
            self.items[key] = item
        item.count += 1
        if upload not in item.uploads:
            item.uploads.append(upload)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _unexplained(uploads: Sequence[Upload]) -> list[UnexplainedField]:
    found = _Unexplained()
    for index, upload in enumerate(uploads):
        data = upload.data
        if upload.prefix:
            for key, value in data.items():
                if key not in _KNOWN_ENVELOPE and not is_secret_name(key):
                    found.add(key, value, index)
        inner = upload.device_data
        prefix = upload.prefix
        for key, value in inner.items():
            if key not in _KNOWN_DEVICE_DATA and not (not prefix and key in _KNOWN_ENVELOPE):
                found.add(prefix + key, value, index)
        settings = inner.get("deviceSettings")
        if isinstance(settings, dict):
            for key, value in settings.items():
                if key not in _KNOWN_SETTINGS:
                    found.add(f"{prefix}deviceSettings.{key}", value, index)
        header = inner.get("header")
        if isinstance(header, dict):
            for key, value in header.items():
                if key not in ("device", "patient"):
                    found.add(f"{prefix}header.{key}", value, index)
        log = upload.measurement_log
        for key, value in log.items():
            if key not in _KNOWN_LOG:
                found.add(f"{prefix}measurementLog.{key}", value, index)
        for entry in upload.entries:
            kind = entry_kind(entry)
            keys, ext_keys = _EXPLAINED[kind]
            pattern = re.sub(r"\[\d+\]", "[]", entry.path)
            for key, value in entry.data.items():
                if key not in keys and key not in _COMMON_KEYS:
                    found.add(f"{pattern}.{key}", value, index)
            for key, value in entry.extended.items():
                if key not in ext_keys and key not in _COMMON_EXT:
                    found.add(f"{pattern}.extendedProperties.{key}", value, index)
    return sorted(found.items.values(), key=lambda item: item.path)


# -- the diff -----------------------------------------------------------------------------------


def diff_uploads(dump: Dump, uploads: Sequence[Upload], *, tz: str | dt.tzinfo | None = None,
                 time_tolerance: float = DEFAULT_TIME_TOLERANCE,
                 value_tolerance: float = DEFAULT_VALUE_TOLERANCE) -> DiffResult:
    """Compare the reader's records in ``dump`` with the entries of ``uploads``."""
    zone = resolve_tz(tz) if tz is not None else (
        resolve_tz(dump.timezone) if dump.timezone else None)
    warnings: list[str] = []
    by_kind, duplicates = upload_items(uploads, zone, time_tolerance, warnings)
    readers: dict[str, list[ReaderItem]] = defaultdict(list)
    for item in reader_items(dump.records):
        readers[item.kind].append(item)
    kinds: dict[str, KindResult] = {}
    for kind in KINDS:
        if kind == "time_change":
            continue
        kinds[kind] = _match_kind(kind, readers.get(kind, []), by_kind.get(kind, []),
                                  time_tolerance, value_tolerance)
    flagged = [item for kind in (*_GLUCOSE_KINDS, "current") for item in by_kind.get(kind, [])
               if item.first_after_time_change]
    kinds["time_change"] = _match_time_changes(dump.records, kinds, flagged, time_tolerance)
    kinds = {kind: kinds[kind] for kind in KINDS}
    device = dump.device
    reader = {
        "model": device.model,
        "serial": device.serial,
        "software_version": device.software_version,
        "unit": device.unit,
        "clock": _iso(device.clock),
        "records": len(dump.records),
        "counts": dump.counts(),
    }
    summaries = [
        UploadSummary(index=index, label=upload.label(), container=upload.source.container,
                      file=upload.source.file, method=upload.source.method,
                      url=upload.source.url, host=upload.source.host,
                      server_address=upload.source.server_address, time=upload.source.time,
                      encoding=upload.source.encoding, size=upload.size,
                      entries=dict(Counter(entry.list_name for entry in upload.entries)))
        for index, upload in enumerate(uploads)
    ]
    settings = {
        "time_tolerance_s": time_tolerance,
        "value_tolerance": value_tolerance,
        "ketone_tolerance_mmol_l": KETONE_TOLERANCE,
        "timezone": None if zone is None else getattr(zone, "key", str(zone)),
    }
    return DiffResult(reader=reader, uploads=summaries, kinds=kinds,
                      privacy=_privacy(uploads, dump), unexplained=_unexplained(uploads),
                      warnings=warnings, settings=settings, duplicates=duplicates)


__all__ = [
    "DEFAULT_TIME_TOLERANCE",
    "DEFAULT_VALUE_TOLERANCE",
    "KINDS",
    "DiffResult",
    "Difference",
    "KindResult",
    "Pair",
    "PrivacyItem",
    "ReaderItem",
    "UnexplainedField",
    "UploadItem",
    "UploadSummary",
    "compare_values",
    "diff_uploads",
]
