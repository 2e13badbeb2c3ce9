"""Record parsers: one reader line in, typed records out.

Field numbers are 0-based indices into the comma-split line (docs/records.md). Which field
means what is not written here: every line is read with the layout that the table in
:mod:`.layouts` lists for its reader family, record type and field count. A line that fits
no layout, and a line of a record type we do not decode, becomes an
:class:`~libre_usb.model.UnknownRecord` with all its fields. Every field whose meaning is not
known goes into the record's ``raw`` list, so nothing the reader sends is dropped.

Parsers are pure functions ``(fields) -> list[Record]``, looked up by name in
:data:`PARSERS` so device models (``libre_usb.devices``) can name them as data.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any

import msgspec

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
from .layouts import ARRESULT, HISTORY, KNOWN_TYPES, LAYOUTS, RESULT, Layout, find, type_index
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
    import csv  # only for quoted fields (notes): not on every dump's start-up path

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
    # the common case without building the number's text again: a few ASCII digits, no
    # leading 0 (anything else takes the checks below)
    if len(text) < 10 and text.isdigit() and text.isascii() and (
            text[0] != "0" or len(text) == 1):
        return int(text)
    value = reader_int(text)
    if value < 0 or str(value) != text:  # a reader's numbers are unsigned
        raise ValueError(f"{text!r} is not a plain decimal number")
    return value


#: ``n`` plain decimal numbers (no sign, no leading zero, ASCII digits, at most 9 of them)
#: joined by commas: the fast way to read fields that :func:`_canonical` would accept
_PLAIN_NUMBER = "(?:0|[1-9][0-9]{0,8})"
_PLAIN_NUMBERS = {n: re.compile(f"{_PLAIN_NUMBER}(?:,{_PLAIN_NUMBER}){{{n - 1}}}")
                  for n in (5, 6)}


def reader_time(fields: Fields, start: int, *, seconds: bool = True) -> dt.datetime | None:
    """The reader's local time at ``fields[start:]``: month, day, 2-digit year, hour, minute
    [, second]. ``None`` when the reader's clock was invalid (255s, or no such date)."""
    count = 6 if seconds else 5
    chunk = fields[start : start + count]
    if len(chunk) == count and _PLAIN_NUMBERS[count].fullmatch(",".join(chunk)):
        # count plain numbers joined by count - 1 commas: no field holds a comma, each is a
        # plain number of at most 9 digits (what _canonical reads the same way)
        parts = list(map(int, chunk))
    else:
        try:
            parts = [_canonical(text) for text in chunk]
        except ValueError:
            return None
        if len(parts) < count:
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
    done = known if isinstance(known, (set, frozenset)) else set(known)
    return _shared(tuple([(i, value) for i, value in enumerate(fields) if i not in done]))


#: recent ``raw`` tuples, so equal ones are one object (a 35,000-record dump holds a few
#: dozen distinct ones); bounded, so a long-running process does not keep them all
_RAW_SEEN: dict[tuple[tuple[int, str], ...], tuple[tuple[int, str], ...]] = {}
_RAW_SEEN_MAX = 4096


def _time_known(when: dt.datetime | None, start: int = 2, count: int = 6) -> set[int]:
    """The time fields count as decoded only when they made a valid time."""
    return set(range(start, start + count)) if when is not None else set()


# -- decoders: one per kind of line, positions from the layout table --------------------------

def _history(fields: Fields, layout: Layout) -> list[Record]:
    # the bulk of every dump (96 lines a day): written out for speed, same rules as the
    # other decoders (a field that is not a plain number makes the line an unknown record)
    at = layout.at
    first, glucose, runtime, errors = at["first"], at["glucose"], at["runtime"], at["errors"]
    when = reader_time(fields, 2)
    flag = fields[first] if first < len(fields) else ""
    flag_known = flag in ("0", "1")
    known = _history_known(first, glucose, runtime, errors, when is not None, flag_known)
    numbers = (fields[0], fields[1], fields[glucose], fields[runtime], fields[errors])
    if _PLAIN_NUMBERS[5].fullmatch(",".join(numbers)):
        record_id, record_type, value, minutes, error_bits = map(int, numbers)
    else:  # the general reading: a field that is not a plain number raises ValueError
        record_id, record_type, value, minutes, error_bits = map(_canonical, numbers)
    return [HistoryRecord(record_id=record_id, source=HISTORY, record_type=record_type,
                          local_time=when, raw=_raw(fields, known), glucose_mg_dl=value,
                          sensor_runtime_min=minutes, first_after_insertion=flag == "1",
                          errors=error_bits)]


@functools.cache
def _history_known(first: int, glucose: int, runtime: int, errors: int, time_valid: bool,
                   flag_known: bool) -> frozenset[int]:
    """The fields a history line of this layout decodes."""
    known = {0, 1, glucose, runtime, errors} | (set(TIME) if time_valid else set())
    return frozenset(known | ({first} if flag_known else set()))


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


def _logbook(fields: Fields, base: dict[str, object], at: Mapping[str, int], known: set[int]
             ) -> list[Record]:
    """The records a user attached to a reading line; fields used are added to ``known``."""
    out: list[Record] = []
    if _flag(fields, at["rapid_flag"], known):
        units = None
        if "rapid_half" in at:
            units = Decimal(_int(fields, at["rapid_half"], known)) / 2
        out.append(InsulinRecord(**base, insulin_type="rapid", units=units))  # type: ignore[arg-type]
    if _flag(fields, at["long_flag"], known):
        units = Decimal(_int(fields, at["long_half"], known)) / 2
        out.append(InsulinRecord(**base, insulin_type="long", units=units))  # type: ignore[arg-type]
    if _flag(fields, at["food_flag"], known):
        carbs = _int(fields, at["carbs"], known)
        out.append(FoodRecord(**base, carbs_g=carbs))  # type: ignore[arg-type]
    if _flag(fields, at["exercise"], known):
        out.append(ExerciseRecord(**base))  # type: ignore[arg-type]
    if _flag(fields, at["medication"], known):
        out.append(MedicationRecord(**base))  # type: ignore[arg-type]
    if "comment_bits" in at:
        bits = _int(fields, at["comment_bits"], known)
        for i in range(6):
            if bits >> i & 1:
                index = at["comments"] + i
                known.add(index)
                out.append(NoteRecord(**base, comment_index=i + 1,  # type: ignore[arg-type]
                                      text=fields[index]))
    return out


def _reading_line(fields: Fields, layout: Layout) -> list[Record]:
    """A type-2 ``$arresult?`` line: the reading, then what the user noted with it."""
    at = layout.at
    when = reader_time(fields, 2)
    known = {0, 1} | _time_known(when)
    reading_type = _int(fields, at["reading_type"], known)
    if reading_type not in (0, 1, 2):
        raise ValueError(f"reading type {reading_type} is not known")
    base: dict[str, object] = {
        "record_id": _int(fields, 0, known),
        "source": ARRESULT,
        "record_type": 2,
        "local_time": when,
    }
    known.add(at["value"])
    value = _reading_value(reading_type, fields[at["value"]])
    trend = _int(fields, at["trend"], known) if reading_type == 2 else None
    error_flag = _flag(fields, at["error_flag"], known)
    errors = _int(fields, at["errors"], known) if "errors" in at else 0
    notes = _logbook(fields, base, at, known)
    reading = _reading(reading_type, **base, **value, trend=trend, error_flag=error_flag,
                       errors=errors, raw=_raw(fields, known))
    return [reading, *notes]


def _time_change(fields: Fields, layout: Layout) -> list[Record]:
    """Libre type 5: the new time at 2..7, the old one at 9..14."""
    new = reader_time(fields, layout.at["new"])
    old = reader_time(fields, layout.at["old"])
    known = {0, 1} | _time_known(new, layout.at["new"]) | _time_known(old, layout.at["old"])
    return [
        TimeChangeRecord(
            record_id=_int(fields, 0, known),
            source=ARRESULT,
            record_type=5,
            local_time=new,
            raw=_raw(fields, known),
            old_time=old,
            new_time=new,
        )
    ]


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


def _result_base(fields: Fields, source: str = RESULT) -> tuple[dict[str, object], set[int]]:
    """The common fields of a ``$result?`` line and the indices they decode."""
    when = reader_time(fields, 2, seconds=False)
    base: dict[str, object] = {
        "record_id": _canonical(fields[1]),
        "source": source,
        "record_type": _canonical(fields[0]),
        "local_time": when,
    }
    return base, {0, 1} | _time_known(when, 2, 5)


def _result_reading(fields: Fields, layout: Layout) -> list[Record]:
    """A glucose (reading type 0) or ketone (1) line of a ``$result?`` meter."""
    value_index = layout.at["value"]
    reading_type = layout.at["reading_type"]
    base, known = _result_base(fields)
    known.add(value_index)
    return [_reading(
        reading_type,
        **base,
        raw=_raw(fields, known),
        **_reading_value(reading_type, fields[value_index]),
    )]


def _neo_insulin(fields: Fields, layout: Layout) -> list[Record]:
    """Neo type 10: insulin entered on the meter (type code, whole units)."""
    kind_at, units_at = layout.at["insulin_type"], layout.at["units"]
    base, known = _result_base(fields)
    return [InsulinRecord(
        **base,  # type: ignore[arg-type]
        raw=_raw(fields, known | {kind_at, units_at}),
        insulin_type=neo_insulin_type(_canonical(fields[kind_at])),
        units=Decimal(_canonical(fields[units_at])),
    )]


def _result_time_change(fields: Fields, layout: Layout) -> list[Record]:
    """Type 6 (Neo and InsuLinx): the new M,D,Y,h,m at 2..6, then at 8..12 the old one.

    Field 7 is ``1`` in every line seen (Tidepool's Neo driver calls it ``valid``); kept raw.
    """
    base, known = _result_base(fields)
    old_at = layout.at["old"]
    old = reader_time(fields, old_at, seconds=False)
    return [TimeChangeRecord(
        **base,  # type: ignore[arg-type]
        raw=_raw(fields, known | _time_known(old, old_at, 5)),
        old_time=old,
        new_time=base["local_time"],  # type: ignore[arg-type]
    )]


_DECODERS: dict[str, Callable[[Fields, Layout], list[Record]]] = {
    "history": _history,
    "reading": _reading_line,
    "time_change": _time_change,
    "result_reading": _result_reading,
    "neo_insulin": _neo_insulin,
    "result_time_change": _result_time_change,
}


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


def unknown_result_record(fields: Fields, source: str = RESULT) -> UnknownRecord:
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


def _unknown(fields: Fields, command: str) -> UnknownRecord:
    if command == RESULT:
        return unknown_result_record(fields, command)
    return unknown_record(fields, command)


# -- the parsers --------------------------------------------------------------------------------

class LineStats(msgspec.Struct):
    """What a parse kept raw: lines of a record type we decode whose shape (field count) or
    values fit no known layout. Lines of record types we do not decode at all (kept raw as
    well) are counted apart, in ``other_types``."""

    unrecognised: int = 0
    other_types: int = 0


def parse_fields(family: str, command: str, fields: Fields,
                 stats: LineStats | None = None) -> list[Record]:
    """The records of one split line of ``command``, read with the layout of ``family`` that
    fits its record type and field count (:mod:`.layouts`); an ``unknown`` record with every
    field when none fits. Never reads a line with a layout of another length."""
    try:
        record_type = _canonical(fields[type_index(command)])
    except (IndexError, ValueError):
        record_type = None
    layout = None if record_type is None else find(family, command, record_type, len(fields))
    if layout is not None:
        try:
            return _DECODERS[layout.decoder](fields, layout)
        except (ProtocolError, ValueError, IndexError, ArithmeticError):
            pass  # a value the layout cannot hold: kept raw below
    if stats is not None:
        if record_type is None or layout is not None or record_type in KNOWN_TYPES.get(
                (family, command), frozenset()):
            stats.unrecognised += 1
        else:
            stats.other_types += 1
    return [_unknown(fields, command)]


def _parser(family: str, command: str) -> Parser:
    def parse(fields: Fields) -> list[Record]:
        return parse_fields(family, command, fields)
    parse.__name__ = f"parse_{family}_{command.strip('$?')}"
    return parse


#: parser name (as :mod:`libre_usb.devices` names it) -> (layout family, command)
PARSER_FAMILIES: dict[str, tuple[str, str]] = {
    "libre_history": ("libre", HISTORY),
    "libre_arresult": ("libre", ARRESULT),
    "libre2_history": ("libre2", HISTORY),
    "libre2_arresult": ("libre2", ARRESULT),
    "libre3_history": ("libre3", HISTORY),
    "libre3_arresult": ("libre3", ARRESULT),
    "neo_result": ("neo", RESULT),
    "insulinx_result": ("insulinx", RESULT),
}
PARSERS: dict[str, Parser] = {
    name: _parser(family, command) for name, (family, command) in PARSER_FAMILIES.items()
}


def parse_lines(parser: str, lines: Iterable[bytes], source: str,
                stats: LineStats | None = None) -> list[Record]:
    """Parse record lines with the named parser (a key of :data:`PARSERS`). A line that
    fits no layout is kept as an :class:`UnknownRecord` (and counted in ``stats``) rather
    than dropped, guessed at or allowed to stop the dump.

    History lines of plain numbers only (the bulk of every dump) are read by the fast
    history decoders below; they give what :func:`parse_fields` gives
    (tests/test_text_records_fast.py compares both ways). Every other line goes through
    :func:`parse_fields`."""
    family, command = PARSER_FAMILIES[parser]
    if source != command:
        raise ValueError(f"parser {parser} reads {command} lines, not {source}")
    history = _fast_decoders(family, command)
    at_type = type_index(command)
    out: list[Record] = []
    numbered: Iterable[tuple[bytes, list[int] | None]]
    if history:
        # lines of plain numbers only (the bulk of every dump): no split, no decoding; a
        # block of them read at once when every line of it is one, else line by line
        lines = lines if isinstance(lines, (list, tuple)) else list(lines)
        numbered = _numbered(lines)
    else:
        numbered = zip(lines, itertools.repeat(None), strict=False)  # as many as lines
    for line, numbers in numbered:
        if numbers is not None and len(numbers) > at_type:
            decode_history = history.get((numbers[at_type], len(numbers)))
            if decode_history is not None:
                out.append(decode_history(numbers))
                continue
        out.extend(parse_fields(family, command, split_line(line), stats))
    return out


# -- the fast decoders ------------------------------------------------------------------------
#
# Each reads one layout (found by its record type and field count, as parse_fields finds it)
# with the same rules as the general decoder above, from plain numbers only: a line whose
# fields are spelled any other way is left to parse_fields.

#: a plain number as JSON reads it: with only digits and commas between the brackets, JSON
#: reads exactly the non-empty numbers without leading zeros; at most 9 digits (what
#: _canonical reads as ``int`` reads it)
_Plain = Annotated[int, msgspec.Meta(ge=0, lt=10**9)]
_NUMBER_LIST = msgspec.json.Decoder(list[_Plain])
_NUMBER_ROWS = msgspec.json.Decoder(list[list[_Plain]])
_NOT_PLAIN = msgspec.DecodeError  # ValidationError (a number too large) is one too


def _plain_numbers(line: bytes) -> list[int] | None:
    """The numbers of a line of plain decimal numbers joined by commas (no sign, no leading
    zero, ASCII digits, at most 9 of them: each read as :func:`_canonical` reads it); None
    for any other line."""
    if not line or line.translate(None, b"0123456789,"):
        return None  # empty, or a byte that is neither a digit nor a comma
    try:
        return _NUMBER_LIST.decode(b"[" + line + b"]")
    except _NOT_PLAIN:  # an empty field, a number with a leading zero or of 10 digits
        return None


def _plain_rows(lines: Sequence[bytes]) -> list[list[int]] | None:
    """:func:`_plain_numbers` of every line, read at once; None unless every line is one."""
    if not lines:
        return None
    joined = b"],[".join(lines)
    if joined.translate(None, b"0123456789,") != b"][" * (len(lines) - 1):
        return None  # a line holds a byte that is neither a digit nor a comma
    try:
        rows = _NUMBER_ROWS.decode(b"[[" + joined + b"]]")
    except _NOT_PLAIN:
        return None
    # no line holds a bracket, so the rows are the lines; an empty line is no number
    return rows if len(rows) == len(lines) and all(rows) else None


#: lines read by one msgspec call (_numbered): the numbers of a whole 90-day reply at once
#: raised a dump's peak memory by about 200 bytes a record
_BLOCK = 1024


def _numbered(lines: Sequence[bytes]) -> Iterator[tuple[bytes, list[int] | None]]:
    """Each line with :func:`_plain_numbers` of it, :data:`_BLOCK` lines read at once when
    every one of them is plain."""
    for start in range(0, len(lines), _BLOCK):
        block = lines[start : start + _BLOCK]
        rows = _plain_rows(block)
        if rows is not None:
            yield from zip(block, rows, strict=True)
        else:
            for line in block:
                yield line, _plain_numbers(line)


def _shared(raw: tuple[tuple[int, str], ...]) -> tuple[tuple[int, str], ...]:
    """``raw``, or the equal tuple made before (readers repeat the same unknown fields line
    after line: one copy of each)."""
    shared = _RAW_SEEN.get(raw)
    if shared is not None:
        return shared
    if len(_RAW_SEEN) >= _RAW_SEEN_MAX:
        _RAW_SEEN.clear()
    _RAW_SEEN[raw] = raw
    return raw


#: ``raw`` of a plain line by (the indices kept, their numbers): no text to build again
_RAW_OF_NUMBERS: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[tuple[int, str], ...]] = {}


def _picker(indices: tuple[int, ...]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """``lambda seq: tuple(seq[i] for i in indices)``, made of operator.itemgetter."""
    if len(indices) >= 2:
        return operator.itemgetter(*indices)
    if indices:
        one = operator.itemgetter(indices[0])
        return lambda seq: (one(seq),)
    return lambda seq: ()


def _history_fast(layout: Layout) -> Callable[[list[int]], Record]:
    """:func:`_history` of a line of plain numbers (:func:`_plain_numbers`)."""
    at = layout.at
    first, glucose, runtime, errors = at["first"], at["glucose"], at["runtime"], at["errors"]
    # the fields kept raw by (valid time, first-flag 0 or 1), as _history keeps them
    kept: dict[tuple[bool, bool], tuple[tuple[int, ...], Callable[[Sequence[Any]], Any]]] = {}
    for valid in (False, True):
        for flag_known in (False, True):
            known = _history_known(first, glucose, runtime, errors, valid, flag_known)
            indices = tuple(i for i in range(layout.fields) if i not in known)
            kept[valid, flag_known] = indices, _picker(indices)

    def decode(numbers: list[int]) -> Record:
        when = None  # reader_time of the numbers, written out (8,584 lines in 90 days)
        if numbers[4] <= 99:
            try:
                when = dt.datetime(2000 + numbers[4], numbers[2], numbers[3], numbers[5],
                                   numbers[6], numbers[7])
            except (ValueError, OverflowError):  # no such date (the reader's 255s)
                pass
        flag = numbers[first]
        indices, pick = kept[when is not None, flag < 2]
        values = pick(numbers)
        raw = _RAW_OF_NUMBERS.get((indices, values))
        if raw is None:
            # str of a plain number is the field as the reader wrote it
            raw = _shared(tuple(zip(indices, map(str, values), strict=True)))
            if len(_RAW_OF_NUMBERS) >= _RAW_SEEN_MAX:
                _RAW_OF_NUMBERS.clear()
            _RAW_OF_NUMBERS[indices, values] = raw
        return HistoryRecord(record_id=numbers[0], source=HISTORY, record_type=numbers[1],
                             local_time=when, raw=raw, glucose_mg_dl=numbers[glucose],
                             sensor_runtime_min=numbers[runtime],
                             first_after_insertion=flag == 1, errors=numbers[errors])
    return decode


@functools.cache
def _fast_decoders(family: str, command: str) -> dict[tuple[int, int],
                                                       Callable[[list[int]], Record]]:
    """The fast history decoders of the layouts of ``family`` and ``command``, by (record
    type, field count), as parse_fields would find the layout."""
    return {(layout.record_type, layout.fields): _history_fast(layout) for layout in LAYOUTS
            if (layout.family, layout.command) == (family, command)
            and layout.decoder == "history"}
