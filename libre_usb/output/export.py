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

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from .. import jsonsafe
from ..errors import InputError
from ..inputs import read_input
from ..model import GROUPS, SCHEMA_VERSION, DeviceInfo, Dump, Kind, Record, sorted_records
from . import libreview_csv, nightscout
from .dumpcheck import device_problem, record_problem
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
    data = record.to_dict()
    if unit != MMOL_L or "glucose_mg_dl" not in data:
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        out[key] = value
        if key == "glucose_mg_dl":
            out["glucose_mmol_l"] = None if value is None else float(mmol_l(value))
    return out


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


def write_json(dump: Dump, out: IO[str], *, unit: str = MG_DL) -> None:
    out.write(jsonsafe.dumps(dump_document(dump, unit), indent=1))
    out.write("\n")


def write_ndjson(dump: Dump, out: IO[str], *, unit: str = MG_DL) -> None:
    _check_unit(unit)
    head = {"kind": "device", "format": FORMAT_NAME, "version": SCHEMA_VERSION, "unit": unit,
            "device": dump.device.to_dict(), "timezone": dump.timezone}
    out.write(jsonsafe.dumps(head, ensure_ascii=False) + "\n")
    for record in sorted_records(dump.records):
        out.write(jsonsafe.dumps(record_dict(record, unit), ensure_ascii=False) + "\n")


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name in _JSON_CELLS:
        return jsonsafe.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_csv(dump: Dump, out: IO[str], *, unit: str = MG_DL) -> None:
    _check_unit(unit)
    writer = csv.writer(out, lineterminator="\n")
    # csv quotes a cell only for the characters of its line terminator: a lone CR (a note
    # typed with one) would go out bare and split the row for every reader. Such a row is
    # written with every cell quoted (the same values, read back alike)
    quoting_all = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_COLUMNS)
    for record in sorted_records(dump.records):
        data = record_dict(record, unit)
        row = [_cell(name, data.get(name)) for name in CSV_COLUMNS]
        (quoting_all if any("\r" in cell for cell in row) else writer).writerow(row)


class Writer(Protocol):
    def __call__(self, dump: Dump, out: IO[str], *, unit: str = MG_DL) -> None: ...


class DatedWriter(Protocol):
    def __call__(self, dump: Dump, out: IO[str], *, unit: str = MG_DL,
                 date_style: str = ...) -> None: ...


def write_libreview_csv(dump: Dump, out: IO[str], *, unit: str = MG_DL,
                        date_style: str = libreview_csv.DEFAULT_DATE_STYLE) -> None:
    """LibreView's glucose-data CSV (:mod:`libre_usb.output.libreview_csv`)."""
    _check_unit(unit)
    libreview_csv.write(dump, out, unit=unit, date_style=date_style)


def write_nightscout(dump: Dump, out: IO[str], *, unit: str = MG_DL) -> None:
    """Nightscout entries and treatments in one document (:mod:`.nightscout`); glucose is
    mg/dL whatever ``unit``, as Nightscout stores it."""
    nightscout.write(dump, out)


def write_nightscout_entries(dump: Dump, out: IO[str], *, unit: str = MG_DL) -> None:
    """The ``entries`` array alone, ready to POST."""
    nightscout.write(dump, out, "entries")


def write_nightscout_treatments(dump: Dump, out: IO[str], *, unit: str = MG_DL) -> None:
    """The ``treatments`` array alone, ready to POST."""
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
        count = libreview_csv.left_out(dump)
        if count:
            return [f"{count} records with an invalid reader date are not in the LibreView "
                    "CSV (its rows need a time); every other format has them"]
    if fmt.startswith("nightscout"):
        count = nightscout.left_out(dump)
        if count:
            return [f"{count} records without a place in UTC (see time_status) are not in "
                    "the Nightscout files (they need an instant); every other format has them"]
    return []


def render(dump: Dump, fmt: str, *, unit: str = MG_DL, date_style: str | None = None) -> str:
    """The whole output as one string (the CLI writes it atomically). ``date_style`` is for
    the formats that write local dates as text (``libreview-csv``)."""
    buffer = io.StringIO()
    if date_style is not None and fmt in DATED_WRITERS:
        DATED_WRITERS[fmt](dump, buffer, unit=unit, date_style=date_style)
    else:
        WRITERS[fmt](dump, buffer, unit=unit)
    return buffer.getvalue()


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
    found = device_problem(data)
    if found:
        raise _bad(source, f"bad field: {found}")
    return DeviceInfo.from_dict(data)


def _record(data: Any, source: str) -> Record:
    """One saved record, checked against the schema of its kind first (a negative error
    count or a trend of 10**9 would otherwise pass on into every output)."""
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
