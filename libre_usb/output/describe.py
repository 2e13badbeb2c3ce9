"""One-line texts for records that a target format has no column or type for (notes in the
LibreView CSV and in Nightscout treatments), so nothing the reader sends is dropped."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from .. import jsonsafe
from ..model import (
    HistoryRecord,
    KetoneRecord,
    ReadingRecord,
    Record,
    TimeChangeRecord,
    UnknownRecord,
)

_BASE = frozenset({"kind", "record_id", "source", "record_type", "local_time", "utc",
                   "time_status"})


def amount(value: Decimal) -> str:
    """A dose or ketone value without trailing noise: ``3`` whether stored as 3 or 3.0
    (a JSON round trip turns one into the other), ``2.5`` and ``0.60`` as they are."""
    if value == value.to_integral():
        return format(value.to_integral(), "f")
    return format(value, "f")


def ketone_value(value: Decimal) -> str:
    """mmol/L with the two decimals readers give (raw / 18), however it was stored."""
    return format(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), "f")


def invalid_reading(record: HistoryRecord | ReadingRecord) -> str:
    value = "" if record.glucose_mg_dl is None else f", value {record.glucose_mg_dl} mg/dL"
    flag = ", error flag" if isinstance(record, ReadingRecord) and record.error_flag else ""
    return (f"Invalid {record.kind.value} reading (reader errors 0x{record.errors:04x}"
            f"{flag}{value})")


def ketone(record: KetoneRecord) -> str:
    if record.ketone_mmol_l is not None:
        return f"Ketone {ketone_value(record.ketone_mmol_l)} mmol/L"
    return f"Ketone {record.out_of_range or 'without a value'}"


def text(record: Record) -> str:
    """The note a record becomes where it has no place of its own."""
    if isinstance(record, TimeChangeRecord):
        old = "invalid" if record.old_time is None else record.old_time.isoformat(sep=" ")
        new = "invalid" if record.new_time is None else record.new_time.isoformat(sep=" ")
        return f"Reader clock changed from {old} to {new}"
    if isinstance(record, UnknownRecord):
        return (f"Unknown record type {record.record_type} ({record.source}): "
                + ",".join(record.fields))
    if isinstance(record, KetoneRecord):
        return ketone(record)
    if isinstance(record, HistoryRecord | ReadingRecord) and record.invalid:
        return invalid_reading(record)
    if record.kind.value in ("exercise", "medication"):
        return record.kind.value.capitalize()
    data = record.to_dict()
    rest = {k: v for k, v in data.items() if k not in _BASE and v not in (None, [], "")}
    return f"{record.kind.value}: " + jsonsafe.dumps(rest, ensure_ascii=False, sort_keys=True)
