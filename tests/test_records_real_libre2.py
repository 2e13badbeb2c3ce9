"""Real FreeStyle Libre 2 reader lines (glucometerutils issue #137, tests/data/) decode to the
doses the reader's owner reported, in every format and through the upload diff; and no line
that is not a known layout ever yields a dose, a carb amount or a note.

The lines were written by a Libre 2 reader and compared by its owner with the reader's
logbook: nobody here wrote them, so they check the layout table (docs/records.md), not our
own simulator.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libre_usb.model import (
    DeviceInfo,
    Dump,
    FoodRecord,
    InsulinRecord,
    NoteRecord,
    Record,
    ScanRecord,
    UnknownRecord,
)
from libre_usb.output import export, timeline
from libre_usb.output.libreview import build_upload
from libre_usb.protocol.text import layouts
from libre_usb.protocol.text.records import PARSER_FAMILIES, LineStats, parse_fields, parse_lines
from libre_usb.upload.diff import diff_uploads
from libre_usb.upload.load import load_bytes

DATA = Path(__file__).parent / "data" / "glucometerutils-issue137"
ISSUE = json.loads((DATA / "arresult_fields.json").read_text(encoding="utf-8"))
SHORT, NOTED = (line["fields"] for line in ISSUE["lines"])
#: the owner: index 46 is twice the units entered; 6 -> 3 U
OWNER_RAPID_UNITS = Decimal(3)


def _line(fields: list[str]) -> bytes:
    return ",".join(fields).encode()


def _libre2(*lines: list[str]) -> list[Record]:
    return parse_lines("libre2_arresult", [_line(f) for f in lines], "$arresult?")


def _dump() -> Dump:
    device = DeviceInfo(model="libre2", product_id=0x3950, serial="MAGA987-J0123",
                        software_version="1.0.12", unit="mg/dL",
                        clock=dt.datetime(2026, 6, 25, 8, 0, 0))
    return timeline.place(Dump(device=device, records=tuple(_libre2(SHORT, NOTED))), "UTC")


def test_the_real_lines_have_the_counts_the_owner_describes() -> None:
    assert (len(SHORT), len(NOTED)) == (38, 47)
    # the field glucometerutils (and our old Libre 1 layout) read as the rapid dose is the
    # minute of the time copy: 28 -> "14 U" for a 3 U dose
    assert NOTED[43] == NOTED[6] == "28" and NOTED[39:45] == NOTED[2:8]
    for row in ISSUE["owner_logbook"]["rows"]:
        minute = int(row["time"][14:16])
        assert Decimal(row["glucometerutils"]) == Decimal(minute) / 2


def test_libre2_layout_reads_the_owners_dose() -> None:
    short = _libre2(SHORT)
    assert [type(r) for r in short] == [ScanRecord]
    (scan,) = short
    assert isinstance(scan, ScanRecord)
    assert (scan.record_id, scan.glucose_mg_dl, scan.trend) == (87935, 93, 3)
    assert scan.local_time == dt.datetime(2026, 6, 24, 23, 50, 23)
    assert dict(scan.raw)[29] == "312" and dict(scan.raw)[31] == "-22"  # unknown: kept raw
    noted = _libre2(NOTED)
    assert [type(r) for r in noted] == [ScanRecord, InsulinRecord]
    reading, insulin = noted
    assert isinstance(reading, ScanRecord) and isinstance(insulin, InsulinRecord)
    assert reading.glucose_mg_dl == 235
    assert (insulin.insulin_type, insulin.units) == ("rapid", OWNER_RAPID_UNITS)
    # nothing dropped: every field is decoded or kept raw
    used = {0, 1, *range(2, 8), 9, 11, 12, 14, 15, 16, 17, 18, 19, 25, 28, 46}
    assert {i for i, _ in reading.raw} == set(range(47)) - used


def test_the_libre1_layout_never_reads_a_libre2_line() -> None:
    stats = LineStats()
    records = parse_lines("libre_arresult", [_line(SHORT), _line(NOTED)], "$arresult?", stats)
    assert all(isinstance(r, UnknownRecord) for r in records)
    assert [len(r.fields) for r in records if isinstance(r, UnknownRecord)] == [38, 47]
    assert stats.unrecognised == 2


def _rapid_units(rows: list[dict[str, Any]]) -> list[Decimal]:
    return [Decimal(str(r["units"])) for r in rows
            if r.get("kind") == "insulin" and r.get("insulin_type") == "rapid"]


def test_every_format_shows_the_owners_dose() -> None:
    dump = _dump()
    doc = json.loads(export.render(dump, "json"))
    assert _rapid_units([r for group in doc["records"].values() for r in group]) == [
        OWNER_RAPID_UNITS]
    rows = [json.loads(line) for line in export.render(dump, "ndjson").splitlines()]
    assert _rapid_units(rows) == [OWNER_RAPID_UNITS]
    table = list(csv.DictReader(io.StringIO(export.render(dump, "csv"))))
    assert _rapid_units(table) == [OWNER_RAPID_UNITS]
    upload = build_upload(dump, tz="UTC", redact=False)
    entries = upload["DeviceData"]["measurementLog"]["insulinEntries"]
    assert [(e["insulinType"], e["units"]) for e in entries] == [
        ("RapidActing", 3.0)]


def test_the_upload_diff_matches_the_owners_dose() -> None:
    dump = _dump()
    upload = json.dumps(build_upload(dump, tz="UTC", redact=False)).encode()
    result = diff_uploads(dump, load_bytes(upload), tz="UTC")
    assert result.identical
    insulin = result.kinds["insulin"]
    assert [p.reader.values.get("units") for p in insulin.matched] == [3.0]
    # an upload that says 14 U (what reading index 43 gives) is a difference, not a match
    wrong = json.loads(upload)
    wrong["DeviceData"]["measurementLog"]["insulinEntries"][0]["units"] = 14.0
    changed = diff_uploads(dump, load_bytes(json.dumps(wrong).encode()), tz="UTC")
    assert not changed.identical and len(changed.kinds["insulin"].changed) == 1


# -- the layout rule, as a property -----------------------------------------------------------

_FAMILIES = sorted({family for family, _ in PARSER_FAMILIES.values()})
_COMMANDS = sorted({command for _, command in PARSER_FAMILIES.values()})
_KNOWN = {(layout.family, layout.command, layout.fields) for layout in layouts.LAYOUTS}
_field = st.one_of(st.sampled_from(["0", "1", "2", "5", "6", "7", "10", "12", "255", ""]),
                   st.integers(0, 99999).map(str), st.text(max_size=6))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(PARSER_FAMILIES)), st.integers(0, 80), st.data())
def test_a_line_of_no_known_layout_never_yields_a_dose_carbs_or_a_note(
        parser: str, count: int, data: st.DataObject) -> None:
    family, command = PARSER_FAMILIES[parser]
    fields = data.draw(st.lists(_field, min_size=count, max_size=count))
    at = layouts.type_index(command)
    if len(fields) > at:  # a record type the family decodes, most of the time
        types = sorted(layouts.KNOWN_TYPES[(family, command)])
        fields[at] = data.draw(st.one_of(st.sampled_from(types).map(str), _field))
    record_type = fields[at] if len(fields) > at else None
    fits = (record_type is not None and record_type.isascii() and record_type.isdigit()
            and layouts.find(family, command, int(record_type), len(fields)) is not None
            and str(int(record_type)) == record_type)
    records = parse_fields(family, command, fields)
    assert records, "a line was dropped"
    if not fits:
        assert [type(r) for r in records] == [UnknownRecord]
        assert not any(isinstance(r, (InsulinRecord, FoodRecord, NoteRecord)) for r in records)
        (kept,) = records
        assert isinstance(kept, UnknownRecord) and list(kept.fields) == fields


def test_every_layout_is_in_the_docs_with_its_source() -> None:
    """docs/records.md lists every layout of the table (family, command, type, count)."""
    docs = (Path(__file__).parent.parent / "docs" / "records.md").read_text(encoding="utf-8")
    for layout in layouts.LAYOUTS:
        row = f"| `{layout.family}` | `{layout.command}` | {layout.record_type} | {layout.fields} |"
        assert row in docs, row
    assert len(_KNOWN) >= 10 and len(_FAMILIES) == 5 and len(_COMMANDS) == 3
