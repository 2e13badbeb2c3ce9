"""FreeStyle Libre (1, 2, Pro) records and replies against real data nobody here wrote.

Sources: the reader lines quoted in protocol.md 4.1/4.2 (glucometerutils issues #63 and #103),
the replies glucometer-protocols documents from real readers, and Tidepool's captured
``$dbrnum?`` reply (tests/data/tidepool).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from captures import TIDEPOOL, need

from libre_usb.devices import MODELS, is_read_only, model_for_product_id
from libre_usb.model import (
    ERROR_INVALID,
    FoodRecord,
    GlucoseRecord,
    HistoryRecord,
    InsulinRecord,
    KetoneRecord,
    NoteRecord,
    Record,
    ScanRecord,
    TimeChangeRecord,
    UnknownRecord,
)
from libre_usb.protocol.text.records import parse_lines, split_line
from libre_usb.protocol.text.replies import (
    decode_settings,
    parse_dbrnum,
    parse_patch,
    parse_rdt,
    parse_reminders,
)
from libre_usb.simulator.lines import arresult_line, history_line

#: glucometerutils issue #63 (Libre 1, reader software 2.2.13), quoted in protocol.md 4.1
ISSUE_63_HISTORY = "58012,12,4,8,19,22,56,13,1,0,0,0,0,191,3765,0"
#: glucometerutils issue #103 (Libre 1, French UI), quoted in protocol.md 4.2
ISSUE_103_ARRESULT = ('1661,2,2,28,21,9,38,49,1,2,0,0,126,1,4,0,0,0,0,0,0,0,3,0,0,0,0,0,0,'
                      '"Intense","Mod…","Fin de sport","Alcool","",""')


def _parse(parser: str, line: str, source: str) -> list[Record]:
    return parse_lines(parser, [line.encode("utf-8")], source)


def test_issue63_history_line() -> None:
    (record,) = _parse("libre_history", ISSUE_63_HISTORY, "$history?")
    assert isinstance(record, HistoryRecord)
    assert record.record_id == 58012 and record.record_type == 12
    assert record.local_time == dt.datetime(2019, 4, 8, 22, 56, 13)  # two-digit year + 2000
    assert record.glucose_mg_dl == 191
    assert record.sensor_runtime_min == 3765  # a multiple of 15, as in the issue's log
    assert record.first_after_insertion is False and record.errors == 0
    assert record.raw == ((8, "1"), (9, "0"), (10, "0"), (11, "0"))
    # nothing was dropped: the reader side writes the very same line back
    assert history_line(record) == ISSUE_63_HISTORY


def test_issue103_scan_line_with_french_comment_texts() -> None:
    records = _parse("libre_arresult", ISSUE_103_ARRESULT, "$arresult?")
    assert len(records) == 1  # the comment bitfield (idx 19) is 0: no note applies
    (scan,) = records
    assert isinstance(scan, ScanRecord)
    assert scan.record_id == 1661
    assert scan.local_time == dt.datetime(2021, 2, 28, 9, 38, 49)
    assert scan.glucose_mg_dl == 126 and scan.value_raw == "126"
    assert scan.trend == 4 and scan.trend_name == "rising"
    assert scan.error_flag is False and scan.errors == 0
    raw = dict(scan.raw)
    # the six comment texts are on every line, kept raw when not set on this one
    assert [raw[i] for i in range(29, 35)] == ["Intense", "Mod…", "Fin de sport", "Alcool",
                                               "", ""]
    assert raw[22] == "3"
    assert arresult_line(records, ()) == ISSUE_103_ARRESULT


def test_same_line_with_comments_and_logbook_set() -> None:
    """Issue #103's line with bits set as protocol.md 4.2 documents them: comments 1 and 3,
    exercise, long insulin 10 half units, food 45 g, and a rapid dose of 7 half units at
    index 43 (present only with a rapid dose)."""
    fields = split_line(ISSUE_103_ARRESULT.encode())
    fields[15], fields[17], fields[18], fields[19] = "1", "1", "1", "5"
    fields[23], fields[25], fields[26] = "10", "1", "45"
    fields[29:35] = ['"' + f + '"' for f in fields[29:35]]
    fields += ["7", "2", "28", "21", "9", "38", "49", "1", "7"]
    line = ",".join(fields)
    records = _parse("libre_arresult", line, "$arresult?")
    kinds = [r.kind.value for r in records]
    assert kinds == ["scan", "insulin", "insulin", "food", "exercise", "note", "note"]
    rapid, long = records[1], records[2]
    assert isinstance(rapid, InsulinRecord) and (rapid.insulin_type, rapid.units) == (
        "rapid", Decimal("3.5"))
    assert isinstance(long, InsulinRecord) and (long.insulin_type, long.units) == (
        "long", Decimal(5))
    food = records[3]
    assert isinstance(food, FoodRecord) and food.carbs_g == 45
    notes = [r for r in records if isinstance(r, NoteRecord)]
    assert [(n.comment_index, n.text) for n in notes] == [(1, "Intense"), (3, "Fin de sport")]
    assert all(r.record_id == 1661 and r.local_time == records[0].local_time for r in records)
    assert arresult_line(records, ()) == line


def test_strip_ketone_and_error_lines() -> None:
    base = split_line(ISSUE_103_ARRESULT.encode())
    base[29:35] = ['"' + f + '"' for f in base[29:35]]
    strip = list(base)
    strip[9], strip[12], strip[13], strip[14] = "0", "104", "0", "0"
    (glucose,) = _parse("libre_arresult", ",".join(strip), "$arresult?")
    assert isinstance(glucose, GlucoseRecord) and glucose.glucose_mg_dl == 104
    assert glucose.trend is None and dict(glucose.raw)[14] == "0"  # no trend on a strip
    ketone = list(strip)
    ketone[9], ketone[12] = "1", "9"
    (record,) = _parse("libre_arresult", ",".join(ketone), "$arresult?")
    assert isinstance(record, KetoneRecord)
    assert record.ketone_mmol_l == Decimal("0.50")  # 9 / 18 (protocol.md 4.2)
    assert record.glucose_mg_dl is None
    errored = list(base)
    errored[11], errored[28] = "1", str(ERROR_INVALID)
    (bad,) = _parse("libre_arresult", ",".join(errored), "$arresult?")
    assert bad.invalid and bad.errors == 0x8000  # kept, flagged, not dropped


def test_time_change_and_unknown_types_are_kept() -> None:
    line = "1700,5,3,26,21,10,0,0,1,3,26,21,9,0,2,0,0,0,0,0"
    (change,) = _parse("libre_arresult", line, "$arresult?")
    assert isinstance(change, TimeChangeRecord)
    assert change.new_time == dt.datetime(2021, 3, 26, 10, 0, 0)
    assert change.old_time == dt.datetime(2021, 3, 26, 9, 0, 2)
    assert change.raw == ((8, "1"), (15, "0"), (16, "0"), (17, "0"), (18, "0"), (19, "0"))
    assert arresult_line([change], ()) == line
    alarm = "1701,9,3,26,21,10,5,0,1,4,7"
    (unknown,) = _parse("libre_arresult", alarm, "$arresult?")
    assert isinstance(unknown, UnknownRecord)
    assert (unknown.record_id, unknown.record_type) == (1701, 9)
    assert unknown.fields == tuple(alarm.split(","))
    assert unknown.local_time == dt.datetime(2021, 3, 26, 10, 5, 0)


def test_invalid_reader_dates_and_odd_fields_lose_nothing() -> None:
    line = "58013,12,255,255,255,255,255,255,1,0,0,0,0,0,3780,32768"
    (record,) = _parse("libre_history", line, "$history?")
    assert record.local_time is None
    assert dict(record.raw)[2] == "255"  # the invalid time stays in raw
    assert history_line(record) == line
    odd = "58014,12,4,8,19,23,11,13,1,0,0,0,2,191,3780,0"  # first-reading flag 2: unknown
    (record,) = _parse("libre_history", odd, "$history?")
    assert record.first_after_insertion is False and dict(record.raw)[12] == "2"
    broken = "58015,12,4,8,19,23,26,13,1,0,0,0,0,1x1,3795,0"  # not a number
    (record,) = _parse("libre_history", broken, "$history?")
    assert isinstance(record, UnknownRecord) and record.fields == tuple(broken.split(","))


def test_real_replies() -> None:
    # Tidepool's captured reply (tests/data/tidepool) and glucometer-protocols' spelling
    vectors = json.loads(need(TIDEPOOL / "libre1_protocol_vectors.json").read_text())
    raw = next(v["raw"] for v in vectors["text_responses"] if v["command"] == "$dbrnum?")
    assert parse_dbrnum(raw.split("CKSM:")[0]) == 226988
    assert parse_dbrnum("DBRECORDS = 12572\r\n") == 12572
    # glucometer-protocols: `$lang?` answers 6 on an English (UK) unit
    settings = decode_settings({"$lang?": "6", "$brandname?": "FreeStyle Libre",
                                "$marketlev?": "1,0,0,0", "$ntsound?": "1,0",
                                "$btsound?": "0,1"}, language_table="libre")
    assert settings == {
        "language_code": 6, "language": "en-GB", "brand": "FreeStyle Libre",
        "market_level": [1, 0, 0, 0],
        "sounds": {"notification": True, "vibrate": False, "button_tone": False,
                   "button_volume": True},
    }


def test_reminders_rdt_and_patch_decoding() -> None:
    reminders = parse_reminders("2,10,1,7,30\n3,11,0,2,0\n0,0,0,0,0")
    assert reminders == [
        {"slot": 0, "repeat": "daily", "action": "glucose", "enabled": True, "hour": 7,
         "minute": 30},
        {"slot": 1, "repeat": "timer", "action": "insulin", "enabled": False, "hour": 2,
         "minute": 0},
        {"slot": 2, "repeat": "off", "action": 0, "enabled": False, "hour": 0, "minute": 0},
    ]
    clock = parse_rdt("26,6,15,12,0,5,1,-3600")
    assert clock is not None and clock.valid and clock.offset == -3600
    assert clock.time == dt.datetime(2026, 6, 15, 12, 0, 5)
    pro = parse_rdt("26,6,15,12,0,5,1")  # the Libre Pro has no offset field
    assert pro is not None and pro.offset is None
    settings = decode_settings({}, language_table="libre", rdt=pro)
    assert settings == {"clock_valid": True, "clock_offset_s": None}
    # $patch? as glucometer-protocols documents it (numbers only; the trailer is dropped)
    patch = parse_patch("6,12,26,10,0,0\nPID: 112,0\nSW Versions: 1,3,4\n3,0,0\n"
                        "Event Log: 0\n0,0,0,0\nAFE Cal Data: 12,34,56\nUnused: 0\n1,00000A1B")
    assert patch["pid"] == "112,0" and patch["sw_versions"] == "1,3,4"
    assert patch["afe_cal_data"] == "12,34,56" and patch["event_log"] == "0"
    assert len(patch["lines"]) == 8 and patch["lines"][0] == "6,12,26,10,0,0"
    assert parse_patch("Log Empty") == {"lines": ["Log Empty"]}


@pytest.mark.parametrize(("pid", "name"), [
    (0x3650, "libre"), (0x3670, "libre_pro"), (0x3950, "libre2"), (0x3960, "libre3"),
    (0x3850, "neo"), (0x3460, "insulinx"), (0x3450, "insulinx"),
])
def test_product_ids(pid: int, name: str) -> None:
    assert model_for_product_id(pid).name == name


def test_models_only_send_reads() -> None:
    for model in MODELS.values():
        commands = [model.serial_command, model.version_command, *model.info_commands,
                    *(source.command for source in model.records)]
        if model.unit_command:
            commands.append(model.unit_command)
        assert all(is_read_only(c) for c in commands), model.name
    assert [s.parser for s in MODELS["libre_pro"].records] == ["libre_history", "libre_arresult"]
    assert MODELS["libre_pro"].encrypted is False
