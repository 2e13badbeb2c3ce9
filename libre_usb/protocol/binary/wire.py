"""construct definitions of every wire layout of the binary protocol, and its constants.

Sources (facts only): Tidepool uploader ``lib/drivers/abbott/freeStyleLibreProtocol.js``,
``freeStyleLibreData.js`` and ``freeStyleLibreConstants.js`` (BSD-2-Clause), whose comments say
they follow Abbott's "ABMP" specification; docs/binary-protocol.md describes the protocol.

Layers, outermost first::

    HID report   type (0x0A host->reader, 0x0B reader->host, 0x0D host ACK, 0x0C reader ACK),
                 length, payload (<= 62 bytes)
    ATP frame    seq_rx u8, seq_tx u8, CRC32 u32 LE (crc.crc32_words of the data), data
    ACK          seq_rx u8, seq_tx u8, 2 more bytes (00 00; 00 02 during init)
    AAP frame    length (0..3 bytes, 7 bits each, LSB group first, high bit set), op u8, data

An ATP frame's data is a slice of the AAP byte stream: a frame may hold several AAP frames or
part of one.
"""

from __future__ import annotations

import enum
from typing import Any

import construct as cs

#: the payload of one HID report
HID_PAYLOAD = 62
#: the ATP header: seq_rx, seq_tx, CRC32
ATP_HEADER = 6
#: AAP bytes one ATP frame carries (the reader sends only full frames until FLUSH)
ATP_DATA = HID_PAYLOAD - ATP_HEADER
#: the longest AAP frame the 3-byte length prefix can say
MAX_AAP_LENGTH = (1 << 21) - 1


class Op(enum.IntEnum):
    """AAP op codes (Tidepool ``OP_CODE``)."""

    GET_DATABASE = 0x31
    GET_DB_SCHEMA = 0x34
    COMPRESSED_DATABASE = 0x35
    GET_DATE_TIME = 0x41
    SET_DATE_TIME = 0x42
    GET_CFG_DATA = 0x51
    GET_CFG_SCHEMA = 0x54
    SET_COMPRESSION = 0x60
    FLUSH = 0x7D
    ERROR = 0x7E


#: the ops a read may send; anything else (SET_DATE_TIME) needs an explicit write
READ_OPS = frozenset({Op.GET_DATABASE, Op.GET_DB_SCHEMA, Op.GET_DATE_TIME, Op.GET_CFG_DATA,
                      Op.GET_CFG_SCHEMA, Op.SET_COMPRESSION, Op.FLUSH})
#: the only write the tool can build (never sent by a read command)
CLOCK_OPS = frozenset({Op.SET_DATE_TIME})


class ErrorCode(enum.IntEnum):
    """The code in an ERROR (0x7E) reply (Tidepool ``ERROR``)."""

    OK = 0
    BAD_PARAMETERS = 1
    WRONG_PARAMETER_COUNT = 2
    COMMAND_FAILED = 3
    CRC_ERROR = 4
    INVALID_TABLE = 5


ERROR_TEXT = {
    ErrorCode.OK: "no error",
    ErrorCode.BAD_PARAMETERS: "bad parameter values or out of range",
    ErrorCode.WRONG_PARAMETER_COUNT: "wrong number of parameters",
    ErrorCode.COMMAND_FAILED: "command failed",
    ErrorCode.CRC_ERROR: "wrong checksum",
    ErrorCode.INVALID_TABLE: "invalid table id",
}


class DbTable(enum.IntEnum):
    """Database tables (GET_DATABASE parameter)."""

    RESULTS = 0
    RAPID_INSULIN = 1
    HISTORY = 6
    EVENTS = 7


class CfgTable(enum.IntEnum):
    """Configuration tables (GET_CFG_DATA parameter)."""

    FACTORY = 1
    METER_SETTINGS = 2
    PATIENT_CONFIG = 3
    PATIENT_SETTINGS = 4
    INSULIN_SETTINGS = 5
    REMINDER_STRINGS = 6
    SMART_TAG_NOTES = 7
    TABLE_8 = 8  # asked for by Abbott's software (Tidepool's capture); meaning unknown
    SENSOR_INFO = 9
    REMINDER_DATA = 10


class FieldType(enum.IntEnum):
    """The data type of a schema field."""

    UNSIGNED = 0
    UNSIGNED_HEX = 1
    SIGNED = 2
    UTF8 = 3
    BULK = 4
    CRC32 = 10
    CRC16 = 11


class _AapLength(cs.Construct):  # type: ignore[misc]
    """The AAP length prefix: 0..3 bytes with the high bit set, 7 bits each, LSB first. No
    prefix byte means length 0 (the first byte, high bit clear, is already the op)."""

    def _parse(self, stream: Any, context: Any, path: Any) -> int:
        length = 0
        for index in range(3):
            peek = cs.stream_read(stream, 1, path)[0]
            if not peek & 0x80:
                cs.stream_seek(stream, -1, 1, path)
                return length
            length |= (peek & 0x7F) << (7 * index)
        return length

    def _build(self, obj: int, stream: Any, context: Any, path: Any) -> int:
        cs.stream_write(stream, encode_length(obj), len(encode_length(obj)), path)
        return obj


def encode_length(length: int) -> bytes:
    """The AAP length prefix of ``length`` (empty for 0)."""
    if not 0 <= length <= MAX_AAP_LENGTH:
        raise ValueError(f"an AAP frame holds at most {MAX_AAP_LENGTH} bytes, not {length}")
    out = bytearray()
    while length:
        out.append(0x80 | (length & 0x7F))
        length >>= 7
    return bytes(out)


AapFrame = cs.Struct(
    "length" / _AapLength(),
    "op" / cs.Int8ub,
    cs.Check(cs.this.op < 0x80),
    "data" / cs.Bytes(cs.this.length),
)

AtpFrame = cs.Struct(
    "seq_rx" / cs.Int8ul,
    "seq_tx" / cs.Int8ul,
    "crc" / cs.Int32ul,
    "data" / cs.GreedyBytes,
)

Ack = cs.Struct(
    "seq_rx" / cs.Int8ul,
    "seq_tx" / cs.Int8ul,
    "extra" / cs.Bytes(2),
)

#: the GET_DATE_TIME reply and the SET_DATE_TIME parameters
DateTime = cs.Struct(
    "second" / cs.Int8ul,
    "minute" / cs.Int8ul,
    "hour" / cs.Int8ul,
    "day" / cs.Int8ul,
    "month" / cs.Int8ul,
    "year" / cs.Int16ul,
    "valid" / cs.Int8ul,
)

def date_time_data(year: int, month: int, day: int, hour: int, minute: int, second: int,
                   valid: int = 1) -> bytes:
    """The 8 bytes of a SET_DATE_TIME command (and of a GET_DATE_TIME reply). Sending it
    needs a :class:`~.link.HostLink` made with ``allow_clock=True``; no read does that."""
    data: bytes = DateTime.build({"second": second, "minute": minute, "hour": hour,
                                  "day": day, "month": month, "year": year, "valid": valid})
    return data


#: an ERROR (0x7E) reply's data: the op that failed, the code, anything more kept raw
ErrorReply = cs.Struct(
    "op" / cs.Int8ul,
    "code" / cs.Int8ul,
    "extra" / cs.GreedyBytes,
)

#: one field of a schema table: where it sits in the record (16-bit words, bits), its type
FieldDescriptor = cs.Struct(
    "field_id" / cs.Int16ul,
    "word" / cs.Int16ul,
    "bit" / cs.Int8ul,
    "type" / cs.Int8ul,
    "bits" / cs.Int16ul,
)
FIELD_DESCRIPTOR_SIZE = 8
SCHEMA_HEADER_SIZE = 8

#: one schema table as GET_DB_SCHEMA / GET_CFG_SCHEMA send it (``length`` counts the header)
SchemaTable = cs.Struct(
    "length" / cs.Int16ul,
    "version" / cs.Int16ul,
    "table_id" / cs.Int8ul,
    "words" / cs.Int16ul,
    "field_count" / cs.Int8ul,
    cs.Check(cs.this.length == SCHEMA_HEADER_SIZE + FIELD_DESCRIPTOR_SIZE * cs.this.field_count),
    "fields" / cs.Array(cs.this.field_count, FieldDescriptor),
)

#: one block of a compressed record: 0xFD = ``words`` x 4 raw bytes follow, 0xFF = that
#: many zero bytes (nothing follows)
BLOCK_RAW = 0xFD
BLOCK_ZERO = 0xFF
BlockHeader = cs.Struct(
    "type" / cs.Int8ul,
    "words" / cs.Int24ul,
)

#: the database record id of the common header's schema
COMMON_HEADER_ID = 255
