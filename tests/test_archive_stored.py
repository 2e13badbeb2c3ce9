"""Exports written from the archive's stored text (libre_usb.archive.stored) are the exports
of the rebuilt records (Archive.load and the formats' own writers), byte for byte: on a
whole archive with a reset reader's variants, and on stored texts spoiled in every field
(the record path's output, or its very error)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from simdumps import content_dump

from libre_usb.archive import Archive, stored
from libre_usb.archive import export as archive_export
from libre_usb.model import RECORD_CLASSES, Dump, Kind
from libre_usb.output import csvlines, export, libreview_csv

FORMATS = ("nightscout", "nightscout-entries", "nightscout-treatments", "csv", "libreview-csv")
#: (format, options) beyond each format's defaults
OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("csv", {"unit": "mmol/L"}), ("csv", {"unit": "mg/dL"}),
    ("libreview-csv", {"unit": "mg/dL"}), ("libreview-csv", {"unit": "mmol/L"}),
    *[("libreview-csv", {"date_style": style}) for style in sorted(libreview_csv.DATE_STYLES)],
]


def record_path(archive: Archive, fmt: str, **options: Any) -> tuple[str, list[str]] | str:
    """The format written from the rebuilt records (or the error it stops with)."""
    try:
        dump = archive.load()
        unit = options.get("unit") or export.default_unit(dump, fmt)
        text = export.render(dump, fmt, unit=unit, date_style=options.get("date_style"))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return text, export.format_notes(dump, fmt)


def stored_path(archive: Archive, fmt: str, **options: Any) -> tuple[str, list[str]] | str:
    out = io.StringIO()
    try:
        assert stored.load(archive) is not None, "the stored text is read"
        notes = archive_export.write(archive, out, fmt=fmt, **options)
    except AssertionError:
        raise
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return out.getvalue(), notes


def archived(path: Path, dump: Dump, *more: Dump) -> Path:
    with Archive(path, create=True) as archive:
        archive.sync(dump, "test")
        for other in more:
            archive.sync(other, "test")
    return path


def test_every_stored_format_is_the_record_path_on_a_whole_archive(tmp_path: Path) -> None:
    dump = content_dump(days=40)
    # a reset reader: the same ids with other content, kept as variants (several records
    # of one id then share a line key, numbered together)
    later = content_dump(seed=9, days=20, serial=dump.device.serial)
    path = archived(tmp_path / "a.sqlite", dump, later)
    with Archive(path) as archive:
        assert archive.conflicts(), "the archive holds variants"
        loaded = stored.load(archive)
        assert loaded is not None
        kinds = {type(item).__name__ for item in loaded.items}
        assert {"_History", "_Scan", "InsulinRecord"} <= kinds
        for fmt, options in [*((fmt, {}) for fmt in FORMATS), *OPTIONS]:
            ours = stored_path(archive, fmt, **options)
            assert not isinstance(ours, str), ours
            assert ours == record_path(archive, fmt, **options), (fmt, options)


def _row(db: sqlite3.Connection, kind: str) -> tuple[Any, ...]:
    return db.execute("SELECT reader_id, source, record_id, variant, part, kind, local_time,"
                      " glucose_mg_dl, line_fp, dump_id, body FROM records WHERE kind = ?"
                      " AND body LIKE '%\"utc\": \"2%' ORDER BY id LIMIT 1", (kind,)).fetchone()


_DELETE = object()
#: (kind, field, value): each a stored text the record path reads differently, refuses, or
#: reads alike (the stored path must follow it in every case)
SPOILS: list[tuple[str, str, Any]] = [
    ("history", "local_time", "2026-06-14 10:00:00"),
    ("history", "local_time", "2026-02-30T10:00:00"),
    ("history", "local_time", "2026-02-29T10:00:00"),
    ("history", "local_time", "2024-02-29T10:00:00"),
    ("history", "local_time", "0999-06-14T10:00:00"),
    ("history", "local_time", "2026-06-14T24:00:00"),
    ("history", "local_time", "2026-06-14T10:00:60"),
    ("history", "local_time", "2026-W24-1T10:00:00"),
    ("history", "local_time", "2026-06-14T10:00:00.000000"),
    ("history", "local_time", "2026-06-14T10:00:00Z"),
    ("history", "local_time", "2026-06-14T10:00:0\u0661"),
    ("history", "local_time", ""),
    ("history", "local_time", None),
    ("history", "local_time", _DELETE),
    ("history", "utc", "2026-06-14T10:00:00+00:00"),
    ("history", "utc", "2026-06-14T10:00:00"),
    ("history", "utc", "2026-06-14T10:00:00.5Z"),
    ("history", "utc", "2026-06-14t10:00:00z"),
    ("history", "utc", "0999-06-14T10:00:00Z"),
    ("history", "utc", "2026-13-14T10:00:00Z"),
    ("history", "utc", None),
    ("history", "utc", _DELETE),
    ("history", "glucose_mg_dl", True),
    ("history", "glucose_mg_dl", 120.0),
    ("history", "glucose_mg_dl", 10 ** 10),
    ("history", "glucose_mg_dl", -(10 ** 10) + 1),
    ("history", "glucose_mg_dl", None),
    ("history", "glucose_mg_dl", "120"),
    ("history", "errors", 0x8000),
    ("history", "errors", None),
    ("history", "first_after_insertion", True),
    ("history", "first_after_insertion", 1),
    ("history", "sensor_runtime_min", 10 ** 12),
    ("history", "raw", [[1, 2]]),
    ("history", "raw", [[1, "a", "b"]]),
    ("history", "raw", [["1", "a"]]),
    ("history", "raw", "x"),
    ("history", "raw", [[1, "a\"b"]]),
    ("history", "raw", [[1, "caf\u00e9 \U0001f377"]]),
    ("history", "raw", _DELETE),
    ("history", "source", "$his\"tory?"),
    ("history", "source", "$his,tory?"),
    ("history", "time_status", "o,k"),
    ("history", "raw", [[1, "a,b"], [2, ""]]),
    ("scan", "value_raw", "1,2"),
    ("history", "source", 5),
    ("history", "record_type", False),
    ("history", "time_status", "\u00e9"),
    ("history", "kind", "scan"),
    ("history", "extra", 1),
    ("scan", "trend", 9),
    ("scan", "trend", None),
    ("scan", "trend", 1.5),
    ("scan", "ketone_mmol_l", 1.5),
    ("scan", "ketone_mmol_l", 2),
    ("scan", "ketone_mmol_l", 1e300),
    ("scan", "glucose_mg_dl", None),
    ("scan", "out_of_range", "HI"),
    ("scan", "error_flag", True),
    ("scan", "errors", 1),
    ("scan", "value_raw", 5),
    ("scan", "utc", "2026-06-14T10:00:00+01:00"),
    ("scan", "kind", "glucose"),
]


@pytest.mark.parametrize(("kind", "field", "value"), SPOILS,
                         ids=[f"{k}-{f}-{v!r}"[:60] for k, f, v in SPOILS])
def test_a_spoiled_stored_text_comes_out_as_the_record_path_has_it(
        tmp_path: Path, kind: str, field: str, value: Any) -> None:
    path = archived(tmp_path / "a.sqlite", content_dump(days=2))
    db = sqlite3.connect(path)
    row = list(_row(db, kind))
    body = json.loads(row[-1])
    body["record_id"] = row[2] = 9_000_000
    if value is _DELETE:
        del body[field]
    else:
        body[field] = value
    row[-1] = json.dumps(body, ensure_ascii=False)
    with db:
        db.execute("INSERT INTO records (reader_id, source, record_id, variant, part, kind,"
                   " local_time, glucose_mg_dl, line_fp, dump_id, body)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    db.close()
    with Archive(path) as archive:
        for fmt, options in [*((fmt, {}) for fmt in FORMATS), OPTIONS[0], OPTIONS[-2]]:
            assert stored_path(archive, fmt, **options) == record_path(archive, fmt, **options)


def _reference(text: str) -> bool:
    """What the archive writes: fromisoformat reads it, isoformat writes it back unchanged."""
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return parsed.tzinfo is None and parsed.year >= 1000 and parsed.isoformat() == text


def test_stored_times_are_told_as_fromisoformat_and_isoformat_tell_them() -> None:
    times = stored._Times()
    years = [*range(1000, 1005), *range(1096, 1105), *range(1896, 1905), *range(1996, 2005),
             *range(2096, 2105), *range(2396, 2405), *range(9996, 10000)]
    for year in years:
        for month in range(0, 14):
            for day in range(0, 33):
                text = f"{year:04d}-{month:02d}-{day:02d}T12:00:00"
                assert times.learn(text) == _reference(text), text
    for text in ("0999-12-31T12:00:00", "0000-01-01T12:00:00", "2026-06-14 12:00:00",
                 "2026-W24-1T12:00:00", "2026-06-14T12:00:0\u0661"):
        assert not times.learn(text) and not _reference(text), text
    for hour in range(0, 26):
        for minute in range(0, 61):
            for second in range(0, 61):
                text = f"2026-06-14T{hour:02d}:{minute:02d}:{second:02d}"
                assert times.learn(text) == _reference(text), text


def _annotations(cls: type) -> dict[str, str]:
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        found.update({name: str(value) for name, value in
                      vars(klass).get("__annotations__", {}).items()})
    return found


#: what a stored value is (stored.FIELDS), by the annotation of the record's field
_WHAT = {"int": "int", "int | None": "int?", "str": "str", "str | None": "str?",
         "bool": "bool", "dt.datetime | None": "time?", "Decimal | None": "decimal?",
         "RawFields": "raw"}


@pytest.mark.parametrize("kind", [Kind.HISTORY, Kind.SCAN])
def test_stored_readings_have_the_fields_of_their_records(kind: Kind) -> None:
    cls = RECORD_CLASSES[kind]
    struct = {Kind.HISTORY: stored._History, Kind.SCAN: stored._Scan}[kind]
    record = next(r for r in content_dump(days=2).records if type(r) is cls)
    names = list(record.to_dict())
    assert names == list(struct.__struct_fields__)
    annotations = _annotations(cls)
    assert stored.FIELDS[struct] == {name: _WHAT[annotations[name]] for name in names[1:]}


def test_dates_from_text_are_the_date_styles() -> None:
    start = dt.datetime(1000, 1, 1, 0, 0, 0)
    for step in range(0, 9000 * 366, 97):
        when = start + dt.timedelta(days=step // 7, hours=step % 24, minutes=step % 60,
                                    seconds=step % 59)
        for style, from_text in libreview_csv.TEXT_STYLES.items():
            assert from_text(when.isoformat()) == libreview_csv.DATE_STYLES[style](when)


@pytest.mark.parametrize("terminator", ["\n", "\r\n"])
def test_csv_lines_are_what_csv_writer_writes(terminator: str) -> None:
    special = csvlines.quoting(terminator)
    assert special is not None
    quote = csvlines.Quote(special)
    rng = random.Random(len(terminator))
    alphabet = [*"ab ,\"\r\n\t;'#", "\u00e9", "\u2028", "\x85", "\x00"]
    for _ in range(3000):
        cells = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 6)))
                 for _ in range(rng.randrange(2, 5))]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator=terminator).writerow(cells)
        assert buffer.getvalue() == ",".join(quote(cell) for cell in cells) + terminator


def test_stored_csv_lines_are_the_rows_csv_writer_writes(tmp_path: Path) -> None:
    path = archived(tmp_path / "a.sqlite", content_dump(days=10))
    with Archive(path) as archive:
        loaded = stored.load(archive)
    assert loaded is not None
    special = csvlines.quoting("\n")
    assert special is not None
    quote = csvlines.Quote(special)

    def raw_cell(raw: Any) -> str:
        return quote(loaded.raw_cells(raw) or "")

    for unit in ("mg/dL", "mmol/L"):
        for cls in (stored._History, stored._Scan):
            line = stored._csv_line(cls, unit, quote, raw_cell)
            row = stored._csv_row(cls, unit, loaded.raw_cells)
            items = [item for item in loaded.items if type(item) is cls]
            assert len(items) > 50
            for item in items:
                buffer = io.StringIO()
                csv.writer(buffer, lineterminator="\n").writerow(row(item))
                assert line(item) == buffer.getvalue()
