"""The virtual reader's writers: typed records back into reader lines.

These are the device side's own table of field positions (protocol.md section 4). They are
deliberately not derived from the parsers' code; the parsers are checked against real
lines nobody here wrote (tests/test_records_real.py), so a mistake made the same way on
both sides would still show up there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from ..model import (
    ExerciseRecord,
    FoodRecord,
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
)


def _time(when: dt.datetime | None) -> list[str]:
    if when is None:
        return ["255"] * 6
    return [str(when.month), str(when.day), str(when.year - 2000), str(when.hour),
            str(when.minute), str(when.second)]


def _fill(size: int, known: dict[int, str], raw: Sequence[tuple[int, str]]) -> list[str]:
    fields = dict(raw)
    fields.update(known)
    size = max(size, max(fields) + 1 if fields else 0)
    missing = [i for i in range(size) if i not in fields]
    if missing:
        raise ValueError(f"record leaves fields {missing} undefined")
    return [fields[i] for i in range(size)]


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def history_line(record: HistoryRecord) -> str:
    known = {0: str(record.record_id), 1: str(record.record_type),
             12: "1" if record.first_after_insertion else "0",
             13: str(record.glucose_mg_dl or 0), 14: str(record.sensor_runtime_min or 0),
             15: str(record.errors)}
    known.update(enumerate(_time(record.local_time), start=2))
    return ",".join(_fill(16, known, record.raw))


def arresult_line(records: Sequence[Record], comments: Sequence[str]) -> str:
    """One ``$arresult?`` line from the records the reader made of it."""
    first = records[0]
    if isinstance(first, UnknownRecord):
        return ",".join(first.fields)
    if isinstance(first, TimeChangeRecord):
        known = {0: str(first.record_id), 1: "5"}
        known.update(enumerate(_time(first.new_time), start=2))
        known.update(enumerate(_time(first.old_time), start=9))
        return ",".join(_fill(20, known, first.raw))
    assert isinstance(first, ReadingRecord)
    reading_type = (2 if isinstance(first, ScanRecord)
                    else 1 if isinstance(first, KetoneRecord) else 0)
    rapid = next((r for r in records if isinstance(r, InsulinRecord) and r.insulin_type == "rapid"),
                 None)
    long = next((r for r in records if isinstance(r, InsulinRecord) and r.insulin_type == "long"),
                None)
    food = next((r for r in records if isinstance(r, FoodRecord)), None)
    notes = [r for r in records if isinstance(r, NoteRecord)]
    bits = sum(1 << (note.comment_index - 1) for note in notes)
    known = {
        0: str(first.record_id), 1: "2", 9: str(reading_type),
        11: "1" if first.error_flag else "0", 12: first.value_raw,
        14: str(first.trend or 0),
        15: "1" if any(isinstance(r, ExerciseRecord) for r in records) else "0",
        16: "1" if any(isinstance(r, MedicationRecord) for r in records) else "0",
        17: "1" if rapid else "0", 18: "1" if long else "0", 19: str(bits),
        23: str(int(long.units * 2)) if long and long.units is not None else "0",
        25: "1" if food else "0",
        26: str(food.carbs_g or 0) if food else "0",
        28: str(first.errors),
    }
    known.update(enumerate(_time(first.local_time), start=2))
    for note in notes:
        known[28 + note.comment_index] = note.text
    if rapid is not None and rapid.units is not None:
        known[43] = str(int(rapid.units * 2))
    fields = _fill(35, known, first.raw)
    for i in range(29, 35):
        fields[i] = _quote(fields[i])
    return ",".join(fields)
