"""Schema-driven decoding of a binary read into libre-dump records and settings.

:class:`BinaryRead` collects the replies of one session (schemas, date/time, config tables,
database tables); :func:`decode_session` turns them into records. Every value is read through
the reader's own schema (:mod:`.schema`) by field id; what a field *means* is this module's
business, keyed by the public field ids (:mod:`.fields`):

=====================  ======================================================================
record type            becomes
=====================  ======================================================================
0, 1, 2 (results)      ``scan`` / ``glucose`` / ``ketone`` by test type (field 23: 0 strip
                       glucose, 1 ketone, 2 scan; TP), value field 20, trend 30 (scans),
                       data-quality errors 57; and what was noted with it: rapid insulin
                       (flag 33, dose 26), long insulin (flag 25, dose 34), food (flag 40,
                       grams 39), exercise 29, medication 28, notes (smart-tag bits 24, texts
                       from config table 7), and an ``alert`` when the glycemic alarm (35) is
                       set
5                      ``time_change``: old reader time 42, old offset 43, valid 44
12 (history)           ``history``: glucose 150, first reading 151, sensor age 157, quality
                       errors 156
46, 35                 ``time_change`` (46: old offset 166; 35: old reader time 165, old
                       offset 166); one change found in several tables is kept once, and a
                       date change and a time change made back to back are merged
                       (:func:`merge_time_changes`)
events table           ``event`` named by record type (error code 160, data 161)
6, 7 (insulin table)   ``insulin`` ``rapid_calculated`` / ``rapid_manual``; the dose fields
                       scale is not public, so ``units`` is null and every field stays raw
13, 14, 17, 52         ``event`` ``record_number_wrap`` (and the record numbering)
anything else          ``unknown`` with every field
=====================  ======================================================================

Insulin doses are stored in half units as in the text protocol *(inferred for the binary
protocol)*. Every field without a place in the record's typed fields goes to ``raw`` as
``[field id, value]``; records that fail their CRC become ``unknown`` with the record's bytes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import msgspec

from ...errors import ProtocolError
from ...model import (
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
    ReadingRecord,
    Record,
    ScanRecord,
    TimeChangeRecord,
    UnknownRecord,
    alarm_name,
)
from .aap import AapFrame
from .fields import cfg_field_name, record_type_name
from .records import (
    DEFAULT_HEADER,
    HEADER_FIELDS,
    WRAP_TYPES,
    DbRecord,
    RecordNumbers,
    body_base,
    decompress,
    parse_record,
    wrap_value,
)
from .schema import Field, Schema, parse_schemas
from .wire import COMMON_HEADER_ID, CfgTable, DbTable, FieldType, Op

#: source names of the database tables in records
TABLE_SOURCES: dict[int, str] = {DbTable.RESULTS: "db:results", DbTable.RAPID_INSULIN: "db:insulin",
                 DbTable.HISTORY: "db:history", DbTable.EVENTS: "db:events"}
EPOCH = dt.datetime(1970, 1, 1)
KETONE_FACTOR = Decimal(18)

#: config field ids
TIME_CONVERSION = 1072
SMART_TAGS = range(1290, 1296)
#: factory-table offsets Tidepool reads when no schema for table 1 came (data after the id)
_FACTORY_FALLBACK = Schema(CfgTable.FACTORY, 0, 80, (
    Field(1057, 66, 8, FieldType.UNSIGNED, 8), Field(TIME_CONVERSION, 78, 0,
                                                     FieldType.UNSIGNED, 32)))


@dataclasses.dataclass
class BinaryRead:
    """The replies of one binary session, as the session collects them."""

    db_schemas: dict[int, Schema] = dataclasses.field(default_factory=dict)
    cfg_schemas: dict[int, Schema] = dataclasses.field(default_factory=dict)
    #: GET_DATE_TIME: (second, minute, hour, day, month, year, valid)
    date_time: tuple[int, ...] | None = None
    #: config table id -> table data (after the table id)
    config: dict[int, bytes] = dataclasses.field(default_factory=dict)
    #: database table id -> its record frames (0x31 and 0x35, the closing empty frame left out)
    tables: dict[int, list[AapFrame]] = dataclasses.field(default_factory=dict)
    #: ``$dbrnum?``, the start of the record numbering
    db_record_number: int = 0

    def add_reply(self, op: int, frames: Iterable[AapFrame], parameter: int | None = None
                  ) -> None:
        """Store a reply (for a GET_DATABASE / GET_CFG_DATA: of table ``parameter``)."""
        frames = list(frames)
        if op == Op.GET_DB_SCHEMA:
            for frame in frames:
                for schema in parse_schemas(frame.data):
                    self.db_schemas[schema.table_id] = schema
        elif op == Op.GET_CFG_SCHEMA:
            for frame in frames:
                for schema in parse_schemas(frame.data):
                    self.cfg_schemas[schema.table_id] = schema
        elif op == Op.GET_DATE_TIME and frames and len(frames[-1].data) == 8:
            data = frames[-1].data
            self.date_time = (data[0], data[1], data[2], data[3], data[4],
                              int.from_bytes(data[5:7], "little"), data[7])
        elif op == Op.GET_CFG_DATA:
            for frame in frames:
                if frame.op == Op.GET_CFG_DATA and frame.data:
                    self.config[frame.data[0]] = frame.data[1:]
        elif op == Op.GET_DATABASE:
            records = [f for f in frames if f.data and f.op in (Op.GET_DATABASE,
                                                               Op.COMPRESSED_DATABASE)]
            key = parameter if parameter is not None else (
                records[0].data[0] if records else -1)
            self.tables.setdefault(key, []).extend(records)


@dataclasses.dataclass
class Decoded:
    records: list[Record]
    #: the decoded config tables and the reader's clock (``settings`` of the dump)
    settings: dict[str, Any]
    #: counts of what could not be decoded (records failing a CRC...)
    problems: dict[str, int]


def _json_value(value: int | str | bytes | None) -> int | str | None:
    if isinstance(value, bytes):
        return value.hex()
    return value


def decode_config(read: BinaryRead) -> tuple[list[dict[str, Any]], dict[int, Any]]:
    """Every config field of every table read, and a field id -> value map."""
    entries: list[dict[str, Any]] = []
    values: dict[int, Any] = {}
    for table_id in sorted(read.config):
        data = read.config[table_id]
        schema = read.cfg_schemas.get(table_id)
        if schema is None:
            if table_id == CfgTable.FACTORY:
                schema = _FACTORY_FALLBACK
            else:
                entries.append({"table": table_id, "field_id": None, "name": "raw",
                                "value": data.hex()})
                continue
        for field in schema.fields:
            value = field.read(data)
            if field.type in (FieldType.CRC16, FieldType.CRC32):
                continue
            entries.append({"table": table_id, "field_id": field.field_id,
                            "name": cfg_field_name(field.field_id),
                            "value": _json_value(value)})
            values.setdefault(field.field_id, value)
    return entries, values


def _setting(values: dict[int, Any], field_id: int) -> dict[str, Any] | None:
    if field_id not in values:
        return None
    return {"field_id": field_id, "value": _json_value(values[field_id])}


def _named_settings(values: dict[int, Any]) -> dict[str, Any]:
    """The config values people look for, each with its field id."""
    out: dict[str, Any] = {}
    for key, field_id in (("target_range_low_mg_dl", 1132), ("target_range_high_mg_dl", 1133),
                          ("glycemic_range_low_mg_dl", 1068),
                          ("glycemic_range_high_mg_dl", 1067), ("sensor_uid", 1321),
                          ("sensor_state", 1320)):
        setting = _setting(values, field_id)
        if setting is not None:
            out[key] = setting
    start = _setting(values, 1324)
    if start is not None:
        out["sensor_start_time"] = start  # reader seconds; the epoch is not public
    tags = [{"field_id": i, "number": i - 1289, "text": values[i]} for i in SMART_TAGS
            if isinstance(values.get(i), str)]
    if tags:
        out["smart_tag_texts"] = tags
    reminders = [{"field_id": i, "text": values[i]} for i in (*range(1260, 1272),
                                                              *range(1400, 1409))
                 if isinstance(values.get(i), str) and values[i]]
    if reminders:
        out["reminder_texts"] = reminders
    return out


class _Decoder:
    def __init__(self, read: BinaryRead) -> None:
        self.read = read
        self.header = read.db_schemas.get(COMMON_HEADER_ID, DEFAULT_HEADER)
        self.config, self.values = decode_config(read)
        conversion = self.values.get(TIME_CONVERSION)
        self.time_conversion: int | None = conversion if isinstance(conversion, int) else None
        self.tags = {i - 1289: str(self.values[i]) for i in SMART_TAGS
                     if isinstance(self.values.get(i), str)}
        self.problems: dict[str, int] = {}

    def local(self, reader_time: int, offset: int) -> dt.datetime | None:
        if self.time_conversion is None:
            return None
        try:
            return EPOCH + dt.timedelta(seconds=self.time_conversion + reader_time + offset)
        except OverflowError:
            return None

    def count(self, what: str) -> None:
        self.problems[what] = self.problems.get(what, 0) + 1

    def table_records(self, table: int, frames: list[AapFrame],
                      numbers: RecordNumbers) -> list[DbRecord]:
        out: list[DbRecord] = []
        for frame in frames:
            compressed = frame.op == Op.COMPRESSED_DATABASE
            if compressed:
                table_id, data, crc_ok = decompress(frame.data)
                if not crc_ok:
                    self.count("compressed record CRC32 mismatch")
            else:
                table_id, data, crc_ok = frame.data[0], frame.data[1:], True
            try:
                record = parse_record(table_id, data, self.header, self.read.db_schemas,
                                      compressed=compressed)
            except ProtocolError:
                self.count("record shorter than its header")
                out.append(DbRecord(table_id, data, 0, -1, False, 0, 0, False, compressed))
                continue
            if not crc_ok:
                record = dataclasses.replace(record, crc_ok=False)
            body = self.read.db_schemas.get(record.type)
            out.append(numbers.apply(record, wrap_value(record, self.header, body)))
        return out

    def fields(self, record: DbRecord) -> tuple[dict[int, Any], set[int]]:
        """Field id -> value of the record's body (header fields excluded) and the ids of
        its CRC fields."""
        body = self.read.db_schemas.get(record.type)
        if body is None:
            return {}, set()
        base = body_base(record, self.header, body)
        values = {f.field_id: f.read(record.data, base) for f in body.fields
                  if f.field_id not in HEADER_FIELDS}
        crcs = {f.field_id for f in body.fields if f.type in (FieldType.CRC16,
                                                              FieldType.CRC32)}
        return values, crcs

    def decode(self, record: DbRecord) -> list[Record]:
        source = TABLE_SOURCES.get(record.table, f"db:{record.table}")
        base: dict[str, Any] = {"record_id": record.number, "source": source,
                                "record_type": record.type,
                                "local_time": self.local(record.reader_time, record.user_offset)
                                if record.time_valid else None}
        if record.crc_ok is False or record.type < 0:
            self.count("record CRC16 mismatch" if record.type >= 0 else "short record")
            return [UnknownRecord(**base, fields=("crc_error", record.data.hex()))]
        values, crcs = self.fields(record)
        if record.type not in self.read.db_schemas:
            self.count("record type without a schema")
            return [UnknownRecord(**base, fields=("no_schema", record.data.hex()))]
        used = set(crcs)
        header_raw: list[tuple[int, str]] = []
        if not record.time_valid:
            header_raw.append((7, "0"))
        out = _decode_typed(self, record, values, used, base)
        if out is None:
            return [UnknownRecord(**base, fields=tuple(
                f"{fid}={_json_value(v)}" for fid, v in values.items()))]
        raw = tuple(sorted(header_raw + [(fid, str(_json_value(v))) for fid, v in values.items()
                                         if fid not in used]))
        first, *rest = out
        return [msgspec.structs.replace(first, raw=raw), *rest]


def _int(values: dict[int, Any], field_id: int, used: set[int]) -> int | None:
    value = values.get(field_id)
    if isinstance(value, int):
        used.add(field_id)
        return value
    return None


def _flag(values: dict[int, Any], field_id: int, used: set[int]) -> bool:
    value = values.get(field_id)
    if value in (0, 1):
        used.add(field_id)
    return value == 1


def _decode_typed(dec: _Decoder, record: DbRecord, values: dict[int, Any], used: set[int],
                  base: dict[str, Any]) -> list[Record] | None:
    rtype = record.type
    if rtype in WRAP_TYPES:
        for field_id in (60, 79, 158, 197):
            used.add(field_id)
        return [EventRecord(**base, event="record_number_wrap")]
    if record.table == DbTable.EVENTS and rtype != 35:
        return [_event(record, values, used, base)]
    if rtype in (0, 1, 2):
        return _result(dec, values, used, base)
    if rtype == 12:
        return [HistoryRecord(
            **base, glucose_mg_dl=_int(values, 150, used),
            sensor_runtime_min=_int(values, 157, used),
            first_after_insertion=_flag(values, 151, used),
            errors=_int(values, 156, used) or 0)]
    if rtype in (5, 35, 46):
        return _time_change(dec, record, values, used, base)
    if rtype in (6, 7):
        # the insulin table: a dose the calculator suggested (6) or one entered by hand (7).
        # The scale of its dose fields (70, 78) is not public: kept raw, units unknown
        kind = "rapid_calculated" if rtype == 6 else "rapid_manual"
        return [InsulinRecord(**base, insulin_type=kind, units=None)]
    return None


def _event(record: DbRecord, values: dict[int, Any], used: set[int],
           base: dict[str, Any]) -> EventRecord:
    code = _int(values, 160, used) if record.type == 32 else None
    data = _int(values, 161, used) if record.type == 32 else None
    return EventRecord(**base, event=record_type_name(record.type), error_code=code,
                       error_data=data)


def _time_change(dec: _Decoder, record: DbRecord, values: dict[int, Any], used: set[int],
                 base: dict[str, Any]) -> list[Record] | None:
    if record.type == 5:
        old_rt, old_off, valid = 42, 43, 44
    else:
        old_rt, old_off, valid = 165, 166, 167
    old_reader = _int(values, old_rt, used)
    if old_reader is None:
        old_reader = record.reader_time  # type 46: the RTC does not jump (TP)
    old_offset = _int(values, old_off, used)
    if old_offset is None:
        return None
    if valid in values and not _flag(values, valid, used):
        return None  # not a valid change: kept whole as unknown
    old = dec.local(old_reader, old_offset)
    return [TimeChangeRecord(**base, old_time=old, new_time=base["local_time"])]


def _result(dec: _Decoder, values: dict[int, Any], used: set[int],
            base: dict[str, Any]) -> list[Record]:
    test = _int(values, 23, used)
    value = _int(values, 20, used)
    reading: dict[str, Any] = {"value_raw": "" if value is None else str(value),
                               "errors": _int(values, 57, used) or 0}
    cls: type[ReadingRecord]
    if test == 1:
        cls = KetoneRecord
        if value is not None:
            reading["ketone_mmol_l"] = (Decimal(value) / KETONE_FACTOR).quantize(Decimal("0.01"))
    elif test == 0:
        cls = GlucoseRecord
        reading["glucose_mg_dl"] = value
    elif test == 2:
        cls = ScanRecord
        reading["glucose_mg_dl"] = value
        reading["trend"] = _int(values, 30, used)
    else:
        used.discard(23)
        return [UnknownRecord(**base, fields=tuple(
            f"{fid}={_json_value(v)}" for fid, v in values.items()))]
    out: list[Record] = [cls(**base, **reading)]
    if _flag(values, 33, used):
        dose = _int(values, 26, used)
        out.append(InsulinRecord(**base, insulin_type="rapid",
                                 units=None if dose is None else Decimal(dose) / 2))
    if _flag(values, 25, used):
        dose = _int(values, 34, used)
        out.append(InsulinRecord(**base, insulin_type="long",
                                 units=None if dose is None else Decimal(dose) / 2))
    if _flag(values, 40, used):
        out.append(FoodRecord(**base, carbs_g=_int(values, 39, used)))
    if _flag(values, 29, used):
        out.append(ExerciseRecord(**base))
    if _flag(values, 28, used):
        out.append(MedicationRecord(**base))
    bits = _int(values, 24, used) or 0
    for index in range(6):
        if bits >> index & 1:
            out.append(NoteRecord(**base, comment_index=index + 1,
                                  text=dec.tags.get(index + 1, "")))
    alarm = _int(values, 35, used)
    if alarm:
        out.append(AlertRecord(**base, alarm=alarm_name(alarm), alarm_code=alarm,
                               glucose_mg_dl=value if test != 1 else None))
    return out


def _dedupe_time_changes(records: list[Record]) -> list[Record]:
    """One clock change is logged in several tables (results type 5, history and others
    type 46, events type 35): keep the first of each (old, new) pair, results table first
    (TP removes duplicates by the new time)."""
    order = {"db:results": 0, "db:history": 1, "db:insulin": 2, "db:events": 3}
    changes = sorted((r for r in records if isinstance(r, TimeChangeRecord)),
                     key=lambda r: (order.get(r.source, 9), r.record_id))
    seen: set[tuple[Any, Any]] = set()
    dropped: set[int] = set()
    for change in changes:
        key = (change.old_time, change.new_time)
        if key in seen:
            dropped.add(id(change))
        seen.add(key)
    return [r for r in records if id(r) not in dropped]


#: two clock changes closer than this many record numbers may be one change made in two
#: steps (TP: "even if combined date/time changes are made directly after another, they
#: should still be more than 50 records apart")
MERGE_DISTANCE = 50


def merge_time_changes(records: list[Record]) -> list[Record]:
    """A date change and a time change made back to back are one change (TP): when two
    consecutive changes are fewer than :data:`MERGE_DISTANCE` record numbers apart and their
    new times share the date or the hour and minute, they become one change from the first's
    old time to the second's new time, with the second's number (the first's number is kept
    in ``raw`` as field 0, the record number). TP compares the weekday where it means the day
    of the month; the day of the month is compared here."""
    changes = sorted((r for r in records if isinstance(r, TimeChangeRecord)),
                     key=lambda r: r.record_id)
    merged: dict[int, TimeChangeRecord | None] = {}
    index = 0
    while index < len(changes) - 1:
        first, second = changes[index], changes[index + 1]
        a, b = first.new_time, second.new_time
        close = 0 <= second.record_id - first.record_id < MERGE_DISTANCE
        if close and a is not None and b is not None and (
                a.date() == b.date() or (a.hour, a.minute) == (b.hour, b.minute)):
            merged[id(first)] = None
            merged[id(second)] = msgspec.structs.replace(
                second, old_time=first.old_time,
                raw=tuple(sorted(((0, str(first.record_id)), *second.raw))))
            index += 2
            continue
        index += 1
    out: list[Record] = []
    for record in records:
        if id(record) not in merged:
            out.append(record)
        elif (replacement := merged[id(record)]) is not None:
            out.append(replacement)
    return out


def decode_session(read: BinaryRead) -> Decoded:
    """Every record of every table read, and the settings (see the module docstring)."""
    dec = _Decoder(read)
    numbers = RecordNumbers(read.db_record_number)
    records: list[Record] = []
    for table in sorted(read.tables):
        for record in dec.table_records(table, read.tables[table], numbers):
            records.extend(dec.decode(record))
    records = merge_time_changes(_dedupe_time_changes(records))
    settings: dict[str, Any] = {"config": dec.config}
    settings.update(_named_settings(dec.values))
    if dec.time_conversion is not None:
        settings["time_conversion"] = {"field_id": TIME_CONVERSION,
                                       "value": dec.time_conversion}
    if read.date_time is not None:
        second, minute, hour, day, month, year, valid = read.date_time
        settings["binary_clock"] = {"valid": bool(valid), "time": _clock(
            (year, month, day, hour, minute, second))}
    if dec.problems:
        settings["binary_problems"] = dict(dec.problems)
    return Decoded(records, settings, dict(dec.problems))


def _clock(parts: tuple[int, int, int, int, int, int]) -> str | None:
    try:
        return dt.datetime(*parts).isoformat(timespec="seconds")
    except ValueError:
        return None
