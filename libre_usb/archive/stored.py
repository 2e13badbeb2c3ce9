"""Exports written from the archive's stored text, without rebuilding every record.

The archive keeps each record as its ``ndjson`` line (:mod:`.store`). Rebuilding years of
typed records only to write a CSV row or a Nightscout entry of each costs more than the
writing itself, and almost all of them are plain readings: history (96 a day) and scans. So
:func:`load` reads the text of those two kinds into small msgspec structs of the JSON values
as stored (numbers, strings; times stay text), and every other record, or any reading
whose text is not exactly what the archive writes, into the full record as
:meth:`Archive.load` does. The writers here take the values of a stored reading as they
are and hand everything else to the formats' own code, so the output is the same, byte for
byte (tests/test_archive_stored.py compares both ways on every format, and on texts spoiled
in every field).

A stored reading is taken as it is only when the record path would read the very same
values from it: its text holds no backslash (no escape: every string is its JSON text), no
key the record does not have, every value of the JSON type the record's field takes and
within the bound :func:`libre_usb.model.record_reader` puts on numbers, and each time in the
form the archive writes (``2024-05-01T12:00:00``, and ``...Z`` for ``utc``, years from
1000), which reads back as the same text. Anything else takes the record path.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from typing import IO, Annotated, Any, Literal

import msgspec

from ..jsonsafe import dumps_fast
from ..model import DERIVED, NUMBER_LIMIT, DeviceInfo, Kind, Record
from ..output import csvlines, export, libreview_csv, nightscout
from ..output.csvlines import Quote
from ..output.gcpause import no_cyclic_gc
from ..output.identity import kind_rank, numbered
from ..output.period import ALL, Period
from ..output.units import MG_DL, UNITS, mmol_l
from .store import Archive, record_from_text

#: bound of every stored number (the model's: a reader's are 32-bit)
_LIMIT = NUMBER_LIMIT
_Int = Annotated[int, msgspec.Meta(gt=-_LIMIT, lt=_LIMIT)]
_Float = Annotated[float, msgspec.Meta(gt=-_LIMIT, lt=_LIMIT)]
#: a reader time and a UTC time as the archive writes them are this long (their form is
#: checked by :class:`_Times`)
_Local = Annotated[str, msgspec.Meta(min_length=19, max_length=19)]
_Utc = Annotated[str, msgspec.Meta(min_length=20, max_length=20)]


class _History(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A stored ``history`` record's JSON values (model.HistoryRecord's fields; not tracked
    by the cyclic collector: strings, numbers and a slice of text hold no cycle)."""

    kind: Literal["history"]
    record_id: _Int
    source: str
    record_type: _Int
    local_time: _Local | None
    raw: msgspec.Raw = msgspec.Raw(b"[]")
    utc: _Utc | None = None
    time_status: str = ""
    glucose_mg_dl: _Int | None = None
    sensor_runtime_min: _Int | None = None
    first_after_insertion: bool = False
    errors: _Int = 0


class _Scan(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A stored ``scan`` record's JSON values (model.ScanRecord's fields)."""

    kind: Literal["scan"]
    record_id: _Int
    source: str
    record_type: _Int
    local_time: _Local | None
    raw: msgspec.Raw = msgspec.Raw(b"[]")
    utc: _Utc | None = None
    time_status: str = ""
    glucose_mg_dl: _Int | None = None
    value_raw: str = ""
    ketone_mmol_l: _Int | _Float | None = None
    trend: _Int | None = None
    out_of_range: str | None = None
    error_flag: bool = False
    errors: _Int = 0


Stored = _History | _Scan
#: a record as :func:`load` gives it: a stored reading, or the record itself
Item = _History | _Scan | Record
_DECODERS: dict[str, Any] = {"history": msgspec.json.Decoder(_History).decode,
                             "scan": msgspec.json.Decoder(_Scan).decode}
_RANKS = {"history": kind_rank(Kind.HISTORY.value), "scan": kind_rank(Kind.SCAN.value)}
_RAW_FIELDS = msgspec.json.Decoder(tuple[tuple[int, str], ...]).decode
_EPOCH = dt.datetime(1970, 1, 1)
_MILLISECOND = dt.timedelta(milliseconds=1)


class _Times:
    """Which time texts are exactly what the archive writes (``2024-05-01T12:00:00``, and
    ``...Z`` for ``utc``; ASCII digits, years from 1000): the texts
    ``datetime.fromisoformat`` reads and ``isoformat`` writes back unchanged. Such a text
    is a good day and a good time of day, each learnt the first time a whole text is
    checked; days and times of day repeat over years of readings (a test checks every day
    of several centuries and every time of day)."""

    _FORM = re.compile("[1-9][0-9]{3}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]")

    def __init__(self) -> None:
        self.days: set[str] = set()
        self.clock: set[str] = set()

    def learn(self, text: str) -> bool:
        """Whether ``text`` (19 characters) is a good reader time, learning its parts."""
        if self._FORM.fullmatch(text) is None:
            return False
        try:
            dt.datetime.fromisoformat(text)
        except ValueError:
            return False
        self.days.add(text[:10])
        self.clock.add(text[11:])
        return True


class _RawCells:
    """The CSV cell of each stored ``raw`` value, made the way the record path makes it
    (from the ``(index, text)`` pairs the record holds), or None when the record path
    would refuse the value. Readers repeat a few ``raw`` values line after line: each is
    read once (bounded: memory)."""

    def __init__(self) -> None:
        self.cells: dict[bytes, str | None] = {}

    def __call__(self, raw: msgspec.Raw) -> str | None:
        key = bytes(raw)
        cell = self.cells.get(key, False)
        if cell is False:
            from ..output.export import _raw_cell

            try:
                cell = _raw_cell(_RAW_FIELDS(key))
            except msgspec.MsgspecError:
                cell = None
            if len(self.cells) >= 4096:
                self.cells.clear()
            self.cells[key] = cell
        return cell  # type: ignore[return-value]


@dataclasses.dataclass
class Loaded:
    """One reader's archived records in output order, as :func:`load` reads them."""

    device: DeviceInfo
    timezone: str | None
    items: list[Item]
    #: the part number of each item (:func:`libre_usb.output.identity.parts`)
    parts: list[int]
    #: the reader line of each item: (source, record id)
    keys: list[tuple[str, int]]
    #: the stored text of each item (a stored reading that one writer leaves to the
    #: formats' own code is rebuilt from it)
    texts: list[str]
    raw_cells: _RawCells


def load(archive: Archive, serial: str | None = None, period: Period = ALL
         ) -> Loaded | None:
    """The records of ``period``: stored readings where their text is taken as it is,
    records elsewhere; None when the archive holds dumps of another model version (the
    caller then takes :meth:`Archive.load`)."""
    found = archive.bodies(serial, period)
    if found is None:
        return None
    device, zone, rows = found
    raw_cells, times = _RawCells(), _Times()
    # (the checks of _Times and _RawCells inlined: they run for every stored reading)
    days, clock, learn = times.days, times.clock, times.learn
    cells, raw_cell = raw_cells.cells, raw_cells
    items: list[Item] = []
    texts: list[str] = []
    append = items.append
    keep = texts.append
    decoders = _DECODERS.get
    with no_cyclic_gc():  # nothing here holds a cycle (libre_usb.output.gcpause)
        for kind, text in rows:
            keep(text)
            decode = decoders(kind)
            if decode is not None and "\\" not in text:
                try:
                    item = decode(text)
                except msgspec.MsgspecError:
                    pass
                else:
                    local, utc = item.local_time, item.utc
                    cell = cells.get(bytes(item.raw))
                    if ((local is None or (local[:10] in days and local[11:] in clock
                                           and local[10] == "T") or learn(local))
                            and (utc is None or (utc[:10] in days and utc[11:19] in clock
                                                 and utc[10] == "T" and utc[19] == "Z")
                                 or (utc[19] == "Z" and learn(utc[:19])))
                            and (cell is not None or raw_cell(item.raw) is not None)):
                        append(item)
                        continue
            append(record_from_text(kind, text))
        keys: list[tuple[str, int]] = [(item.source, item.record_id) for item in items]
        parts = numbered(keys, lambda position: _rank(items[position]))
    return Loaded(device, zone, items, parts, keys, texts, raw_cells)


def _rank(item: Item) -> int:
    if isinstance(item, Record):
        return kind_rank(type(item).kind.value)
    return _RANKS[item.kind]


def _record(item: Stored, text: str) -> Record:
    """The record of a stored reading, rebuilt from its text the record way."""
    return record_from_text(item.kind, text)


# -- nightscout ---------------------------------------------------------------------------------

def write_nightscout(loaded: Loaded, out: IO[str], part: str | None = None) -> int:
    """:func:`libre_usb.output.nightscout.write` of the loaded records; returns how many
    records have no place in UTC (:func:`libre_usb.output.nightscout.left_out`)."""
    docs = nightscout.Documents(loaded.device, loaded.timezone)
    add, entries, offset_at, name = docs.add, docs.entries, docs.offset_at, docs.name
    device, app = docs.device, nightscout.APP
    wall = dt.datetime.fromisoformat
    epoch, millisecond = _EPOCH, _MILLISECOND
    directions = nightscout.DIRECTIONS
    #: the zone's offsets met, in whole minutes as Documents.entry writes them
    offsets: dict[dt.timedelta | None, int] = {}
    unplaced = 0
    with no_cyclic_gc():  # a document per record, none in a cycle (libre_usb.output.gcpause)
        for item, number, stored in zip(loaded.items, loaded.parts, loaded.texts,
                                        strict=True):
            # a valid reading (the rest, as a record, to nightscout.Documents.add): its
            # entry as Documents.entry makes it, the UTC time as the text it is
            if isinstance(item, _History):
                utc = item.utc
                if utc is None:
                    unplaced += 1
                    continue
                if item.errors or item.glucose_mg_dl is None or item.first_after_insertion:
                    add(_record(item, stored), number)
                    continue
                direction = None
            elif isinstance(item, _Scan):
                utc = item.utc
                if utc is None:
                    unplaced += 1
                    continue
                if item.errors or item.error_flag or item.glucose_mg_dl is None:
                    add(_record(item, stored), number)
                    continue
                direction = None if item.trend is None else directions.get(
                    item.trend, "NOT COMPUTABLE")
            else:
                if item.utc is None:
                    unplaced += 1
                    continue
                add(item, number)
                continue
            utc = utc[:19]
            when = wall(utc)
            offset = offset_at(when)
            minutes = offsets.get(offset)
            if minutes is None:
                minutes = offsets[offset] = (0 if offset is None
                                             else int(offset.total_seconds() // 60))
            if direction is None:
                entries.append({
                    "type": "sgv", "sgv": item.glucose_mg_dl, "dateString": utc + ".000Z",
                    "device": device, "identifier": name(item.source, item.record_id, number),
                    "date": (when - epoch) // millisecond, "utcOffset": minutes, "app": app})
            else:
                entries.append({
                    "type": "sgv", "sgv": item.glucose_mg_dl, "direction": direction,
                    "dateString": utc + ".000Z", "device": device,
                    "identifier": name(item.source, item.record_id, number),
                    "date": (when - epoch) // millisecond, "utcOffset": minutes, "app": app})
        documents = docs.result()
    text = dumps_fast(documents if part is None else documents[part], 1)
    del documents, docs
    nightscout.write_text(text, out)
    return unplaced


# -- csv --------------------------------------------------------------------------------------

#: the CSV cell of a stored value, by what the value is, as an expression of it, ``{v}``:
#: the cell export.csv_row makes of the record's field (export._CELL_EXPRESSIONS), from the
#: JSON value the field is read from (a time is its own text: :class:`_Times`; a number
#: read into a Decimal is written as float(Decimal(str(v))), which is float(v))
_CELLS = {
    "int": "str({v})", "int?": "'' if {v} is None else str({v})", "str": "{v}",
    "str?": "'' if {v} is None else {v}", "bool": "'true' if {v} else 'false'",
    "time?": "'' if {v} is None else {v}", "decimal?": "'' if {v} is None else str(float({v}))",
    "raw": "raw_cell({v})",
}
_BASE_FIELDS = {"record_id": "int", "source": "str", "record_type": "int",
                "local_time": "time?", "raw": "raw", "utc": "time?", "time_status": "str"}
#: what each field of a stored reading is (tests/test_archive_stored.py checks these
#: against the record classes' fields)
FIELDS: dict[type[Stored], dict[str, str]] = {
    _History: {**_BASE_FIELDS, "glucose_mg_dl": "int?", "sensor_runtime_min": "int?",
               "first_after_insertion": "bool", "errors": "int"},
    _Scan: {**_BASE_FIELDS, "glucose_mg_dl": "int?", "value_raw": "str",
            "ketone_mmol_l": "decimal?", "trend": "int?", "out_of_range": "str?",
            "error_flag": "bool", "errors": "int"},
}
_KINDS = {_History: Kind.HISTORY.value, _Scan: Kind.SCAN.value}


def _csv_row(cls: type[Stored], unit: str, raw_cell: Callable[[msgspec.Raw], str | None]
             ) -> Callable[[Any], list[str]]:
    """The CSV row of a stored reading of class ``cls``: export.csv_row's row of its
    record, generated the same way from the same columns."""
    fields = FIELDS[cls]
    derived = dict((name, after) for after, name in export._derived(unit))
    cells: list[str] = []
    for name in export.CSV_COLUMNS:
        if name == "kind":
            cells.append(repr(_KINDS[cls]))
        elif name in derived and derived[name] in fields:
            cells.append(f"_cell({name!r}, DERIVED[{name!r}](s.{derived[name]}))")
        elif name not in fields:
            cells.append("''")
        else:
            cells.append(_CELLS[fields[name]].format(v=f"s.{name}"))
    source = "def row(s):\n    return [" + ", ".join(cells) + "]\n"
    namespace: dict[str, Any] = {"_cell": export._cell, "DERIVED": DERIVED,
                                 "raw_cell": raw_cell}
    exec(compile(source, f"<stored csv row {cls.__name__}>", "exec"), namespace)  # noqa: S102
    made: Callable[[Any], list[str]] = namespace["row"]
    return made


def _in_order(loaded: Loaded) -> list[int] | None:
    """The order the csv writer takes the items in (export.in_order: by source and record
    id, stably), or None when they are in it already (as the archive hands them over)."""
    keys = loaded.keys
    if all(keys[index - 1] <= keys[index] for index in range(1, len(keys))):
        return None
    return sorted(range(len(keys)), key=keys.__getitem__)


def _csv_line(cls: type[Stored], unit: str, quote: Quote, raw_cell: Callable[[Any], str]
              ) -> Callable[[Any], str]:
    """The CSV line of a stored reading of class ``cls``: what csv.writer writes of its
    :func:`_csv_row` (every text cell quoted as :func:`csvlines.quoting` says; times in
    the archive's form, numbers and booleans never need it: digits, ``-:.TZe+`` and
    letters), made by one f-string."""
    fields = FIELDS[cls]
    derived = dict((name, after) for after, name in export._derived(unit))
    cells: list[str] = []
    for name in export.CSV_COLUMNS:
        if name == "kind":
            cells.append("{kind}")
        elif name in derived and derived[name] in fields:
            cells.append(f"{{_cell({name!r}, DERIVED[{name!r}](s.{derived[name]}))}}")
        elif name not in fields:
            cells.append("")
        else:
            cells.append("{" + _LINE_CELLS[fields[name]].format(v=f"s.{name}") + "}")
    source = 'def line(s):\n    return f"""' + ",".join(cells) + '\\n"""\n'
    namespace: dict[str, Any] = {"_cell": export._cell, "DERIVED": DERIVED, "q": quote,
                                 "raw_cell": raw_cell, "kind": quote(_KINDS[cls])}
    exec(compile(source, f"<stored csv line {cls.__name__}>", "exec"), namespace)  # noqa: S102
    made: Callable[[Any], str] = namespace["line"]
    return made


#: :data:`_CELLS` as csv.writer writes them, inside an f-string (``q``: :class:`Quote`):
#: numbers need no str(), texts may need quoting; the others are the same
_LINE_CELLS = {**_CELLS, "int": "{v}", "int?": "'' if {v} is None else {v}", "str": "q({v})",
               "str?": "'' if {v} is None else q({v})"}


class _Lines:
    """Lines of text and rows for csv.writer, onto ``out`` in the order given."""

    def __init__(self, out: IO[str], terminator: str) -> None:
        self.out = out
        self.writer = csv.writer(out, lineterminator=terminator)
        self.pending: list[str] = []
        self.add = self.pending.append

    def flush(self) -> None:
        if self.pending:
            self.out.write("".join(self.pending))
            self.pending.clear()

    def row(self, row: list[Any], writer: Any = None) -> None:
        self.flush()
        (writer or self.writer).writerow(row)


def write_csv(loaded: Loaded, out: IO[str], *, unit: str | None = None, **_: Any
              ) -> list[str]:
    """:func:`libre_usb.output.export.write_csv` of the loaded records."""
    unit = unit or MG_DL
    export._check_unit(unit)
    special = csvlines.quoting("\n")
    if special is None:  # a csv module that writes otherwise: rows through it
        return _write_csv_rows(loaded, out, unit)
    lines = _Lines(out, "\n")
    # as export.write_csv: a row with a lone CR gets every cell quoted (a stored reading
    # has none: its text has no escape, and JSON has no bare control character)
    quoting_all = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    lines.row(list(export.CSV_COLUMNS))
    quote = Quote(special)
    raw_cells = loaded.raw_cells

    quoted: dict[bytes, str] = {}

    def raw_cell(raw: msgspec.Raw) -> str:
        key = bytes(raw)
        found = quoted.get(key)
        if found is None:
            cell = raw_cells(raw)
            assert cell is not None  # (load took only stored readings with a good raw value)
            found = csvlines.quoted(cell) if quote.search(cell) else cell
            if len(quoted) >= 4096:
                quoted.clear()
            quoted[key] = found
        return found

    history = _csv_line(_History, unit, quote, raw_cell)
    scan = _csv_line(_Scan, unit, quote, raw_cell)
    by_class: dict[type[Record], Callable[[Record], list[str]]] = {}
    add, pending, flush = lines.add, lines.pending, lines.flush
    items = loaded.items
    order = _in_order(loaded)
    for item in items if order is None else (items[index] for index in order):
        if isinstance(item, _History):
            add(history(item))
        elif isinstance(item, _Scan):
            add(scan(item))
        else:
            cls = type(item)
            make = by_class.get(cls)
            if make is None:
                make = by_class[cls] = export.csv_row(cls, unit)
            row = make(item)
            lines.row(row, quoting_all if "\r" in "".join(row) else None)
        if len(pending) >= 512:
            flush()
    flush()
    export._RAW_CELLS.clear()
    return []


def _write_csv_rows(loaded: Loaded, out: IO[str], unit: str) -> list[str]:
    """:func:`write_csv` with every row handed to csv.writer."""
    # as export.write_csv; a stored reading's row holds no lone CR (its text has no escape,
    # and JSON has no bare control character)
    rows = export.CsvRows(out)
    history = _csv_row(_History, unit, loaded.raw_cells)
    scan = _csv_row(_Scan, unit, loaded.raw_cells)
    by_class: dict[type[Record], Callable[[Record], list[str]]] = {}
    items = loaded.items
    order = _in_order(loaded)
    for item in items if order is None else (items[index] for index in order):
        if isinstance(item, _History):
            rows.add_plain(history(item))
        elif isinstance(item, _Scan):
            rows.add_plain(scan(item))
        else:
            cls = type(item)
            make = by_class.get(cls)
            if make is None:
                make = by_class[cls] = export.csv_row(cls, unit)
            rows.add(make(item))
    rows.close()
    export._RAW_CELLS.clear()
    return []


# -- libreview-csv ------------------------------------------------------------------------------

def write_libreview_csv(loaded: Loaded, out: IO[str], *, unit: str | None = None,
                        date_style: str | None = None, **_: Any) -> list[str]:
    """:func:`libre_usb.output.libreview_csv.write` of the loaded records."""
    unit = unit or (loaded.device.unit if loaded.device.unit in UNITS else MG_DL)
    export._check_unit(unit)
    rows: list[libreview_csv.Row] = []
    append = rows.append
    row_of = libreview_csv.row_of
    left_out = 0
    mg_dl = unit == MG_DL
    with no_cyclic_gc():  # a row per record, none in a cycle (libre_usb.output.gcpause)
        for item, number, stored in zip(loaded.items, loaded.parts, loaded.texts,
                                        strict=True):
            # a valid reading with a value (the rest, as a record, to row_of)
            if isinstance(item, _History):
                record_type, column = libreview_csv.HISTORIC, 4
                if item.errors or item.glucose_mg_dl is None:
                    item = _record(item, stored)
            elif isinstance(item, _Scan):
                record_type, column = libreview_csv.SCAN, 5
                if item.errors or item.error_flag or item.glucose_mg_dl is None:
                    item = _record(item, stored)
            if isinstance(item, Record):
                when = item.local_time
                if when is None:
                    left_out += 1
                    continue
                record_type, cells = row_of(item, unit)
                append((record_type, libreview_csv.time_key(when), item.source,
                        item.record_id, number, cells, when))
                continue
            if item.local_time is None:
                left_out += 1
                continue
            value = item.glucose_mg_dl
            assert value is not None
            append((record_type, item.local_time, item.source, item.record_id, number,
                    {column: str(value) if mg_dl else str(mmol_l(value))}, None))
    libreview_csv.write_rows(loaded.device, loaded.timezone, rows, out, unit=unit,
                             date_style=date_style or libreview_csv.DEFAULT_DATE_STYLE)
    return export.left_out_notes("libreview-csv", left_out)


__all__ = ["Loaded", "load", "write_csv", "write_libreview_csv", "write_nightscout"]
