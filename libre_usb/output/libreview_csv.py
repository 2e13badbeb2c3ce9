"""``libreview-csv``: the "glucose data" CSV export of Abbott's LibreView, for the tools that
read it (Tidepool's uploader, Nightscout backfill tools, cgm-format, cgmquantify, cgmpy...).

The variant written, pinned (LibreView's own export drifts; the facts below are from public
raw exports and the parsers that read them):

* UTF-8 without BOM, CRLF line ends, comma separated, minimal quoting; every row has the 19
  fields of the header.
* Line 1, the preamble, five fields: ``Glucose Data,Generated on,<date time> UTC,Generated
  by,libre-dump`` (LibreView writes the account's name last; we write the tool's, and the
  reader's clock at the dump, in UTC, as the time). Tidepool's importer takes everything up
  to the first line end as the preamble and the next line as the header.
* Line 2, the header: ``Device, Serial Number, Device Timestamp, Record Type, Historic
  Glucose <unit>, Scan Glucose <unit>, Non-numeric Rapid-Acting Insulin, Rapid-Acting
  Insulin (units), Non-numeric Food, Carbohydrates (grams), Carbohydrates (servings),
  Non-numeric Long-Acting Insulin, Long-Acting Insulin (units), Notes, Strip Glucose <unit>,
  Ketone mmol/L, Meal Insulin (units), Correction Insulin (units), User Change Insulin
  (units)``. The glucose unit is part of the column names (``mg/dL`` or ``mmol/L``); ketones
  are always mmol/L.
* Record types: 0 historic glucose, 1 scan, 2 strip glucose, 3 ketone, 4 insulin, 5 food,
  6 everything else (notes, exercise, medication, clock changes, records we cannot decode,
  readings the reader flagged invalid) with its text in ``Notes``. Tidepool's
  ``libreViewDriver.js`` imports types 0-3, reads the value from the column named
  ``<type name> <unit>`` and groups rows by ``Device`` and ``Serial Number``.
* ``Device Timestamp`` is the reader's clock (local time, no zone, no seconds) in the
  ``--date-style`` (:data:`DATE_STYLES`). The default, ``dmy`` (``31-12-2026 23:59``), is
  LibreView's day-first 24-hour style: Tidepool parses it (moment with ``DD/MM/YYYY HH:mm``,
  which ignores the separator) and so does cgm-format.
* Values: mg/dL as integers, mmol/L with one decimal (:mod:`libre_usb.output.units`). A
  reading the reader showed as LO or HI is written at the range's floor or ceiling (40 or
  500 mg/dL, 2.2 or 27.8 mmol/L; ketone HI 8.0), as LibreView does and Tidepool expects.
* Rows grouped by serial, then record type, oldest first within a type, as LibreView orders
  them.

A record whose reader date is invalid has no time to put in ``Device Timestamp`` (every
reader of this format needs one): it is left out and counted (:func:`left_out`), and it is
in every other format.
"""

from __future__ import annotations

import csv
import datetime as dt
import operator
from collections.abc import Callable
from decimal import Decimal
from typing import IO, Any

from ..devices import MODELS
from ..model import (
    DeviceInfo,
    Dump,
    FoodRecord,
    HistoryRecord,
    InsulinRecord,
    KetoneRecord,
    NoteRecord,
    ReadingRecord,
    Record,
    ScanRecord,
)
from . import csvlines, describe
from .gcpause import no_cyclic_gc
from .identity import parts
from .units import MG_DL, MMOL_L, UNITS, mmol_l

HISTORIC, SCAN, STRIP, KETONE, INSULIN, FOOD, OTHER = range(7)


def _day_first(when: dt.datetime, sep: str) -> str:
    return (f"{when.day:02d}{sep}{when.month:02d}{sep}{when.year:04d} "
            f"{when.hour:02d}:{when.minute:02d}")


def _twelve_hour(when: dt.datetime) -> str:
    hour = when.hour % 12 or 12
    half = "AM" if when.hour < 12 else "PM"
    return (f"{when.month:02d}-{when.day:02d}-{when.year:04d} {hour:02d}:{when.minute:02d} "
            f"{half}")


#: ``--date-style`` name -> how ``Device Timestamp`` is written (no locale involved)
DATE_STYLES: dict[str, Callable[[dt.datetime], str]] = {
    # LibreView, day-first 24-hour accounts; read by Tidepool and cgm-format
    "dmy": lambda when: _day_first(when, "-"),
    # Tidepool's own pattern, DD/MM/YYYY HH:mm
    "dmy-slash": lambda when: _day_first(when, "/"),
    # LibreView's US default, month first, 12-hour clock
    "mdy": _twelve_hour,
    # month first, 24-hour clock (read by cgm-format)
    "mdy-24h": lambda when: (f"{when.month:02d}-{when.day:02d}-{when.year:04d} "
                             f"{when.hour:02d}:{when.minute:02d}"),
    "iso": lambda when: when.strftime("%Y-%m-%d %H:%M"),
}
DEFAULT_DATE_STYLE = "dmy"

#: the floor and ceiling a LO or HI reading is written at, per unit (Tidepool's limits)
RANGE = {MG_DL: (40, 500), MMOL_L: (Decimal("2.2"), Decimal("27.8"))}
KETONE_HI = Decimal("8.0")


def columns(unit: str) -> list[str]:
    return [
        "Device", "Serial Number", "Device Timestamp", "Record Type",
        f"Historic Glucose {unit}", f"Scan Glucose {unit}", "Non-numeric Rapid-Acting Insulin",
        "Rapid-Acting Insulin (units)", "Non-numeric Food", "Carbohydrates (grams)",
        "Carbohydrates (servings)", "Non-numeric Long-Acting Insulin",
        "Long-Acting Insulin (units)", "Notes", f"Strip Glucose {unit}", "Ketone mmol/L",
        "Meal Insulin (units)", "Correction Insulin (units)", "User Change Insulin (units)",
    ]


def _glucose(value: int, unit: str) -> str:
    return str(value) if unit == MG_DL else str(mmol_l(value))


_GLUCOSE_COLUMNS = {HISTORIC: 4, SCAN: 5, STRIP: 14}


def row_of(record: Record, unit: str) -> tuple[int, dict[int, str]]:
    """(record type, {column index: cell}) of one record."""
    glucose_columns = _GLUCOSE_COLUMNS
    if isinstance(record, HistoryRecord | ReadingRecord) and not isinstance(record,
                                                                            KetoneRecord):
        kind = HISTORIC if isinstance(record, HistoryRecord) else (
            SCAN if isinstance(record, ScanRecord) else STRIP)
        out_of_range = getattr(record, "out_of_range", None)
        if record.invalid or (record.glucose_mg_dl is None and out_of_range is None):
            return OTHER, {13: describe.invalid_reading(record)}
        if record.glucose_mg_dl is not None:
            cell = _glucose(record.glucose_mg_dl, unit)
        else:
            low, high = RANGE[unit]
            cell = str(low if out_of_range == "LO" else high)
        return kind, {glucose_columns[kind]: cell}
    if isinstance(record, KetoneRecord):
        if record.invalid or (record.ketone_mmol_l is None and record.out_of_range is None):
            return OTHER, {13: describe.invalid_reading(record)}
        if record.ketone_mmol_l is not None:
            return KETONE, {15: describe.ketone_value(record.ketone_mmol_l)}
        return KETONE, {15: str(KETONE_HI) if record.out_of_range == "HI" else "0.0"}
    if isinstance(record, InsulinRecord):
        long = "long" in record.insulin_type
        if record.units is None:
            label = "Long-acting" if long else "Rapid-acting"
            return INSULIN, {11 if long else 6: f"{label} insulin, no amount"}
        return INSULIN, {12 if long else 7: describe.amount(record.units)}
    if isinstance(record, FoodRecord):
        if record.carbs_g is None:
            return FOOD, {8: "Food, no amount"}
        return FOOD, {9: str(record.carbs_g)}
    if isinstance(record, NoteRecord):
        return OTHER, {13: record.text}
    return OTHER, {13: describe.text(record)}


def left_out(dump: Dump) -> int:
    """Records without a valid reader date: not in this format (see the module docstring)."""
    return sum(1 for record in dump.records if record.local_time is None)


def _generated_on(dump: Dump, style: Callable[[dt.datetime], str]) -> str:
    clock = dump.device.clock
    if clock is None:
        return "unknown"
    if dump.timezone is not None:
        from .timeline import resolve_zone

        offset = resolve_zone(dump.timezone).utcoffset(clock)
        if offset is not None:
            clock = clock - offset
    return f"{style(clock)} UTC"


#: a row before it is laid out: (record type, the reader time as :func:`time_key` gives it,
#: source, record id, part, {column index: cell}, the reader time or None when only its
#: text is at hand)
Row = tuple[int, str, str, int, int, dict[int, str], "dt.datetime | None"]


def time_key(when: dt.datetime) -> str:
    """A reader time as the text rows are sorted by: ``isoformat()``, which sorts as the
    times do (naive times, four-digit years, microseconds only where there are any)."""
    return when.isoformat()


def rows_of(dump: Dump, unit: str) -> list[Row]:
    """The rows of the records that have a reader time, in the records' order."""
    rows: list[Row] = []
    numbers = parts(dump.records)
    for record, part in zip(dump.records, numbers, strict=True):
        when = record.local_time
        if when is None:
            continue
        record_type, cells = row_of(record, unit)
        rows.append((record_type, time_key(when), record.source, record.record_id, part,
                     cells, when))
    return rows


#: the ``--date-style`` forms made straight from a reader time's text as :func:`time_key`
#: gives it (whole seconds, years from 1000): what :data:`DATE_STYLES` makes of the time
TEXT_STYLES: dict[str, Callable[[str], str]] = {
    "dmy": lambda text: f"{text[8:10]}-{text[5:7]}-{text[:4]} {text[11:16]}",
    "dmy-slash": lambda text: f"{text[8:10]}/{text[5:7]}/{text[:4]} {text[11:16]}",
    "mdy-24h": lambda text: f"{text[5:7]}-{text[8:10]}-{text[:4]} {text[11:16]}",
    "iso": lambda text: f"{text[:10]} {text[11:16]}",
}


def write(dump: Dump, out: IO[str], *, unit: str = MG_DL,
          date_style: str = DEFAULT_DATE_STYLE) -> None:
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}")
    with no_cyclic_gc():  # a row per record, none in a cycle (libre_usb.output.gcpause)
        rows = rows_of(dump, unit)
    write_rows(dump.device, dump.timezone, rows, out, unit=unit, date_style=date_style)


def write_rows(device: DeviceInfo, timezone: str | None, rows: list[Row], out: IO[str], *,
               unit: str, date_style: str) -> None:
    """The file of ``rows`` (:func:`rows_of`; sorted here, in place)."""
    style = DATE_STYLES[date_style]
    from_text = TEXT_STYLES.get(date_style)
    model = MODELS.get(device.model)
    title = model.title if model is not None else device.model
    serial = device.serial or ""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["Glucose Data", "Generated on",
                     _generated_on(Dump(device=device, records=(), timezone=timezone), style),
                     "Generated by", "libre-dump"])
    writer.writerow(columns(unit))
    with no_cyclic_gc():
        rows.sort(key=operator.itemgetter(0, 1, 2, 3, 4))
    special = csvlines.quoting("\r\n")

    def date(when: dt.datetime | None, text: str) -> str:
        if when is not None:
            return style(when)
        if from_text is not None:
            return from_text(text)
        return style(dt.datetime.fromisoformat(text))

    if special is None:  # a csv module that writes otherwise: every row through it
        blank: list[Any] = [title, serial, "", 0] + [""] * 15
        batch: list[list[Any]] = []
        for record_type, text, _, _, _, cells, when in rows:
            line = blank.copy()
            line[2] = date(when, text)
            line[3] = record_type
            for index, cell in cells.items():
                line[index] = cell
            batch.append(line)
            if len(batch) >= 512:
                writer.writerows(batch)
                batch.clear()
        writer.writerows(batch)
        return
    # each line as csv.writer writes it (libre_usb.output.csvlines): the device's two cells,
    # the time, the record type, and the row's cells at their columns among empty ones
    quote = csvlines.Quote(special)
    search = special.search
    head = f"{quote(title)},{quote(serial)},"
    before = [","] * 4 + ["," * (index - 3) for index in range(4, 19)]
    after = [""] * 4 + ["," * (18 - index) + "\r\n" for index in range(4, 19)]
    lines: list[str] = []
    for record_type, text, _, _, _, cells, when in rows:
        stamp = date(when, text)
        if search(stamp):
            stamp = csvlines.quoted(stamp)
        if len(cells) == 1:
            ((index, cell),) = cells.items()
            lines.append(f"{head}{stamp},{record_type}{before[index]}{quote(cell)}"
                         f"{after[index]}")
        else:
            rest = [""] * 15
            for index, cell in cells.items():
                rest[index - 4] = quote(cell)
            lines.append(f"{head}{stamp},{record_type},{','.join(rest)}\r\n")
        if len(lines) >= 512:
            out.write("".join(lines))
            lines.clear()
    out.write("".join(lines))
