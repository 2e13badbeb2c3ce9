"""Build the LibreView upload JSON for a dump (``libre-dump dump --format libreview``).

The shape follows the LibreLink ``POST /lsl/api/measurements`` body as Juggluco rebuilds it
(github.com/j-kaltes/Juggluco ``libreview.cpp``): ``DeviceData`` with ``header.device``,
``deviceSettings`` and ``measurementLog``, whose entry lists hold the reader's records:

==========================  ======================================================
reader record               upload entry
==========================  ======================================================
history (``$history?``)     ``scheduledContinuousGlucoseEntries``
scan                        ``unscheduledContinuousGlucoseEntries`` (``trendArrow``)
strip glucose               ``bloodGlucoseEntries``
strip ketone                ``ketoneEntries`` (``valueInMmolPerL``, see below)
insulin                     ``insulinEntries`` (``RapidActing`` / ``LongActing``)
food                        ``foodEntries`` (``gramsCarbs``)
exercise, medication, note  ``genericEntries`` (``exercise``, ``medication``,
                            ``customnote`` with ``text``)
first history reading of    ``genericEntries`` ``sensorstart``, at the sensor start
a sensor                    (reading time minus the sensor runtime)
time change                 ``isFirstAfterTimeChange: true`` on the first glucose
                            entry after it (:func:`first_after_time_changes`)
alert (binary protocol)     ``genericEntries`` ``ondemandalarm.low`` / ``.high`` /
                            ``.projectedlow`` / ``.projectedhigh``
event ``sensor_expired``,   ``genericEntries`` ``sensorend``, ``error`` (no public upload
``error``                   shows their extended properties: none are written)
==========================  ======================================================

Conventions (all documented in ``docs/privacy.md``):

- ``recordNumber`` is the reader's record id, unchanged, for every entry (the sensorstart
  entry carries the id of the sensor's first history reading). Records made from one reader
  line share the id, exactly as on the reader. The LibreLink history encoding
  ``(base32(serial[1..10]) << 14) | minute`` needs the *sensor* serial, which a reader does
  not report, so it is only decoded (:func:`decode_reading_identifier`), never produced.
- ``timestamp`` is the reader's local clock with the zone's UTC offset at that time;
  ``extendedProperties.factoryTimestamp`` is the same instant in UTC.
- Readings the reader marks invalid (error bits or the error/LO flag), records with an
  invalid reader date, time changes and records of unknown type have no upload entry;
  they are listed, whole, under the top-level ``libreDump.notInUpload`` key so nothing the
  reader sent is lost from this format.
- Ketone and blood-glucose entries: no public upload shows their fields; by analogy we
  write ``valueInMmolPerL`` (ketone) and ``valueInMgPerDl`` (glucose).
- No ``UserToken`` is ever written. Identifiers (reader serial, patient name and id, note
  texts) are replaced by ``REDACTED-...`` placeholders unless ``redact=False``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from ..errors import InputError
from ..model import (
    AlertRecord,
    Dump,
    EventRecord,
    ExerciseRecord,
    FoodRecord,
    GlucoseRecord,
    HistoryRecord,
    InsulinRecord,
    KetoneRecord,
    MedicationRecord,
    NoteRecord,
    ReadingRecord,
    Record,
    ScanRecord,
    TimeChangeRecord,
)
from .redact import Redactor

#: the top-level key of libre-dump's own annotation (not part of a vendor upload)
ANNOTATION_KEY = "libreDump"
ANNOTATION_FORMAT = "libre-dump/libreview"
ANNOTATION_VERSION = 1

GENERIC_PREFIX = "com.abbottdiabetescare.informatics."
GENERIC_EXERCISE = GENERIC_PREFIX + "exercise"
GENERIC_MEDICATION = GENERIC_PREFIX + "medication"
GENERIC_NOTE = GENERIC_PREFIX + "customnote"
GENERIC_SENSORSTART = GENERIC_PREFIX + "sensorstart"
GENERIC_SENSOREND = GENERIC_PREFIX + "sensorend"
GENERIC_ERROR = GENERIC_PREFIX + "error"
#: alert name -> the generic type of its upload entry (upload-format: ``ondemandalarm.*``)
GENERIC_ALARMS = {"low": GENERIC_PREFIX + "ondemandalarm.low",
                  "high": GENERIC_PREFIX + "ondemandalarm.high",
                  "projected_low": GENERIC_PREFIX + "ondemandalarm.projectedlow",
                  "projected_high": GENERIC_PREFIX + "ondemandalarm.projectedhigh"}
#: event name -> the generic type of its upload entry
GENERIC_EVENTS = {"sensor_expired": GENERIC_SENSOREND, "error": GENERIC_ERROR}

#: reader trend arrow (protocol.md 4.2 field 14) -> upload ``trendArrow`` (JUG ``trendName``)
TREND_ARROWS = {
    1: "FallingQuickly",
    2: "Falling",
    3: "Stable",
    4: "Rising",
    5: "RisingQuickly",
}
#: ``trendArrow`` for a scan without a trend (KT's spelling; JUG writes "Undetermined")
TREND_NONE = "NotComputable"

#: model insulin type -> upload ``insulinType``
INSULIN_TYPES = {"rapid": "RapidActing", "long": "LongActing"}


def insulin_type_name(insulin_type: str) -> str:
    """The upload's ``insulinType`` for a model insulin type: Libre ``rapid``/``long``, and
    the Precision Neo's meal-slot types (``short_breakfast``, ``long_morning``, ...) by their
    action; anything else is written as the reader named it."""
    if insulin_type in INSULIN_TYPES:
        return INSULIN_TYPES[insulin_type]
    if insulin_type.startswith("long"):
        return "LongActing"
    if insulin_type.startswith(("rapid", "short")):
        return "RapidActing"
    return insulin_type

#: the entry lists of ``measurementLog``, in the order they are written
LIST_NAMES = (
    "bloodGlucoseEntries",
    "foodEntries",
    "genericEntries",
    "insulinEntries",
    "ketoneEntries",
    "scheduledContinuousGlucoseEntries",
    "unscheduledContinuousGlucoseEntries",
)

#: reader glucose values outside this range are reported as LO / HI (Libre 1/2, TP)
GLUCOSE_LO = 40
GLUCOSE_HI = 500

#: placeholder prefix for identifiers left out of a redacted upload
REDACTED = "REDACTED-"
READER_SERIAL_PLACEHOLDER = REDACTED + "reader-serial"
PATIENT_NAME_PLACEHOLDER = REDACTED + "patient-name"
PATIENT_ID_PLACEHOLDER = REDACTED + "patient-id"


def note_placeholder(comment_index: int) -> str:
    """What a redacted upload writes instead of the text of custom comment ``comment_index``."""
    return f"{REDACTED}note-{comment_index}"


def is_placeholder(value: object) -> bool:
    return isinstance(value, str) and value.startswith(REDACTED)


# -- time ---------------------------------------------------------------------------------------


def resolve_tz(tz: str | dt.tzinfo) -> dt.tzinfo:
    """A tzinfo from an IANA zone name (or a tzinfo, returned as is)."""
    if isinstance(tz, dt.tzinfo):
        return tz
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise InputError(f"unknown time zone {tz!r} (use an IANA name such as "
                         "Europe/Berlin)") from None


def record_instant(record: Record, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime] | None:
    """``(local wall clock with tzinfo, UTC instant)`` of a record, or None without a date.

    When :mod:`libre_usb.output.timeline` has placed the record, ``record.utc`` is used and
    the local time is that instant in ``tz``. Until then (``utc`` is None) this helper places the
    reader's clock in ``tz`` itself: the wall clock is kept exactly as the reader stored it
    and the zone's offset at that wall time gives the instant (a time in a DST gap or fold
    takes the offset before the transition, ``fold=0``).
    """
    if record.utc is not None:
        utc = record.utc.astimezone(dt.timezone.utc)
        return utc.astimezone(tz), utc
    if record.local_time is None:
        return None
    return place_local(record.local_time, tz)


def place_local(local: dt.datetime, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """A naive reader wall-clock time placed in ``tz``: ``(aware local, UTC)``, same wall clock."""
    offset = tz.utcoffset(local.replace(tzinfo=None))
    if offset is None:  # a tzinfo that does not know: treat as UTC
        offset = dt.timedelta(0)
    aware = local.replace(tzinfo=dt.timezone(offset))
    return aware, aware.astimezone(dt.timezone.utc)


def format_local(value: dt.datetime) -> str:
    """``YYYY-MM-DDThh:mm:ss.mmm+hh:mm`` (the upload's ``timestamp``)."""
    text = value.isoformat(timespec="milliseconds")
    return text if value.utcoffset() is not None else text + "Z"


def format_utc(value: dt.datetime) -> str:
    """``YYYY-MM-DDThh:mm:ss.mmmZ`` (the upload's ``factoryTimestamp``)."""
    utc = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


# -- record numbers ---------------------------------------------------------------------------

#: LibreLink's base32 alphabet for sensor serials (Juggluco ``share/serial.cpp``)
BASE32 = "0123456789ACDEFGHJKLMNPQRTUVWXYZ"
_MINUTE_BITS = 14
#: record numbers of magnitude above this are read as LibreLink-encoded sensor readings
ENCODED_THRESHOLD = 1 << 40


def encode_reading_identifier(sensor_serial: str, minute: int) -> int:
    """LibreLink's ``createUniqueReadingIdentifier``: ``(base32(serial[1..10]) << 14) | minute``
    as a signed 64-bit integer. ``sensor_serial`` is the 11-character sensor serial."""
    if len(sensor_serial) != 11:
        raise ValueError("a sensor serial has 11 characters")
    if not 0 <= minute < 1 << _MINUTE_BITS:
        raise ValueError("minute counter out of range")
    value = 0
    for char in sensor_serial[1:11].upper():
        index = BASE32.find(char)
        if index < 0:
            raise ValueError(f"{char!r} is not in the sensor serial alphabet")
        value = value << 5 | index
    unsigned = (value << _MINUTE_BITS | minute) & (1 << 64) - 1
    return unsigned - (1 << 64) if unsigned >> 63 else unsigned


def decode_reading_identifier(number: int) -> tuple[str, int]:
    """The inverse of :func:`encode_reading_identifier`: ``("?" + serial[1..10], minute)``.
    The first serial character is not encoded, so it is shown as ``?``."""
    unsigned = number & (1 << 64) - 1
    minute = unsigned & (1 << _MINUTE_BITS) - 1
    value = unsigned >> _MINUTE_BITS
    chars = [BASE32[value >> 5 * (9 - i) & 31] for i in range(10)]
    return "?" + "".join(chars), minute


def looks_encoded(number: int) -> bool:
    """True for record numbers too large to be a reader id: LibreLink sensor-reading ids."""
    return abs(number) >= ENCODED_THRESHOLD


# -- structure ------------------------------------------------------------------------------------


def first_after_time_changes(records: Iterable[Record]
                             ) -> list[tuple[TimeChangeRecord, Record | None]]:
    """For each reader time change, the first uploadable glucose reading made after it.

    Candidates are valid history readings, scans and strip glucose tests with a date.
    ``$arresult?`` readings come after the change when their record id is higher (and lower
    than the next change's). A history reading comes after it when the clock jumped there:
    the previous history reading (by record id) is at or before the old time, this one at or
    after the new time, and for a change backwards the clock went back between the two.
    The earliest candidate (reader clock, which after the change is all in the new frame)
    wins; history wins a tie. None when no reading follows the change.
    """
    records = list(records)
    changes = sorted((r for r in records if isinstance(r, TimeChangeRecord)),
                     key=lambda r: r.record_id)
    readings = sorted((r for r in records
                       if isinstance(r, (ScanRecord, GlucoseRecord)) and is_uploadable(r)
                       and r.local_time is not None),
                      key=lambda r: r.record_id)
    history = sorted((r for r in records if isinstance(r, HistoryRecord) and is_uploadable(r)
                      and r.local_time is not None), key=lambda r: r.record_id)
    out: list[tuple[TimeChangeRecord, Record | None]] = []
    for position, change in enumerate(changes):
        candidates: list[tuple[dt.datetime, int, Record]] = []
        upper = changes[position + 1].record_id if position + 1 < len(changes) else None
        for reading in readings:
            if reading.record_id > change.record_id and (upper is None
                                                          or reading.record_id < upper):
                assert reading.local_time is not None
                candidates.append((reading.local_time, 1, reading))
                break
        old, new = change.old_time, change.new_time
        if old is not None and new is not None:
            for before, after in itertools.pairwise(history):
                assert before.local_time is not None and after.local_time is not None
                if (before.local_time <= old and after.local_time >= new
                        and (new > old or after.local_time < before.local_time)):
                    candidates.append((after.local_time, 0, after))
                    break
        candidates.sort(key=lambda item: (item[0], item[1]))
        out.append((change, candidates[0][2] if candidates else None))
    return out


def is_uploadable(record: Record) -> bool:
    """Whether a record has an upload entry (see the module docstring)."""
    if record.local_time is None and record.utc is None:
        return False
    if isinstance(record, HistoryRecord):
        return not record.invalid and record.glucose_mg_dl is not None
    if isinstance(record, ReadingRecord):
        # the reader's flag means "error or LO": a reading with a LO/HI value is kept
        if record.errors:
            return False
        if record.out_of_range is not None:
            return True
        value = (record.ketone_mmol_l if isinstance(record, KetoneRecord)
                 else record.glucose_mg_dl)
        return not record.error_flag and value is not None
    if isinstance(record, AlertRecord):
        return record.alarm in GENERIC_ALARMS
    if isinstance(record, EventRecord):
        return record.event in GENERIC_EVENTS
    return isinstance(record, (InsulinRecord, FoodRecord, ExerciseRecord, MedicationRecord,
                               NoteRecord))


def not_uploadable_reason(record: Record) -> str:
    if record.local_time is None and record.utc is None:
        return "the reader's date for this record is invalid"
    if isinstance(record, TimeChangeRecord):
        return "the upload format has no time-change entry (see isFirstAfterTimeChange)"
    if isinstance(record, (HistoryRecord, ReadingRecord)):
        errors = getattr(record, "errors", 0)
        flag = getattr(record, "error_flag", False)
        return f"the reader marks this reading invalid (errors=0x{errors:04x}, error flag={flag})"
    return f"record type {record.record_type} from {record.source} has no upload entry"


def sensor_start_minutes(record: HistoryRecord) -> int:
    """Minutes between the sensor start and this (first) reading: the sensor runtime."""
    return record.sensor_runtime_min or 0


def out_of_range_flags(value: int | None, out_of_range: str | None) -> tuple[bool, bool]:
    """``(low, high)`` out-of-range flags of a glucose value."""
    low = out_of_range == "LO" or (value is not None and value < GLUCOSE_LO)
    high = out_of_range == "HI" or (value is not None and value > GLUCOSE_HI)
    return low, high


def _glucose_value(record: HistoryRecord | ReadingRecord) -> float:
    if record.glucose_mg_dl is not None:
        return float(record.glucose_mg_dl)
    return float(GLUCOSE_LO if _out_of_range(record) == "LO" else GLUCOSE_HI)


def _out_of_range(record: Record) -> str | None:
    return record.out_of_range if isinstance(record, ReadingRecord) else None


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _number(value: Decimal | int) -> float:
    return float(value)


# -- the builder ------------------------------------------------------------------------------


class _Builder:
    def __init__(self, dump: Dump, tz: dt.tzinfo, redact: bool) -> None:
        self.dump = dump
        self.tz = tz
        self.redact = redact
        self.lists: dict[str, list[tuple[dt.datetime, int, dict[str, Any]]]] = {
            name: [] for name in LIST_NAMES
        }
        self.left_out: list[dict[str, Any]] = []
        #: entries whose instant is a guess: the timeline could not place the record, so
        #: its reader time was taken as local time in the zone (an uploader would do the same)
        self.guessed: list[dict[str, Any]] = []
        #: every alert in the upload with the code the reader stored (the code -> name
        #: mapping is inferred: docs/records.md), so the code is in this format too
        self.alarm_codes: list[dict[str, Any]] = []
        self.flagged: set[int] = set()  # id() of readings that are first after a time change
        self.flag_notes: dict[int, int] = {}  # id(time change) -> record id flagged
        self.redactor = Redactor()

    def times(self, record: Record, minus_minutes: int = 0) -> tuple[str, str, dt.datetime]:
        placed = record_instant(record, self.tz)
        assert placed is not None
        local, utc = placed
        if minus_minutes:
            delta = dt.timedelta(minutes=minus_minutes)
            if record.utc is None and record.local_time is not None:
                local, utc = place_local(record.local_time - delta, self.tz)
            else:
                utc -= delta
                local = utc.astimezone(self.tz)
        return format_local(local), format_utc(utc), utc

    def add(self, list_name: str, record: Record, body: dict[str, Any],
            extended: dict[str, Any], minus_minutes: int = 0) -> None:
        local, factory, utc = self.times(record, minus_minutes)
        entry = dict(body)
        entry["extendedProperties"] = {"factoryTimestamp": factory, **extended}
        entry["recordNumber"] = record.record_id
        entry["timestamp"] = local
        self.lists[list_name].append((utc, record.record_id, entry))
        if record.utc is None:
            self.guessed.append({"kind": record.kind.value, "recordNumber": record.record_id,
                                 "time_status": record.time_status or "not placed"})

    def glucose_extended(self, record: HistoryRecord | ReadingRecord) -> dict[str, Any]:
        # sensor readings: the flags follow the sensor's 40..500 mg/dL range; strip tests
        # (other meters, other ranges) set them only when the reader said LO or HI
        value = None if isinstance(record, GlucoseRecord) else record.glucose_mg_dl
        low, high = out_of_range_flags(value, _out_of_range(record))
        return {"lowOutOfRange": _bool_text(low), "highOutOfRange": _bool_text(high),
                "isFirstAfterTimeChange": id(record) in self.flagged}

    def record(self, record: Record) -> None:
        if not is_uploadable(record):
            self.leave_out(record)
            return
        if isinstance(record, HistoryRecord):
            self.add("scheduledContinuousGlucoseEntries", record,
                     {"valueInMgPerDl": _glucose_value(record)}, self.glucose_extended(record))
            if record.first_after_insertion:
                try:
                    self.add("genericEntries", record, {"type": GENERIC_SENSORSTART}, {},
                             minus_minutes=sensor_start_minutes(record))
                except OverflowError:
                    # a runtime that puts the sensor start outside the calendar (a reader
                    # value of billions of minutes): no start can be derived; the reading
                    # itself is uploaded above and its runtime is in the dump
                    pass
        elif isinstance(record, ScanRecord):
            extended = self.glucose_extended(record)
            flag = extended.pop("isFirstAfterTimeChange")
            extended["trendArrow"] = TREND_ARROWS.get(record.trend or 0, TREND_NONE)
            extended["isActionable"] = True
            extended["isFirstAfterTimeChange"] = flag
            self.add("unscheduledContinuousGlucoseEntries", record,
                     {"valueInMgPerDl": _glucose_value(record)}, extended)
        elif isinstance(record, KetoneRecord):
            body: dict[str, Any] = {}
            if record.ketone_mmol_l is not None:
                body["valueInMmolPerL"] = _number(record.ketone_mmol_l)
            extended = {}
            if record.out_of_range is not None:
                extended = {"lowOutOfRange": _bool_text(record.out_of_range == "LO"),
                            "highOutOfRange": _bool_text(record.out_of_range == "HI")}
            self.add("ketoneEntries", record, body, extended)
        elif isinstance(record, GlucoseRecord):
            self.add("bloodGlucoseEntries", record, {"valueInMgPerDl": _glucose_value(record)},
                     self.glucose_extended(record))
        elif isinstance(record, InsulinRecord):
            body = {"insulinType": insulin_type_name(record.insulin_type)}
            if record.units is not None:
                body["units"] = _number(record.units)
            self.add("insulinEntries", record, body, {})
        elif isinstance(record, FoodRecord):
            body = {} if record.carbs_g is None else {"gramsCarbs": _number(record.carbs_g)}
            self.add("foodEntries", record, body, {})
        elif isinstance(record, ExerciseRecord):
            self.add("genericEntries", record, {"type": GENERIC_EXERCISE}, {})
        elif isinstance(record, MedicationRecord):
            self.add("genericEntries", record, {"type": GENERIC_MEDICATION}, {})
        elif isinstance(record, NoteRecord):
            text = note_placeholder(record.comment_index) if self.redact else record.text
            self.add("genericEntries", record, {"type": GENERIC_NOTE}, {"text": text})
        elif isinstance(record, AlertRecord):
            self.add("genericEntries", record, {"type": GENERIC_ALARMS[record.alarm]}, {})
            self.alarm_codes.append({"recordNumber": record.record_id,
                                     "alarmCode": record.alarm_code,
                                     "type": GENERIC_ALARMS[record.alarm]})
        elif isinstance(record, EventRecord):
            self.add("genericEntries", record, {"type": GENERIC_EVENTS[record.event]}, {})

    def leave_out(self, record: Record) -> None:
        # redacted by the one policy of --redact (output/redact.py): what we could not
        # classify (raw fields, the fields of an unknown record) counts as identifying
        item = (self.redactor.record(record) if self.redact else record).to_dict()
        item["reason"] = not_uploadable_reason(record)
        if isinstance(record, TimeChangeRecord) and id(record) in self.flag_notes:
            item["flaggedRecordNumber"] = self.flag_notes[id(record)]
        self.left_out.append(item)


def build_upload(dump: Dump, *, tz: str | dt.tzinfo, redact: bool = True,
                 zone_source: str | None = None) -> dict[str, Any]:
    """The upload JSON (a dict ready for :func:`json.dumps`) for the records of ``dump``.

    ``tz`` is the zone the reader's clock runs in (an IANA name or a tzinfo); it gives each
    entry's UTC offset. With ``redact`` (the default) the reader serial, patient name/id
    and note texts are ``REDACTED-...`` placeholders. Never contains a ``UserToken``.
    """
    zone = resolve_tz(tz)
    builder = _Builder(dump, zone, redact)
    for change, reading in first_after_time_changes(dump.records):
        if reading is not None:
            builder.flagged.add(id(reading))
            builder.flag_notes[id(change)] = reading.record_id
    for record in dump.records:
        builder.record(record)
    device = dump.device

    log: dict[str, Any] = {}
    for name in LIST_NAMES:
        items = sorted(builder.lists[name], key=lambda item: (item[0], item[1]))
        log[name] = [entry for _, _, entry in items]
        if name == "bloodGlucoseEntries":
            log["capabilities"] = _capabilities()

    settings: dict[str, Any] = {"factoryConfig": {"UOM": device.unit or "mg/dL"}}
    if device.software_version:
        settings["firmwareVersion"] = device.software_version
    if device.clock is not None:
        local, _ = place_local(device.clock, zone)
        settings["timestamp"] = format_local(local)

    header_device = {
        "hardwareDescriptor": device.model,
        "hardwareName": "Abbott Diabetes Care",
        "modelName": device.model,
        "osType": "FreeStyle reader",
        "osVersion": device.software_version or "",
        "uniqueIdentifier": READER_SERIAL_PLACEHOLDER if redact else (device.serial or ""),
    }
    header: dict[str, Any] = {"device": header_device}
    patient: dict[str, str] = {}
    if device.patient_name:
        patient["name"] = PATIENT_NAME_PLACEHOLDER if redact else device.patient_name
    if device.patient_id:
        patient["id"] = PATIENT_ID_PLACEHOLDER if redact else device.patient_id
    if patient:
        header["patient"] = patient

    zone_name = getattr(zone, "key", None) or str(zone)
    return {
        "DeviceData": {
            "deviceSettings": settings,
            "header": header,
            "measurementLog": log,
        },
        "Domain": "Libreview",
        ANNOTATION_KEY: {
            "format": ANNOTATION_FORMAT,
            "version": ANNOTATION_VERSION,
            "redacted": redact,
            "timezone": zone_name,
            "timezoneSource": zone_source,
            "recordNumber": "the reader's record id; sensorstart: the id of the sensor's "
                            "first history reading",
            "counts": {name: len(log[name]) for name in LIST_NAMES},
            "notInUpload": builder.left_out,
            "timeAssumedLocal": builder.guessed,
            "alarmCodes": builder.alarm_codes,
        },
    }


def _capabilities() -> list[str]:
    return [
        "scheduledContinuousGlucose",
        "unscheduledContinuousGlucose",
        "bloodGlucose",
        "ketone",
        "insulin",
        "food",
        "generic-" + GENERIC_EXERCISE,
        "generic-" + GENERIC_MEDICATION,
        "generic-" + GENERIC_NOTE,
        "generic-" + GENERIC_SENSORSTART,
    ]
