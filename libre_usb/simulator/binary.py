"""The virtual reader's binary database: its own schema tables, its records, its replies.

The device side of :mod:`libre_usb.protocol.binary`. The layouts below are this simulator's
own, written from the public field-id list (Tidepool's constants) and sent to the host as
schema tables: the host's decoder knows no layout, it reads every field where these schemas
say it is. The record bits are packed here with this module's own code (:func:`_pack`), not
with the protocol's field reader, so a bit-order mistake on one side would show.

Content (``simulator/content.py``) becomes records:

* table 0 (results): one record per ``$arresult?`` line: readings (type 2) with what was noted
  with them and the glycemic alarm, and the user's clock change (type 5);
* table 1 (rapid insulin): empty but for wrap markers (rapid doses are on the results);
* table 6 (history): one type-12 record per history reading;
* table 7 (events): the content's events, and the clock change again as type 35.

Times: ``reader_time`` runs on the RTC from :data:`TIME_CONVERSION` (2012-12-31, the value in
Tidepool's real factory table); the user offset starts at :data:`BASE_OFFSET` and moves by the
size of the user's clock change for records after it. Record numbers: the low 16 bits on the
wire; a wrap record (value = the next older record's number + 1) wherever the 65536-window of
the next records differs from the one the host is in (see ``records.RecordNumbers``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from ..model import (
    AlertRecord,
    ExerciseRecord,
    FoodRecord,
    InsulinRecord,
    KetoneRecord,
    MedicationRecord,
    NoteRecord,
    ReadingRecord,
    Record,
    ScanRecord,
    TimeChangeRecord,
)
from ..protocol.binary.aap import build_aap
from ..protocol.binary.crc import crc16_record
from ..protocol.binary.records import compress
from ..protocol.binary.schema import Field, Schema
from ..protocol.binary.wire import ErrorCode, FieldType, Op
from .content import ReaderContent

TIME_CONVERSION = 1356912000
BASE_OFFSET = -12836
EPOCH = dt.datetime(1970, 1, 1)

U, HEX, S, TXT, BULK, C32, C16 = (FieldType.UNSIGNED, FieldType.UNSIGNED_HEX, FieldType.SIGNED,
                                  FieldType.UTF8, FieldType.BULK, FieldType.CRC32,
                                  FieldType.CRC16)


def _f(field_id: int, word: int, bit: int, kind: int, bits: int) -> Field:
    return Field(field_id, word, bit, kind, bits)


#: record id -> (words of the body, fields); word offsets from the end of the common header
_BODIES: dict[int, tuple[int, tuple[Field, ...]]] = {
    # results: value and test type where Tidepool reads them, the rest our own placement
    2: (7, (_f(20, 0, 0, U, 10), _f(23, 0, 14, U, 2), _f(30, 1, 0, U, 4),
            _f(29, 1, 4, U, 1), _f(28, 1, 5, U, 1), _f(33, 1, 6, U, 1), _f(25, 1, 7, U, 1),
            _f(40, 1, 8, U, 1), _f(24, 1, 9, U, 6), _f(26, 2, 0, U, 8), _f(34, 2, 8, U, 8),
            _f(39, 3, 0, U, 10), _f(35, 3, 10, U, 3), _f(61, 4, 0, HEX, 16),
            _f(57, 5, 0, HEX, 16), _f(49, 6, 0, C16, 16))),
    5: (7, (_f(42, 0, 0, U, 32), _f(43, 2, 0, S, 32), _f(44, 4, 0, U, 16),
            _f(49, 6, 0, C16, 16))),
    12: (4, (_f(150, 0, 0, U, 10), _f(151, 0, 12, U, 1), _f(152, 0, 13, U, 1),
             _f(153, 0, 14, U, 1), _f(154, 0, 15, U, 1), _f(157, 1, 0, U, 16),
             _f(156, 2, 0, HEX, 16), _f(155, 3, 0, C16, 16))),
    13: (7, (_f(60, 0, 0, U, 32), _f(49, 6, 0, C16, 16))),
    14: (7, (_f(79, 0, 0, U, 32), _f(77, 6, 0, C16, 16))),
    17: (4, (_f(158, 0, 0, U, 32), _f(155, 3, 0, C16, 16))),
    52: (6, (_f(197, 0, 0, U, 32), _f(253, 5, 0, C16, 16))),
    32: (6, (_f(160, 0, 0, U, 16), _f(161, 1, 0, HEX, 32), _f(253, 5, 0, C16, 16))),
    33: (6, (_f(181, 0, 0, U, 16), _f(253, 5, 0, C16, 16))),
    34: (6, (_f(181, 0, 0, U, 16), _f(253, 5, 0, C16, 16))),
    35: (6, (_f(165, 0, 0, U, 32), _f(166, 2, 0, S, 32), _f(167, 4, 0, U, 16),
             _f(253, 5, 0, C16, 16))),
    36: (6, (_f(168, 0, 0, U, 32), _f(253, 5, 0, C16, 16))),
    49: (6, (_f(186, 0, 0, U, 1), _f(189, 0, 1, U, 1), _f(184, 0, 2, U, 1),
             _f(253, 5, 0, C16, 16))),
    50: (6, (_f(193, 0, 0, U, 8), _f(194, 0, 8, U, 8), _f(253, 5, 0, C16, 16))),
    51: (6, (_f(253, 5, 0, C16, 16),)),
}
HEADER = Schema(255, 1, 6, (_f(0, 0, 0, HEX, 16), _f(8, 1, 0, U, 8), _f(7, 1, 15, U, 1),
                            _f(9, 2, 0, U, 32), _f(10, 4, 0, S, 32)))
DB_SCHEMAS: dict[int, Schema] = {
    255: HEADER,
    **{rtype: Schema(rtype, 1, words, fields) for rtype, (words, fields) in _BODIES.items()},
}

_CFG: dict[int, tuple[int, tuple[Field, ...]]] = {
    1: (80, (_f(1025, 0, 0, U, 8), _f(1026, 0, 8, U, 8), _f(1029, 2, 0, TXT, 8 * 32),
             _f(1057, 18, 0, U, 8), _f(1067, 19, 0, U, 16), _f(1068, 20, 0, U, 16),
             _f(1072, 21, 0, U, 32), _f(2047, 79, 0, C16, 16))),
    2: (8, (_f(1134, 0, 0, U, 8), _f(1135, 0, 8, U, 8), _f(1160, 1, 0, U, 8),
            _f(1161, 1, 8, U, 1), _f(1162, 1, 9, U, 1), _f(1163, 1, 10, U, 1),
            _f(2047, 7, 0, C16, 16))),
    3: (72, (_f(1130, 0, 0, TXT, 8 * 64), _f(1131, 32, 0, TXT, 8 * 64),
             _f(1132, 64, 0, U, 16), _f(1133, 65, 0, U, 16), _f(2047, 71, 0, C16, 16))),
    4: (4, (_f(1137, 0, 0, U, 8), _f(1138, 0, 8, U, 8), _f(1139, 1, 0, U, 8),
            _f(1140, 1, 8, U, 8), _f(2047, 3, 0, C16, 16))),
    5: (4, (_f(1190, 0, 0, U, 8), _f(1193, 0, 8, U, 8), _f(1136, 1, 0, U, 8),
            _f(2047, 3, 0, C16, 16))),
    6: (1 + 12 * 16, (*(_f(1260 + i, 16 * i, 0, TXT, 8 * 32) for i in range(12)),
                      _f(2047, 12 * 16, 0, C16, 16))),
    7: (1 + 6 * 16, (*(_f(1290 + i, 16 * i, 0, TXT, 8 * 32) for i in range(6)),
                     _f(2047, 6 * 16, 0, C16, 16))),
    9: (16, (_f(1320, 0, 0, U, 8), _f(1322, 0, 8, U, 8), _f(1321, 1, 0, BULK, 64),
             _f(1324, 5, 0, U, 32), _f(2047, 15, 0, C16, 16))),
    10: (1 + 12 * 3, (*(f for i in range(12) for f in (
        _f(1415 + 5 * i, 3 * i, 0, U, 8), _f(1416 + 5 * i, 3 * i, 8, U, 8),
        _f(1417 + 5 * i, 3 * i + 1, 0, U, 8), _f(1418 + 5 * i, 3 * i + 1, 8, U, 8),
        _f(1475 + i, 3 * i + 2, 0, U, 1))), _f(2047, 36, 0, C16, 16))),
}
CFG_SCHEMAS: dict[int, Schema] = {table: Schema(table, 1, words, fields)
                                  for table, (words, fields) in _CFG.items()}


def _pack(buffer: bytearray, field: Field, value: int | str | bytes, base: int) -> None:
    """Write ``value`` at ``field``'s place (this simulator's own packing)."""
    at = base + 2 * field.word
    if field.type in (TXT, BULK):
        raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        size = field.bits // 8
        buffer[at : at + size] = raw[:size].ljust(size, b"\0")
        return
    assert isinstance(value, int)
    number = value & ((1 << field.bits) - 1)
    span = (field.bit + field.bits + 7) // 8
    word = int.from_bytes(buffer[at : at + span], "little")
    word |= number << field.bit
    buffer[at : at + span] = word.to_bytes(span, "little")


def _record(number: int, rtype: int, reader_time: int, offset: int,
            values: dict[int, int | str | bytes]) -> bytes:
    words, fields = _BODIES[rtype]
    buffer = bytearray(12 + 2 * words)
    for field in HEADER.fields:
        value = {0: number & 0xFFFF, 8: rtype, 7: 1, 9: reader_time, 10: offset}[field.field_id]
        _pack(buffer, field, value, 0)
    crc_at = None
    for field in fields:
        if field.type == C16:
            crc_at = 12 + 2 * field.word
        elif field.field_id in values:
            _pack(buffer, field, values[field.field_id], 12)
    assert crc_at is not None
    buffer[crc_at : crc_at + 2] = crc16_record(bytes(buffer[:crc_at])).to_bytes(2, "little")
    return bytes(buffer)


@dataclasses.dataclass(frozen=True)
class _Row:
    """One database record before numbering: its 32-bit number, type, time, values."""

    number: int
    rtype: int
    local: dt.datetime
    values: dict[int, int | str | bytes]
    #: the user offset in force (seconds)
    offset: int


#: (number, type, reader_time, offset, values) of a record as it goes on the wire
_Wire = tuple[int, int, int, int, dict[int, int | str | bytes]]


class Database:
    """The tables of one virtual reader, built from its content."""

    def __init__(self, content: ReaderContent, *, pro: bool = False) -> None:
        self.content = content
        self.pro = pro
        self.compression = False
        change = next((r for line in content.results for r in line
                       if isinstance(r, TimeChangeRecord)), None)
        self._change = change
        self._shift = 0
        if change is not None and change.old_time and change.new_time:
            self._shift = int((change.new_time - change.old_time).total_seconds())
        self.tables: dict[int, list[_Row]] = {0: [], 1: [], 6: [], 7: []}
        self._build()

    # -- time ---------------------------------------------------------------------------------

    def _offset(self, local: dt.datetime, number: int | None = None) -> int:
        change = self._change
        if change is None or change.old_time is None:
            return BASE_OFFSET
        if number is not None:
            after = number >= change.record_id
        else:
            after = local > change.old_time
        return BASE_OFFSET + (self._shift if after else 0)

    @staticmethod
    def reader_time(local: dt.datetime, offset: int) -> int:
        return int((local - EPOCH).total_seconds()) - TIME_CONVERSION - offset

    # -- content -> rows ----------------------------------------------------------------------

    def _build(self) -> None:
        c = self.content
        alarms = {a.record_id: a for a in getattr(c, "alerts", [])}
        for line in c.results:
            first = line[0]
            if first.local_time is None:
                continue
            if isinstance(first, TimeChangeRecord):
                self._time_change(first)
            elif isinstance(first, ReadingRecord):
                self._reading(line, alarms.get(first.record_id))
            # unknown $arresult? types have no database form here: text only
        for record in c.history:
            if record.local_time is None:
                continue
            offset = self._offset(record.local_time)
            self.tables[6].append(_Row(record.record_id, 12, record.local_time, {
                150: record.glucose_mg_dl or 0, 151: int(record.first_after_insertion),
                157: record.sensor_runtime_min or 0, 156: record.errors}, offset))
        for event in getattr(c, "events", []):
            if event.local_time is None:
                continue
            values: dict[int, int | str | bytes] = {int(k): int(v) for k, v in event.raw}
            if event.error_code is not None:
                values[160] = event.error_code
            if event.error_data is not None:
                values[161] = event.error_data
            self.tables[7].append(_Row(event.record_id, event.record_type, event.local_time,
                                       values, self._offset(event.local_time)))
        for rows in self.tables.values():
            rows.sort(key=lambda row: row.number, reverse=True)  # newest first

    def _time_change(self, change: TimeChangeRecord) -> None:
        assert change.new_time is not None and change.old_time is not None
        new_offset = self._offset(change.new_time, change.record_id)
        rt = self.reader_time(change.new_time, new_offset)
        old_offset = int((change.old_time - EPOCH).total_seconds()) - TIME_CONVERSION - rt
        self.tables[0].append(_Row(change.record_id, 5, change.new_time,
                                   {42: rt, 43: old_offset, 44: 1}, new_offset))
        event_id = self._event_id(change.new_time)
        self.tables[7].append(_Row(event_id, 35, change.new_time,
                                   {165: rt, 166: old_offset, 167: 1}, new_offset))

    def _event_id(self, when: dt.datetime) -> int:
        """The events table's number of the clock change (content keeps one free for it)."""
        return self.content.clock_change_event_id

    def _reading(self, line: Sequence[Record], alert: AlertRecord | None) -> None:
        first = line[0]
        assert isinstance(first, ReadingRecord) and first.local_time is not None
        test = 2 if isinstance(first, ScanRecord) else 1 if isinstance(first, KetoneRecord) else 0
        values: dict[int, int | str | bytes] = {
            20: int(first.value_raw) if first.value_raw.isdigit() else 0, 23: test,
            57: first.errors, 61: 1 if first.error_flag else 0}
        if first.trend is not None:
            values[30] = first.trend
        for record in line[1:]:
            if isinstance(record, InsulinRecord) and record.units is not None:
                half = int(record.units * 2)
                if record.insulin_type == "rapid":
                    values.update({33: 1, 26: half})
                else:
                    values.update({25: 1, 34: half})
            elif isinstance(record, FoodRecord):
                values.update({40: 1, 39: record.carbs_g or 0})
            elif isinstance(record, ExerciseRecord):
                values[29] = 1
            elif isinstance(record, MedicationRecord):
                values[28] = 1
            elif isinstance(record, NoteRecord):
                values[24] = int(values.get(24, 0)) | 1 << (record.comment_index - 1)
        if alert is not None:
            values[35] = alert.alarm_code
        self.tables[0].append(_Row(first.record_id, 2, first.local_time, values,
                                   self._offset(first.local_time, first.record_id)))

    # -- replies --------------------------------------------------------------------------------

    def db_schema_reply(self) -> bytes:
        types = [255, *sorted(t for t in DB_SCHEMAS if t != 255)]
        return (b"".join(build_aap(Op.GET_DB_SCHEMA, DB_SCHEMAS[t].encode()) for t in types)
                + build_aap(Op.GET_DB_SCHEMA))

    def cfg_schema_reply(self) -> bytes:
        return (b"".join(build_aap(Op.GET_CFG_SCHEMA, s.encode()) for s in CFG_SCHEMAS.values())
                + build_aap(Op.GET_CFG_SCHEMA))

    def date_time_reply(self) -> bytes:
        k = self.content.clock
        data = bytes([k.second, k.minute, k.hour, k.day, k.month]) + k.year.to_bytes(
            2, "little") + b"\x01"
        return build_aap(Op.GET_DATE_TIME, data)

    def config_table(self, table: int) -> bytes | None:
        """A config table's data (without the table id), or None for a table this reader
        does not have (ERROR invalid table)."""
        schema = CFG_SCHEMAS.get(table)
        if schema is None or (self.pro and table > 4 and table != 7):
            return None
        c = self.content
        values: dict[int, int | str | bytes] = {
            1025: 1, 1026: 1, 1029: "FreeStyle Libre Pro" if self.pro else "FreeStyle Libre",
            1057: 1 if c.unit == "mg/dL" else 0, 1067: 500, 1068: 40, 1072: TIME_CONVERSION,
            1134: c.language, 1135: 0, 1160: 2, 1161: 1, 1162: 1, 1163: 0,
            1130: c.patient_name, 1131: c.patient_id, 1132: 70, 1133: 180,
            1137: 0, 1138: 0, 1139: 0, 1140: 0, 1190: 1, 1193: 0, 1136: 1,
            1320: 3, 1322: 1, 1321: c.serial.encode()[:8],
            # the current sensor's start on the RTC (3 days 2 hours ago, as $patch? says)
            1324: self.reader_time(c.clock - dt.timedelta(days=3, hours=2),
                                   self._offset(c.clock)),
        }
        for i, text in enumerate(c.comments[:6]):
            values[1290 + i] = text
        for i, text in enumerate(("Check glucose", "Take insulin", "Alarm")):
            values[1260 + i] = text
        for i, (hour, minute, on) in enumerate(((7, 30, 1), (12, 0, 1), (19, 0, 0))):
            values.update({1415 + 5 * i: 2, 1416 + 5 * i: 10 + i, 1417 + 5 * i: hour,
                           1418 + 5 * i: minute, 1475 + i: on})
        buffer = bytearray(schema.size)
        crc_at = None
        for field in schema.fields:
            if field.type == C16:
                crc_at = 2 * field.word
            elif field.field_id in values:
                _pack(buffer, field, values[field.field_id], 0)
        if crc_at is not None:
            buffer[crc_at : crc_at + 2] = crc16_record(bytes(buffer[:crc_at])).to_bytes(
                2, "little")
        return bytes(buffer)

    def config_reply(self, table: int) -> bytes:
        data = self.config_table(table)
        if data is None:
            return error_reply(Op.GET_CFG_DATA, ErrorCode.INVALID_TABLE)
        return build_aap(Op.GET_CFG_DATA, bytes([table]) + data)

    def _wire_rows(self, table: int) -> list[_Wire]:
        """(number, type, reader_time, offset, values) of each record of ``table`` in stream
        order, with wrap records where the host's 65536-window must move."""
        wrap_type = {0: 13, 1: 14, 6: 17, 7: 52}[table]
        wrap_field = {13: 60, 14: 79, 17: 158, 52: 197}[wrap_type]
        window = _window(self.content.record_counter)
        out: list[_Wire] = []
        for row in self.tables[table]:
            needed = _window(row.number + 1)
            if needed != window:
                value = row.number + 1  # the table's next record number below the wrap
                out.append((value, wrap_type, self.reader_time(row.local, row.offset),
                            row.offset, {wrap_field: value}))
                window = needed
            out.append((row.number, row.rtype, self.reader_time(row.local, row.offset),
                        row.offset, row.values))
        return out

    def table_reply(self, table: int) -> bytes:
        if table not in self.tables or (self.pro and table == 1):
            return error_reply(Op.GET_DATABASE, ErrorCode.INVALID_TABLE)
        parts: list[bytes] = []
        for number, rtype, rt, offset, values in self._wire_rows(table):
            record = _record(number, rtype, rt, offset, values)
            if self.compression:
                parts.append(build_aap(Op.COMPRESSED_DATABASE, compress(table, record)))
            else:
                parts.append(build_aap(Op.GET_DATABASE, bytes([table]) + record))
        parts.append(build_aap(Op.GET_DATABASE))
        return b"".join(parts)

    def answer(self, op: int, data: bytes) -> bytes:
        """The AAP bytes answering one command."""
        if op == Op.GET_DB_SCHEMA:
            return self.db_schema_reply()
        if op == Op.GET_CFG_SCHEMA:
            return self.cfg_schema_reply()
        if op == Op.GET_DATE_TIME:
            return self.date_time_reply()
        if op == Op.SET_COMPRESSION and len(data) == 1 and data[0] in (0, 1):
            self.compression = bool(data[0]) and not self.pro
            return build_aap(Op.SET_COMPRESSION, bytes([int(self.compression)]))
        if op == Op.GET_CFG_DATA and len(data) == 1:
            return self.config_reply(data[0])
        if op == Op.GET_DATABASE and len(data) == 1:
            return self.table_reply(data[0])
        if op == Op.SET_DATE_TIME and len(data) == 8:
            second, minute, hour, day, month = data[:5]
            try:
                self.content.clock = dt.datetime(int.from_bytes(data[5:7], "little"), month,
                                                 day, hour, minute, second)
            except ValueError:
                return error_reply(op, ErrorCode.BAD_PARAMETERS)
            return build_aap(Op.SET_DATE_TIME)
        if op in (Op.SET_COMPRESSION, Op.GET_CFG_DATA, Op.GET_DATABASE, Op.SET_DATE_TIME):
            return error_reply(op, ErrorCode.WRONG_PARAMETER_COUNT)
        return error_reply(op, ErrorCode.COMMAND_FAILED)


def _window(next_number: int) -> int:
    return -(-max(next_number, 1) // 0x10000) * 0x10000


def error_reply(op: int, code: int) -> bytes:
    return build_aap(Op.ERROR, bytes([op, code]))
