"""Output formats, all views of one versioned data model (:mod:`libre_usb.model`).

``json``    one document: format/version, device info and settings, record counts, and the
            records grouped by kind (see docs/formats.md and docs/dump.schema.json)
``ndjson``  one JSON object a line: first a ``{"kind": "device", ...}`` line, then every
            record; for streaming into other tools
``csv``     one table with a header row and stable columns (:data:`CSV_COLUMNS`); ``raw`` and
            ``fields`` hold JSON arrays; device info is not part of the table

Every writer has a reader (:func:`load_dump` and friends) so the formats can be shown to be
lossless. ``unit="mmol/L"`` adds ``glucose_mmol_l`` next to every ``glucose_mg_dl`` (see
:mod:`libre_usb.output.units`); readers ignore it, the mg/dL value stays the record's value.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from .. import jsonsafe
from ..errors import InputError
from ..inputs import read_input
from ..model import (
    DERIVED,
    GROUPS,
    SCHEMA_VERSION,
    DeviceInfo,
    Dump,
    Kind,
    Record,
    _iso,
    _to_json,
    record_encoder,
    record_fields,
    sorted_records,
)
from .units import MG_DL, MMOL_L, UNITS, mmol_l

FORMAT_NAME = "libre-dump"

#: the CSV columns, in order; a record fills the ones it has
CSV_COLUMNS = (
    "kind", "record_id", "source", "record_type", "local_time", "utc", "time_status",
    "glucose_mg_dl", "glucose_mmol_l", "value_raw", "ketone_mmol_l", "trend", "out_of_range",
    "error_flag", "errors", "sensor_runtime_min", "first_after_insertion", "insulin_type", "units",
    "carbs_g", "comment_index", "text", "old_time", "new_time", "alarm", "alarm_code", "event",
    "error_code", "error_data", "fields", "raw",
)
_JSON_CELLS = {"raw", "fields"}
_BOOL_CELLS = {"error_flag", "first_after_insertion"}
_INT_CELLS = {"record_id", "record_type", "glucose_mg_dl", "trend", "errors",
              "sensor_runtime_min", "carbs_g", "comment_index", "alarm_code", "error_code",
              "error_data"}
_FLOAT_CELLS = {"ketone_mmol_l", "units", "glucose_mmol_l"}
#: fields that only exist on output (derived from others); readers ignore them
DERIVED_FIELDS = frozenset({"glucose_mmol_l"})


def _check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise InputError(f"unknown unit {unit!r}; use one of {', '.join(UNITS)}")


def record_dict(record: Record, unit: str = MG_DL) -> dict[str, Any]:
    """A record as every format writes it: :meth:`Record.to_dict`, plus ``glucose_mmol_l``
    right after ``glucose_mg_dl`` when ``unit`` is mmol/L."""
    return record_encoder(type(record), _derived(unit))(record)


def _derived(unit: str) -> tuple[tuple[str, str], ...]:
    return (("glucose_mg_dl", "glucose_mmol_l"),) if unit == MMOL_L else ()


def _mmol_value(value: int | None) -> float | None:
    return None if value is None else float(mmol_l(value))


DERIVED["glucose_mmol_l"] = _mmol_value


def _key(record: Record) -> tuple[str, int]:
    return (record.source, record.record_id)


def in_order(records: Sequence[Record]) -> Sequence[Record]:
    """``records`` in :func:`~libre_usb.model.sorted_records` order: the same sequence, not
    a copy, when it is in that order already (as the ``dump`` command hands it over), so a
    writer needs no memory for it."""
    previous: tuple[str, int] | None = None
    for record in records:
        key = (record.source, record.record_id)
        if previous is not None and key < previous:
            return sorted_records(records)
        previous = key
    return records


def dump_document(dump: Dump, unit: str = MG_DL) -> dict[str, Any]:
    """The ``json`` format as a dict (docs/dump.schema.json)."""
    _check_unit(unit)
    records = sorted_records(dump.records)
    groups: dict[str, list[dict[str, Any]]] = {name: [] for name in GROUPS.values()}
    for record in records:
        groups[GROUPS[record.kind]].append(record_dict(record, unit))
    return {
        "format": FORMAT_NAME,
        "version": SCHEMA_VERSION,
        "unit": unit,
        "device": dump.device.to_dict(),
        "timezone": dump.timezone,
        "counts": {name: len(items) for name, items in groups.items()},
        "records": groups,
    }


# -- the writers ------------------------------------------------------------------------------
#
# Every writer streams: it renders records a few at a time onto ``out`` and writes whenever
# FLUSH_BYTES of text are ready, so it holds about that much, whatever the size of the dump
# and of its records. JSON is made by msgspec (C), formatted to exactly the bytes the standard
# library's ``json.dump(..., ensure_ascii=False, indent=1)`` (json) and ``json.dumps(...,
# ensure_ascii=False)`` (ndjson) would write: the formats did not change when the writers
# became fast (tests/test_formats_streaming.py compares).

#: text (UTF-8 bytes) made ready before each write to the output
FLUSH_BYTES = 64 * 1024
#: records encoded together (json): one msgspec call for several records
CHUNK = 32
#: csv rows handed to the csv module at once
BATCH = 128
#: records of a kind from which its encoder is compiled (about 0.3 ms) rather than walked
COMPILE_AT = 64


class _Encoders(dict[type[Record], Callable[[Record], dict[str, Any]]]):
    """The fast per-class record encoders for one unit (datetimes left to msgspec):
    ``encoders[type(record)](record)``, each made on first use (a hit is a plain dict
    lookup, in C)."""

    def __init__(self, unit: str, sizes: dict[Kind, int] | None = None) -> None:
        super().__init__()
        self.derived = _derived(unit)
        #: records to write of each kind, when known: a kind with fewer than COMPILE_AT
        #: gets an encoder that is not compiled (model.record_encoder)
        self.sizes = sizes

    def __missing__(self, cls: type[Record]) -> Callable[[Record], dict[str, Any]]:
        compiled = self.sizes is None or self.sizes.get(cls.kind, COMPILE_AT) >= COMPILE_AT
        encode = self[cls] = record_encoder(cls, self.derived, native_times=True,
                                            compiled=compiled)
        return encode

    def __call__(self, record: Record) -> dict[str, Any]:
        return self[type(record)](record)


def _json(value: Any, indent: int) -> bytes:
    """``value`` as JSON text, laid out as the standard library lays it out with
    ``indent=indent`` (0: one line with ``", "`` and ``": "``):
    :func:`jsonsafe.dumps_fast`."""
    return jsonsafe.dumps_fast(value, indent, _time_text)


def _time_text(value: Any) -> str:
    """The datetimes the fast encoders leave to msgspec, as msgspec writes them (whole
    seconds, naive or UTC), for the standard library's encoder."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.isoformat(timespec="seconds")
        return value.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
    raise TypeError(f"{type(value).__name__} is not JSON")


def write_json(dump: Dump, out: IO[str], *, unit: str = MG_DL) -> None:
    """The ``json`` format: one document, records grouped by kind (docs/formats.md)."""
    _check_unit(unit)
    records = in_order(dump.records)
    # how many records of each kind, and where they start and end in the order written:
    # each kind's pass below reads that stretch only (no list of the records is made)
    spans: dict[Kind, list[int]] = {}
    sizes: dict[Kind, int] = {}
    for index, record in enumerate(records):
        span = spans.get(record.kind)
        if span is None:
            spans[record.kind] = [index, index]
            sizes[record.kind] = 1
        else:
            span[1] = index
            sizes[record.kind] += 1
    counts = {group: sizes.get(kind, 0) for kind, group in GROUPS.items()}
    head = _json({"format": FORMAT_NAME, "version": SCHEMA_VERSION, "unit": unit,
                  "device": dump.device.to_dict(), "timezone": dump.timezone,
                  "counts": counts}, 1)
    # the head without its closing "\n}", then the records object, group by group
    out.write(head[:-2].decode("utf-8") + ',\n "records": {')
    encoders = _Encoders(unit, sizes)
    for number, (kind, group) in enumerate(GROUPS.items()):
        out.write(("," if number else "") + f"\n  {_json(group, 0).decode()}: ")
        if not counts[group]:
            out.write("[]")
            continue
        batch: list[bytes] = []
        size = 0
        opening = b"["
        first, last = spans[kind]
        matching = (record for record in itertools.islice(records, first, last + 1)
                    if record.kind is kind)
        while chunk := [encoders[type(record)](record)
                        for record in itertools.islice(matching, CHUNK)]:
            # records are the items of a list three levels down: the chunk laid out inside
            # two lists of its own comes out with its items' lines indented as in the
            # document; the wrappers' brackets off, "\n   {...},\n   {...}" is left
            text = _json([[chunk]], 1)
            if not (text.startswith(_CHUNK_START) and text.endswith(_CHUNK_END)):
                raise AssertionError("the JSON encoder laid out a chunk unexpectedly")
            batch.append(opening + text[len(_CHUNK_START):-len(_CHUNK_END)])
            opening = b","
            size += len(text)
            if size >= FLUSH_BYTES:
                out.write(b"".join(batch).decode("utf-8"))
                batch.clear()
                size = 0
        batch.append(b"\n  ]")
        out.write(b"".join(batch).decode("utf-8"))
    out.write("\n }\n}\n")


#: the text around a chunk of records laid out inside two lists (write_json)
_CHUNK_START, _CHUNK_END = b"[\n [\n  [", b"\n  ]\n ]\n]"


def write_ndjson(dump: Dump, out: IO[str], *, unit: str = MG_DL) -> None:
    """The ``ndjson`` format: a device line, then one line a record."""
    _check_unit(unit)
    head = {"kind": "device", "format": FORMAT_NAME, "version": SCHEMA_VERSION, "unit": unit,
            "device": dump.device.to_dict(), "timezone": dump.timezone}
    out.write(_json(head, 0).decode("utf-8") + "\n")
    encode = _Encoders(unit)
    batch: list[bytes] = []
    size = 0
    for record in in_order(dump.records):
        line = _json(encode(record), 0)
        batch.append(line)
        size += len(line)
        if size >= FLUSH_BYTES:
            out.write(b"\n".join(batch).decode("utf-8") + "\n")
            batch.clear()
            size = 0
    if batch:
        out.write(b"\n".join(batch).decode("utf-8") + "\n")


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name in _JSON_CELLS:
        return _json(value, 0).decode("utf-8")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


#: per annotation: a record field's CSV cell, as an expression of its value ``{v}``: what
#: :func:`_cell` makes of the value :func:`record_dict` gives (tests compare the two)
_CELL_EXPRESSIONS: dict[str, str] = {
    "int": "str({v})", "str": "{v}", "int | None": "'' if {v} is None else str({v})",
    "str | None": "'' if {v} is None else {v}", "bool": "'true' if {v} else 'false'",
    "dt.datetime | None": "'' if {v} is None else _iso({v})",
    "Decimal | None": "'' if {v} is None else str(float({v}))",
    "RawFields": "_raw_cell({v})", "tuple[str, ...]": "_cell('fields', list({v}))",
}


def _raw_cell(raw: tuple[tuple[int, str], ...]) -> str:
    """The ``raw`` cell: the JSON of its pairs, made once for each distinct tuple (readers
    repeat the same unknown fields line after line, and the parsers share equal tuples)."""
    cell = _RAW_CELLS.get(raw)
    if cell is None:
        cell = _cell("raw", [[index, text] for index, text in raw])
        if len(_RAW_CELLS) >= 64:  # the history lines repeat a few; bounded: memory
            _RAW_CELLS.clear()
        _RAW_CELLS[raw] = cell
    return cell


_RAW_CELLS: dict[tuple[tuple[int, str], ...], str] = {}
_CSV_ROWS: dict[tuple[type[Record], str], Callable[[Record], list[str]]] = {}


def csv_row(cls: type[Record], unit: str = MG_DL) -> Callable[[Record], list[str]]:
    """The function that makes the CSV row (:data:`CSV_COLUMNS`) of a record of class
    ``cls``, generated once per class and unit from the class's fields: the cells
    :func:`_cell` makes of :func:`record_dict`, without the dict and per-cell type tests."""
    key = (cls, unit)
    compiled = _CSV_ROWS.get(key)
    if compiled is not None:
        return compiled
    fields = {field.name: field.type for field in record_fields(cls)}
    derived = dict((name, after) for after, name in _derived(unit))
    cells: list[str] = []
    for name in CSV_COLUMNS:
        if name == "kind":
            cells.append(repr(cls.kind.value))
        elif name in derived and derived[name] in fields:
            cells.append(f"_cell({name!r}, DERIVED[{name!r}](r.{derived[name]}))")
        elif name not in fields:
            cells.append("''")
        elif fields[name] not in _CELL_EXPRESSIONS:
            cells.append(f"_cell({name!r}, _to_json(r.{name}))")
        else:
            cells.append(_CELL_EXPRESSIONS[fields[name]].format(v=f"r.{name}"))
    source = "def row(r):\n    return [" + ", ".join(cells) + "]\n"
    namespace: dict[str, Any] = {"_cell": _cell, "_to_json": _to_json, "_iso": _iso,
                                 "_raw_cell": _raw_cell, "DERIVED": DERIVED}
    exec(compile(source, f"<csv row {cls.__name__}>", "exec"), namespace)  # noqa: S102
    made: Callable[[Record], list[str]] = namespace["row"]
    _CSV_ROWS[key] = made
    return made


def write_csv(dump: Dump, out: IO[str], *, unit: str = MG_DL) -> None:
    """The ``csv`` format: one table, :data:`CSV_COLUMNS`."""
    _check_unit(unit)
    rows = CsvRows(out)
    by_class: dict[type[Record], Callable[[Record], list[str]]] = {}
    for record in in_order(dump.records):
        cls = type(record)
        make = by_class.get(cls)
        if make is None:
            make = by_class[cls] = csv_row(cls, unit)
        rows.add(make(record))
    rows.close()
    _RAW_CELLS.clear()


class CsvRows:
    """The ``csv`` format's table onto ``out``: its header, then rows handed to csv.writer
    :data:`BATCH` at a time."""

    def __init__(self, out: IO[str]) -> None:
        import csv  # here: only the csv format needs it

        self.writer = csv.writer(out, lineterminator="\n")
        # csv quotes a cell only for the characters of its line terminator: a lone CR (a
        # note typed with one) would go out bare and split the row for every reader. Such a
        # row is written with every cell quoted (the same values, read back alike)
        self.quoting_all = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
        self.rows: list[list[str]] = []
        self.writer.writerow(CSV_COLUMNS)

    def add(self, row: list[str]) -> None:
        if "\r" in "".join(row):
            self.writer.writerows(self.rows)
            self.rows.clear()
            self.quoting_all.writerow(row)
            return
        self.add_plain(row)

    def add_plain(self, row: list[str]) -> None:
        """A row known to hold no CR."""
        self.rows.append(row)
        if len(self.rows) >= BATCH:
            self.writer.writerows(self.rows)
            self.rows.clear()

    def close(self) -> None:
        self.writer.writerows(self.rows)
        self.rows.clear()


class Writer(Protocol):
    def __call__(self, dump: Dump, out: IO[str], *, unit: str = MG_DL) -> None: ...


class DatedWriter(Protocol):
    def __call__(self, dump: Dump, out: IO[str], *, unit: str = MG_DL,
                 date_style: str = ...) -> None: ...


#: the ``libreview-csv`` format's ``--date-style`` names and default, for the command line
#: without importing the writer (and csv) on every dump; :data:`libreview_csv.DATE_STYLES`
#: says what each writes (tests/test_startup.py checks they agree)
LIBREVIEW_DATE_STYLES = ("dmy", "dmy-slash", "iso", "mdy", "mdy-24h")
LIBREVIEW_DEFAULT_DATE_STYLE = "dmy"


def write_libreview_csv(dump: Dump, out: IO[str], *, unit: str = MG_DL,
                        date_style: str = LIBREVIEW_DEFAULT_DATE_STYLE) -> None:
    """LibreView's glucose-data CSV (:mod:`libre_usb.output.libreview_csv`)."""
    from . import libreview_csv

    _check_unit(unit)
    libreview_csv.write(dump, out, unit=unit, date_style=date_style)


def write_nightscout(dump: Dump, out: IO[str], *, unit: str = MG_DL) -> None:
    """Nightscout entries and treatments in one document (:mod:`.nightscout`); glucose is
    mg/dL whatever ``unit``, as Nightscout stores it."""
    from . import nightscout

    nightscout.write(dump, out)


def write_nightscout_entries(dump: Dump, out: IO[str], *, unit: str = MG_DL) -> None:
    """The ``entries`` array alone, ready to POST."""
    from . import nightscout

    nightscout.write(dump, out, "entries")


def write_nightscout_treatments(dump: Dump, out: IO[str], *, unit: str = MG_DL) -> None:
    """The ``treatments`` array alone, ready to POST."""
    from . import nightscout

    nightscout.write(dump, out, "treatments")


WRITERS: dict[str, Writer] = {"json": write_json, "ndjson": write_ndjson, "csv": write_csv,
                              "libreview-csv": write_libreview_csv,
                              "nightscout": write_nightscout,
                              "nightscout-entries": write_nightscout_entries,
                              "nightscout-treatments": write_nightscout_treatments}
#: writers that also take ``date_style``
DATED_WRITERS: dict[str, DatedWriter] = {"libreview-csv": write_libreview_csv}
#: formats written in the reader's own display unit unless a unit is asked for
READER_UNIT_FORMATS = frozenset({"libreview-csv"})


def default_unit(dump: Dump, fmt: str) -> str:
    """The unit ``fmt`` is written in when none is asked for: the reader's for the formats
    of :data:`READER_UNIT_FORMATS`, else mg/dL."""
    if fmt in READER_UNIT_FORMATS and dump.device.unit in UNITS:
        return str(dump.device.unit)
    return MG_DL


def format_notes(dump: Dump, fmt: str) -> list[str]:
    """What a format had to leave out of ``dump``, for a note on stderr."""
    if fmt == "libreview-csv":
        from . import libreview_csv

        return left_out_notes(fmt, libreview_csv.left_out(dump))
    if fmt.startswith("nightscout"):
        from . import nightscout

        return left_out_notes(fmt, nightscout.left_out(dump))
    return []


def left_out_notes(fmt: str, count: int) -> list[str]:
    """:func:`format_notes` of a format that left out ``count`` records."""
    if not count:
        return []
    if fmt == "libreview-csv":
        return [f"{count} records with an invalid reader date are not in the LibreView "
                "CSV (its rows need a time); every other format has them"]
    if fmt.startswith("nightscout"):
        return [f"{count} records without a place in UTC (see time_status) are not in "
                "the Nightscout files (they need an instant); every other format has them"]
    return []


def render(dump: Dump, fmt: str, *, unit: str = MG_DL, date_style: str | None = None) -> str:
    """The whole output as one string (for tests and small dumps: the CLI streams with
    :func:`write`). ``date_style`` is for the formats that write local dates as text
    (``libreview-csv``)."""
    buffer = io.StringIO()
    if date_style is not None and fmt in DATED_WRITERS:
        DATED_WRITERS[fmt](dump, buffer, unit=unit, date_style=date_style)
    else:
        WRITERS[fmt](dump, buffer, unit=unit)
    return buffer.getvalue()


def write(dump: Dump, fmt: str, out: IO[str], *, unit: str = MG_DL,
          date_style: str | None = None) -> None:
    """Stream ``dump`` in format ``fmt`` onto ``out`` (``date_style``: as for :func:`render`)."""
    if date_style is not None and fmt in DATED_WRITERS:
        DATED_WRITERS[fmt](dump, out, unit=unit, date_style=date_style)
    else:
        WRITERS[fmt](dump, out, unit=unit)


#: every format ``dump`` writes: the record formats above and the vendor upload shape
FORMATS = (*WRITERS, "libreview")


def render_libreview(dump: Dump, zone: dt.tzinfo, *, redact: bool = True,
                     zone_source: str | None = None) -> str:
    """The upload JSON a vendor uploader would send for these records (see
    :mod:`libre_usb.output.libreview`); never a token, identifiers only with ``redact=False``."""
    from .libreview import build_upload

    return jsonsafe.dumps(build_upload(dump, tz=zone, redact=redact, zone_source=zone_source),
                          ensure_ascii=False, indent=1) + "\n"


# -- readers ----------------------------------------------------------------------------------

def _bad(source: str, why: str) -> InputError:
    return InputError(f"{source}: not a libre-dump document ({why})")


def _device(data: Any, source: str) -> DeviceInfo:
    """The device part of a saved dump, checked against the schema first (its settings and
    sensor lines are free-form; nothing hostile may pass on to code that reads them)."""
    from .dumpcheck import device_problem

    found = device_problem(data)
    if found:
        raise _bad(source, f"bad field: {found}")
    return DeviceInfo.from_dict(data)


def _record(data: Any, source: str) -> Record:
    """One saved record, checked against the schema of its kind first (a negative error
    count or a trend of 10**9 would otherwise pass on into every output)."""
    from .dumpcheck import record_problem

    found = record_problem(data, "record")
    if found:
        raise _bad(source, f"bad field: {found}")
    return Record.from_dict(data)


def dump_from_document(doc: Any, source: str = "input") -> Dump:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise _bad(source, "no \"format\": \"libre-dump\"")
    if doc.get("version") != SCHEMA_VERSION:
        raise _bad(source, f"version {doc.get('version')!r}, this tool reads {SCHEMA_VERSION}")
    try:
        device = _device(doc["device"], source)
        records: list[Record] = []
        for items in doc["records"].values():
            records.extend(_record(item, source) for item in items)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _bad(source, f"bad field: {exc}") from None
    return Dump(device=device, records=tuple(records), timezone=_zone(doc, source))


def _zone(head: dict[str, Any], source: str) -> str | None:
    zone = head.get("timezone")
    if zone is not None and not isinstance(zone, str):
        raise _bad(source, f"bad field: timezone is a {type(zone).__name__}, not a zone name")
    return zone


def dump_from_ndjson(lines: Iterable[str], source: str = "input") -> Dump:
    iterator: Iterator[str] = iter(lines)
    try:
        head = jsonsafe.loads(next(iterator), source, counted=True)
        if not isinstance(head, dict):
            raise _bad(source, "first line is not the device line")
        if head.get("kind") != "device" or head.get("format") != FORMAT_NAME:
            raise _bad(source, "first line is not the device line")
        device = _device(head["device"], source)
        records = [_record(jsonsafe.loads(line, source, counted=True), source)
                   for line in iterator if line.strip()]
    except StopIteration:
        raise _bad(source, "empty") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _bad(source, f"bad line: {exc}") from None
    return Dump(device=device, records=tuple(records), timezone=_zone(head, source))


def records_from_csv(text: str, source: str = "input") -> list[Record]:
    import csv

    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
        raise _bad(source, "unexpected CSV header")
    records: list[Record] = []
    for row in reader:
        data: dict[str, Any] = {}
        for name, cell in row.items():
            if name in DERIVED_FIELDS:
                continue
            if cell == "" and name == "local_time":  # the reader's date was invalid
                data[name] = None
                continue
            if cell == "" and name not in ("value_raw", "text", "source", "time_status"):
                continue
            if name in _JSON_CELLS:
                data[name] = jsonsafe.loads(cell, source)
            elif name in _BOOL_CELLS:
                data[name] = cell == "true"
            elif name in _INT_CELLS:
                data[name] = int(cell)
            elif name in _FLOAT_CELLS:
                data[name] = float(cell)
            else:
                data[name] = cell
        try:
            Kind(data.get("kind"))
            records.append(Record.from_dict(data))
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad(source, f"bad row: {exc}") from None
    return records


#: a dump file larger than this is refused (hostile or wrong input)
#: (a 90-day dump is about 6 MB; any input kind, a pipe or /dev/stdin too: libre_usb.inputs)
MAX_DUMP_BYTES = 64 * 1024 * 1024


def load_dump(path: str | Path) -> Dump:
    """Read a saved ``json`` or ``ndjson`` dump (bounded in bytes, values and depth)."""
    data = read_input(path, MAX_DUMP_BYTES)
    jsonsafe.Budget(str(path)).feed(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(str(path), "not UTF-8 text") from None
    stripped = text.lstrip("\ufeff").lstrip()
    if stripped.startswith("{") and "\n{" in stripped.strip():
        first = stripped.split("\n", 1)[0]
        try:
            head = jsonsafe.loads(first, str(path), counted=True)
        except InputError:
            head = None
        if isinstance(head, dict) and head.get("kind") == "device":
            return dump_from_ndjson(stripped.splitlines(), str(path))
    try:
        doc = jsonsafe.loads(stripped, str(path), counted=True)
    except InputError as exc:
        raise _bad(str(path), str(exc).removeprefix(f"{path}: ")) from None
    return dump_from_document(doc, str(path))
