"""The reference upload (tests/data/juggluco-upload-example, assembled from public LibreLink
captures): it loads, its identifiers are reported (the install id, the sensor
serial hidden in history record numbers) and every entry is accounted for. It also checks
the builder against it: we write no field name it does not use (bar documented ones)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from captures import UPLOAD_EXAMPLE, need
from click.testing import CliRunner

from libre_usb.cli import main
from libre_usb.model import DeviceInfo, Dump
from libre_usb.output import export
from libre_usb.output.libreview import build_upload
from libre_usb.reader.session import Session
from libre_usb.simulator import VirtualReader
from libre_usb.transport.interfaces.sim import SimTransport
from libre_usb.upload.diff import diff_uploads
from libre_usb.upload.load import load_file
from libre_usb.upload.report import render

EXAMPLE = need(UPLOAD_EXAMPLE)
UUID = "b76f19a9-d4a0-4d67-8999-56b89b0968ee"
TOKEN_LITERAL = "REDACTED-UserToken-from-getauthentication"


EMPTY_READER = Dump(device=DeviceInfo(model="libre", product_id=0x3650), records=())


def test_example_loads_with_every_entry() -> None:
    (upload,) = load_file(EXAMPLE)
    lists = [entry.list_name for entry in upload.entries]
    assert sorted(lists) == sorted([
        "scheduledContinuousGlucoseEntries", "unscheduledContinuousGlucoseEntries",
        "currentGlucoseEntries", "insulinEntries", "foodEntries", "genericEntries",
        "genericEntries"])
    assert upload.secrets == ("UserToken",)
    assert TOKEN_LITERAL not in json.dumps(upload.data)


def test_example_entries_against_an_empty_reader() -> None:
    result = diff_uploads(EMPTY_READER, load_file(EXAMPLE))
    assert not result.identical
    only = {kind: [(u.record_number, u.local.isoformat() if u.local else None,
                    dict(u.values)) for u in res.upload_only]
            for kind, res in result.kinds.items() if res.upload_only}
    assert only == {
        "history": [(-6629292502336270757, "2022-06-20T22:24:33", {"mg_dl": 159.0})],
        "scan": [(2304, "2022-06-20T22:49:33", {"mg_dl": 163.0, "trend": "Stable"})],
        "current": [(2560, "2022-06-20T23:15:01", {"mg_dl": 133.0, "trend": "Stable"})],
        "insulin": [(1281, "2022-09-30T11:10:00",
                     {"insulin_type": "RapidActing", "units": 20.0})],
        "food": [(1284, "2022-09-14T12:25:00", {"carbs_g": 32.0})],
        "note": [(1808, "2022-11-17T14:10:00", {"text": "Bike"})],
        "sensorstart": [(-6629292502336274432, "2022-06-18T07:57:19", {})],
    }
    # the instants agree with factoryTimestamp (offsets +02:00 in June, +01:00 in November)
    assert result.warnings == []


def test_example_identifiers() -> None:
    result = diff_uploads(EMPTY_READER, load_file(EXAMPLE))
    found = {(p.path, p.value): p for p in result.privacy}
    assert ("DeviceData.header.device.uniqueIdentifier", UUID) in found
    assert ("DeviceData.measurementLog.device.uniqueIdentifier", UUID) in found
    serial = found[("DeviceData.measurementLog.scheduledContinuousGlucoseEntries[]."
                    "recordNumber", "?MH00C5XP2R")]
    assert serial.category == "serial" and "3675" in serial.what
    start = found[("DeviceData.measurementLog.genericEntries[].recordNumber", "?MH00C5XP2R")]
    assert "minute 0" in start.what
    assert "country: GB" in found[("DeviceData.header.device.modelName",
                                   "com.freestylelibre.app.gb")].what
    assert found[("DeviceData.header.device.hardwareDescriptor", "RMX2202")].category == \
        "device"
    assert ("DeviceData.measurementLog.genericEntries[].extendedProperties.text", "Bike") in found
    for path, value in (
            ("DeviceData.deviceSettings.miscellaneous.valueGlucoseTargetRangeLowInMgPerDl", "70"),
            ("DeviceData.deviceSettings.miscellaneous.valueGlucoseTargetRangeHighInMgPerDl",
             "180"),
            ("DeviceData.deviceSettings.miscellaneous.selectedLanguage", "en-US"),
            ("DeviceData.deviceSettings.miscellaneous.selectedTimeFormat", "24hr"),
            ("DeviceData.deviceSettings.factoryConfig.UOM", "mg/dL"),
            ("GatewayType", "FSLibreLink.Android")):
        assert (path, value) in found, path
    assert ("UserToken", None) in found
    assert found[("measurementLog.*[].timestamp", "+01:00, +02:00")].category == "time"
    unexplained = {u.path for u in result.unexplained}
    assert {"DeviceData.measurementLog.capabilities", "DeviceData.connectedDevices",
            "DeviceData.forceUpload",
            "DeviceData.measurementLog.currentGlucoseEntries[].extendedProperties.isViewed",
            "DeviceData.measurementLog.foodEntries[].foodType",
            "DeviceData.measurementLog.genericEntries[].extendedProperties.puckGen"
            } <= unexplained
    for fmt in ("text", "json", "html"):
        report = render(result, fmt)
        assert TOKEN_LITERAL not in report
        assert UUID in report and "?MH00C5XP2R" in report


def test_cli_on_the_example(tmp_path: Path) -> None:
    dump_file = tmp_path / "empty.json"
    dump_file.write_text(json.dumps(export.dump_document(EMPTY_READER)))
    result = CliRunner().invoke(main, ["diff", str(EXAMPLE), "--dump", str(dump_file)])
    assert result.exit_code == 1, result.output
    assert UUID in result.stdout and "?MH00C5XP2R" in result.stdout
    assert "uploaded, not on the reader (1)" in result.stdout


def _keys(items: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    keys: set[str] = set()
    ext: set[str] = set()
    for item in items:
        keys.update(item)
        ext.update(item.get("extendedProperties", {}))
    return keys, ext


def test_builder_uses_the_field_names_and_formats_of_the_example() -> None:
    example = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    with Session(SimTransport(VirtualReader("libre", seed=4))) as session:
        ours = build_upload(session.dump(), tz="Europe/Berlin")
    ex_log = example["DeviceData"]["measurementLog"]
    log = ours["DeviceData"]["measurementLog"]
    ex_keys: set[str] = set()
    ex_ext: set[str] = set()
    for items in ex_log.values():
        if isinstance(items, list) and items and isinstance(items[0], dict):
            keys, ext = _keys(items)
            ex_keys |= keys
            ex_ext |= ext
    # documented guesses: no public upload shows a ketone entry
    ours_only = {"valueInMmolPerL"}
    for name, items in log.items():
        if name == "capabilities":
            assert set(items) <= set(ex_log["capabilities"]) | {
                "ketone", "generic-com.abbottdiabetescare.informatics.medication"}
            continue
        assert name in ex_log
        keys, ext = _keys(items)
        assert keys - ours_only <= ex_keys, (name, keys - ex_keys)
        assert ext <= ex_ext, (name, ext - ex_ext)
        for item in items:
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d",
                                item["timestamp"])
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",
                                item["extendedProperties"]["factoryTimestamp"])
    assert {e["type"] for e in log["genericEntries"]} <= {
        "com.abbottdiabetescare.informatics." + t
        for t in ("exercise", "medication", "customnote", "sensorstart")}
    trends = {e["extendedProperties"]["trendArrow"]
              for e in log["unscheduledContinuousGlucoseEntries"]}
    assert "Stable" in trends
    assert trends <= {"FallingQuickly", "Falling", "Stable", "Rising", "RisingQuickly",
                      "NotComputable"}
    ex_settings = example["DeviceData"]["deviceSettings"]
    assert set(ours["DeviceData"]["deviceSettings"]) <= set(ex_settings)
    assert set(ours["DeviceData"]["header"]["device"]) == set(
        example["DeviceData"]["header"]["device"])
    assert "UserToken" not in ours
