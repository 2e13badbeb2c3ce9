"""Record parsers: one reader line in, typed records out.

Field numbers are 0-based indices into the comma-split line (protocol.md section 4).
Every field whose meaning is not known goes into the record's ``raw`` list, so nothing the
reader sends is dropped. Lines of record types we cannot decode become
:class:`~libre_usb.model.UnknownRecord` with all their fields.

Parsers are pure functions ``(fields) -> list[Record]``, looked up by name in
:data:`PARSERS` so device models (``libre_usb.devices``) can name them as data.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from ..errors import ProtocolError
from ..model import (
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
)
from .text import decode_text

Fields = Sequence[str]
Parser = Callable[[Fields], list[Record]]

#: ketone strips report a mg/dL-like number; mmol/L = raw / 18 (protocol.md 4.2)
KETONE_FACTOR = Decimal(18)


def split_line(line: bytes) -> list[str]:
    """Split one record line into fields (comment fields are double-quoted)."""
    text = decode_text(line)
    if '"' not in text:
        return text.split(",")
    return next(csv.reader([text]))


def reader_time(fields: Fields, start: int, *, seconds: bool = True) -> dt.datetime | None:
    """The reader's local time at ``fields[start:]``: month, day, 2-digit year, hour, minute
    [, second]. ``None`` when the reader's clock was invalid (255s, or no such date)."""
    count = 6 if seconds else 5
    try:
        parts = [int(fields[start + i]) for i in range(count)]
    except (IndexError, ValueError):
        return None
    month, day, year, hour, minute = parts[:5]
    second = parts[5] if seconds else 0
    if year > 99:
        return None
    try:
        return dt.datetime(2000 + year, month, day, hour, minute, second)
    except ValueError:
        return None


def _int(fields: Fields, index: int, default: int = 0) -> int:
    try:
        return int(fields[index])
    except (IndexError, ValueError):
        return default


TIME = frozenset(range(2, 8))


def _raw(fields: Fields, known: Iterable[int]) -> tuple[tuple[int, str], ...]:
    """Every field not in ``known``, as ``(index, value)`` pairs: nothing is dropped."""
    done = set(known)
    return tuple((i, value) for i, value in enumerate(fields) if i not in done)


def _time_known(when: dt.datetime | None, start: int = 2, count: int = 6) -> set[int]:
    """The time fields count as decoded only when they made a valid time."""
    return set(range(start, start + count)) if when is not None else set()


def _need(fields: Fields, count: int, what: str) -> None:
    if len(fields) < count:
        raise ProtocolError(f"{what} record has {len(fields)} fields, expected {count}: "
                            + ",".join(fields))


# -- FreeStyle Libre (1 and 2) --------------------------------------------------------------

def parse_libre_history(fields: Fields) -> list[Record]:
    """``$history?`` line, 16 fields (Libre 1/2)."""
    _need(fields, 16, "$history?")
    when = reader_time(fields, 2)
    return [
        HistoryRecord(
            record_id=int(fields[0]),
            source="$history?",
            record_type=int(fields[1]),
            local_time=when,
            raw=_raw(fields, {0, 1, 12, 13, 14, 15} | _time_known(when)),
            glucose_mg_dl=_int(fields, 13),
            sensor_runtime_min=_int(fields, 14),
            first_after_insertion=fields[12] == "1",
            errors=_int(fields, 15),
        )
    ]


def parse_libre3_history(fields: Fields) -> list[Record]:
    """``$history?`` line of a Libre 3 reader: 15 fields, one unknown column fewer
    (protocol.md 4.3). Falls back to the 16-field layout if the line has 16 fields."""
    if len(fields) >= 16:
        return parse_libre_history(fields)
    _need(fields, 15, "$history? (Libre 3)")
    when = reader_time(fields, 2)
    return [
        HistoryRecord(
            record_id=int(fields[0]),
            source="$history?",
            record_type=int(fields[1]),
            local_time=when,
            raw=_raw(fields, {0, 1, 11, 12, 13, 14} | _time_known(when)),
            glucose_mg_dl=_int(fields, 12),
            sensor_runtime_min=_int(fields, 13),
            first_after_insertion=fields[11] == "1",
            errors=_int(fields, 14),
        )
    ]


def _reading(reading_type: int, **kwargs: object) -> ReadingRecord:
    cls: type[ReadingRecord]
    if reading_type == 0:
        cls = GlucoseRecord
    elif reading_type == 1:
        cls = KetoneRecord
    else:
        cls = ScanRecord
    return cls(**kwargs)  # type: ignore[arg-type]


def _reading_value(reading_type: int, text: str) -> dict[str, object]:
    """glucose / ketone / out-of-range fields from a reading's value field."""
    out: dict[str, object] = {"value_raw": text}
    upper = text.strip().upper()
    if upper in ("HI", "LO"):
        out["out_of_range"] = upper
        return out
    value = int(text)
    if reading_type == 1:
        out["ketone_mmol_l"] = (Decimal(value) / KETONE_FACTOR).quantize(Decimal("0.01"))
    else:
        out["glucose_mg_dl"] = value
    return out


def _logbook(base: dict[str, object], *, exercise: bool, medication: bool,
             rapid_half: int | None, rapid_flag: bool, long_half: int | None, long_flag: bool,
             food_flag: bool, carbs: int | None, comments: Sequence[tuple[int, str]]
             ) -> list[Record]:
    """The records a user attached to a reading line."""
    out: list[Record] = []
    if rapid_flag:
        units = None if rapid_half is None else Decimal(rapid_half) / 2
        out.append(InsulinRecord(**base, insulin_type="rapid", units=units))  # type: ignore[arg-type]
    if long_flag:
        units = None if long_half is None else Decimal(long_half) / 2
        out.append(InsulinRecord(**base, insulin_type="long", units=units))  # type: ignore[arg-type]
    if food_flag:
        out.append(FoodRecord(**base, carbs_g=carbs))  # type: ignore[arg-type]
    if exercise:
        out.append(ExerciseRecord(**base))  # type: ignore[arg-type]
    if medication:
        out.append(MedicationRecord(**base))  # type: ignore[arg-type]
    for index, text in comments:
        out.append(NoteRecord(**base, comment_index=index, text=text))  # type: ignore[arg-type]
    return out


def parse_libre_arresult(fields: Fields) -> list[Record]:
    """``$arresult?`` line (Libre 1/2): type 2 reading, type 5 time change, others kept whole."""
    record_type = int(fields[1])
    if record_type == 2:
        return _libre_reading(fields)
    if record_type == 5:
        return _libre_time_change(fields)
    return [unknown_record(fields, "$arresult?")]


def _libre_reading(fields: Fields) -> list[Record]:
    _need(fields, 35, "$arresult? type 2")
    record_id = int(fields[0])
    when = reader_time(fields, 2)
    reading_type = int(fields[9])
    comment_bits = _int(fields, 19)
    comments = [(i + 1, fields[29 + i]) for i in range(6) if comment_bits >> i & 1]
    has_rapid_dose = len(fields) > 43
    known = {0, 1, 9, 11, 12, 14, 15, 16, 17, 18, 19, 23, 25, 26, 28} | _time_known(when)
    known |= {28 + index for index, _ in comments}
    if has_rapid_dose:
        known.add(43)
    base: dict[str, object] = {
        "record_id": record_id,
        "source": "$arresult?",
        "record_type": 2,
        "local_time": when,
    }
    reading = _reading(
        reading_type,
        **base,
        raw=_raw(fields, known),
        **_reading_value(reading_type, fields[12]),
        trend=_int(fields, 14) if reading_type == 2 else None,
        error_flag=fields[11] == "1",
        errors=_int(fields, 28),
    )
    if reading_type not in (0, 1, 2):
        return [unknown_record(fields, "$arresult?")]
    return [reading, *_logbook(
        base,
        exercise=fields[15] == "1",
        medication=fields[16] == "1",
        rapid_flag=fields[17] == "1",
        rapid_half=_int(fields, 43) if has_rapid_dose else None,
        long_flag=fields[18] == "1",
        long_half=_int(fields, 23),
        food_flag=fields[25] == "1",
        carbs=_int(fields, 26),
        comments=comments,
    )]


def _libre_time_change(fields: Fields) -> list[Record]:
    _need(fields, 15, "$arresult? type 5")
    new = reader_time(fields, 2)
    old = reader_time(fields, 9)
    return [
        TimeChangeRecord(
            record_id=int(fields[0]),
            source="$arresult?",
            record_type=5,
            local_time=new,
            raw=_raw(fields, {0, 1} | _time_known(new) | _time_known(old, 9)),
            old_time=old,
            new_time=new,
        )
    ]


def parse_libre3_arresult(fields: Fields) -> list[Record]:
    """``$arresult?`` line of a Libre 3 reader (protocol.md 4.3, one user's device).

    Type-2 lines have no comment texts and no error field: 28 fields, or 37 when the user
    noted something, in which case the rapid-acting dose (half units) is the *last* field.
    Long-acting (half units) is at 22, the food flag at 24, carbs at 25.
    """
    record_type = int(fields[1])
    if record_type != 2:
        return parse_libre_arresult(fields)
    if len(fields) >= 43:  # a Libre 1-shaped line after all
        return _libre_reading(fields)
    _need(fields, 28, "$arresult? type 2 (Libre 3)")
    when = reader_time(fields, 2)
    reading_type = int(fields[9])
    has_tail = len(fields) >= 37
    known = {0, 1, 9, 11, 12, 14, 15, 16, 17, 18, 22, 24, 25} | _time_known(when)
    if has_tail:
        known.add(36)
    base: dict[str, object] = {
        "record_id": int(fields[0]),
        "source": "$arresult?",
        "record_type": 2,
        "local_time": when,
    }
    if reading_type not in (0, 1, 2):
        return [unknown_record(fields, "$arresult?")]
    reading = _reading(
        reading_type,
        **base,
        raw=_raw(fields, known),
        **_reading_value(reading_type, fields[12]),
        trend=_int(fields, 14) if reading_type == 2 else None,
        error_flag=fields[11] == "1",
    )
    return [reading, *_logbook(
        base,
        exercise=fields[15] == "1",
        medication=fields[16] == "1",
        rapid_flag=fields[17] == "1",
        rapid_half=_int(fields, 36) if has_tail else None,
        long_flag=fields[18] == "1",
        long_half=_int(fields, 22),
        food_flag=fields[24] == "1",
        carbs=_int(fields, 25),
        comments=(),
    )]


def unknown_record(fields: Fields, source: str) -> UnknownRecord:
    """Keep a line we cannot decode whole; its time is read where Libre lines keep it."""
    try:
        record_id = int(fields[0])
    except (IndexError, ValueError):
        record_id = -1
    try:
        record_type = int(fields[1])
    except (IndexError, ValueError):
        record_type = -1
    return UnknownRecord(
        record_id=record_id,
        source=source,
        record_type=record_type,
        local_time=reader_time(fields, 2),
        fields=tuple(fields),
    )


PARSERS: dict[str, Parser] = {
    "libre_history": parse_libre_history,
    "libre3_history": parse_libre3_history,
    "libre_arresult": parse_libre_arresult,
    "libre3_arresult": parse_libre3_arresult,
}


def parse_lines(parser: str, lines: Iterable[bytes], source: str) -> list[Record]:
    """Parse record lines with the named parser; a line that does not fit its layout is
    kept as an :class:`UnknownRecord` rather than dropped or allowed to stop the dump."""
    parse = PARSERS[parser]
    out: list[Record] = []
    for line in lines:
        fields = split_line(line)
        try:
            out.extend(parse(fields))
        except (ProtocolError, ValueError, IndexError):
            out.append(unknown_record(fields, source))
    return out
