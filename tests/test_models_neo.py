"""FreeStyle Precision / Optium Neo ``$result?`` records.

Real Neo lines were published in glucometerutils issue #18, quoted in docs/protocol.md 4.4
(https://github.com/glucometers-tech/glucometerutils/issues/18, an Optium Neo): two ketone
tests the user read on the meter as 0.3 and 0.1 mmol/L, and a time change. Those are the
real-data tests here. The other lines below are built from the documented layout
(protocol.md 4.4, glucometer-protocols' freestyle-precision-neo.md) and say so: they check the
layout as documented, not the device.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest

from libre_usb.model import (
    DeviceInfo,
    Dump,
    GlucoseRecord,
    InsulinRecord,
    KetoneRecord,
    Record,
    TimeChangeRecord,
    UnknownRecord,
)
from libre_usb.output import timeline
from libre_usb.protocol.text.records import NEO_INSULIN_TYPES, parse_lines
from libre_usb.simulator.lines import neo_result_line

#: issue #18: (line, what the user read on the meter in mmol/L)
ISSUE_18_KETONES = [("9,13,7,18,17,18,33,1,6,1,0", "0.3"), ("9,4,7,18,17,14,36,1,1,1,0", "0.1")]
ISSUE_18_TIME_CHANGE = "6,2,7,18,17,14,32,1,7,18,17,14,5"


def _parse(line: str) -> list[Record]:
    return parse_lines("neo_result", [line.encode()], "$result?")


@pytest.mark.parametrize(("line", "shown"), ISSUE_18_KETONES)
def test_issue18_ketones_match_what_the_meter_showed(line: str, shown: str) -> None:
    (record,) = _parse(line)
    assert isinstance(record, KetoneRecord)
    assert record.record_type == 9 and record.source == "$result?"
    fields = line.split(",")
    assert record.record_id == int(fields[1])
    assert record.local_time == dt.datetime(2017, 7, 18, int(fields[5]), int(fields[6]))
    # raw / 18 = mmol/L (protocol.md 4.4); the meter shows one decimal
    assert record.ketone_mmol_l == (Decimal(fields[8]) / 18).quantize(Decimal("0.01"))
    assert (Decimal(fields[8]) / 18).quantize(Decimal("0.1"), ROUND_HALF_UP) == Decimal(shown)
    assert record.raw == ((7, "1"), (9, "1"), (10, "0"))
    assert neo_result_line([record]) == line


def test_issue18_time_change_and_its_timeline() -> None:
    (change,) = _parse(ISSUE_18_TIME_CHANGE)
    assert isinstance(change, TimeChangeRecord)
    assert change.new_time == dt.datetime(2017, 7, 18, 14, 32)
    assert change.old_time == dt.datetime(2017, 7, 18, 14, 5)
    assert change.raw == ((7, "1"),)
    assert neo_result_line([change]) == ISSUE_18_TIME_CHANGE
    # the two ketone tests (ids 4 and 13) come after the change (id 2): newest segment
    records = [change] + [_parse(line)[0] for line, _ in ISSUE_18_KETONES]
    clock = dt.datetime(2017, 7, 18, 23, 29)  # the meter's clock in the issue's `info`
    dump = Dump(DeviceInfo(model="neo", product_id=0x3850, clock=clock), tuple(records))
    placed = {r.record_id: r for r in timeline.place(dump, "America/Sao_Paulo").records}
    assert placed[13].utc == dt.datetime(2017, 7, 18, 21, 33, tzinfo=dt.timezone.utc)  # -3
    assert placed[2].utc == dt.datetime(2017, 7, 18, 17, 32, tzinfo=dt.timezone.utc)


# -- the documented layout (not device data) ----------------------------------------------------

def _glucose_line(value: str) -> str:
    return f"7,120,3,5,24,8,15,1,{value},0,1,0,0,0,0,0,0,0,0"


@pytest.mark.parametrize(("value", "mg_dl", "out_of_range"), [
    ("123", 123, None), ("HI", None, "HI"), ("LO", None, "LO"),
])
def test_layout_glucose(value: str, mg_dl: int | None, out_of_range: str | None) -> None:
    line = _glucose_line(value)
    (record,) = _parse(line)
    assert isinstance(record, GlucoseRecord)
    assert (record.record_id, record.glucose_mg_dl, record.out_of_range) == (120, mg_dl,
                                                                             out_of_range)
    assert record.value_raw == value
    assert record.local_time == dt.datetime(2024, 3, 5, 8, 15)
    assert len(record.raw) == 11 and dict(record.raw)[10] == "1"
    assert neo_result_line([record]) == line


@pytest.mark.parametrize("code", sorted(NEO_INSULIN_TYPES))
def test_layout_insulin_types(code: int) -> None:
    line = f"10,121,3,5,24,8,20,1,{code},12,0,0,0"
    (record,) = _parse(line)
    assert isinstance(record, InsulinRecord)
    assert record.insulin_type == NEO_INSULIN_TYPES[code]
    assert record.insulin_type.split("_")[0] in ("long", "short")
    assert record.units == Decimal(12)
    assert neo_result_line([record]) == line


def test_unknown_types_and_codes_are_kept() -> None:
    (record,) = _parse("10,122,3,5,24,8,20,1,9,2,0,0,0")
    assert isinstance(record, InsulinRecord) and record.insulin_type == "code_9"
    assert neo_result_line([record]) == "10,122,3,5,24,8,20,1,9,2,0,0,0"
    line = "11,123,3,5,24,9,0,1,0,12,0"  # Tidepool names type 11 "basal titration"
    (unknown,) = _parse(line)
    assert isinstance(unknown, UnknownRecord)
    assert (unknown.record_id, unknown.record_type) == (123, 11)
    assert unknown.local_time == dt.datetime(2024, 3, 5, 9, 0)
    assert unknown.fields == tuple(line.split(","))
    invalid = "7,124,255,255,255,255,255,1,98,0,1,0,0,0,0,0,0,0,0"  # RTC invalid (255s)
    (record,) = _parse(invalid)
    assert isinstance(record, GlucoseRecord) and record.local_time is None
    assert neo_result_line([record]) == invalid
    short = "7,125,3,5,24,9,0,1,98"  # fewer fields than the layout: kept whole
    (record,) = _parse(short)
    assert isinstance(record, UnknownRecord) and record.record_id == 125
