"""The upload builder and the diff on real reader data nobody here wrote: the `$result?`
records of a real FreeStyle InsuLinx session (tests/data/openglucose-insulinx), with
Abbott's own export of the same meter as ground truth for every uploaded value."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

from captures import INSULINX, need, usbsnoop_reports

from libre_usb.model import DeviceInfo, Dump, Kind, Record, TimeChangeRecord
from libre_usb.output.libreview import build_upload
from libre_usb.protocol.connection import HostConnection, TextResponse
from libre_usb.protocol.text.records import parse_lines
from libre_usb.protocol.text.reply import parse_multirecord
from libre_usb.upload.diff import diff_uploads
from libre_usb.upload.load import load_bytes

TZ = "Europe/Paris"  # the meter's owner used French tags; any zone works for these checks


def _real_records() -> list[Record]:
    reports = usbsnoop_reports(need(INSULINX / "plug.usbsnoop.log"))
    exchanges: list[tuple[bytes, list[bytes]]] = []
    for direction, data in reports:
        if direction == "out" and data[0] == 0x60:
            exchanges.append((data, []))
        elif direction == "in" and exchanges:
            exchanges[-1][1].append(data)
    _, replies = next(e for e in exchanges if b"$result?" in e[0])
    conn = HostConnection()
    conn.state = conn.state.READY
    conn.text_command("$result?")
    reply = next(e for e in (conn.receive(r) for r in replies) if isinstance(e, TextResponse))
    return parse_lines("insulinx_result", parse_multirecord(reply.reply).records, "$result?")


def _vendor_glucose() -> set[tuple[int, dt.datetime, float]]:
    text = need(INSULINX / "export.utf16.tsv").read_bytes().decode("utf-16")
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    return {
        (int(row["Record Number"]),
         dt.datetime(2000 + int(row["Year"]), int(row["Month"]), int(row["Date"]),
                     int(row["Hour"]), int(row["Minute"])),
         float(row["Glucose Result"]))
        for row in rows if row["Record Type"] == "0"
    }


def _dump() -> Dump:
    device = DeviceInfo(model="insulinx", product_id=0x3460, serial="JAGT241-U6242",
                        software_version="1.40", unit="mg/dL")
    return Dump(device=device, records=tuple(_real_records()))


def test_uploaded_glucose_equals_abbotts_own_export() -> None:
    upload = build_upload(_dump(), tz=TZ)
    entries = upload["DeviceData"]["measurementLog"]["bloodGlucoseEntries"]
    ours = {(e["recordNumber"],
             dt.datetime.fromisoformat(e["timestamp"]).replace(tzinfo=None),
             e["valueInMgPerDl"]) for e in entries}
    vendor = _vendor_glucose()
    assert len(vendor) == 227
    assert ours == vendor


def test_real_records_diff_clean_and_time_changes_are_flagged() -> None:
    dump = _dump()
    upload = build_upload(dump, tz=TZ)
    result = diff_uploads(dump, load_bytes(json.dumps(upload).encode(), name="insulinx"))
    assert result.identical
    counts = result.counts()
    assert counts["glucose"]["matched"] == 227
    changes = [r for r in dump.records if isinstance(r, TimeChangeRecord)]
    assert len(changes) == 4
    assert counts["time_change"]["matched"] + counts["time_change"]["not_expected"] == 4
    # each flagged entry is the first strip test the meter recorded after that change
    glucose = sorted((r for r in dump.records if r.kind is Kind.GLUCOSE),
                     key=lambda r: r.record_id)
    for pair in result.kinds["time_change"].matched:
        first = next(r for r in glucose if r.record_id > pair.reader.record_number)
        assert pair.upload.record_number == first.record_id
    # the six records of type 4 have no upload entry and are shown, not lost
    assert counts["other"]["not_expected"] == 6
    assert len([i for i in upload["libreDump"]["notInUpload"] if i["kind"] == "unknown"]) == 6
