"""Schemas: the reader describes its own record and config-table layouts.

GET_DB_SCHEMA and GET_CFG_SCHEMA answer with schema tables (:data:`wire.SchemaTable`): a
header (length, version, record or table id, size in 16-bit words, field count) and 8 bytes
per field (field id, word offset, bit offset in that word, data type, length in bits). This
module parses them and reads any field out of a record or table by its descriptor, so no
record layout is written here: the reader's schema says where everything is.

A field is read as ``bits`` bits starting ``bit`` bits into the little-endian 16-bit word
``word`` (a field may run over several words, e.g. a 32-bit time at word 2 bit 0). UTF-8 and
bulk fields are whole bytes. Signed fields are two's complement in their bit length.

Word offsets of a record type's fields: the common header (record 255) starts at word 0. Is a
body field's word offset counted from the start of the record or of the body? No public schema
of a body shows it. A record-type schema that also lists the header's fields (ids 0, 8, 9, 10)
counts from the start of the record; one that does not counts from the end of the header
(*inferred*; docs/binary-protocol.md, "Schemas").
"""

from __future__ import annotations

import dataclasses
from typing import Any

import construct as cs

from ...errors import ProtocolError
from .wire import SCHEMA_HEADER_SIZE, FieldType, SchemaTable


@dataclasses.dataclass(frozen=True)
class Field:
    field_id: int
    word: int
    bit: int
    type: int
    bits: int

    @property
    def byte_offset(self) -> int:
        return self.word * 2 + self.bit // 8

    def read(self, data: bytes, base: int = 0) -> int | str | bytes | None:
        """This field's value in ``data`` (a record or table), counting words from byte
        ``base``; None when ``data`` is too short to hold it."""
        start = base + self.word * 2
        if self.type in (FieldType.UTF8, FieldType.BULK):
            start += self.bit // 8
            end = start + (self.bits + 7) // 8
            if end > len(data):
                return None
            raw = bytes(data[start:end])
            if self.type == FieldType.BULK:
                return raw
            return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")
        end = start + (self.bit + self.bits + 7) // 8
        if end > len(data) or self.bits == 0:
            return None
        value = int.from_bytes(data[start:end], "little") >> self.bit
        value &= (1 << self.bits) - 1
        if self.type == FieldType.SIGNED and value >> (self.bits - 1):
            value -= 1 << self.bits
        return value

    def write(self, buffer: bytearray, value: int | str | bytes, base: int = 0) -> None:
        """Put ``value`` into ``buffer`` where this field lives (the virtual reader builds its
        records with this, from its own schema tables)."""
        start = base + self.word * 2
        if self.type in (FieldType.UTF8, FieldType.BULK):
            start += self.bit // 8
            size = (self.bits + 7) // 8
            raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            if len(raw) > size:
                raise ValueError(f"field {self.field_id}: {len(raw)} bytes do not fit {size}")
            buffer[start : start + size] = raw.ljust(size, b"\0")
            return
        assert isinstance(value, int)
        if value < 0:
            value += 1 << self.bits
        if not 0 <= value < 1 << self.bits:
            raise ValueError(f"field {self.field_id}: {value} does not fit {self.bits} bits")
        size = (self.bit + self.bits + 7) // 8
        current = int.from_bytes(buffer[start : start + size], "little")
        mask = ((1 << self.bits) - 1) << self.bit
        current = (current & ~mask) | (value << self.bit)
        buffer[start : start + size] = current.to_bytes(size, "little")


@dataclasses.dataclass(frozen=True)
class Schema:
    """One schema table: a database record type (255 = the common header) or a config
    table."""

    table_id: int
    version: int
    words: int
    fields: tuple[Field, ...]

    @property
    def size(self) -> int:
        """Bytes of the record or table the schema describes."""
        return self.words * 2

    def by_id(self) -> dict[int, Field]:
        return {f.field_id: f for f in self.fields}

    def encode(self) -> bytes:
        """The schema table as the reader sends it."""
        data: bytes = SchemaTable.build({
            "length": SCHEMA_HEADER_SIZE + 8 * len(self.fields), "version": self.version,
            "table_id": self.table_id, "words": self.words, "field_count": len(self.fields),
            "fields": [dataclasses.asdict(f) for f in self.fields],
        })
        return data

    def read_all(self, data: bytes, base: int = 0) -> dict[int, int | str | bytes | None]:
        return {f.field_id: f.read(data, base) for f in self.fields}


def parse_schemas(data: bytes) -> list[Schema]:
    """Every schema table in ``data`` (one AAP frame of a schema reply may hold several)."""
    out: list[Schema] = []
    at = 0
    while at < len(data):
        if len(data) - at < SCHEMA_HEADER_SIZE:
            raise ProtocolError(f"schema reply ends with {len(data) - at} stray bytes")
        try:
            table: Any = SchemaTable.parse(data[at:])
        except cs.ConstructError as exc:
            raise ProtocolError(f"malformed schema table at byte {at}: "
                                f"{str(exc).splitlines()[0][:120]}") from None
        out.append(Schema(
            table_id=int(table.table_id), version=int(table.version), words=int(table.words),
            fields=tuple(Field(int(f.field_id), int(f.word), int(f.bit), int(f.type),
                               int(f.bits)) for f in table.fields),
        ))
        at += int(table.length)
    return out
