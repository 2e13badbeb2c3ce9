"""The diff's vocabulary: the kinds it matches, its tolerances, and its result types."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from ..model import (
    Record,
)
from .load import UploadEntry

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
    "sensorend": "Sensor ends",
    "alert": "Alerts (glycemic alarms)",
    "error": "Device errors",
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
    "sensorend": "sensorend",
    "sensorEnd": "sensorend",  # spelled so by the Libre 3 app (upload-format 1.4)
    "error": "error",
    "ondemandalarm.low": "alert",
    "ondemandalarm.high": "alert",
    "ondemandalarm.projectedlow": "alert",
    "ondemandalarm.projectedhigh": "alert",
}
#: the alarm name of an ``ondemandalarm.*`` entry, as reader alert records name it
ALARM_SUFFIXES = {"ondemandalarm.low": "low", "ondemandalarm.high": "high",
                  "ondemandalarm.projectedlow": "projected_low",
                  "ondemandalarm.projectedhigh": "projected_high"}
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
    #: when the differences are dominated by one constant time shift: ``seconds`` (upload
    #: minus reader), ``entries`` that differ only by it, ``changed`` (all changed pairs),
    #: ``zone`` (the zone the upload says it was made in, if it says and it is another)
    time_shift: dict[str, Any] | None = None

    @property
    def identical(self) -> bool:
        """True when the uploads hold exactly the reader's records (exit code 0)."""
        return not any(result.differs for result in self.kinds.values())

    def counts(self) -> dict[str, dict[str, int]]:
        return {kind: result.counts() for kind, result in self.kinds.items()}


# -- reader side ------------------------------------------------------------------------------
