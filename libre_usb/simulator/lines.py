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


#: the Neo's insulin type codes (protocol.md 4.4), the device side's own copy
_NEO_INSULIN = {"long_morning": "0", "short_breakfast": "1", "short_lunch": "2",
                "long_evening": "3", "short_dinner": "4"}


def _neo_insulin_code(name: str) -> str:
    return _NEO_INSULIN.get(name) or name.removeprefix("code_")


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def history_line(record: HistoryRecord) -> str:
    """A Libre 1/2/Pro ``$history?`` line: 16 fields."""
    known = {0: str(record.record_id), 1: str(record.record_type),
             12: "1" if record.first_after_insertion else "0",
             13: str(record.glucose_mg_dl or 0), 14: str(record.sensor_runtime_min or 0),
             15: str(record.errors)}
    known.update(enumerate(_time(record.local_time), start=2))
    return ",".join(_fill(16, known, record.raw))


def libre3_history_line(record: HistoryRecord) -> str:
    """A Libre 3 ``$history?`` line: 15 fields, the first-reading flag at 11, glucose at 12,
    runtime at 13, errors at 14."""
    known = {0: str(record.record_id), 1: str(record.record_type),
             11: "1" if record.first_after_insertion else "0",
             12: str(record.glucose_mg_dl or 0), 13: str(record.sensor_runtime_min or 0),
             14: str(record.errors)}
    known.update(enumerate(_time(record.local_time), start=2))
    return ",".join(_fill(15, known, record.raw))


def _time_change_line(first: TimeChangeRecord) -> str:
    known = {0: str(first.record_id), 1: "5"}
    known.update(enumerate(_time(first.new_time), start=2))
    known.update(enumerate(_time(first.old_time), start=9))
    return ",".join(_fill(20, known, first.raw))


class _Line:
    """The records one reading line was made of."""

    def __init__(self, records: Sequence[Record]) -> None:
        first = records[0]
        assert isinstance(first, ReadingRecord)
        self.reading = first
        self.kind = (2 if isinstance(first, ScanRecord)
                     else 1 if isinstance(first, KetoneRecord) else 0)
        self.rapid = next((r for r in records
                           if isinstance(r, InsulinRecord) and r.insulin_type == "rapid"), None)
        self.long = next((r for r in records
                          if isinstance(r, InsulinRecord) and r.insulin_type == "long"), None)
        self.food = next((r for r in records if isinstance(r, FoodRecord)), None)
        self.exercise = any(isinstance(r, ExerciseRecord) for r in records)
        self.medication = any(isinstance(r, MedicationRecord) for r in records)
        self.notes = [r for r in records if isinstance(r, NoteRecord)]

    def common(self) -> dict[int, str]:
        """Fields both layouts keep at the same place."""
        first = self.reading
        known = {
            0: str(first.record_id), 1: "2", 9: str(self.kind),
            11: "1" if first.error_flag else "0", 12: first.value_raw,
            15: "1" if self.exercise else "0", 16: "1" if self.medication else "0",
            17: "1" if self.rapid else "0", 18: "1" if self.long else "0",
        }
        if first.trend is not None:
            known[14] = str(first.trend)
        known.update(enumerate(_time(first.local_time), start=2))
        return known


def _half(units: object) -> str:
    assert units is not None
    return str(int(units * 2))  # type: ignore[operator]


#: the device side's own table of where a Libre / Libre 2 reading line keeps its comment
#: texts and rapid-acting dose, and how many fields it has without that dose
_ARRESULT_SHAPE = {"libre": (29, 43, 35), "libre2": (32, 46, 38)}


def arresult_line(records: Sequence[Record], comments: Sequence[str],
                  model: str = "libre") -> str:
    """One Libre 1/Pro ``$arresult?`` line (protocol.md 4.2) from the records the reader
    made of it: 35 fields, 44 when a rapid-acting dose was entered. With ``model="libre2"``
    the Libre 2 reader's line: 38 fields, 47 with the dose (glucometerutils issue #137)."""
    texts_at, rapid_at, size = _ARRESULT_SHAPE.get(model, _ARRESULT_SHAPE["libre"])
    first = records[0]
    if isinstance(first, UnknownRecord):
        return ",".join(first.fields)
    if isinstance(first, TimeChangeRecord):
        return _time_change_line(first)
    line = _Line(records)
    known = line.common()
    known[19] = str(sum(1 << (note.comment_index - 1) for note in line.notes))
    known[28] = str(first.errors) if isinstance(first, ReadingRecord) else "0"
    if line.long is not None:
        known[23] = _half(line.long.units)
    if line.food is not None:
        known[25] = "1"
        known[26] = str(line.food.carbs_g or 0)
    else:
        known[25] = "0"
    for note in line.notes:
        known[texts_at - 1 + note.comment_index] = note.text
    if line.rapid is not None and line.rapid.units is not None:
        known[rapid_at] = _half(line.rapid.units)
    fields = _fill(size, known, first.raw)
    for i in range(texts_at, texts_at + 6):
        fields[i] = _quote(fields[i])
    return ",".join(fields)


def libre3_arresult_line(records: Sequence[Record]) -> str:
    """One Libre 3 ``$arresult?`` line (protocol.md 4.3): no comment texts, no error field;
    28 fields, or 37 with the rapid-acting dose (half units) last."""
    first = records[0]
    if isinstance(first, UnknownRecord):
        return ",".join(first.fields)
    if isinstance(first, TimeChangeRecord):
        return _time_change_line(first)
    line = _Line(records)
    known = line.common()
    if line.long is not None:
        known[22] = _half(line.long.units)
    known[24] = "1" if line.food is not None else "0"
    if line.food is not None:
        known[25] = str(line.food.carbs_g or 0)
    if line.rapid is not None and line.rapid.units is not None:
        known[36] = _half(line.rapid.units)
    return ",".join(_fill(28, known, first.raw))


def _result_time(when: dt.datetime | None) -> list[str]:
    return _time(when)[:5]


def _result_common(first: Record) -> dict[int, str]:
    known = {0: str(first.record_type), 1: str(first.record_id)}
    known.update(enumerate(_result_time(first.local_time), start=2))
    return known


def _result_time_change(first: TimeChangeRecord) -> str:
    known = _result_common(first)
    known.update(enumerate(_result_time(first.old_time), start=8))
    return ",".join(_fill(13, known, first.raw))


def neo_result_line(records: Sequence[Record]) -> str:
    """One Precision/Optium Neo ``$result?`` line (protocol.md 4.4): type first, then id."""
    first = records[0]
    if isinstance(first, UnknownRecord):
        return ",".join(first.fields)
    if isinstance(first, TimeChangeRecord):
        return _result_time_change(first)
    known = _result_common(first)
    if isinstance(first, InsulinRecord):
        known[8] = _neo_insulin_code(first.insulin_type)
        known[9] = str(int(first.units or 0))
        return ",".join(_fill(13, known, first.raw))
    assert isinstance(first, ReadingRecord)
    known[8] = first.value_raw
    return ",".join(_fill(11 if isinstance(first, KetoneRecord) else 19, known, first.raw))


def insulinx_result_line(records: Sequence[Record]) -> str:
    """One InsuLinx ``$result?`` line (protocol.md 4.5): glucose at 13, 16 fields."""
    first = records[0]
    if isinstance(first, UnknownRecord):
        return ",".join(first.fields)
    if isinstance(first, TimeChangeRecord):
        return _result_time_change(first)
    assert isinstance(first, ReadingRecord)
    known = _result_common(first)
    known[13] = first.value_raw
    return ",".join(_fill(16, known, first.raw))
