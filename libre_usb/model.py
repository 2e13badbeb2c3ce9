"""The data model: every record a reader stores, as typed, serialisable records.

One reader line can hold several things: a Libre ``$arresult?`` type-2 line is a scan (or
strip test) *and* whatever the user noted with it (insulin, food, exercise, medication,
comments). Each becomes its own record, all sharing the line's ``record_id``; the reading
record (or the first one made from the line) keeps the unknown fields in ``raw``.

Nothing is dropped: fields of unknown meaning are kept in ``raw`` as ``[index, value]``
pairs (0-based index into the comma-separated line; for records read with the binary
protocol, the schema's field id), and lines of unknown record types become
:class:`UnknownRecord` with every field.

Times: ``local_time`` is the reader's own clock, naive, exactly as stored. ``utc`` and
``time_status`` are filled in by :mod:`libre_usb.output.timeline` when a time zone is known.
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
import math
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple

import msgspec

SCHEMA_VERSION = 1


class Kind(str, enum.Enum):
    """What a record is. The value is the name used in every output format."""

    HISTORY = "history"  # periodic sensor reading ($history?)
    SCAN = "scan"  # sensor scan ($arresult? type 2, reading type 2)
    GLUCOSE = "glucose"  # blood-glucose strip test
    KETONE = "ketone"  # beta-ketone strip test
    INSULIN = "insulin"
    FOOD = "food"
    EXERCISE = "exercise"
    MEDICATION = "medication"
    NOTE = "note"  # custom comment text
    TIME_CHANGE = "time_change"
    ALERT = "alert"  # a glycemic alarm the reader raised (binary protocol)
    EVENT = "event"  # a device event: error, battery, lost time, sensor expired, reset...
    UNKNOWN = "unknown"  # a record type we cannot decode, kept whole

    def __str__(self) -> str:
        return self.value


#: plural group names used in the ``json`` format, in output order
GROUPS: dict[Kind, str] = {
    Kind.HISTORY: "history",
    Kind.SCAN: "scans",
    Kind.GLUCOSE: "glucose",
    Kind.KETONE: "ketones",
    Kind.INSULIN: "insulin",
    Kind.FOOD: "food",
    Kind.EXERCISE: "exercise",
    Kind.MEDICATION: "medication",
    Kind.NOTE: "notes",
    Kind.TIME_CHANGE: "time_changes",
    Kind.ALERT: "alerts",
    Kind.EVENT: "events",
    Kind.UNKNOWN: "unknown",
}

TREND_NAMES = {
    0: "none",
    1: "falling_quickly",
    2: "falling",
    3: "stable",
    4: "rising",
    5: "rising_quickly",
}

#: the error bit a reader sets on an invalid reading (protocol.md 4.1, 4.2)
ERROR_INVALID = 0x8000

RawFields = tuple[tuple[int, str], ...]
#: a record -> its JSON-ready dict
RecordEncoder = Callable[["Record"], dict[str, Any]]


_UTC = dt.timezone.utc


def _iso(value: dt.datetime | None) -> str | None:
    """Naive times as the reader's clock (``2024-05-01T12:00:00``), aware ones in UTC with a
    ``Z``; whole seconds."""
    if value is None:
        return None
    # isoformat() of a time without microseconds is its timespec="seconds" form (documented),
    # and faster: every export writes two times a record
    if value.tzinfo is None:
        return value.isoformat(timespec="seconds") if value.microsecond else value.isoformat()
    if value.tzinfo is not _UTC:
        value = value.astimezone(_UTC)
    text = value.isoformat(timespec="seconds") if value.microsecond else value.isoformat()
    return text[:-6] + "Z"  # without its "+00:00"


def _parse_time(value: Any, aware: bool = False) -> dt.datetime | None:
    """A saved time: reader times are naive (the reader's wall clock), ``utc`` is aware;
    the other kind is refused (ValueError), never mixed (comparing them raises later)."""
    if value is None or value == "":
        return None
    text = str(value)
    if text.endswith("Z"):
        parsed = dt.datetime.fromisoformat(text[:-1]).replace(tzinfo=dt.timezone.utc)
    else:
        parsed = dt.datetime.fromisoformat(text)
    if (parsed.tzinfo is not None) != aware:
        raise ValueError(f"{text[:40]!r}: expected a {'UTC' if aware else 'local'} time "
                         f"{'ending in Z' if aware else 'without an offset'}")
    return parsed


class Record(msgspec.Struct, frozen=True, gc=False):
    """Fields every record has."""

    kind: ClassVar[Kind]

    record_id: int
    #: the command whose reply held the record (``$history?``, ``$arresult?``, ``$result?``)
    source: str
    #: the record-type field of the line as the reader wrote it
    record_type: int
    #: the reader's clock when the record was made, naive; None if the reader's date was invalid
    local_time: dt.datetime | None
    #: fields of unknown meaning, as ``(index, value)`` pairs
    raw: RawFields = ()
    #: absolute instant (UTC), when the timeline could place the record
    utc: dt.datetime | None = None
    #: how ``utc`` was found: see :mod:`libre_usb.output.timeline`; "" before placement
    time_status: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``kind`` first, then the fields in declaration order."""
        return record_encoder(type(self))(self)

    def placed(self, utc: dt.datetime | None, time_status: str) -> Record:
        """This record with ``utc`` and ``time_status`` set (:mod:`libre_usb.output.timeline`):
        for every record of a dump. The copy shares every other value (all immutable)."""
        return _replace(self, utc=utc, time_status=time_status)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        """Rebuild any record from :meth:`to_dict` output (dispatches on ``kind``).

        A value of the wrong JSON type is refused (TypeError), a malformed time too
        (ValueError). The record is made by its class's compiled decoder
        (:func:`record_decoder`); anything that decoder does not take as it is goes the
        general way below, which gives the same record or the error."""
        kind = data.get("kind") if isinstance(data, dict) else None
        target = _CLASS_OF_KIND.get(kind) if isinstance(kind, str) else None
        if target is not None:
            record = record_decoder(target)(data)
            if record is not None:
                return record
        return cls._from_dict_checked(data)

    @classmethod
    def _from_dict_checked(cls, data: dict[str, Any]) -> Record:
        """:meth:`from_dict` field by field through the general checks."""
        target = RECORD_CLASSES[Kind(data["kind"])]
        kwargs: dict[str, Any] = {}
        for field in record_fields(target):
            if field.name in data:
                value = _checked(target.__name__, field, data[field.name])
                kwargs[field.name] = _from_json(field.name, value)
        return target(**kwargs)


def _to_json(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_to_json(item) for item in value]
    return value


#: how a field of each annotation becomes JSON, as an expression of the value ``{v}`` (any
#: other annotation goes through the generic :func:`_to_json`)
_JSON_EXPRESSIONS: dict[str, str] = {
    "int": "{v}", "str": "{v}", "bool": "{v}", "int | None": "{v}", "str | None": "{v}",
    "dt.datetime | None": "_iso({v})", "dt.datetime": "_iso({v})",
    "Decimal | None": "None if {v} is None else float({v})", "Decimal": "float({v})",
    "RawFields": "[[i, t] for i, t in {v}]", "tuple[str, ...]": "list({v})",
}


#: what an encoder for msgspec (``native_times``) writes of these annotations: the tuple
#: itself, which it writes as the same nested arrays as the lists above
_NATIVE_EXPRESSIONS: dict[str, str] = {"RawFields": "{v}", "tuple[str, ...]": "{v}"}


class FieldSpec(NamedTuple):
    """A record field: its name, its annotation as written in this module
    (``"dt.datetime | None"``, ``"RawFields"``) and its default (:data:`NO_DEFAULT` when
    it has none)."""

    name: str
    type: str
    default: Any


#: the default of a field that has none (:class:`FieldSpec`)
NO_DEFAULT: Any = msgspec.NODEFAULT
_FIELDS: dict[type[msgspec.Struct], tuple[FieldSpec, ...]] = {}
_replace = msgspec.structs.replace


def record_fields(cls: type[msgspec.Struct]) -> tuple[FieldSpec, ...]:
    """The fields of the record (or other model) class ``cls`` in declaration order (the
    base class's first), read once from msgspec's own description of the struct and the
    annotations as written, which the generated encoders and decoders below pick their code
    by."""
    specs = _FIELDS.get(cls)
    if specs is None:
        annotations: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            annotations.update(vars(klass).get("__annotations__", {}))
        names, defaults = cls.__struct_fields__, cls.__struct_defaults__
        first = len(names) - len(defaults)
        specs = _FIELDS[cls] = tuple(
            FieldSpec(name, str(annotations[name]),
                      defaults[number - first] if number >= first else NO_DEFAULT)
            for number, name in enumerate(names))
    return specs


#: (record class, derived fields, native times, compiled) -> its encoder
_ENCODERS: dict[tuple[type[Record], tuple[tuple[str, str], ...], bool, bool],
                RecordEncoder] = {}


def _native_time(value: dt.datetime | None) -> dt.datetime | str | None:
    """``value`` itself where msgspec writes exactly what :func:`_iso` would (whole seconds,
    naive or UTC), else :func:`_iso`'s string."""
    if value is None or (value.microsecond == 0 and (value.tzinfo is None
                                                     or value.tzinfo is _UTC)):
        return value
    return _iso(value)


def _encoder_plan(cls: type[Record], derived: tuple[tuple[str, str], ...],
                  native_times: bool) -> list[tuple[str, str, list[str]]]:
    """What an encoder of ``cls`` writes: per field, its name, the expression of its value
    (``{v}`` the field's value) and the derived fields written right after it."""
    plan = []
    for field in record_fields(cls):
        expression = _JSON_EXPRESSIONS.get(str(field.type), "_to_json({v})")
        if native_times:
            expression = _NATIVE_EXPRESSIONS.get(str(field.type),
                                                 expression.replace("_iso(", "_native_time("))
        plan.append((field.name, expression,
                     [name for after, name in derived if after == field.name]))
    return plan


def _encoder_names() -> dict[str, Any]:
    return {"_iso": _iso, "_native_time": _native_time, "_to_json": _to_json,
            "DERIVED": DERIVED}


#: expression -> the function computing it of one value (made once a process, shared by
#: every class's :func:`record_encoder` that is not compiled)
_CONVERTERS: dict[str, Callable[[Any], Any]] = {}


def _converter(expression: str) -> Callable[[Any], Any]:
    convert = _CONVERTERS.get(expression)
    if convert is None:
        convert = _CONVERTERS[expression] = eval(  # noqa: S307 (our own expressions)
            compile(f"lambda v: {expression.format(v='v')}", "<record field>", "eval"),
            _encoder_names())
    return convert


def record_encoder(cls: type[Record], derived: tuple[tuple[str, str], ...] = (), *,
                   native_times: bool = False, compiled: bool = True) -> RecordEncoder:
    """The function that turns a record of class ``cls`` into its JSON-ready dict (what
    :meth:`Record.to_dict` returns and every format writes).

    It is generated once per class from the class's own fields and their annotations
    (:func:`record_fields`), so no record pays for reflection or type checks when it is
    written. ``derived``: ``(after, name)``
    pairs of output-only fields; ``name`` is computed by ``DERIVED[name](value of after)``
    and written right after the field ``after``. ``native_times``: whole-second naive and
    UTC times are left as datetimes, and ``raw`` and other tuples as tuples, for an encoder
    (msgspec, or the standard library's) that writes them itself in the same form (ISO
    times, arrays), faster.

    ``compiled``: the encoder is one function compiled from the class's fields (about
    0.3 ms to make, the fastest per record); ``compiled=False`` gives one that walks the same
    fields with a converter per kind of value, made without compiling anything, for a class
    with few records to write (a small dump meets a dozen classes: their compiling cost more
    than writing their records). Both make the same dict (tests/test_formats_streaming.py).
    """
    key = (cls, derived, native_times, compiled)
    encoder = _ENCODERS.get(key)
    if encoder is not None:
        return encoder
    plan = _encoder_plan(cls, derived, native_times)
    kind = cls.kind.value
    if not compiled:
        steps = [(name, None if expression == "{v}" else _converter(expression),
                  [(extra, DERIVED[extra]) for extra in extras])
                 for name, expression, extras in plan]

        def walk(record: Record) -> dict[str, Any]:
            out: dict[str, Any] = {"kind": kind}
            for name, convert, extras in steps:
                value = getattr(record, name)
                out[name] = value if convert is None else convert(value)
                for extra, derive in extras:
                    out[extra] = derive(value)
            return out

        _ENCODERS[key] = walk
        return walk
    lines = [f"    return {{'kind': {kind!r},"]
    for name, expression, extras in plan:
        lines.append(f"        {name!r}: {expression.format(v='r.' + name)},")
        for extra in extras:
            lines.append(f"        {extra!r}: DERIVED[{extra!r}](r.{name}),")
    lines.append("    }")
    source = "def encode(r):\n" + "\n".join(lines) + "\n"
    namespace = _encoder_names()
    exec(compile(source, f"<record encoder {cls.__name__}>", "exec"), namespace)  # noqa: S102
    made: RecordEncoder = namespace["encode"]
    _ENCODERS[key] = made
    return made


#: output-only fields :func:`record_encoder` can add, by name (filled by the output layer)
DERIVED: dict[str, Callable[[Any], Any]] = {}

#: a record's JSON text -> the record, or None when it needs the general way
RecordReader = Callable[[str], "Record | None"]
_READERS: dict[type[Record], RecordReader] = {}

#: per annotation: the type msgspec checks a JSON value against (the JSON types
#: :func:`_checked` wants; times stay text, read by the same function as the general way),
#: and the expression making the field's value of it, ``{v}``, raising :class:`_Refused` for
#: what the general way refuses
_WIRE_TYPES: dict[str, tuple[Any, str]] = {
    "int": (int, "{v} if -LIMIT < {v} < LIMIT else refuse()"),
    "int | None": (int | None, "{v} if {v} is None or -LIMIT < {v} < LIMIT else refuse()"),
    "str": (str, "{v}"), "str | None": (str | None, "{v}"), "bool": (bool, "{v}"),
    "dt.datetime | None": (str | None, "_time_{aware}({v})"),
    "Decimal | None": (int | float | None,
                       "None if {v} is None else Decimal(str({v})) if -LIMIT < {v} < LIMIT"
                       " else refuse()"),
    "RawFields": (tuple[tuple[int, str], ...], "_raw_shared({v})"),
    "tuple[str, ...]": (tuple[str, ...], "{v}"),
}


def _refuse() -> Any:
    raise _Refused


def record_reader(cls: type[Record]) -> RecordReader:
    """The function that reads a record of class ``cls`` straight from the JSON text
    :meth:`Record.to_dict` made of it (``json.dumps``, ``kind`` first, as the archive keeps
    records), or returns None so the caller takes the general way (``json.loads``, then
    :meth:`Record.from_dict`), which gives the same record or refuses the text.

    msgspec parses the text in C into a struct generated once from the class's fields,
    checking each value's JSON type as :func:`_checked` does; times stay text and are read
    by the functions the compiled decoders use, numbers get the same bounds. A test compares
    this with the general way on every record and on spoiled ones."""
    reader = _READERS.get(cls)
    if reader is not None:
        return reader
    fields = record_fields(cls)
    if any(str(field.type) not in _WIRE_TYPES for field in fields):
        _READERS[cls] = _no_reader
        return _no_reader
    wire = msgspec.defstruct(
        f"Wire{cls.__name__}",
        [(field.name, _WIRE_TYPES[str(field.type)][0]) if field.default is NO_DEFAULT
         else (field.name, _WIRE_TYPES[str(field.type)][0], field.default) for field in fields],
        kw_only=True)
    decode = msgspec.json.Decoder(wire).decode
    prefix = '{"kind": ' + _json_string(cls.kind.value) + ", "
    lines = ["def read(text):", "    if not text.startswith(PREFIX):", "        return None",
             "    try:", "        s = decode(text)"]
    values = []
    for number, field in enumerate(fields):
        make = _WIRE_TYPES[str(field.type)][1]
        lines.append(f"        v{number} = s.{field.name}")
        lines.append(f"        v{number} = "
                     + make.format(v=f"v{number}", aware=field.name == "utc"))
        values.append(f"{field.name}=v{number}")
    lines += ["    except (ERRORS, _Refused, ValueError, TypeError, OverflowError):",
              "        return None", "    return cls(" + ", ".join(values) + ")"]
    namespace: dict[str, Any] = {
        "PREFIX": prefix, "decode": decode, "ERRORS": msgspec.MsgspecError, "LIMIT": NUMBER_LIMIT,
        "refuse": _refuse, "Decimal": Decimal, "_time_True": _time_aware,
        "_time_False": _time_naive, "_raw_shared": _raw_shared, "_Refused": _Refused,
        "cls": cls}
    exec(compile("\n".join(lines) + "\n", f"<record reader {cls.__name__}>", "exec"),  # noqa: S102
         namespace)
    compiled: RecordReader = namespace["read"]
    _READERS[cls] = compiled
    return compiled


def _no_reader(text: str) -> None:
    return None


def _json_string(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)


def read_record(kind: str, text: str) -> Record | None:
    """:func:`record_reader` of the class of ``kind`` (None for a kind this version does not
    know, or a text it leaves to the general way)."""
    cls = _CLASS_OF_KIND.get(kind)
    return None if cls is None else record_reader(cls)(text)

#: a JSON-decoded dict -> its record, or None when it needs the general checks
RecordDecoder = Callable[[dict[str, Any]], "Record | None"]
_DECODERS: dict[type[Record], RecordDecoder] = {}
_MISSING = object()

#: per annotation: (the test a JSON value passes as it is, the expression making the field's
#: value of it), both of ``{v}``; the test is the one :func:`_checked` makes, for exactly
#: the types a JSON parser makes (a value of any other type takes the general way)
_FAST_CHECKS: dict[str, tuple[str, str]] = {
    "int": ("type({v}) is int and -LIMIT < {v} < LIMIT", "{v}"),
    "int | None": ("{v} is None or (type({v}) is int and -LIMIT < {v} < LIMIT)", "{v}"),
    "str": ("type({v}) is str", "{v}"),
    "str | None": ("{v} is None or type({v}) is str", "{v}"),
    "bool": ("type({v}) is bool", "{v}"),
    "dt.datetime | None": ("{v} is None or type({v}) is str", "_time_{aware}({v})"),
    "Decimal | None": ("{v} is None or ((type({v}) is int or type({v}) is float)"
                       " and -LIMIT < {v} < LIMIT)",
                       "None if {v} is None else Decimal(str({v}))"),
    "RawFields": ("type({v}) is list", "_raw_tuple({v})"),
    "tuple[str, ...]": ("type({v}) is list and all(type(i) is str for i in {v})",
                        "tuple({v})"),
}


class _Refused(Exception):
    """A value the compiled decoder leaves to the general checks."""


def _time_naive(value: str | None) -> dt.datetime | None:
    """:func:`_parse_time` of a reader time, for the compiled decoders."""
    if not value:
        return None
    parsed = _fromisoformat(value)
    if parsed.tzinfo is not None:
        raise _Refused
    return parsed


def _time_aware(value: str | None) -> dt.datetime | None:
    """:func:`_parse_time` of a ``utc`` time, for the compiled decoders."""
    if not value:
        return None
    if value[-1] != "Z":
        raise _Refused
    # Python 3.11 reads the Z itself (3.10 refuses it: the general way then reads it)
    parsed = _fromisoformat(value)
    if parsed.tzinfo is not _UTC:
        raise _Refused
    return parsed


_fromisoformat = dt.datetime.fromisoformat

#: recent ``raw`` tuples read back, so equal ones are one object (as the parsers share them)
_RAW_READ: dict[tuple[tuple[int, str], ...], tuple[tuple[int, str], ...]] = {}


def _raw_tuple(value: list[list[Any]]) -> tuple[tuple[int, str], ...]:
    """A ``raw`` JSON list as the record holds it (:func:`_checked`'s test on the way)."""
    for item in value:
        if type(item) is not list or len(item) != 2 or type(item[0]) is not int or type(
                item[1]) is not str:
            raise _Refused
    return _raw_shared(tuple([(index, text) for index, text in value]))


def _raw_shared(raw: tuple[tuple[int, str], ...]) -> tuple[tuple[int, str], ...]:
    """``raw`` or an equal tuple read before: one object for equal ones."""
    shared = _RAW_READ.get(raw)
    if shared is not None:
        return shared
    if len(_RAW_READ) >= 4096:
        _RAW_READ.clear()
    _RAW_READ[raw] = raw
    return raw


def record_decoder(cls: type[Record]) -> RecordDecoder:
    """The function that makes a record of class ``cls`` from its JSON dict (what
    :meth:`Record.to_dict` wrote), generated once per class like :func:`record_encoder`.

    It takes the values it can check at a glance (the JSON types :func:`_checked` wants,
    numbers within its bound) and returns None for anything else, a missing field without
    a default included, so :meth:`Record.from_dict` then goes the general way and refuses
    the value with the same error as before (tests/test_formats_streaming.py compares both
    ways)."""
    decoder = _DECODERS.get(cls)
    if decoder is not None:
        return decoder
    namespace: dict[str, Any] = {
        "LIMIT": NUMBER_LIMIT, "M": _MISSING, "Decimal": Decimal, "_time_True": _time_aware,
        "_time_False": _time_naive, "_raw_tuple": _raw_tuple, "_Refused": _Refused,
        "cls": cls}
    lines = ["def decode(d):", "    get = d.get", "    try:"]
    names = []
    for number, field in enumerate(record_fields(cls)):
        check, make = _FAST_CHECKS.get(str(field.type), ("False", "{v}"))
        v = f"v{number}"
        names.append((field.name, v))
        lines.append(f"        {v} = get({field.name!r}, M)")
        if field.default is not NO_DEFAULT:
            namespace[f"D{number}"] = field.default
            lines.append(f"        if {v} is M:")
            lines.append(f"            {v} = D{number}")
            lines.append(f"        elif not ({check.format(v=v)}):")
            lines.append("            return None")
            lines.append("        else:")
            lines.append(f"            {v} = {make.format(v=v, aware=field.name == 'utc')}")
        else:  # M fails every check: the general way raises for the missing field
            lines.append(f"        if not ({check.format(v=v)}):")
            lines.append("            return None")
            lines.append(f"        {v} = {make.format(v=v, aware=field.name == 'utc')}")
    lines.append("    except (_Refused, TypeError, ValueError, OverflowError, ArithmeticError):")
    lines.append("        return None")
    lines.append("    return cls(" + ", ".join(f"{name}={v}" for name, v in names) + ")")
    exec(compile("\n".join(lines) + "\n", f"<record decoder {cls.__name__}>", "exec"),  # noqa: S102
         namespace)
    compiled: RecordDecoder = namespace["decode"]
    _DECODERS[cls] = compiled
    return compiled


_TIME_FIELDS = {"local_time", "utc", "old_time", "new_time"}
#: bound of every saved number (a reader's are 32-bit; 10 digits at most)
NUMBER_LIMIT = 10 ** 10
_DECIMAL_FIELDS = {"units", "ketone_mmol_l"}


#: the JSON type each annotation of a record or device field must arrive as
_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "int": int, "str": str, "bool": bool, "Decimal": (int, float), "dt.datetime": str,
    "RawFields": list, "tuple[str, ...]": list, "tuple[tuple[str, str], ...]": dict,
    "dict[str, Any]": dict,
}


def _checked(owner: str, field: FieldSpec, value: Any) -> Any:
    """``value`` if it has the JSON type ``field`` needs, else TypeError: a saved dump
    with a list for a record id or 1e999 for a dose is refused when read, not passed on
    to fail somewhere later."""
    spec = str(field.type)
    if value is None:
        if spec.endswith("| None"):
            return None
        raise TypeError(f"{owner}.{field.name} is null")
    expected = _JSON_TYPES.get(spec.removesuffix(" | None"))
    if expected is None:
        return value
    ok = isinstance(value, expected) and (expected is bool or not isinstance(value, bool))
    if ok and isinstance(value, float) and not math.isfinite(value):
        ok = False
    # every number a reader sends fits 32 bits (protocol.text.reply.MAX_DIGITS): a saved
    # value beyond that would overflow a date, a float or a Decimal further on
    if ok and isinstance(value, (int, float)) and not isinstance(value, bool) and not (
            -NUMBER_LIMIT < value < NUMBER_LIMIT):
        ok = False
    if ok and field.name == "raw":
        ok = all(isinstance(item, list) and len(item) == 2 and type(item[0]) is int
                 and isinstance(item[1], str) for item in value)
    elif ok and field.name in ("fields",):
        ok = all(isinstance(item, str) for item in value)
    elif ok and field.name == "replies":
        ok = all(isinstance(item, str) for item in value.values())
    if not ok:
        raise TypeError(f"{owner}.{field.name} has the wrong type "
                        f"({type(value).__name__} {str(value)[:40]!r})")
    return value


def _from_json(name: str, value: Any) -> Any:
    if name in _TIME_FIELDS:
        return _parse_time(value, aware=name == "utc")
    if name in _DECIMAL_FIELDS and value is not None:
        return Decimal(str(value))
    if name == "raw":
        return tuple((int(index), str(text)) for index, text in value)
    if name == "fields":
        return tuple(str(item) for item in value)
    return value


class HistoryRecord(Record, frozen=True):
    """A periodic sensor reading (every 15 minutes on Libre 1/2)."""

    kind: ClassVar[Kind] = Kind.HISTORY

    glucose_mg_dl: int | None = None
    #: minutes since the sensor was started
    sensor_runtime_min: int | None = None
    #: True on the first reading of a new sensor
    first_after_insertion: bool = False
    #: the reader's error bitfield (0x8000 = invalid reading); errored readings are kept
    errors: int = 0

    @property
    def invalid(self) -> bool:
        return bool(self.errors)


class ReadingRecord(Record, frozen=True):
    """A scan, a blood-glucose strip test or a ketone strip test."""

    glucose_mg_dl: int | None = None
    #: value field as the reader wrote it (ketone: mg/dL-equivalent, mmol/L = raw / 18)
    value_raw: str = ""
    ketone_mmol_l: Decimal | None = None
    #: trend arrow 0..5 (scans only), see TREND_NAMES
    trend: int | None = None
    #: "LO" or "HI" when the reader reported the value out of range, else None
    out_of_range: str | None = None
    #: the reader's "error or LO" flag (Libre $arresult? field 11)
    error_flag: bool = False
    #: the reader's error bitfield (0x8000 = invalid)
    errors: int = 0

    @property
    def invalid(self) -> bool:
        return bool(self.errors) or self.error_flag

    @property
    def trend_name(self) -> str | None:
        return None if self.trend is None else TREND_NAMES.get(self.trend, f"unknown_{self.trend}")


class ScanRecord(ReadingRecord, frozen=True):
    kind: ClassVar[Kind] = Kind.SCAN


class GlucoseRecord(ReadingRecord, frozen=True):
    kind: ClassVar[Kind] = Kind.GLUCOSE


class KetoneRecord(ReadingRecord, frozen=True):
    kind: ClassVar[Kind] = Kind.KETONE


class InsulinRecord(Record, frozen=True):
    """Insulin the user logged: ``rapid`` or ``long`` (Libre), or a Neo insulin type."""

    kind: ClassVar[Kind] = Kind.INSULIN

    insulin_type: str = "rapid"
    #: units, exact (the reader stores half units)
    units: Decimal | None = None


class FoodRecord(Record, frozen=True):
    kind: ClassVar[Kind] = Kind.FOOD

    #: grams of carbohydrate; None when food was noted without an amount
    carbs_g: int | None = None


class ExerciseRecord(Record, frozen=True):
    kind: ClassVar[Kind] = Kind.EXERCISE


class MedicationRecord(Record, frozen=True):
    kind: ClassVar[Kind] = Kind.MEDICATION


class NoteRecord(Record, frozen=True):
    """One custom comment the user attached (Libre: comments 1..6)."""

    kind: ClassVar[Kind] = Kind.NOTE

    comment_index: int = 0
    text: str = ""


class TimeChangeRecord(Record, frozen=True):
    """The user changed the reader's clock from ``old_time`` to ``new_time``."""

    kind: ClassVar[Kind] = Kind.TIME_CHANGE

    old_time: dt.datetime | None = None
    new_time: dt.datetime | None = None


#: the glycemic-alarm codes of a result record (database field 35; the field id is public,
#: Tidepool's DB_FIELD_ID.GLYCEMIC_ALARM). *Inferred*: no public source gives the values this
#: field takes on a reader. The names are the four alarms of the vendor's upload
#: (ondemandalarm.low, .projectedlow, .projectedhigh, .high); the numbers follow the case
#: order of Abbott's ABT_GLYCEMIC_ALARM enum (NOT_DETERMINED, LOW_GLUCOSE,
#: PROJECTED_LOW_GLUCOSE, GLUCOSE_OK, PROJECTED_HIGH_GLUCOSE, HIGH_GLUCOSE) in a type dump of
#: Abbott's Lingo app (gui-dos/DiaBLE, DiaBLE/Lingo.swift), whose sibling ABT_TREND_ARROW_BIN
#: lists its cases in the order of the reader's confirmed trend codes 0..5. 3 (GLUCOSE_OK
#: there) is no alarm name: it stays ``code_3``. The code is always kept (docs/records.md).
ALARM_NAMES = {1: "low", 2: "projected_low", 4: "projected_high", 5: "high"}


class AlertRecord(Record, frozen=True):
    """A glycemic alarm the reader showed with a result (binary protocol, database field
    35 of a result record). Shares the result's ``record_id`` and time."""

    kind: ClassVar[Kind] = Kind.ALERT

    #: ``low``, ``high``, ``projected_low``, ``projected_high``, or ``code_<n>``
    alarm: str = ""
    #: the field's value as the reader stored it
    alarm_code: int = 0
    #: the glucose of the result the alarm came with, mg/dL
    glucose_mg_dl: int | None = None


def alarm_name(code: int) -> str:
    return ALARM_NAMES.get(code, f"code_{code}")


class EventRecord(Record, frozen=True):
    """A device event from the reader's event log: ``error`` (with its code), ``low_battery``,
    ``dead_battery``, ``lost_time``, ``sensor_expired``, ``masked_mode_status``,
    ``microcontroller_reset``, ``recovery``, ``restore_config``, ``clear_*`` (database
    clears), ``insulin_setup_*``, ``record_number_wrap``...; ``type_<n>`` for a type without
    a known name. Fields of the event are in ``raw`` (binary: ``[field id, value]``)."""

    kind: ClassVar[Kind] = Kind.EVENT

    event: str = ""
    #: the error code of an ``error`` event (database field 160)
    error_code: int | None = None
    #: the error's data word (database field 161)
    error_data: int | None = None


class UnknownRecord(Record, frozen=True):
    """A record type we cannot decode: every field is kept, in order."""

    kind: ClassVar[Kind] = Kind.UNKNOWN

    fields: tuple[str, ...] = ()


RECORD_CLASSES: dict[Kind, type[Record]] = {
    Kind.HISTORY: HistoryRecord,
    Kind.SCAN: ScanRecord,
    Kind.GLUCOSE: GlucoseRecord,
    Kind.KETONE: KetoneRecord,
    Kind.INSULIN: InsulinRecord,
    Kind.FOOD: FoodRecord,
    Kind.EXERCISE: ExerciseRecord,
    Kind.MEDICATION: MedicationRecord,
    Kind.NOTE: NoteRecord,
    Kind.TIME_CHANGE: TimeChangeRecord,
    Kind.ALERT: AlertRecord,
    Kind.EVENT: EventRecord,
    Kind.UNKNOWN: UnknownRecord,
}
#: the record class of each ``kind`` value
_CLASS_OF_KIND: dict[str, type[Record]] = {kind.value: cls for kind, cls in RECORD_CLASSES.items()}


class DeviceInfo(msgspec.Struct, frozen=True):
    """What the reader says about itself and its settings.

    ``replies`` keeps the raw reply text of every informational command we sent, so
    settings we do not decode yet are still in the dump. ``settings`` and ``sensor`` are the
    decoded views (:func:`libre_usb.protocol.text.replies.decode_settings`,
    :func:`~libre_usb.protocol.text.replies.parse_patch`); their values are plain JSON (str, int,
    bool, None, lists and dicts of those), so they go through every format unchanged.
    """

    model: str
    product_id: int
    serial: str | None = None
    software_version: str | None = None
    #: the display unit ("mg/dL" or "mmol/L"); record values are always mg/dL
    unit: str | None = None
    #: the reader's clock when it was read, naive; None if invalid
    clock: dt.datetime | None = None
    patient_name: str | None = None
    patient_id: str | None = None
    #: the database record counter ($dbrnum?), which survives factory resets
    record_count: int | None = None
    #: raw reply text of each informational command, by command
    replies: tuple[tuple[str, str], ...] = ()
    #: decoded settings (language, sounds, reminders, brand, market level, clock details...)
    settings: dict[str, Any] = msgspec.field(default_factory=dict)
    #: the current sensor as the reader describes it ($patch?), None when not read
    sensor: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in record_fields(type(self)):
            value = getattr(self, field.name)
            if field.name == "replies":
                out[field.name] = dict(value)
            elif field.name in ("settings", "sensor"):
                out[field.name] = copy.deepcopy(value)
            else:
                out[field.name] = _to_json(value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceInfo:
        kwargs: dict[str, Any] = {}
        for field in record_fields(cls):
            if field.name not in data:
                continue
            value = _checked("device", field, data[field.name])
            if field.name == "replies":
                value = tuple((str(k), str(v)) for k, v in value.items())
            elif field.name == "clock":
                value = _parse_time(value)
            elif field.name == "settings":
                value = copy.deepcopy(dict(value))
            elif field.name == "sensor":
                value = None if value is None else copy.deepcopy(dict(value))
            kwargs[field.name] = value
        return cls(**kwargs)


class Dump(msgspec.Struct, frozen=True):
    """Everything read from one reader."""

    device: DeviceInfo
    records: tuple[Record, ...]
    #: the IANA zone used to place records in time, if any
    timezone: str | None = None

    def by_kind(self, kind: Kind) -> list[Record]:
        return [record for record in self.records if record.kind is kind]

    def counts(self) -> dict[str, int]:
        return {GROUPS[kind]: len(self.by_kind(kind)) for kind in Kind}


def sorted_records(records: Iterable[Record]) -> list[Record]:
    """Records in a stable order: by source command, then record id (creation order);
    records made from one reader line keep their order."""
    return sorted(records, key=lambda r: (r.source, r.record_id))
