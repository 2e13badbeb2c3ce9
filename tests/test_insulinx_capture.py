"""The real InsuLinx session (OpenGlucose's UsbSnoop capture) against the vendor's own export.

``plug.usbsnoop.log`` holds a whole session of Abbott's software with a FreeStyle InsuLinx,
including a 237-record ``$result?`` reply; ``export.utf16.tsv`` is what Abbott's software
exported from the same meter (UTF-16LE, tab separated, named columns). Neither was written
here, so they check our ``$result?`` parser, our session and our timeline against ground
truth. Every record present in both is compared field by field; the records present in only
one of them are listed and explained below.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest
from captures import INSULINX, need, transcript_from_capture, usbsnoop_reports

from libre_usb.model import (
    Dump,
    GlucoseRecord,
    InsulinRecord,
    KetoneRecord,
    Record,
    TimeChangeRecord,
    UnknownRecord,
)
from libre_usb.output import export, timeline
from libre_usb.protocol.frames import MessageType, parse_report
from libre_usb.protocol.text.records import parse_lines
from libre_usb.protocol.text.reply import TextReplyAssembler, parse_multirecord
from libre_usb.reader.session import Session
from libre_usb.transport.transcript import ReplayTransport

#: records the vendor export has and the plug-in capture does not: the two clock changes made
#: by the later session captured in sync-time.usbsnoop.log ($date,8,27,14 then $time,13,40)
EXPORT_ONLY = {20478, 20480}


def _export() -> dict[int, dict[str, str]]:
    path = need(INSULINX / "export.utf16.tsv")
    text = path.read_bytes().decode("utf-16-le")
    rows = [line.rstrip("\r").split("\t") for line in text.split("\n") if line.strip()]
    header = rows[0]
    out: dict[int, dict[str, str]] = {}
    for row in rows[1:]:
        item = dict(zip(header, row, strict=False))
        out[int(item["Record Number"])] = item
    return out


def _export_time(row: dict[str, str]) -> dt.datetime:
    return dt.datetime(2000 + int(row["Year"]), int(row["Month"]), int(row["Date"]),
                       int(row["Hour"]), int(row["Minute"]))


def _result_lines_from_capture() -> list[bytes]:
    """The ``$result?`` record lines, assembled from the captured reports by our own
    connection state machine (keepalives skipped, checksums and trailer verified)."""
    reports = usbsnoop_reports(need(INSULINX / "plug.usbsnoop.log"))
    start = next(i for i, (d, r) in enumerate(reports)
                 if d == "out" and r[0] == 0x60 and r[2:2 + r[1]].startswith(b"$result?"))
    assembler = TextReplyAssembler()
    for direction, report in reports[start + 1:]:
        msg_type, payload = parse_report(report)
        if direction != "in" or msg_type == MessageType.KEEPALIVE:
            continue
        assert msg_type == MessageType.TEXT
        reply = assembler.feed(payload)
        if reply is not None:
            return list(parse_multirecord(reply).records)
    raise AssertionError("no complete $result? reply in the capture")


@pytest.fixture(scope="module")
def replayed() -> Dump:
    """The whole plug-in session replayed through our Session as an InsuLinx."""
    reports = usbsnoop_reports(need(INSULINX / "plug.usbsnoop.log"))
    transport = ReplayTransport.from_lines(transcript_from_capture(reports), "plug.usbsnoop.log")
    with Session(transport, "insulinx", timeout_ms=500) as session:
        return session.dump()


def _by_id(records: list[Record] | tuple[Record, ...]) -> dict[int, Record]:
    out: dict[int, Record] = {}
    for record in records:
        assert record.record_id not in out, f"two records with id {record.record_id}"
        out[record.record_id] = record
    return out


def _check_against_export(record: Record, row: dict[str, str]) -> None:
    """One record against the vendor's row: number, type, time, glucose, ketone, insulin."""
    number = row["Record Number"]
    assert str(record.record_id) == number
    assert record.record_type == int(row["Record Type"]), number
    assert record.local_time == _export_time(row), number
    glucose = int(row["Glucose Result"])
    if record.record_type == 0:
        assert isinstance(record, GlucoseRecord), number
        assert record.glucose_mg_dl == glucose, number
        assert record.value_raw == str(glucose)
        # the field at index 11 is the export's "Meal Taken Time" in every record (kept raw)
        assert dict(record.raw)[11] == row["Meal Taken Time"], number
    else:
        assert glucose == 0, number  # the vendor writes 0 for records without a reading
        assert not isinstance(record, GlucoseRecord)
    # no ketone and no insulin anywhere in this meter's memory, on either side
    assert int(row["Ketone Result"]) == 0
    assert not isinstance(record, KetoneRecord | InsulinRecord)
    for column in ("Insulin Result", "Meal Insulin", "Long-Acting Insulin", "Bolus Insulin",
                   "Grams of Carbs"):
        assert int(row[column]) == 0, (number, column)
    if record.record_type == 6:
        assert isinstance(record, TimeChangeRecord)
        assert record.new_time == _export_time(row)  # the export shows the new time
    if record.record_type == 4:
        assert isinstance(record, UnknownRecord) and len(record.fields) == 15


def test_parser_matches_the_vendor_export_record_by_record() -> None:
    lines = _result_lines_from_capture()
    assert len(lines) == 237
    ours = _by_id(parse_lines("insulinx_result", lines, "$result?"))
    vendor = _export()
    both = sorted(set(ours) & set(vendor))
    assert len(both) == 237
    for number in both:
        _check_against_export(ours[number], vendor[number])
    # every record of the capture is in the export; the export has two more (explained below)
    assert set(ours) - set(vendor) == set()
    assert set(vendor) - set(ours) == EXPORT_ONLY
    kinds = [type(r).__name__ for r in ours.values()]
    assert (kinds.count("GlucoseRecord"), kinds.count("UnknownRecord"),
            kinds.count("TimeChangeRecord")) == (227, 6, 4)


def test_records_only_in_the_export_are_the_later_clock_setting() -> None:
    """20478 and 20480 are type-6 (time change) rows made after the plug-in capture: the
    sync-time capture shows Abbott's software sending $date,8,27,14 then $time,13,40, and
    the export's rows carry that date and, for the second, that time."""
    vendor = _export()
    sync = usbsnoop_reports(need(INSULINX / "sync-time.usbsnoop.log"))
    sent = [r[2:2 + r[1]].rstrip(b"\r\n") for d, r in sync if d == "out" and r[0] == 0x60]
    assert sent[:2] == [b"$date,8,27,14", b"$time,13,40"]
    for number in EXPORT_ONLY:
        assert vendor[number]["Record Type"] == "6"
        assert _export_time(vendor[number]).date() == dt.date(2014, 8, 27)
    assert _export_time(vendor[20480]).time() == dt.time(13, 40)
    # both come after everything in the capture, whose newest record is 20476
    assert min(EXPORT_ONLY) > max(int(n) for n in vendor if int(n) not in EXPORT_ONLY)


def test_whole_session_replayed_through_our_session(replayed: Dump) -> None:
    device = replayed.device
    assert device.model == "insulinx"
    assert device.serial == "JAGT241-U6242"
    assert device.software_version == "1.40"
    assert device.unit == "mg/dL"  # $gunits? 1
    assert device.clock == dt.datetime(2014, 8, 27, 13, 22)  # $date? 8,27,14  $time? 13,22
    assert device.patient_name == "Xavier Claessens"  # $ptname? Xavier,Claessens,g
    assert dict(device.replies)["$ptname?"] == "Xavier,Claessens,g"
    assert device.patient_id == "iddupatient"
    settings = device.settings
    # $gettags,2,2 is Latin-1 on this meter: decoded without loss
    assert [t["text"] for t in settings["tags"][:4]] == [
        "Activité physique", "Coup de pompe", "Malade", "Médicaments"]
    assert settings["reminders"][0] == {"slot": 0, "repeat": "daily", "action": "alarm",
                                        "enabled": True, "hour": 22, "minute": 0}
    assert len(settings["reminders"]) == 12
    assert settings["clock_format"] == "24h"  # $clktyp? 0 ($clktyp,1 sets 12 h)
    assert settings["sounds"] == {"notification": True, "button_tone": False}
    assert settings["language_code"] == 2 and "language" not in settings
    # the records are the parser's, and match the export
    vendor = _export()
    ours = _by_id(replayed.records)
    assert len(ours) == 237
    for number, record in ours.items():
        _check_against_export(record, vendor[number])


def _offset(record: Record) -> dt.timedelta:
    assert record.local_time is not None and record.utc is not None
    return record.local_time - record.utc.replace(tzinfo=None)


def test_capture_timeline(replayed: Dump) -> None:
    """The timeline rule on the meter's four real time changes, in the user's zone (a French
    meter, dumped in summer). The expected instants follow from the rule by hand."""
    changes = [(c.record_id, c.old_time, c.new_time) for c in timeline.time_changes(
        replayed.records)]
    assert changes == [
        (20171, dt.datetime(2013, 8, 29, 23, 58), dt.datetime(2013, 8, 29, 23, 59)),
        (20173, dt.datetime(2014, 7, 22, 9, 50), dt.datetime(2014, 7, 22, 9, 50)),
        (20175, dt.datetime(2014, 7, 22, 9, 50), dt.datetime(2014, 7, 22, 10, 58)),
        (20305, dt.datetime(2014, 8, 6, 17, 10), dt.datetime(2014, 8, 6, 11, 11)),
    ]
    placed = _by_id(timeline.place(replayed, "Europe/Paris").records)
    assert {r.time_status for r in placed.values()} == {"ok"}
    utc = dt.timezone.utc
    # newest segment: the clock (8/27/14 13:22) is taken as right in CEST (+2) at the dump
    assert placed[20476].utc == dt.datetime(2014, 8, 27, 10, 47, tzinfo=utc)
    assert _offset(placed[20476]) == dt.timedelta(hours=2)
    # 20305 set the clock back from 17:10 to 11:11: it happened at 11:11 - 2 h = 09:11Z, so
    # before it the clock ran at 17:10 - 09:11 = +7:59 (a meter kept on a UTC+8 zone's time)
    assert placed[20305].utc == dt.datetime(2014, 8, 6, 9, 11, tzinfo=utc)
    assert _offset(placed[20177]) == dt.timedelta(hours=7, minutes=59)
    assert placed[20177].utc == dt.datetime(2014, 7, 22, 3, 8, tzinfo=utc)  # shown 11:07
    # 20175 (9:50 -> 10:58) at 10:58 - 7:59 = 02:59Z; before it +6:51
    assert placed[20175].utc == dt.datetime(2014, 7, 22, 2, 59, tzinfo=utc)
    assert _offset(placed[20173]) == dt.timedelta(hours=6, minutes=51)
    # 20173 changed nothing (9:50 -> 9:50); 20171 (23:58 -> 23:59) one minute more
    assert placed[20171].utc == dt.datetime(2013, 8, 29, 17, 8, tzinfo=utc)
    # ids grow with time on the meter: placed in UTC, the records keep the id order
    by_id = [r.utc for _, r in sorted(placed.items())]
    assert by_id == sorted(by_id)  # type: ignore[type-var]
    # while the shown local times do not (the clock went back 6 hours on 8/6)
    shown = [r.local_time for _, r in sorted(placed.items())]
    assert shown != sorted(shown)  # type: ignore[type-var]


def test_new_then_old_is_the_order_that_keeps_time_monotonic(replayed: Dump) -> None:
    """protocol.md 4.5 infers that type 6 holds the new time, then the old one. With that
    reading the placed instants grow with the record ids; read the other way round they do
    not. (The vendor export also shows the first of the two times for type 6 rows.)"""

    swapped = tuple(
        msgspec.structs.replace(r, old_time=r.new_time, new_time=r.old_time, local_time=r.old_time)
        if isinstance(r, TimeChangeRecord) else r
        for r in replayed.records)
    for records, monotonic in ((replayed.records, True), (swapped, False)):
        placed = timeline.place(msgspec.structs.replace(replayed, records=records), "Europe/Paris")
        instants = [r.utc for r in sorted(placed.records, key=lambda r: r.record_id)]
        assert (instants == sorted(instants)) is monotonic  # type: ignore[type-var]


def test_capture_dump_in_every_format_is_lossless(replayed: Dump) -> None:
    placed = timeline.place(replayed, "Europe/Paris")
    import json

    def key(record: Record) -> tuple[str, int, str]:
        return (record.source, record.record_id, record.kind.value)

    back = export.dump_from_document(json.loads(export.render(placed, "json")))
    assert back.device == placed.device and back.timezone == "Europe/Paris"
    assert sorted(back.records, key=key) == sorted(placed.records, key=key)
    rows = export.records_from_csv(export.render(placed, "csv"))
    assert sorted(rows, key=key) == sorted(placed.records, key=key)


def _sample(fields: str) -> Any:
    return parse_lines("insulinx_result", [fields.encode()], "$result?")


def test_protocol_md_sample_lines() -> None:
    """The three sample lines of protocol.md 4.5 (taken from the capture)."""
    (glucose,) = _sample("0,20476,8,27,14,12,47,1,0,0,0,3,0,68,0,0")
    assert isinstance(glucose, GlucoseRecord)
    assert (glucose.record_id, glucose.record_type, glucose.glucose_mg_dl) == (20476, 0, 68)
    assert glucose.local_time == dt.datetime(2014, 8, 27, 12, 47)
    assert glucose.raw == ((7, "1"), (8, "0"), (9, "0"), (10, "0"), (11, "3"), (12, "0"),
                           (14, "0"), (15, "0"))
    (weekly,) = _sample("4,20470,8,26,14,11,26,1,0,5,70,160,26,2,0")
    assert isinstance(weekly, UnknownRecord)
    assert (weekly.record_id, weekly.record_type) == (20470, 4)
    assert weekly.local_time == dt.datetime(2014, 8, 26, 11, 26)
    assert weekly.fields[10:12] == ("70", "160")
    (change,) = _sample("6,20171,8,29,13,23,59,1,8,29,13,23,58")
    assert isinstance(change, TimeChangeRecord)
    assert change.new_time == dt.datetime(2013, 8, 29, 23, 59)
    assert change.old_time == dt.datetime(2013, 8, 29, 23, 58)
    assert change.local_time == change.new_time and change.raw == ((7, "1"),)
