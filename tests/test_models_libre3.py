"""FreeStyle Libre 3 reader lines (protocol.md 4.3: PR #131 to glucometerutils, one user's
device) and the position of the rapid-acting dose.

The user noted on the first ``$arresult?`` sample that it holds every note type: 1 U rapid,
2 U long, 3 g carbs, exercise, medication. Those values are the ground truth here.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from libre_usb.model import (
    ExerciseRecord,
    FoodRecord,
    HistoryRecord,
    InsulinRecord,
    MedicationRecord,
    Record,
    ScanRecord,
    UnknownRecord,
)
from libre_usb.protocol.text.records import parse_lines, split_line
from libre_usb.simulator.lines import libre3_arresult_line, libre3_history_line

HISTORY = ["243,12,1,11,25,10,23,43,1,0,0,0,85,60,0",
           "233,12,1,11,25,10,18,44,1,0,0,0,0,55,32768"]
NOTED = "7429,2,1,13,25,20,22,12,1,2,0,0,88,1,3,1,1,1,1,1,0,3,4,0,1,3,0,3538,7,1,13,25,20,22,12,1,2"
PLAIN = "7415,2,1,13,25,20,15,47,1,2,0,0,93,1,3,0,0,0,0,0,0,3,0,0,0,0,0,3532"


def _parse(parser: str, line: str, source: str) -> list[Record]:
    return parse_lines(parser, [line.encode()], source)


def test_history_lines_have_15_fields() -> None:
    good, bad = (_parse("libre3_history", line, "$history?")[0] for line in HISTORY)
    assert isinstance(good, HistoryRecord) and isinstance(bad, HistoryRecord)
    assert (good.record_id, good.glucose_mg_dl, good.sensor_runtime_min, good.errors) == (
        243, 85, 60, 0)
    assert good.local_time == dt.datetime(2025, 1, 11, 10, 23, 43)
    assert good.first_after_insertion is False
    assert (bad.record_id, bad.glucose_mg_dl, bad.errors, bad.invalid) == (233, 0, 32768, True)
    for line, record in zip(HISTORY, (good, bad), strict=True):
        assert isinstance(record, HistoryRecord)
        assert libre3_history_line(record) == line


def test_noted_sample_decodes_to_what_the_user_noted() -> None:
    records = _parse("libre3_arresult", NOTED, "$arresult?")
    scan = records[0]
    assert isinstance(scan, ScanRecord)
    assert scan.record_id == 7429 and scan.local_time == dt.datetime(2025, 1, 13, 20, 22, 12)
    assert scan.glucose_mg_dl == 88 and scan.trend == 3
    insulin = {r.insulin_type: r.units for r in records if isinstance(r, InsulinRecord)}
    assert insulin == {"rapid": Decimal(1), "long": Decimal(2)}  # 1 U rapid, 2 U long
    (food,) = [r for r in records if isinstance(r, FoodRecord)]
    assert food.carbs_g == 3  # 3 g carbs
    assert any(isinstance(r, ExerciseRecord) for r in records)
    assert any(isinstance(r, MedicationRecord) for r in records)
    assert len(records) == 6  # scan, rapid, long, food, exercise, medication
    # the runtime-like field (idx 27) and the timestamp copy stay raw
    assert dict(scan.raw)[27] == "3538"
    assert [dict(scan.raw)[i] for i in range(28, 36)] == ["7", "1", "13", "25", "20", "22",
                                                         "12", "1"]
    assert libre3_arresult_line(records) == NOTED


def test_rapid_dose_is_the_last_field_not_index_43_after_normalising() -> None:
    """The off-by-one of protocol.md 4.3: normalising the Libre 3 line to the Libre 1 layout
    the way PR #131 does (a 0 inserted at 19 and at 28, six empty comments at 29) gives a
    45-field line with the rapid dose at index 44. A Libre 1 parser that reads index 43 would
    take the constant 1 for 0.5 U. No Libre layout has 45 fields, so ours keeps the line raw
    (it used to read it with the 44-field layout); our Libre 3 parser reads the 1 U the user
    noted from the real line."""
    fields = split_line(NOTED.encode())
    # as described: insert 0 at 19, then 0 at 28, then six empty comments at 29
    norm = list(fields)
    norm.insert(19, "0")
    norm.insert(28, "0")
    norm[29:29] = ['""'] * 6
    assert len(norm) == 45 and norm[44] == "2"
    (libre1,) = _parse("libre_arresult", ",".join(norm), "$arresult?")
    assert isinstance(libre1, UnknownRecord) and len(libre1.fields) == 45
    ours = _parse("libre3_arresult", NOTED, "$arresult?")
    assert {r.insulin_type: r.units for r in ours if isinstance(r, InsulinRecord)}[
        "rapid"] == Decimal(1)


def test_plain_sample() -> None:
    records = _parse("libre3_arresult", PLAIN, "$arresult?")
    assert len(records) == 1
    (scan,) = records
    assert isinstance(scan, ScanRecord)
    assert (scan.record_id, scan.glucose_mg_dl, scan.trend) == (7415, 93, 3)
    assert scan.local_time == dt.datetime(2025, 1, 13, 20, 15, 47)
    assert dict(scan.raw)[27] == "3532"
    # 3532 -> 3538 over the 6.4 minutes between the two samples: a runtime in minutes?
    assert libre3_arresult_line(records) == PLAIN


def test_libre1_shaped_lines_are_not_read_with_the_libre3_parser() -> None:
    """A line of a Libre 1 shape on a Libre 3 reader fits no Libre 3 layout: kept whole as
    an unknown record (it used to be read with the Libre 1 layout, a neighbouring layout)."""
    line = ('1661,2,2,28,21,9,38,49,1,2,0,0,126,1,4,0,0,0,0,0,0,0,3,0,0,0,0,0,0,'
            '"a","b","c","d","e","f"')
    (kept,) = _parse("libre3_arresult", line + ",7,2,28,21,9,38,49,1,0", "$arresult?")
    assert isinstance(kept, UnknownRecord) and kept.fields[12] == "126"
    (kept,) = _parse("libre3_history", "58012,12,4,8,19,22,56,13,1,0,0,0,0,191,3765,0",
                     "$history?")
    assert isinstance(kept, UnknownRecord) and len(kept.fields) == 16

