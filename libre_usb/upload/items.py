"""Both sides as the diff sees them: reader records and upload entries as items, each with
its kind, values and time; upload entries are placed in time here (diff.py, "Times")."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from ..errors import InputError
from ..model import (
    AlertRecord,
    EventRecord,
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
    GENERIC_PREFIX,
    TREND_ARROWS,
    insulin_type_name,
    is_uploadable,
    not_uploadable_reason,
    sensor_start_minutes,
)
from .kinds import (
    _GLUCOSE_KINDS,
    _NO_TREND,
    ALARM_SUFFIXES,
    GENERIC_KINDS,
    KETONE_FACTOR,
    LIST_KINDS,
    ReaderItem,
    UploadItem,
)
from .load import Upload, UploadEntry, parse_time


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
        elif isinstance(record, AlertRecord):
            yield item("alert", {"alarm": record.alarm})
        elif isinstance(record, EventRecord) and record.event == "sensor_expired":
            yield item("sensorend", {})
        elif isinstance(record, EventRecord) and record.event == "error":
            yield item("error", {})
        elif isinstance(record, EventRecord):
            yield item("other", {"event": record.event}, expected=False)
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
    if kind == "alert":
        name = str(values.get("type", ""))
        suffix = name[len(GENERIC_PREFIX):] if name.startswith(GENERIC_PREFIX) else name
        return {"alarm": ALARM_SUFFIXES.get(suffix)}
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
