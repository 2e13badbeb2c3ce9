"""Database records: the common header, CRC16, compressed records and 32-bit record numbers.

A GET_DATABASE reply is one AAP frame per record, op 0x31, data ``[table id][record]``, and an
empty 0x31 frame at the end. With compression on, records come as op 0x35 frames: ``[table
id]``, then blocks (:data:`wire.BlockHeader`: 0xFD = raw words follow, 0xFF = zero words), then
the CRC32 (:func:`crc.crc32_words`) of the decompressed record, u32 LE.

A record is the common header (record 255 of the schema: record number, type, time-valid flag,
reader time, user time offset) then the body of its type, ending in the record's CRC16
(:func:`crc.crc16_record`, over everything before it). The header layout comes from the
reader's own schema for record 255 when it sent one, else :data:`DEFAULT_HEADER` (the schema
Tidepool's code quotes from the specification).

Record numbers on the wire are the low 16 bits. :class:`RecordNumbers` rebuilds 32-bit numbers
the way Tidepool does: each table starts from the next multiple of 65536 above ``$dbrnum?``;
a wrap record (types 13, 14, 17, 52) carries the table's next record number, which, rounded up
to a multiple of 65536, applies to the records after it in the stream (tables stream newest
first).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import construct as cs

from ...errors import ProtocolError
from .crc import crc16_record, crc32_words
from .schema import Field, Schema
from .wire import BLOCK_RAW, BLOCK_ZERO, COMMON_HEADER_ID, BlockHeader, FieldType

#: header field ids (Tidepool ``DB_FIELD_ID``)
RECORD_NUMBER, TIME_VALID, RECORD_TYPE, READER_TIME, USER_TIME_OFFSET = 0, 7, 8, 9, 10

#: the common header's schema as Tidepool's code comment quotes it from the specification
DEFAULT_HEADER = Schema(COMMON_HEADER_ID, 1, 6, (
    Field(RECORD_NUMBER, 0, 0, FieldType.UNSIGNED_HEX, 16),
    Field(RECORD_TYPE, 1, 0, FieldType.UNSIGNED, 8),
    Field(TIME_VALID, 1, 15, FieldType.UNSIGNED, 1),
    Field(READER_TIME, 2, 0, FieldType.UNSIGNED, 32),
    Field(USER_TIME_OFFSET, 4, 0, FieldType.SIGNED, 32),
))
HEADER_FIELDS = frozenset({RECORD_NUMBER, TIME_VALID, RECORD_TYPE, READER_TIME,
                           USER_TIME_OFFSET})

#: wrap record types -> their table (Tidepool ``DB_WRAP_RECORDS``)
WRAP_TYPES = {13: 0, 14: 1, 17: 6, 52: 7}
#: the field ids that hold a wrap record's next record number
WRAP_FIELDS = (60, 79, 158, 197)


@dataclasses.dataclass(frozen=True)
class DbRecord:
    """One database record as it came off the wire, before field decoding."""

    table: int
    #: the record: common header + body (table id not included; padding of a decompressed
    #: record removed when the schema says the size)
    data: bytes
    number16: int
    type: int
    time_valid: bool
    reader_time: int
    user_offset: int
    #: True when the CRC16 matched, False when not, None when no CRC16 was found
    crc_ok: bool | None
    compressed: bool = False
    #: the 32-bit record number (see :class:`RecordNumbers`); -1 until numbered
    number: int = -1


def decompress(data: bytes) -> tuple[int, bytes, bool]:
    """A compressed record (op 0x35 data) -> (table id, record bytes, CRC32 matched)."""
    if len(data) < 5:
        raise ProtocolError(f"compressed record of {len(data)} bytes is too short")
    table = data[0]
    end = len(data) - 4
    at = 1
    out = bytearray()
    while at < end:
        if end - at < 4:
            raise ProtocolError("compressed record ends inside a block header")
        block: Any = BlockHeader.parse(data[at : at + 4])
        at += 4
        size = int(block.words) * 4
        if block.type == BLOCK_RAW:
            if at + size > end:
                raise ProtocolError("compressed record: a raw block runs past the record")
            out += data[at : at + size]
            at += size
        elif block.type == BLOCK_ZERO:
            if size > 1 << 20:
                raise ProtocolError(f"compressed record: a zero block of {size} bytes")
            out += bytes(size)
        else:
            raise ProtocolError(f"compressed record: unknown block type 0x{block.type:02x}")
    crc = int.from_bytes(data[end:], "little")
    return table, bytes(out), crc32_words(bytes(out)) == crc


def compress(table: int, record: bytes) -> bytes:
    """The compressed form of ``record`` (the virtual reader's side), as short as the format
    allows: zero-padded to whole words, then 0xFD blocks of raw words and 0xFF blocks of zero
    words, then the CRC32. A block header costs 4 bytes, so a run of zero words becomes a
    0xFF block only where that saves bytes (inside raw words it needs 3 zero words, since the
    raw words after it need a header of their own); the choice is made for the whole record
    at once. How Abbott's firmware picks its blocks is not public: this is the best case."""
    padded = record + bytes(-len(record) % 4)
    words = [padded[i : i + 4] for i in range(0, len(padded), 4)]
    runs: list[tuple[bool, int, int]] = []  # (zero, first word, end)
    for at, word in enumerate(words):
        zero = word == bytes(4)
        if runs and runs[-1][0] == zero:
            runs[-1] = (zero, runs[-1][1], at + 1)
        else:
            runs.append((zero, at, at + 1))
    # cost[open] = fewest bytes so far with a raw block open (True) or not (False), and the
    # runs sent as zero blocks on the way there
    cost: dict[bool, tuple[int, tuple[int, ...]]] = {False: (0, ())}
    for index, (zero, first, end) in enumerate(runs):
        size = 4 * (end - first)
        step: dict[bool, tuple[int, tuple[int, ...]]] = {}
        for is_open, (so_far, zeros) in cost.items():
            options = [(True, so_far + size + (0 if is_open else 4), zeros)]
            if zero:
                options.append((False, so_far + 4, (*zeros, index)))
            for state, total, chosen in options:
                if state not in step or total < step[state][0]:
                    step[state] = (total, chosen)
        cost = step
    zero_runs = set(min(cost.values())[1])
    out = bytearray([table])
    raw = bytearray()
    for index, (_, first, end) in enumerate(runs):
        if index in zero_runs:
            if raw:
                out += BlockHeader.build({"type": BLOCK_RAW, "words": len(raw) // 4}) + raw
                raw = bytearray()
            out += BlockHeader.build({"type": BLOCK_ZERO, "words": end - first})
        else:
            raw += b"".join(words[first:end])
    if raw:
        out += BlockHeader.build({"type": BLOCK_RAW, "words": len(raw) // 4}) + raw
    out += crc32_words(padded).to_bytes(4, "little")
    return bytes(out)


def _crc_position(record: bytes, body: Schema | None, base: int) -> list[int]:
    if body is not None:
        crc = [f for f in body.fields if f.type == FieldType.CRC16]
        if crc:
            return [base + crc[0].word * 2]
    return [len(record) - 2, len(record) - 4]


def parse_record(table: int, record: bytes, header: Schema = DEFAULT_HEADER,
                 bodies: dict[int, Schema] | None = None, *, compressed: bool = False
                 ) -> DbRecord:
    """One record of ``table`` (the bytes after the table id)."""
    if len(record) < header.size:
        raise ProtocolError(f"database record of {len(record)} bytes is shorter than its "
                            f"{header.size}-byte header")
    values = header.read_all(record)
    rtype = int(values.get(RECORD_TYPE) or 0)
    body = (bodies or {}).get(rtype)
    base = 0 if body is not None and HEADER_FIELDS & {f.field_id for f in body.fields} else (
        header.size)
    crc_ok: bool | None = None
    size = len(record)
    for at in _crc_position(record, body, base):
        if at < header.size or at + 2 > len(record):
            continue
        crc_ok = crc16_record(record[:at]) == int.from_bytes(record[at : at + 2], "little")
        if crc_ok:
            size = at + 2  # what follows is the padding of a decompressed record
            break
    return DbRecord(
        table=table,
        data=bytes(record[:size]),
        number16=int(values.get(RECORD_NUMBER) or 0),
        type=rtype,
        time_valid=bool(values.get(TIME_VALID)),
        reader_time=int(values.get(READER_TIME) or 0),
        user_offset=int(values.get(USER_TIME_OFFSET) or 0),
        crc_ok=crc_ok,
        compressed=compressed,
    )


def body_base(record: DbRecord, header: Schema, body: Schema | None) -> int:
    """Where a body schema's word 0 is in ``record.data`` (see :mod:`.schema`)."""
    if body is not None and HEADER_FIELDS & {f.field_id for f in body.fields}:
        return 0
    return header.size


class RecordNumbers:
    """Rebuilds 32-bit record numbers from the 16-bit ones (see the module docstring)."""

    def __init__(self, db_record_number: int) -> None:
        self.start = -(-max(db_record_number, 0) // 0x10000) * 0x10000 or 0x10000
        self._next_wrap: dict[int, int] = {}

    def number(self, table: int, number16: int) -> int:
        wrap = self._next_wrap.get(table, self.start)
        return wrap - 0x10000 + number16

    def wrapped(self, table: int, next_record_number: int) -> None:
        """A wrap record: older records of ``table`` are below this next-wrap."""
        self._next_wrap[table] = -(-next_record_number // 0x10000) * 0x10000

    def apply(self, record: DbRecord, wrap_value: int | None = None) -> DbRecord:
        """``record`` with its 32-bit number; a wrap record (with its value) moves the
        table's window for the records after it."""
        numbered = dataclasses.replace(record, number=self.number(record.table,
                                                                  record.number16))
        if record.type in WRAP_TYPES and wrap_value is not None and record.crc_ok is not False:
            self.wrapped(record.table, wrap_value)
        return numbered


def wrap_value(record: DbRecord, header: Schema, body: Schema | None) -> int | None:
    """The next record number a wrap record carries (its wrap field, else the u32 at body
    offset 0 as Tidepool reads it)."""
    if record.type not in WRAP_TYPES:
        return None
    base = body_base(record, header, body)
    if body is not None:
        for field in body.fields:
            if field.field_id in WRAP_FIELDS:
                value = field.read(record.data, base)
                return value if isinstance(value, int) else None
    try:
        return int(cs.Int32ul.parse(record.data[base : base + 4]))
    except cs.ConstructError:
        return None
