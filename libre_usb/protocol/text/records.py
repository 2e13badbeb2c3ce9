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
import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from ...errors import ProtocolError
from ...model import (
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
)
from .reply import decode_text, reader_int

Fields = Sequence[str]
Parser = Callable[[Fields], list[Record]]

#: ketone strips report a mg/dL-like number; mmol/L = raw / 18 (protocol.md 4.2)
KETONE_FACTOR = Decimal(18)


def split_line(line: bytes) -> list[str]:
    """Split one record line into fields (comment fields are double-quoted)."""
    text = decode_text(line)
    if '"' not in text:
        return text.split(",")
    try:
        return next(csv.reader([text]))
    except csv.Error:
        pass
    # csv refuses a lone CR or LF outside quotes (a note typed with a line break): hide
    # them from csv and put them back in the fields, so nothing is lost
    if _CR in text or _LF in text:
        return text.split(",")
    hidden = text.replace("\r", _CR).replace("\n", _LF)
    return [field.replace(_CR, "\r").replace(_LF, "\n") for field in next(csv.reader([hidden]))]


#: stand-ins for CR and LF while csv splits a line (private-use characters)
_CR, _LF = "\ue000", "\ue001"


def _canonical(text: str) -> int:
    """A decimal field as the reader writes it (no sign, no leading zeros, no spaces); any
    other spelling raises ValueError, so the value can be kept verbatim instead."""
    value = reader_int(text)
    if value < 0 or str(value) != text:  # a reader's numbers are unsigned
        raise ValueError(f"{text!r} is not a plain decimal number")
    return value


def reader_time(fields: Fields, start: int, *, seconds: bool = True) -> dt.datetime | None:
    """The reader's local time at ``fields[start:]``: month, day, 2-digit year, hour, minute
    [, second]. ``None`` when the reader's clock was invalid (255s, or no such date)."""
    count = 6 if seconds else 5
    try:
        parts = [_canonical(fields[start + i]) for i in range(count)]
    except (IndexError, ValueError):
        return None
    month, day, year, hour, minute = parts[:5]
    second = parts[5] if seconds else 0
    if year > 99:
        return None
    try:
        return dt.datetime(2000 + year, month, day, hour, minute, second)
    except (ValueError, OverflowError):  # OverflowError: a field of 20 digits
        return None


def _int(fields: Fields, index: int, known: set[int]) -> int:
    """A number field the record decodes; marks it known. Raises on anything else."""
    value = _canonical(fields[index])
    known.add(index)
    return value


def _flag(fields: Fields, index: int, known: set[int]) -> bool:
    """A 0/1 flag; any other value is left in ``raw`` (and reads as not set)."""
    value = fields[index] if index < len(fields) else ""
    if value in ("0", "1"):
        known.add(index)
    return value == "1"


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


# -- FreeStyle Libre (1, 2, Pro) ------------------------------------------------------------

def _history(fields: Fields, first: int, glucose: int, runtime: int, errors: int
             ) -> list[Record]:
    when = reader_time(fields, 2)
    known = {0, 1} | _time_known(when)
    return [
        HistoryRecord(
            record_id=_int(fields, 0, known),
            source="$history?",
            record_type=_int(fields, 1, known),
            local_time=when,
            glucose_mg_dl=_int(fields, glucose, known),
            sensor_runtime_min=_int(fields, runtime, known),
            first_after_insertion=_flag(fields, first, known),
            errors=_int(fields, errors, known),
            raw=_raw(fields, known),
        )
    ]


def parse_libre_history(fields: Fields) -> list[Record]:
    """``$history?`` line, 16 fields (Libre 1/2/Pro, protocol.md 4.1)."""
    _need(fields, 16, "$history?")
    return _history(fields, 12, 13, 14, 15)


def parse_libre3_history(fields: Fields) -> list[Record]:
    """``$history?`` line of a Libre 3 reader: 15 fields, one unknown column fewer
    (protocol.md 4.3). Falls back to the 16-field layout if the line has 16 fields."""
    if len(fields) >= 16:
        return parse_libre_history(fields)
    _need(fields, 15, "$history? (Libre 3)")
    return _history(fields, 11, 12, 13, 14)


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
    if text in ("HI", "LO"):
        out["out_of_range"] = text
        return out
    value = _canonical(text)
    if reading_type == 1:
        out["ketone_mmol_l"] = (Decimal(value) / KETONE_FACTOR).quantize(Decimal("0.01"))
    else:
        out["glucose_mg_dl"] = value
    return out


@dataclasses.dataclass
class _Logbook:
    """Where a reading line keeps what the user noted (the positions differ per layout)."""

    exercise: int
    medication: int
    rapid_flag: int
    long_flag: int
    long_half: int
    food_flag: int
    carbs: int
    #: index of the rapid-acting dose (half units), when the line has it
    rapid_half: int | None
    #: (comment number, index of its text) of the comments the line says are set
    comments: Sequence[tuple[int, int]] = ()


def _logbook(fields: Fields, base: dict[str, object], where: _Logbook, known: set[int]
             ) -> list[Record]:
    """The records a user attached to a reading line; fields used are added to ``known``."""
    out: list[Record] = []
    if _flag(fields, where.rapid_flag, known):
        units = None
        if where.rapid_half is not None:
            units = Decimal(_int(fields, where.rapid_half, known)) / 2
        out.append(InsulinRecord(**base, insulin_type="rapid", units=units))  # type: ignore[arg-type]
    if _flag(fields, where.long_flag, known):
        units = Decimal(_int(fields, where.long_half, known)) / 2
        out.append(InsulinRecord(**base, insulin_type="long", units=units))  # type: ignore[arg-type]
    if _flag(fields, where.food_flag, known):
        carbs = _int(fields, where.carbs, known)
        out.append(FoodRecord(**base, carbs_g=carbs))  # type: ignore[arg-type]
    if _flag(fields, where.exercise, known):
        out.append(ExerciseRecord(**base))  # type: ignore[arg-type]
    if _flag(fields, where.medication, known):
        out.append(MedicationRecord(**base))  # type: ignore[arg-type]
    for number, index in where.comments:
        known.add(index)
        out.append(NoteRecord(**base, comment_index=number, text=fields[index]))  # type: ignore[arg-type]
    return out


def _reading_line(fields: Fields, known: set[int], where: _Logbook, *,
                  errors_index: int | None) -> list[Record]:
    """A type-2 ``$arresult?`` line: the reading, then what the user noted with it."""
    when = reader_time(fields, 2)
    known |= {0, 1} | _time_known(when)
    reading_type = _int(fields, 9, known)
    if reading_type not in (0, 1, 2):
        raise ValueError(f"reading type {reading_type} is not known")
    base: dict[str, object] = {
        "record_id": _int(fields, 0, known),
        "source": "$arresult?",
        "record_type": 2,
        "local_time": when,
    }
    known.add(12)
    value = _reading_value(reading_type, fields[12])
    trend = _int(fields, 14, known) if reading_type == 2 else None
    error_flag = _flag(fields, 11, known)
    errors = _int(fields, errors_index, known) if errors_index is not None else 0
    notes = _logbook(fields, base, where, known)
    reading = _reading(reading_type, **base, **value, trend=trend, error_flag=error_flag,
                       errors=errors, raw=_raw(fields, known))
    return [reading, *notes]


def parse_libre_arresult(fields: Fields) -> list[Record]:
    """``$arresult?`` line (Libre 1/2/Pro): type 2 reading, type 5 time change, others kept
    whole."""
    record_type = _canonical(fields[1])
    if record_type == 2:
        return _libre_reading(fields)
    if record_type == 5:
        return _libre_time_change(fields)
    return [unknown_record(fields, "$arresult?")]


def _libre_reading(fields: Fields) -> list[Record]:
    """Type 2, 35 fields (44 with a rapid-acting dose), protocol.md 4.2."""
    _need(fields, 35, "$arresult? type 2")
    known: set[int] = set()
    bits = _int(fields, 19, known)
    comments = [(i + 1, 29 + i) for i in range(6) if bits >> i & 1]
    where = _Logbook(exercise=15, medication=16, rapid_flag=17, long_flag=18, long_half=23,
                     food_flag=25, carbs=26, rapid_half=43 if len(fields) > 43 else None,
                     comments=comments)
    return _reading_line(fields, known, where, errors_index=28)


def _libre_time_change(fields: Fields) -> list[Record]:
    _need(fields, 15, "$arresult? type 5")
    new = reader_time(fields, 2)
    old = reader_time(fields, 9)
    known = {0, 1} | _time_known(new) | _time_known(old, 9)
    return [
        TimeChangeRecord(
            record_id=_int(fields, 0, known),
            source="$arresult?",
            record_type=5,
            local_time=new,
            raw=_raw(fields, known),
            old_time=old,
            new_time=new,
        )
    ]


def parse_libre3_arresult(fields: Fields) -> list[Record]:
    """``$arresult?`` line of a Libre 3 reader (protocol.md 4.3, one user's device).

    Type-2 lines have no comment texts and no error field: 28 fields, or 37 when the user
    noted something, in which case the rapid-acting dose (half units) is the *last* field
    (index 36). Long-acting (half units) is at 22, the food flag at 24, carbs at 25. The
    user's note on the PR #131 sample (1 U rapid, 2 U long, 3 g carbs) settles the position
    of the rapid dose: tests/test_models_libre3.py.
    """
    record_type = _canonical(fields[1])
    if record_type != 2:
        return parse_libre_arresult(fields)
    if len(fields) >= 43:  # a Libre 1-shaped line after all
        return _libre_reading(fields)
    _need(fields, 28, "$arresult? type 2 (Libre 3)")
    where = _Logbook(exercise=15, medication=16, rapid_flag=17, long_flag=18, long_half=22,
                     food_flag=24, carbs=25, rapid_half=36 if len(fields) >= 37 else None)
    return _reading_line(fields, set(), where, errors_index=None)


# -- $result? meters: FreeStyle Precision/Optium Neo and InsuLinx --------------------------
#
# Their lines start with the record *type*, then the record id (the Libre's are the other way
# round), then month, day, 2-digit year, hour, minute: no seconds (protocol.md 4.4, 4.5).

#: Neo type-10 insulin type codes (protocol.md 4.4, GP): category first, then the meal slot
NEO_INSULIN_TYPES = {
    0: "long_morning",
    1: "short_breakfast",
    2: "short_lunch",
    3: "long_evening",
    4: "short_dinner",
}
_NEO_INSULIN_CODES = {name: code for code, name in NEO_INSULIN_TYPES.items()}
RESULT_TIME = frozenset(range(2, 7))


def neo_insulin_type(code: int) -> str:
    """Name of a Neo insulin type code; unknown codes keep their number (``code_7``)."""
    return NEO_INSULIN_TYPES.get(code, f"code_{code}")


def neo_insulin_code(name: str) -> int:
    """The inverse of :func:`neo_insulin_type` (used by the virtual reader)."""
    if name in _NEO_INSULIN_CODES:
        return _NEO_INSULIN_CODES[name]
    if name.startswith("code_"):
        return int(name[5:])
    raise ValueError(f"{name!r} is not a Neo insulin type")


def _result_base(fields: Fields, source: str = "$result?") -> tuple[dict[str, object], set[int]]:
    """The common fields of a ``$result?`` line and the indices they decode."""
    when = reader_time(fields, 2, seconds=False)
    base: dict[str, object] = {
        "record_id": _canonical(fields[1]),
        "source": source,
        "record_type": _canonical(fields[0]),
        "local_time": when,
    }
    return base, {0, 1} | _time_known(when, 2, 5)


def _result_reading(fields: Fields, value_index: int, reading_type: int,
                    minimum: int, what: str) -> list[Record]:
    """A glucose (``reading_type`` 0) or ketone (1) line of a ``$result?`` meter."""
    _need(fields, minimum, what)
    base, known = _result_base(fields)
    known.add(value_index)
    return [_reading(
        reading_type,
        **base,
        raw=_raw(fields, known),
        **_reading_value(reading_type, fields[value_index]),
    )]


def _result_time_change(fields: Fields) -> list[Record]:
    """Type 6 (Neo and InsuLinx): the new M,D,Y,h,m at 2..6, then at 8..12 the old one.

    Field 7 is ``1`` in every line seen (Tidepool's Neo driver calls it ``valid``); kept raw.
    """
    _need(fields, 13, "$result? type 6")
    base, known = _result_base(fields)
    old = reader_time(fields, 8, seconds=False)
    return [TimeChangeRecord(
        **base,  # type: ignore[arg-type]
        raw=_raw(fields, known | _time_known(old, 8, 5)),
        old_time=old,
        new_time=base["local_time"],  # type: ignore[arg-type]
    )]


def parse_neo_result(fields: Fields) -> list[Record]:
    """``$result?`` line of a FreeStyle Precision/Optium Neo (protocol.md 4.4).

    Type 7 blood glucose (value at 8, mg/dL or the literals ``HI``/``LO``; 19 fields), type 9
    beta-ketone (value at 8, raw / 18 = mmol/L, or ``HI``; 11 fields), type 10 insulin entered
    on the meter (insulin type at 8, dose at 9; 13 fields), type 6 time change; every other
    type is kept whole.
    """
    record_type = _canonical(fields[0])
    if record_type == 7:
        return _result_reading(fields, 8, 0, 19, "$result? type 7")
    if record_type == 9:
        return _result_reading(fields, 8, 1, 11, "$result? type 9")
    if record_type == 10:
        _need(fields, 13, "$result? type 10")
        base, known = _result_base(fields)
        return [InsulinRecord(
            **base,  # type: ignore[arg-type]
            raw=_raw(fields, known | {8, 9}),
            insulin_type=neo_insulin_type(_canonical(fields[8])),
            units=Decimal(_canonical(fields[9])),
        )]
    if record_type == 6:
        return _result_time_change(fields)
    return [unknown_result_record(fields)]


def parse_insulinx_result(fields: Fields) -> list[Record]:
    """``$result?`` line of a FreeStyle InsuLinx (protocol.md 4.5).

    Type 0 blood glucose (value at 13; 16 fields), type 6 time change; every other type
    (type 4 in the real capture) is kept whole as an unknown record.
    """
    record_type = _canonical(fields[0])
    if record_type == 0:
        return _result_reading(fields, 13, 0, 16, "$result? type 0")
    if record_type == 6:
        return _result_time_change(fields)
    return [unknown_result_record(fields)]


# -- lines we cannot decode -------------------------------------------------------------------

def _int_or(fields: Fields, index: int) -> int:
    try:
        return reader_int(fields[index])
    except (IndexError, ValueError):
        return -1


def unknown_record(fields: Fields, source: str) -> UnknownRecord:
    """Keep a Libre line we cannot decode whole (id at 0, type at 1, time at 2..7)."""
    return UnknownRecord(
        record_id=_int_or(fields, 0),
        source=source,
        record_type=_int_or(fields, 1),
        local_time=reader_time(fields, 2),
        fields=tuple(fields),
    )


def unknown_result_record(fields: Fields, source: str = "$result?") -> UnknownRecord:
    """Keep a ``$result?`` line we cannot decode whole (type at 0, id at 1, time at 2..6)."""
    return UnknownRecord(
        record_id=_int_or(fields, 1),
        source=source,
        record_type=_int_or(fields, 0),
        local_time=reader_time(fields, 2, seconds=False),
        fields=tuple(fields),
    )


def parse_meter_events(lines: Sequence[bytes]) -> list[Record]:
    """``$event?`` lines of the Neo and InsuLinx: the meter's own event log. No public source
    gives its layout, so nothing is decoded: each line is an ``event`` record (``meter_event``)
    numbered by its place in the reply (1 = first line), with every field in ``raw``."""
    return [EventRecord(record_id=number, source="$event?", record_type=-1, local_time=None,
                        raw=tuple(enumerate(split_line(line))), event="meter_event")
            for number, line in enumerate(lines, start=1)]


PARSERS: dict[str, Parser] = {
    "libre_history": parse_libre_history,
    "libre3_history": parse_libre3_history,
    "libre_arresult": parse_libre_arresult,
    "libre3_arresult": parse_libre3_arresult,
    "neo_result": parse_neo_result,
    "insulinx_result": parse_insulinx_result,
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
        except (ProtocolError, ValueError, IndexError, ArithmeticError):
            if source == "$result?":
                out.append(unknown_result_record(fields, source))
            else:
                out.append(unknown_record(fields, source))
    return out
