"""Every reader model end to end on the virtual reader: ``dump`` returns exactly the records the
reader was seeded with, field by field (notes with non-ASCII text and a time change included),
and the device info it was given. The parsers are checked against real lines elsewhere
(test_models_libre*.py, test_models_neo.py, test_insulinx_capture.py); this checks the models'
commands, the session and the formats around them.
"""

from __future__ import annotations

import datetime as dt
import json

import msgspec
import pytest
from captures import INSULINX, need

from libre_usb.devices import MODELS, model_for_product_id
from libre_usb.errors import MissingExtra
from libre_usb.model import DeviceInfo, Dump, NoteRecord, Record, TimeChangeRecord
from libre_usb.output import export, timeline
from libre_usb.reader.session import Session
from libre_usb.simulator import VirtualReader
from libre_usb.transport.interfaces.sim import SimTransport

#: days of content per model (the encrypted ones cost more per report)
DAYS = {"libre2": 20, "libre3": 20}


def _key(record: Record) -> tuple[str, int, str]:
    return (record.source, record.record_id, repr(record.to_dict()))


def _dump(reader: VirtualReader) -> Dump:
    try:
        with Session(SimTransport(reader)) as session:
            return session.dump()
    except MissingExtra as exc:  # Libre 2/3 keys come from the optional freestyle-keys
        pytest.skip(f"{reader.model.name}: {exc}")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_dump_returns_exactly_the_seeded_records(name: str) -> None:
    reader = VirtualReader(name, seed=11, days=DAYS.get(name, 90))
    dump = _dump(reader)
    content = reader.content
    got = sorted(dump.records, key=_key)
    want = sorted(content.records, key=_key)
    assert len(got) == len(want) > 10
    for ours, seeded in zip(got, want, strict=True):
        assert ours == seeded  # every field, raw included
    # the content has what the model can hold, so the round trip covers it
    assert any(isinstance(r, TimeChangeRecord) for r in got)
    kinds = {r.kind.value for r in got}
    if name in ("libre", "libre2", "libre_pro"):
        notes = [r for r in got if isinstance(r, NoteRecord)]
        assert {n.text for n in notes} >= {"Стресс", "夜食", "Alcool 🍷"}
        assert kinds >= {"history", "scan", "glucose", "ketone", "insulin", "food", "exercise",
                         "medication", "note", "time_change", "unknown"}
    elif name == "libre3":
        assert kinds >= {"history", "scan", "insulin", "food", "time_change"}
        assert "note" not in kinds  # Libre 3 lines carry no comment texts
    elif name == "neo":
        assert kinds == {"glucose", "ketone", "insulin", "time_change", "unknown", "event"}
        assert {r.insulin_type for r in got if r.kind.value == "insulin"} == {  # type: ignore[attr-defined]
            "long_morning", "short_breakfast", "short_lunch", "long_evening", "short_dinner"}
        assert {getattr(r, "out_of_range", None) for r in got} >= {"HI", "LO"}
    else:
        assert kinds == {"glucose", "time_change", "unknown", "event"}
    device = dump.device
    assert device.model == name
    assert device.serial == content.serial
    assert device.clock == content.clock
    assert device.unit == content.unit
    assert device.patient_id == content.patient_id
    assert device.patient_name == content.patient_name
    # placed in time: every record of the virtual reader is placed, and in each id space the
    # instants grow with the ids (the reader's clock change is undone)
    placed = timeline.place(dump, "Europe/Berlin")
    # ($event? lines carry no time libre-dump can read: "invalid")
    assert {r.time_status for r in placed.records if r.source != "$event?"} == {"ok"}
    for source in {r.source for r in placed.records} - {"$event?"}:
        ordered = sorted((r for r in placed.records if r.source == source),
                         key=lambda r: r.record_id)
        instants = [r.utc for r in ordered]
        assert instants == sorted(instants), source  # type: ignore[type-var]
    # nothing but reads went to the reader
    assert all(c.endswith("?") or c in ("$getrmndr,0", "$getrmndrst,0", "$mlcalget,3",
                                         "$gettags,2,2") for c in reader.commands)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_format_round_trips_every_model(name: str) -> None:
    """csv, ndjson and json of a placed, mmol/L dump read back to the same records."""
    dump = timeline.place(_dump(VirtualReader(name, seed=4, days=6)), "Europe/Berlin")
    want = sorted(dump.records, key=_key)
    doc = export.dump_from_document(json.loads(export.render(dump, "json", unit="mmol/L")))
    assert doc.device == dump.device and sorted(doc.records, key=_key) == want
    nd = export.dump_from_ndjson(export.render(dump, "ndjson", unit="mmol/L").splitlines())
    assert nd.device == dump.device and sorted(nd.records, key=_key) == want
    rows = export.records_from_csv(export.render(dump, "csv", unit="mmol/L"))
    assert sorted(rows, key=_key) == want


def test_settings_and_sensor_of_the_virtual_libre() -> None:
    reader = VirtualReader("libre", seed=2, days=2)
    device = _dump(reader).device
    assert device.record_count == reader.content.record_counter
    assert device.settings["language"] == "en-US" and device.settings["brand"] == "FreeStyle Libre"
    assert device.settings["clock_valid"] is True and device.settings["clock_offset_s"] == 0
    assert [r["action"] for r in device.settings["reminders"][:3]] == ["glucose", "insulin",
                                                                      "alarm"]
    assert device.sensor is not None and device.sensor["pid"] == "112,0"
    # the raw reply stays: the decoded lines are it, less the "1,<checksum>" trailer
    assert dict(device.replies)["$patch?"].split("\n")[:-1] == device.sensor["lines"]
    # DeviceInfo goes through JSON and back unchanged, settings and sensor included
    back = DeviceInfo.from_dict(json.loads(json.dumps(device.to_dict())))
    assert back == device and msgspec.structs.asdict(back) == msgspec.structs.asdict(device)


def test_insulinx_capture_reports_0x3450() -> None:
    """The device descriptor in the real InsuLinx capture says idProduct 0x3450."""
    log = need(INSULINX / "plug.usbsnoop.log").read_text(encoding="latin-1")
    line = next(li for li in log.splitlines() if "00000000: 12 01 " in li)
    descriptor = bytes.fromhex(line.split(":", 1)[1].strip())
    vendor, product = (int.from_bytes(descriptor[i:i + 2], "little") for i in (8, 10))
    assert (vendor, product) == (0x1A61, 0x3450)
    assert model_for_product_id(product).name == "insulinx"


def test_clock_invalid_reader() -> None:
    """A Neo whose RTC is invalid answers 255s (protocol.md 3): no clock, clock_valid false,
    and the timeline places nothing."""
    reader = VirtualReader("neo", seed=1, days=3)
    reader._handlers["$date?"] = lambda: b"255,255,255\r\n"
    reader._handlers["$time?"] = lambda: b"255,255\r\n"
    dump = _dump(reader)
    assert dump.device.clock is None and dump.device.settings["clock_valid"] is False
    placed = timeline.place(dump, "UTC")
    # ($event? lines carry no time libre-dump can read: "invalid")
    timed = [r for r in placed.records if r.source != "$event?"]
    assert {r.time_status for r in timed} == {"no_anchor"}
    assert all(r.utc is None for r in placed.records)
    assert placed.records[0].local_time is not None
    assert isinstance(placed.records[0].local_time, dt.datetime)
