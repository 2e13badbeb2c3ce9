"""What a report shows, gathered from a dump (a reader or a saved file) or from the archive:
the sensor readings of the period, and for the daily profiles (the last
:data:`PROFILE_DAYS` days of the period) the readings and markers of each day."""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt

from ..archive import Archive
from ..devices import MODELS
from ..model import (
    DeviceInfo,
    Dump,
    ExerciseRecord,
    FoodRecord,
    GlucoseRecord,
    HistoryRecord,
    InsulinRecord,
    Kind,
    MedicationRecord,
    NoteRecord,
    Record,
    ScanRecord,
)
from ..output import describe
from ..output.identity import kind_rank
from ..output.period import ALL, Period
from .agp import Glucose, later

#: daily profiles shown (the consensus AGP shows 14)
PROFILE_DAYS = 14


@dataclasses.dataclass(frozen=True)
class Marker:
    #: minutes after midnight on the reader's clock
    minute: int
    #: insulin, food, note, strip, alert, event
    kind: str
    label: str


@dataclasses.dataclass(frozen=True)
class Day:
    day: dt.date
    #: (minutes after midnight, mg/dL), oldest first
    points: tuple[tuple[int, int], ...]
    markers: tuple[Marker, ...]


@dataclasses.dataclass(frozen=True)
class ReportData:
    device: DeviceInfo
    period: Period
    glucose: Glucose
    days: tuple[Day, ...]

    @property
    def title(self) -> str:
        model = MODELS.get(self.device.model)
        return model.title if model is not None else self.device.model


def marker(record: Record) -> Marker | None:
    """The daily-profile marker of a record (None for sensor readings and scans)."""
    if record.local_time is None or isinstance(record, HistoryRecord | ScanRecord):
        return None
    minute = record.local_time.hour * 60 + record.local_time.minute
    if isinstance(record, InsulinRecord):
        amount = "" if record.units is None else f"{describe.amount(record.units)} U "
        return Marker(minute, "insulin", f"{amount}{record.insulin_type} insulin")
    if isinstance(record, FoodRecord):
        return Marker(minute, "food",
                      "food" if record.carbs_g is None else f"{record.carbs_g} g carbs")
    if isinstance(record, NoteRecord):
        return Marker(minute, "note", record.text)
    if isinstance(record, GlucoseRecord):
        value = record.glucose_mg_dl
        shown = record.out_of_range or ("invalid" if value is None or record.invalid
                                        else f"{value} mg/dL")
        return Marker(minute, "strip", f"strip {shown}")
    if isinstance(record, ExerciseRecord | MedicationRecord):
        return Marker(minute, "event", record.kind.value)
    if "alert" in record.kind.value or "alarm" in record.kind.value:
        return Marker(minute, "alert", describe.text(record))
    if record.kind is Kind.TIME_CHANGE:
        return Marker(minute, "event", describe.text(record))
    return Marker(minute, "event", describe.text(record))


def _profile_days(glucose: Glucose, period: Period) -> list[dt.date]:
    """The last :data:`PROFILE_DAYS` days of the period (arithmetic, never a walk over the
    data's span)."""
    if period.end is not None:
        last = (period.end - dt.timedelta(microseconds=1)).date()
    elif glucose.times:
        last = glucose.times[-1].date()
    else:
        return []
    first = period.start.date() if period.start is not None else (
        glucose.times[0].date() if glucose.times else last)
    count = max(0, min(PROFILE_DAYS, (last - first).days + 1))
    return [last - dt.timedelta(days=count - 1 - i) for i in range(count)]


def _days(glucose: Glucose, dates: list[dt.date], markers: list[tuple[dt.date, Marker]]
          ) -> tuple[Day, ...]:
    out = []
    for day in dates:
        start = dt.datetime.combine(day, dt.time())
        low = bisect.bisect_left(glucose.times, start)
        high = bisect.bisect_left(glucose.times, later(start, dt.timedelta(days=1)))
        points = tuple((t.hour * 60 + t.minute, v) for t, v in
                       zip(glucose.times[low:high], glucose.values[low:high], strict=True))
        out.append(Day(day, points, tuple(m for d, m in markers if d == day)))
    return tuple(out)


def _valid_history(records: tuple[Record, ...]) -> Glucose:
    return Glucose.of([(r.local_time, r.glucose_mg_dl) for r in records
                       if isinstance(r, HistoryRecord) and not r.invalid
                       and r.glucose_mg_dl is not None and r.local_time is not None])


def _markers(records: tuple[Record, ...], dates: list[dt.date]) -> list[tuple[dt.date, Marker]]:
    wanted = set(dates)
    out = []
    for record in sorted((r for r in records if r.local_time is not None
                          and r.local_time.date() in wanted),
                         key=lambda r: (r.local_time or dt.datetime.min, r.source,
                                        r.record_id, kind_rank(r.kind.value))):
        found = marker(record)
        if found is not None and record.local_time is not None:
            out.append((record.local_time.date(), found))
    return out


def from_dump(dump: Dump, period: Period = ALL) -> ReportData:
    records = period.select(dump.records)
    glucose = _valid_history(records)
    dates = _profile_days(glucose, period)
    return ReportData(dump.device, period, glucose,
                      _days(glucose, dates, _markers(records, dates)))


def from_archive(archive: Archive, serial: str | None, period: Period = ALL) -> ReportData:
    """Straight from the archive's index: only the glucose column of the readings, and whole
    records only for the days of the daily profiles."""
    pairs = [(dt.datetime.fromisoformat(t), v) for t, v in archive.glucose(serial, period)]
    glucose = Glucose(tuple(t for t, _ in pairs), tuple(v for _, v in pairs))
    dates = _profile_days(glucose, period)
    device = archive.device(serial)
    if not dates:
        return ReportData(device, period, glucose, ())
    start = dt.datetime.combine(dates[0], dt.time())
    end = later(dt.datetime.combine(dates[-1], dt.time()), dt.timedelta(days=1))
    records = archive.load(serial, Period(start, end)).records
    return ReportData(device, period, glucose, _days(glucose, dates, _markers(records, dates)))
