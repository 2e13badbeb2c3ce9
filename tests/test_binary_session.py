"""The binary protocol end to end: session <-> virtual reader, text vs binary, alerts, events,
config settings, compression, record-number wraps, schema-driven decoding, read-only."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from libre_usb.devices import MODELS
from libre_usb.errors import InputError
from libre_usb.model import (
    AlertRecord,
    Dump,
    EventRecord,
    HistoryRecord,
    Kind,
    Record,
)
from libre_usb.protocol.binary.wire import READ_OPS, Op
from libre_usb.reader.session import Session
from libre_usb.simulator import binary as simbinary
from libre_usb.simulator.reader import VirtualReader
from libre_usb.transport.interfaces.sim import SimTransport

BINARY_MODELS = sorted(name for name, model in MODELS.items() if model.binary)
#: the kinds both protocols carry, compared on ids, times and values
SHARED = (Kind.HISTORY, Kind.SCAN, Kind.GLUCOSE, Kind.KETONE, Kind.INSULIN, Kind.FOOD,
          Kind.EXERCISE, Kind.MEDICATION, Kind.NOTE)
VALUES = ("glucose_mg_dl", "ketone_mmol_l", "trend", "sensor_runtime_min",
          "first_after_insertion", "errors", "insulin_type", "units", "carbs_g",
          "comment_index", "text")


def read(reader: VirtualReader, protocol: str, **options: Any) -> tuple[Dump, SimTransport]:
    transport = SimTransport(reader)
    with Session(transport, timeout_ms=2000, protocol=protocol, **options) as session:
        return session.dump(), transport


def essence(record: Record) -> tuple[Any, ...]:
    data = record.to_dict()
    return (record.kind.value, record.record_id, record.local_time,
            *(data.get(name) for name in VALUES))


def shared(dump: Dump) -> list[tuple[Any, ...]]:
    return sorted((essence(r) for r in dump.records if r.kind in SHARED), key=repr)


@pytest.mark.parametrize("model", BINARY_MODELS)
def test_text_and_binary_give_the_same_records(model: str) -> None:
    text, _ = read(VirtualReader(model, seed=3, days=20), "text")
    binary, _ = read(VirtualReader(model, seed=3, days=20), "binary")
    assert shared(text) == shared(binary)
    for kind in SHARED:
        if kind is not Kind.MEDICATION:
            assert text.by_kind(kind), f"the comparison must cover {kind}"
    assert binary.device.settings["protocol"] == "binary"


@pytest.mark.parametrize("model", BINARY_MODELS)
def test_binary_adds_alerts_events_and_config(model: str) -> None:
    reader = VirtualReader(model, seed=5, days=30)
    dump, _ = read(reader, "binary")
    content = reader.content
    alerts = sorted(dump.by_kind(Kind.ALERT), key=lambda r: r.record_id)
    assert alerts and alerts == sorted(content.alerts, key=lambda r: r.record_id)
    assert {a.alarm for a in alerts if isinstance(a, AlertRecord)} >= {"low", "high"}
    events = [e for e in dump.by_kind(Kind.EVENT)
              if isinstance(e, EventRecord) and e.event != "record_number_wrap"]
    assert sorted(events, key=lambda r: r.record_id) == sorted(content.events,
                                                               key=lambda r: r.record_id)
    assert {"sensor_expired", "error"} <= {e.event for e in events if isinstance(e, EventRecord)}
    # one clock change, though the reader logs it in the results and the event table
    changes = dump.by_kind(Kind.TIME_CHANGE)
    assert len(changes) == 1 and changes[0].source == "db:results"
    settings = dump.device.settings
    assert settings["target_range_low_mg_dl"] == {"field_id": 1132, "value": 70}
    assert settings["target_range_high_mg_dl"] == {"field_id": 1133, "value": 180}
    assert settings["time_conversion"]["value"] == simbinary.TIME_CONVERSION
    names = {(e["table"], e["name"]) for e in settings["config"]}
    assert (3, "patient_name") in names and (1, "brand_name") in names
    if model == "libre":
        tags = [t["text"] for t in settings["smart_tag_texts"]]
        assert tags == list(content.comments)
        assert (9, "sensor_uid") in names and (10, "reminder_1_hour") in names
    else:  # the Pro: config tables 1..4, and 7 for the note texts
        assert {table for table, _ in names} == {1, 2, 3, 4, 7}
    assert "binary_problems" not in settings


@pytest.mark.parametrize("model", BINARY_MODELS)
def test_the_reader_receives_only_reads(model: str) -> None:
    reader = VirtualReader(model, seed=1, days=3)
    read(reader, "binary")
    ops = {op for op, _ in reader.binary_commands}
    assert ops <= READ_OPS and Op.SET_DATE_TIME not in ops
    assert {Op.GET_DB_SCHEMA, Op.GET_CFG_SCHEMA, Op.GET_DATABASE} <= ops
    assert all(c.endswith("?") or c == "$getrmndr,0" for c in reader.commands)
    tables = [data[0] for op, data in reader.binary_commands if op == Op.GET_DATABASE]
    assert tables == list(MODELS[model].binary_db_tables)


def test_compressed_and_plain_reads_give_the_same_records() -> None:
    """With SET_COMPRESSION 1 the reader sends 0x35 records (report counts: bench/)."""
    plain_reader, packed_reader = (VirtualReader("libre", seed=2, days=15) for _ in range(2))
    plain, _ = read(plain_reader, "binary", compression=False)
    packed, _ = read(packed_reader, "binary")
    assert packed.device.settings["compression"] is True
    assert plain.device.settings["compression"] is False
    assert plain.records == packed.records
    assert packed_reader.database is not None and packed_reader.database.compression
    assert (Op.SET_COMPRESSION, b"\x01") in packed_reader.binary_commands
    assert all(op != Op.SET_COMPRESSION for op, _ in plain_reader.binary_commands)


def test_record_numbers_survive_16_bit_wraps() -> None:
    # ids from ~60000 to ~70000: the history table crosses 65536; the results table lies in
    # the window below the record counter's and needs a wrap record at its head
    text, _ = read(VirtualReader("libre", seed=3, days=20, record_base=20000), "text")
    reader = VirtualReader("libre", seed=3, days=20, record_base=20000)
    binary, _ = read(reader, "binary")
    ids = [r.record_id for r in binary.by_kind(Kind.HISTORY)]
    assert min(ids) < 0x10000 < max(ids)
    assert shared(text) == shared(binary)
    wraps = [e for e in binary.by_kind(Kind.EVENT)
             if isinstance(e, EventRecord) and e.event == "record_number_wrap"]
    assert {w.source for w in wraps} >= {"db:history", "db:results"}


def test_the_decoder_follows_the_schema_not_a_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Move every field of the history and result bodies: the reader sends its schema, the
    records come out the same."""
    before, _ = read(VirtualReader("libre", seed=6, days=4), "binary")
    f, u, c16 = simbinary._f, simbinary.U, simbinary.C16
    moved = {
        12: (6, (f(157, 0, 0, u, 16), f(156, 1, 0, simbinary.HEX, 16), f(150, 2, 3, u, 10),
                 f(152, 2, 0, u, 1), f(153, 2, 1, u, 1), f(154, 2, 13, u, 1),
                 f(151, 3, 15, u, 1), f(155, 5, 0, c16, 16))),
        2: (9, tuple(simbinary.Field(x.field_id, x.word + 1, x.bit, x.type, x.bits)
                     for x in simbinary._BODIES[2][1])),
    }
    monkeypatch.setitem(simbinary._BODIES, 12, moved[12])
    monkeypatch.setitem(simbinary._BODIES, 2, moved[2])
    monkeypatch.setattr(simbinary, "DB_SCHEMAS", {
        **simbinary.DB_SCHEMAS,
        **{t: simbinary.Schema(t, 2, w, f) for t, (w, f) in moved.items()}})
    after, _ = read(VirtualReader("libre", seed=6, days=4), "binary")
    assert after.records == before.records


def test_binary_on_a_model_without_it_is_an_input_error() -> None:
    with pytest.raises(InputError, match="does not speak the binary"):
        Session(SimTransport(VirtualReader("neo")), protocol="binary")
    auto = Session(SimTransport(VirtualReader("neo")), protocol="auto")
    assert auto.protocol == "text"
    assert Session(SimTransport(VirtualReader("libre")), protocol="auto").protocol == "binary"
    assert Session(SimTransport(VirtualReader("libre_pro")), protocol=None).protocol == "binary"
    assert Session(SimTransport(VirtualReader("libre")), protocol=None).protocol == "text"


def test_binary_times_and_values_of_one_history_record() -> None:
    reader = VirtualReader("libre", seed=8, days=2)
    dump, _ = read(reader, "binary")
    want = reader.content.history[-1]
    got = next(r for r in dump.by_kind(Kind.HISTORY) if r.record_id == want.record_id)
    assert isinstance(got, HistoryRecord)
    assert (got.local_time, got.glucose_mg_dl, got.sensor_runtime_min) == (
        want.local_time, want.glucose_mg_dl, want.sensor_runtime_min)
    assert got.source == "db:history" and got.record_type == 12
    # the fields the decoder has no place for stay raw, by field id
    assert dict(got.raw).keys() >= {152, 153, 154}
    assert isinstance(got.local_time, dt.datetime)


@pytest.mark.parametrize(("fault", "seen"), [
    ("atp_drop", "OutOfSequence"), ("atp_corrupt", "CrcMismatch"),
    ("atp_duplicate", "Duplicate"), ("ack_lost", None), ("atp_drop:0@34", "OutOfSequence"),
    ("host_frame_lost", "HostFrameResent"), ("host_frame_lost:3@34", "HostFrameResent"),
    ("host_frame_lost@60", "HostFrameResent")])
def test_link_faults_are_injected_and_recovered(fault: str, seen: str | None) -> None:
    from libre_usb.transport.interface import open_transport

    clean, _ = read(VirtualReader("libre", seed=9, days=3), "binary")
    transport = open_transport(f"sim:libre?seed=9&days=3&faults={fault}")
    with Session(transport, timeout_ms=2000, protocol="binary") as session:
        dump = session.dump()
        recovered = dict(session.recovered)
    assert dump == clean
    injector = transport.device  # type: ignore[attr-defined]
    assert injector.injected, "the fault never happened"
    if seen is not None:
        assert recovered.get(seen), recovered
    if seen in ("OutOfSequence", "CrcMismatch"):  # a lost frame comes again
        assert injector.reader.binary_link.retransmitted > 0


@pytest.mark.parametrize("model", ["neo", "insulinx"])
def test_the_meter_event_log_is_read_and_kept_raw(model: str) -> None:
    reader = VirtualReader(model, seed=2, days=5)
    dump, _ = read(reader, "text")
    events = sorted((r for r in dump.records if isinstance(r, EventRecord)),
                    key=lambda r: r.record_id)
    assert "$event?" in reader.commands
    assert events and events == reader.content.meter_events
    for number, event in enumerate(events, start=1):
        assert event.event == "meter_event" and event.source == "$event?"
        assert event.record_id == number and event.local_time is None
        assert event.record_type == -1 and event.raw  # nothing decoded, every field kept


@pytest.mark.parametrize("answer", ["fail", "unknown", "silent"])
def test_a_meter_without_an_event_log_still_dumps(answer: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """An InsuLinx that answers $event? with CMD Fail!, rejects it as an unknown message
    (30 ..) or does not answer at all: the records are all there, no event records."""
    from libre_usb.protocol.frames import MessageType, build_report
    from libre_usb.protocol.text.reply import build_text_reply

    reader = VirtualReader("insulinx", seed=2, days=5)
    clean, _ = read(VirtualReader("insulinx", seed=2, days=5), "text")
    original = reader.write

    def write(report: bytes) -> None:
        if b"$event?" not in report:
            original(report)
            return
        reader.commands.append("$event?")
        if answer == "fail":
            reader._queue_text(build_text_reply(b"", ok=False))
        elif answer == "unknown":
            reader._queue.append(build_report(MessageType.UNKNOWN_MESSAGE_ERROR, b"\x85"))

    monkeypatch.setattr(reader, "write", write)
    transport = SimTransport(reader)
    with Session(transport, timeout_ms=300, protocol="text") as session:
        dump = session.dump()
    assert "$event?" in reader.commands
    assert not [r for r in dump.records if isinstance(r, EventRecord)]
    assert dump.records == tuple(r for r in clean.records if not isinstance(r, EventRecord))


def test_info_with_the_binary_protocol_shows_the_config_tables() -> None:
    import json

    from click.testing import CliRunner

    from libre_usb.cli import main

    run = CliRunner().invoke(main, ["info", "--json", "--device", "sim:libre?seed=1&days=2",
                                    "--protocol", "binary"])
    assert run.exit_code == 0, run.output
    settings = json.loads(run.stdout)["settings"]
    assert settings["target_range_high_mg_dl"] == {"field_id": 1133, "value": 180}
    assert settings["protocol"] == "binary"
    text = CliRunner().invoke(main, ["info", "--json", "--device", "sim:libre?seed=1&days=2"])
    assert "config" not in json.loads(text.stdout)["settings"]


def test_redact_covers_the_config_tables() -> None:
    from click.testing import CliRunner

    from libre_usb.cli import main

    reader = VirtualReader("libre", seed=4, days=3)
    content = reader.content
    secrets = {content.patient_name, content.patient_id, content.serial.encode()[:8].hex(),
               *(text for text in content.comments if len(text) >= 3)}
    args = ["dump", "--device", "sim:libre?seed=4&days=3", "--protocol", "binary"]
    plain = CliRunner().invoke(main, args).stdout
    assert all(secret in plain for secret in secrets)
    redacted = CliRunner().invoke(main, [*args, "--redact"])
    assert redacted.exit_code == 0
    for secret in secrets:
        assert secret not in redacted.stdout, secret
    assert "REDACTED-sensor-uid" in redacted.stdout and "FreeStyle Libre" in redacted.stdout


def test_a_shareable_transcript_of_the_binary_protocol_is_refused(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from libre_usb.cli import main

    out = tmp_path / "t.jsonl"
    run = CliRunner().invoke(main, ["dump", "--device", "sim:libre?days=1", "--protocol",
                                    "binary", "--record", str(out), "--redact", "-o",
                                    str(tmp_path / "d.json")])
    assert run.exit_code == 2 and "shareable transcript of the binary" in run.stderr
    assert not out.exists()


def test_a_replay_reads_the_way_the_recording_did(tmp_path: Any) -> None:
    import json

    from click.testing import CliRunner

    from libre_usb.cli import main

    # the Libre Pro reads without compression, the Libre with it (0x35 frames)
    for model, protocol in (("libre_pro", "binary"), ("libre_pro", "text"),
                            ("libre", "binary")):
        path = tmp_path / f"{model}-{protocol}.jsonl"
        first = CliRunner().invoke(main, ["dump", "--device", f"sim:{model}?days=1&seed=3",
                                          "--protocol", protocol, "--record", str(path),
                                          "-o", "-", "-q"])
        again = CliRunner().invoke(main, ["dump", "--device", f"replay:{path}", "-o", "-",
                                          "-q"])
        assert first.exit_code == again.exit_code == 0, again.output
        assert json.loads(first.stdout)["records"] == json.loads(again.stdout)["records"]


def test_a_dribbling_binary_reader_ends_within_the_deadline() -> None:
    """--deadline bounds every binary reply as it does every text reply: a reader sending a
    report every 20 ms never trips a 0.3 s timeout, and a 90-day table (thousands of
    reports) would take minutes; with a 1 s deadline the read ends in exit 5's error soon."""
    import time

    from libre_usb.errors import DeviceTimeout

    reader = VirtualReader("libre", seed=0, days=90, pace_ms=20)
    start = time.monotonic()
    with pytest.raises(DeviceTimeout, match="did not finish its reply to the binary command "
                                            "GET_DATABASE within 1 s"):
        with Session(SimTransport(reader), timeout_ms=300, deadline_s=1.0,
                     protocol="binary") as session:
            session.dump()
    assert time.monotonic() - start < 8


def test_binary_deadline_option_is_exit_5() -> None:
    from click.testing import CliRunner

    from libre_usb.cli import main

    result = CliRunner().invoke(main, ["dump", "-d", "sim:libre?pace_ms=20&days=30",
                                       "--protocol", "binary", "--timeout", "0.3",
                                       "--deadline", "0.5", "-q"])
    assert result.exit_code == 5, result.output
    assert "within 0.5 s" in result.stderr and "binary command" in result.stderr
    assert result.stderr.count("\n") == 1


def test_the_alarm_code_is_in_every_format(tmp_path: Any) -> None:
    """Which code means which alarm is inferred (docs/records.md), so every format keeps
    the code the reader stored next to the name."""
    import csv
    import json

    from click.testing import CliRunner

    from libre_usb.cli import main

    device = ["--device", "sim:libre?days=20&seed=1", "--protocol", "binary", "-q"]
    out = {}
    for fmt in ("json", "csv", "nightscout", "libreview-csv", "libreview"):
        path = tmp_path / f"dump.{fmt}"
        run = CliRunner().invoke(main, ["dump", *device, "-f", fmt, "-o", str(path)])
        assert run.exit_code == 0, run.output
        out[fmt] = path.read_text(encoding="utf-8")
    alerts = json.loads(out["json"])["records"]["alerts"]
    assert alerts and all("alarm_code" in r for r in alerts)
    rows = [r for r in csv.DictReader(out["csv"].splitlines()) if r["kind"] == "alert"]
    assert sorted((int(r["record_id"]), int(r["alarm_code"])) for r in rows) == sorted(
        (r["record_id"], r["alarm_code"]) for r in alerts)
    for fmt in ("nightscout", "libreview-csv"):
        assert out[fmt].count("alarm_code") == len(alerts), fmt
    upload = json.loads(out["libreview"])
    codes = upload["libreDump"]["alarmCodes"]
    named = [r for r in alerts if not r["alarm"].startswith("code_")]
    assert sorted((c["recordNumber"], c["alarmCode"]) for c in codes) == sorted(
        (r["record_id"], r["alarm_code"]) for r in named)
    left = [r for r in upload["libreDump"]["notInUpload"] if r.get("kind") == "alert"]
    assert len(codes) + len(left) == len(alerts)
