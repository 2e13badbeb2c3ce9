"""``capture:`` and ``libre-dump capture``: reader sessions decoded passively from captures.

Truth comes from data nobody here wrote: the real InsuLinx session Abbott's software ran
(OpenGlucose's UsbSnoop log) must give all 237 ``$result?`` records and match Abbott's own
export row by row (the oracle of tests/test_insulinx_capture.py); its other captures must
show the setter commands the software sent. The same real reports are then put into every
container we read (pcapng and pcap, usbmon 189/220, USBPcap 249, written by tests/usbcaps.py
and cross-checked with tshark when it is installed) and must decode to the very same dump.
Libre 2 sessions: freestyle-hid's own client (an independent implementation of the
handshake and the encrypted transport) talks to the virtual Libre 2 while we capture, and
our passive decoder must derive its session keys and read what it read.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from captures import DATA, INSULINX, need, usbsnoop_reports
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_insulinx_capture import _by_id, _check_against_export, _export
from usbcaps import (
    INSULINX_CONFIG,
    INSULINX_CONFIG_WITH_OUT,
    INSULINX_DEVICE,
    device_descriptor,
    pcap_bytes,
    pcapng_bytes,
    usbmon_session,
    usbpcap_session,
)

from fuzz.targets import run_target, seeds
from libre_usb.cli import main
from libre_usb.errors import InputError, LibreDumpError, MissingExtra
from libre_usb.output import export
from libre_usb.protocol.frames import build_report
from libre_usb.protocol.observer import Observer
from libre_usb.protocol.text.reply import build_text_reply
from libre_usb.reader.passive import PassiveSession
from libre_usb.reader.session import Session
from libre_usb.transport.capture import read_capture, read_capture_bytes
from libre_usb.transport.interface import Transport
from libre_usb.transport.interfaces.capture import CaptureTransport
from libre_usb.transport.interfaces.sim import SimTransport
from libre_usb.transport.transcript import RecordingTransport

KEYS_MISSING = ("freestyle-keys is not installed: the Libre 2 capture tests need the master "
                "keys (pip install 'libre-dump[libre2]'); not counted as coverage")


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _json(dump: Any) -> str:
    return export.render(dump, "json")


# --- the real InsuLinx session --------------------------------------------------------------


@pytest.fixture(scope="module")
def plug() -> Path:
    return need(INSULINX / "plug.usbsnoop.log")


@pytest.fixture(scope="module")
def plug_reports(plug: Path) -> list[tuple[str, bytes, float]]:
    return [(d, r, i * 0.004) for i, (d, r) in enumerate(usbsnoop_reports(plug))]


@pytest.fixture(scope="module")
def plug_session(plug: Path) -> PassiveSession:
    return PassiveSession(CaptureTransport.open(str(plug)))


def test_real_insulinx_session_decodes_to_abbotts_export(plug_session: PassiveSession) -> None:
    assert plug_session.model is not None and plug_session.model.name == "insulinx"
    assert plug_session.transport.product_id == 0x3450  # from the captured device descriptor
    dump = plug_session.dump()
    ours = _by_id(dump.records)
    vendor = _export()
    assert len(ours) == 237
    for number, record in ours.items():
        _check_against_export(record, vendor[number])
    device = dump.device
    assert (device.serial, device.software_version, device.unit) == ("JAGT241-U6242", "1.40",
                                                                     "mg/dL")
    assert device.patient_name == "Xavier Claessens" and device.patient_id == "iddupatient"


def test_passive_decode_equals_our_session_replaying_the_same_capture(
        plug_session: PassiveSession, plug_reports: list[tuple[str, bytes, float]],
        tmp_path: Path) -> None:
    """What the vendor read (passive) is what our own client gets from the same replies
    (replay), except that the passive dump also keeps the replies our client never asks
    for (the vendor read the theme bitmap with $custthm?)."""
    path = tmp_path / "plug.jsonl"
    path.write_text("\n".join(plug_session.transcript_lines()) + "\n")
    from libre_usb.transport.transcript import ReplayTransport

    with Session(ReplayTransport.from_file(path), "insulinx", timeout_ms=300) as session:
        replayed = session.dump()
    passive = plug_session.dump()
    assert passive.records == replayed.records
    extra = dict(passive.device.replies).keys() - dict(replayed.device.replies).keys()
    assert extra == {"$custthm?"}
    assert dict(replayed.device.replies).items() <= dict(passive.device.replies).items()


def test_conversation_listing_of_the_plug_capture(plug: Path) -> None:
    code, out, err = _cli("capture", str(plug))
    assert code == 0, err
    assert "FreeStyle InsuLinx (from the USB product id)" in out
    for expected in ("04 pre-init query", "34 pre-init reply 0c", "06 serial JAGT241-U6242",
                     "35 version 1.40", "71 01 ready", "$serlnum? (as 0x20)",
                     "$serlnum?: unanswered", "$serlnum? [retransmission]",
                     "22 keepalive 03", "$result?",
                     "CMD OK (", "checksum 00000324 ok: JAGT241-U6242",
                     "237 records, trailer 237,0006FEC2 ok"):
        assert expected in out, expected
    assert "summary: 41 text commands (40 ok, 1 unanswered); 1 retransmitted; 13 keepalives" \
        in out


@pytest.mark.parametrize(("name", "setters"), [
    ("sync-time", ["$date,8,27,14", "$time,13,40"]),
    ("set-12h-clock", ["$clktyp,1"]),
    ("set-built-in-img", ["$actthm,5"]),
    ("set-custom-img", ["$actthm,0", "$custthm (+834 data lines)"]),
])
def test_the_other_captures_show_their_setter_commands(name: str, setters: list[str]) -> None:
    code, out, err = _cli("capture", str(need(INSULINX / f"{name}.usbsnoop.log")))
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.startswith("commands that change the reader"))
    assert line == "commands that change the reader: " + ", ".join(setters)
    for command in setters:
        assert f"> {command.split(' (')[0]}" in out
    assert "CMD Fail" not in out and "BAD CHECKSUM" not in out


def test_a_capture_without_descriptors_needs_the_model(tmp_path: Path) -> None:
    log = str(need(INSULINX / "set-built-in-img.usbsnoop.log"))
    code, out, err = _cli("info", "--device", f"capture:{log}")
    assert code == 2 and "--model" in err and len(err.strip().splitlines()) == 1
    code, out, err = _cli("info", "--device", f"capture:{log}", "--model", "insulinx")
    assert code == 0, err
    assert "Clock:          2014-08-27T13:55:00" in out


def test_a_real_usbtrace_export_of_an_optium_neo() -> None:
    """USBTrace's HTML export (a public capture of Abbott's software and a FreeStyle Optium
    Neo): the $time? command sent by SET_REPORT, logged twice by USBTrace (as the URB and
    as the HID request of the same IRP, taken once), and the reader's reply."""
    path = need(DATA / "glukose-drivers-optium-neo" / "usb_log.excerpt.html")
    capture = read_capture(path)
    assert capture.format == "usbtrace"
    device = capture.select()
    assert [(d, r[:2]) for d, r, _ in device.reports] == [("out", b"\x60\x08"),
                                                           ("in", b"\x60\x1e")]
    code, out, err = _cli("capture", str(path))
    assert code == 0, err
    assert "> $time?" in out and "CMD OK (1 reports) checksum 0000010C ok: 01,44" in out
    assert "summary: 1 text commands (1 ok)" in out


# --- the same real session in every container ----------------------------------------------


def _containers(reports: list[tuple[str, bytes, float]]) -> dict[str, bytes]:
    descriptors = (INSULINX_DEVICE, INSULINX_CONFIG)
    return {
        "usbmon220.pcapng": pcapng_bytes(usbmon_session(reports, descriptors=descriptors),
                                         220, extra_interfaces=[1]),
        "usbmon189.pcap": pcap_bytes(usbmon_session(reports, descriptors=descriptors,
                                                    mmapped=False), 189),
        "usbmon220-intout.pcap": pcap_bytes(usbmon_session(
            reports, descriptors=(INSULINX_DEVICE, INSULINX_CONFIG_WITH_OUT),
            interrupt_out=True), 220),
        "usbpcap.pcapng": pcapng_bytes(usbpcap_session(reports, descriptors=descriptors), 249),
        "usbpcap-onestage.pcap": pcap_bytes(usbpcap_session(
            reports, descriptors=descriptors, split_data_stage=False), 249),
    }


@pytest.fixture(scope="module")
def containers(plug_reports: list[tuple[str, bytes, float]],
               tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("containers")
    paths = {}
    for name, data in _containers(plug_reports).items():
        paths[name] = root / name
        paths[name].write_bytes(data)
    return paths


@pytest.mark.parametrize("name", ["usbmon220.pcapng", "usbmon189.pcap",
                                  "usbmon220-intout.pcap", "usbpcap.pcapng",
                                  "usbpcap-onestage.pcap"])
def test_every_container_decodes_to_the_same_dump(name: str, containers: dict[str, Path],
                                                   plug_session: PassiveSession) -> None:
    session = PassiveSession(CaptureTransport.open(str(containers[name])))
    assert session.transport.device.address == "1.5"
    assert session.transport.device.hid_interfaces == (
        {0: {0x81, 0x01}} if "intout" in name else {0: {0x81}})
    assert _json(session.dump()) == _json(plug_session.dump())


@pytest.mark.skipif(shutil.which("tshark") is None,
                    reason="tshark (Wireshark) is not installed: the independent check of "
                    "the test capture files did not run")
@pytest.mark.parametrize("name", ["usbmon220.pcapng", "usbmon189.pcap", "usbpcap.pcapng",
                                  "usbpcap-onestage.pcap"])
def test_tshark_reads_the_same_reports_from_the_test_captures(
        name: str, containers: dict[str, Path]) -> None:
    """Wireshark's dissectors (an independent reader of usbmon and USBPcap) find the same
    device ids and the same HID reports, in the same order, as we do."""
    fields = subprocess.run(
        ["tshark", "-r", str(containers[name]), "-Y", "usb.data_fragment || usbhid.data "
         "|| usb.idProduct", "-T", "fields", "-e", "usb.src", "-e", "usb.data_fragment",
         "-e", "usbhid.data", "-e", "usb.idProduct"],
        capture_output=True, text=True, check=True, timeout=120).stdout.splitlines()
    theirs = []
    product = None
    for line in fields:
        src, fragment, data, pid = ([*line.split("\t"), "", "", "", ""])[:4]
        if pid:
            product = int(pid, 16)
        elif fragment:
            theirs.append(("out" if src == "host" else "in", bytes.fromhex(fragment)))
        elif data:
            theirs.append(("out" if src == "host" else "in", bytes.fromhex(data)))
    device = read_capture(containers[name]).select()
    assert product == device.product_id == 0x3450
    assert theirs == [(d, r) for d, r, _ in device.reports]
    assert len(theirs) == 1246


# --- transcripts ---------------------------------------------------------------------------


def test_transcript_conversion_replays_and_decodes(plug: Path, tmp_path: Path,
                                                    plug_session: PassiveSession) -> None:
    out = tmp_path / "session.jsonl"
    code, text, err = _cli("capture", "-q", str(plug), "--transcript", str(out))
    assert code == 0, err
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines[0]["dir"] == "meta" and lines[0]["product_id"] == 0x3450
    assert sum(1 for x in lines if x["dir"] in ("in", "out")) == 1246
    # the transcript is read passively by capture: and by our strict player
    for device in (f"capture:{out}", f"replay:{out}"):
        code, text, err = _cli("dump", "--device", device, "--model", "insulinx", "-q")
        assert code == 0, err
        assert len(json.loads(text)["records"]["glucose"]) == 227


def test_a_transcript_of_another_client_decodes_without_our_commands(tmp_path: Path) -> None:
    """A passive transcript need not hold the commands our client sends: a client that
    only read $history? gives just those records (replay: would refuse our $sn?)."""
    transport = SimTransport.from_uri(_sim_uri("libre"))
    recorder = RecordingTransport(transport, tmp_path / "other.jsonl", model="libre")
    session = Session(recorder, "libre")
    session.open()
    history = session.records("$history?", "libre_history")
    recorder.save()
    code, text, err = _cli("dump", "--device", f"capture:{tmp_path / 'other.jsonl'}", "-q")
    assert code == 0, err
    doc = json.loads(text)
    assert len(doc["records"]["history"]) == len(history) > 10
    assert doc["records"].get("scans", []) == []
    code, _, err = _cli("dump", "--device", f"replay:{tmp_path / 'other.jsonl'}", "-q")
    assert code == 4 and "no unused exchange" in err


def _sim_uri(model: str) -> Any:
    from libre_usb.transport.interface import parse_uri

    return parse_uri(f"sim:{model}?seed=4&days=2")


# --- our own live sessions, captured: byte-for-byte ------------------------------------------


class _Tap(Transport):
    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.uri = inner.uri
        self.product_id = inner.product_id
        self.reports: list[tuple[str, bytes, float]] = []

    def write(self, report: bytes) -> None:
        self.reports.append(("out", bytes(report), len(self.reports) * 0.001))
        self.inner.write(report)

    def read(self, timeout_ms: int) -> bytes | None:
        data = self.inner.read(timeout_ms)
        if data is not None:
            self.reports.append(("in", bytes(data), len(self.reports) * 0.001))
        return data


def _live(model: str) -> tuple[str, list[tuple[str, bytes, float]]]:
    """``libre-dump dump`` of a virtual reader, and the reports of the same session
    (the virtual reader is deterministic for a seed) as a USB capture would hold them."""
    tap = _Tap(SimTransport.from_uri(_sim_uri(model)))
    with Session(tap, model) as session:
        session.dump()
    code, text, err = _cli("dump", "--device", str(_sim_uri(model)), "-q")
    assert code == 0, err
    return text, tap.reports


@pytest.mark.parametrize("model", ["libre", "neo", "insulinx", "libre2"])
def test_usbmon_capture_of_our_dump_decodes_to_the_same_json(model: str,
                                                            tmp_path: Path) -> None:
    if model == "libre2":
        pytest.importorskip("freestyle_keys.libre2", reason=KEYS_MISSING)
    ours, reports = _live(model)
    pid = {"libre": 0x3650, "neo": 0x3850, "insulinx": 0x3460, "libre2": 0x3950}[model]
    assert _dump_of_usbmon_capture(reports, pid, tmp_path / "live.pcapng") == ours


def write_usbmon_capture(path: Path, reports: list[tuple[str, bytes, float]],
                         pid: int) -> None:
    """``reports`` as a usbmon pcapng (link type 220) of a reader with product id ``pid``,
    its descriptors first, output on an interrupt OUT endpoint."""
    path.write_bytes(pcapng_bytes(usbmon_session(
        reports, descriptors=(device_descriptor(0x1A61, pid), INSULINX_CONFIG_WITH_OUT),
        interrupt_out=True), 220))


def _dump_of_usbmon_capture(reports: list[tuple[str, bytes, float]], pid: int,
                            path: Path) -> str:
    """``reports`` written as a usbmon pcapng with the reader's descriptors, then dumped
    through ``capture:``."""
    write_usbmon_capture(path, reports, pid)
    code, text, err = _cli("dump", "--device", f"capture:{path}", "-q")
    assert code == 0, err
    return text


# --- Libre 2: freestyle-hid's client, captured ----------------------------------------------


class _FshHandle:
    """freestyle-hid's HidWrapper stand-in that also records the wire."""

    def __init__(self, reader: Any, wire: list[tuple[str, bytes, float]]) -> None:
        self.reader, self.wire = reader, wire

    def write(self, report: bytes) -> int:
        self.wire.append(("out", bytes(report[1:]), len(self.wire) * 0.001))
        self.reader.write(bytes(report[1:]))
        return len(report)

    def read(self, size: int = 64) -> bytes:
        data = self.reader.read(2000)
        assert data, "the virtual reader sent nothing"
        self.wire.append(("in", bytes(data), len(self.wire) * 0.001))
        return bytes(data)


@pytest.fixture(scope="module")
def fsh_capture() -> Iterator[tuple[list[tuple[str, bytes, float]], dict[str, list[Any]]]]:
    keys = pytest.importorskip("freestyle_keys.libre2", reason=KEYS_MISSING)
    fsh = pytest.importorskip("freestyle_hid._session", reason="freestyle-hid (the "
                              "independent client) is not installed")
    from libre_usb.simulator import VirtualReader

    reader = VirtualReader("libre2", seed=7, days=2)
    wire: list[tuple[str, bytes, float]] = []
    with mock.patch.object(fsh.HidWrapper, "open",
                           staticmethod(lambda *a: _FshHandle(reader, wire))):
        session = fsh.Session(0x3950, None, 0x60, 0x60, encoding="utf-8", encrypted=True)
    with mock.patch.object(fsh, "libre2_keys", keys, create=True):
        session.connect()
        rows = {command: [r for r in session.query_multirecord(command.encode()) if r]
                for command in ("$history?", "$arresult?")}
        rows["$sn?"] = [session.send_text_command(b"$sn?").strip()]
    yield wire, rows


def test_freestyle_hid_session_is_decrypted_passively(
        fsh_capture: tuple[list[tuple[str, bytes, float]], dict[str, list[Any]]],
        tmp_path: Path) -> None:
    wire, rows = fsh_capture
    path = tmp_path / "fsh.pcapng"
    write_usbmon_capture(path, wire, 0x3950)
    session = PassiveSession(CaptureTransport.open(str(path)))
    conv = session.conversation
    assert conv.encrypted and conv.decrypted and conv.undecrypted == 0 and conv.malformed == 0
    assert conv.handshake.state == "accepted" and conv.handshake.host_nonce is not None
    replies = session.replies()
    assert [r.decode() for r in replies["$sn?"].lines] == rows["$sn?"]
    import csv

    for command in ("$history?", "$arresult?"):
        lines = replies[command].lines[:-1]
        assert [next(csv.reader([x.decode()])) for x in lines] == rows[command]
        assert len(lines) > 10
    code, out, err = _cli("capture", str(path))
    assert code == 0, err
    for step in ("14 01 11 start authorize", "33 10 16 challenge, reader nonce",
                 "14 1a 17 challenge response: MAC ok, host nonce",
                 "33 22 18 challenge accepted: MAC ok, session keys derived",
                 "encryption: Libre 2/3 session; handshake captured"):
        assert step in out, step


def test_encrypted_capture_without_the_handshake_says_so(
        fsh_capture: tuple[list[tuple[str, bytes, float]], dict[str, list[Any]]],
        tmp_path: Path) -> None:
    wire, _ = fsh_capture
    start = next(i for i, (d, r, _) in enumerate(wire) if d == "out" and r[0] == 0x60)
    path = tmp_path / "late.pcapng"
    write_usbmon_capture(path, wire[start:], 0x3950)
    code, out, err = _cli("capture", "-q", str(path))
    assert code == 0, err
    assert "NOT decrypted" in out and "not the encryption handshake" in out
    code, _, err = _cli("dump", "--device", f"capture:{path}")
    assert code == 2 and "cannot be decrypted" in err and "handshake" in err


def test_encrypted_capture_without_the_keys_names_the_extra(
        fsh_capture: tuple[list[tuple[str, bytes, float]], dict[str, list[Any]]],
        tmp_path: Path) -> None:
    wire, _ = fsh_capture
    path = tmp_path / "fsh.jsonl"
    path.write_text("\n".join(json.dumps({"dir": d, "data": r.hex(), "t": t})
                              for d, r, t in wire) + "\n")

    def missing() -> Any:
        raise MissingExtra("reading a Libre 2/3 reader needs the encryption keys: "
                           "pip install 'libre-dump[libre2]'")

    with mock.patch("libre_usb.reader.passive.load_master_keys", missing):
        code, out, err = _cli("capture", "-q", str(path))
        assert code == 0, err
        assert "NOT decrypted" in out and "libre2" in out
        code, _, err = _cli("dump", "--device", f"capture:{path}", "--model", "libre2")
        assert code == 2 and "libre2" in err


def test_a_broken_record_reply_in_the_capture_is_an_error(tmp_path: Path) -> None:
    """A captured $history? reply that fails its checksum: what the client read cannot be
    known, so the dump fails (exit 4) instead of silently leaving the records out."""
    _, reports = _live("libre")
    at = next(i for i, (d, r, _) in enumerate(reports) if d == "out" and b"$history?" in r)
    direction, report, t = reports[at + 2]
    assert direction == "in" and report[0] == 0x60
    flipped = report[:10] + bytes([report[10] ^ 0x01]) + report[11:]
    reports[at + 2] = (direction, flipped, t)
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(json.dumps({"dir": d, "data": r.hex(), "t": t})
                              for d, r, t in reports) + "\n")
    code, _, err = _cli("dump", "--device", f"capture:{path}", "--model", "libre", "-q")
    assert code == 4 and "$history?" in err and "checksum" in err, err
    code, out, err = _cli("capture", "-q", str(path))
    assert code == 0 and "(1 checksum" in out


# --- several devices -----------------------------------------------------------------------


def test_several_devices_are_listed_and_one_is_selected(
        plug_reports: list[tuple[str, bytes, float]], tmp_path: Path) -> None:
    keyboard = [("in", bytes(8), 0.5)]
    records = (usbmon_session(plug_reports[:40], device=5,
                              descriptors=(INSULINX_DEVICE, INSULINX_CONFIG))
               + usbmon_session(keyboard, device=7, descriptors=(
                   device_descriptor(0x046D, 0xC31C), INSULINX_CONFIG))
               + usbmon_session(plug_reports[:40], device=9, bus=2,
                                descriptors=(INSULINX_DEVICE, INSULINX_CONFIG)))
    path = tmp_path / "three.pcapng"
    path.write_bytes(pcapng_bytes(records, 220))
    code, out, err = _cli("capture", str(path))
    assert code == 2 and "--select" in err
    assert "1.5  1a61:3450" in out and "2.9  1a61:3450" in out and "1.7  046d:c31c" in out
    code, out, err = _cli("capture", str(path), "--select", "2.9")
    assert code == 0 and "device 2.9: FreeStyle InsuLinx" in out
    code, out, err = _cli("info", "--device", f"capture:{path}?select=1.5")
    assert code == 0 and "JAGT241-U6242" in out
    code, out, err = _cli("capture", str(path), "--select", "3.3")
    assert code == 2 and "no device 3.3" in err
    # with one Abbott reader among other devices, it is chosen without --select
    path.write_bytes(pcapng_bytes(records[: len(records) - len(usbmon_session(
        plug_reports[:40], descriptors=(INSULINX_DEVICE, INSULINX_CONFIG)))], 220))
    assert read_capture(path).select().address == "1.5"


# --- hostile captures ----------------------------------------------------------------------


def _pcapng_header() -> bytes:
    return pcapng_bytes([], 220)


def _hostile() -> dict[str, bytes]:
    good = pcapng_bytes(usbmon_session([("in", bytes(64), 0.0)]), 220)
    head = _pcapng_header()
    pcap_good = pcap_bytes(usbmon_session([("in", bytes(64), 0.0)]), 220)
    huge_block = head + (6).to_bytes(4, "little") + (0xFFFFFFF0).to_bytes(4, "little") + bytes(64)
    return {
        "empty": b"",
        "random": bytes(range(256)) * 8,
        "truncated pcapng": good[:-7],
        "truncated pcap": pcap_good[:-5],
        "huge pcapng block": huge_block,
        "huge pcap record": pcap_good[:24] + (0).to_bytes(8, "little")
        + (0x7FFFFFFF).to_bytes(4, "little") * 2 + bytes(32),
        "bogus link type pcap": pcap_bytes([(0.0, bytes(80))], 1),
        "bogus link type pcapng": pcapng_bytes([(0.0, bytes(80))], 147),
        "usbmon record too short": pcapng_bytes([(0.0, bytes(20))], 220),
        "usbpcap header length impossible": pcapng_bytes([(0.0, (5000).to_bytes(2, "little")
                                                          + bytes(40))], 249),
        "snoop without urbs": b"UsbSnoop - nothing\n" * 10,
        "snoop huge line": b">>> URB 1 going down >>>\n" + b"x" * (2 * 1024 * 1024),
        "transcript bad hex": b'{"dir": "in", "data": "zz", "t": 0}\n',
        "usbtrace without requests": b"<html><title>SysNucleus USBTrace</title></html>",
    }


@pytest.mark.parametrize("name", sorted(_hostile()))
def test_hostile_captures_are_one_line_errors(name: str, tmp_path: Path) -> None:
    path = tmp_path / "hostile"
    path.write_bytes(_hostile()[name])
    with pytest.raises(InputError) as info:
        read_capture(path)
    assert "\n" not in str(info.value)
    code, _, err = _cli("capture", str(path))
    assert code == 2 and err.startswith("libre-dump: error: ") and err.count("\n") == 1, err
    code, _, err = _cli("dump", "--device", f"capture:{path}", "-o", str(tmp_path / "o"))
    assert code == 2 and not (tmp_path / "o").exists()


def test_a_huge_claimed_length_costs_no_memory() -> None:
    import tracemalloc

    data = _hostile()["huge pcapng block"]
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="claims"):
            read_capture_bytes(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024


def test_too_many_reports_are_refused() -> None:
    records = usbmon_session([("in", bytes(64), i * 0.001) for i in range(50)])
    with pytest.raises(InputError, match="more than 20 HID reports"):
        read_capture_bytes(pcap_bytes(records, 220), max_reports=20)


def test_observer_never_raises_on_garbage() -> None:
    observer = Observer()
    for i in range(300):
        observer.feed("out" if i % 3 == 0 else "in", bytes([(i * 37) % 256]) * (i % 70), i)
    conv = observer.finish()
    assert conv.malformed + conv.stray + conv.undecrypted > 0


# --- diff: what the vendor software read vs what it uploaded ---------------------------------


def test_diff_an_upload_against_the_capture_of_its_own_read(tmp_path: Path) -> None:
    """The captured client read the reader; its upload left one scan out, added an entry it
    never read, and carried the serial and patient name it read."""
    from libre_usb.output.libreview import build_upload

    tap = _Tap(SimTransport.from_uri(_sim_uri("libre")))
    with Session(tap, "libre") as session:
        session.dump()
    capture = tmp_path / "vendor.pcapng"
    capture.write_bytes(pcapng_bytes(usbmon_session(
        tap.reports, descriptors=(device_descriptor(0x1A61, 0x3650), INSULINX_CONFIG)), 220))
    read = PassiveSession(CaptureTransport.open(str(capture))).dump()
    body = build_upload(read, tz="UTC", redact=False)
    log = body["DeviceData"]["measurementLog"]
    scans = log["unscheduledContinuousGlucoseEntries"]
    dropped = scans.pop(0)
    invented = json.loads(json.dumps(scans[0]))
    invented["recordNumber"] = 999999
    invented["timestamp"] = "2001-01-01T00:00:00.000+00:00"
    invented["extendedProperties"]["factoryTimestamp"] = "2001-01-01T00:00:00.000Z"
    scans.append(invented)
    body["DeviceData"]["header"]["device"]["serialNumber"] = read.device.serial
    upload = tmp_path / "upload.json"
    upload.write_text(json.dumps(body))
    code, out, err = _cli("diff", str(upload), "--device", f"capture:{capture}", "-f", "json",
                          "--tz", "UTC")
    assert code == 1, err
    report = json.loads(out)
    text = json.dumps(report)
    assert str(dropped["recordNumber"]) in text and "999999" in text
    assert "this reader's serial" in text and read.device.serial in text


# --- properties (hypothesis) and the fuzz seeds ----------------------------------------------

_SETTINGS = settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(st.binary(max_size=4096))
def test_any_bytes_are_a_capture_or_an_input_error(data: bytes) -> None:
    try:
        read_capture_bytes(data, max_reports=1000)
    except InputError:
        pass


@_SETTINGS
@given(st.sampled_from(range(4)), st.data())
def test_mutated_captures_are_read_or_refused(which: int, data: st.DataObject) -> None:
    seed = bytearray(seeds("capture")[which])
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(seed) - 1))
        seed[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(seed)))
    try:
        read_capture_bytes(bytes(seed[:cut]), max_reports=1000)
    except LibreDumpError:
        pass


@_SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["in", "out"]), st.binary(max_size=70)),
                max_size=60))
def test_the_observer_takes_any_reports(reports: list[tuple[str, bytes]]) -> None:
    observer = Observer()
    for i, (direction, report) in enumerate(reports):
        observer.feed(direction, report, float(i))
    conv = observer.finish()
    filed = len(conv.initial) + sum(len(e.reports) for e in conv.exchanges)
    assert filed == len(reports)  # every report is kept somewhere, none twice
    run_target("observer", b"".join(bytes([(0x80 if d == "out" else 0) | len(r) % 66]) + r
                                    for d, r in reports))


_LINE = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


@_SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["$sn?", "$swver?", "$history?", "$ptname?"]),
                          st.lists(_LINE, max_size=5)), min_size=1, max_size=6),
       st.sampled_from(["usbmon", "usbpcap"]), st.booleans())
def test_any_clear_session_in_any_container_gives_back_its_replies(
        exchanges: list[tuple[str, list[bytes]]], link: str, keepalives: bool) -> None:
    """Random commands and replies, cut into reports, put in a capture: the passive
    decoder gives back exactly each reply's message with an ok checksum verdict."""
    reports: list[tuple[str, bytes, float]] = []
    for command, lines in exchanges:
        reports.append(("out", build_report(0x60, command.encode()), 0.0))
        stream = build_text_reply(b"".join(line + b"\r\n" for line in lines))
        for at in range(0, len(stream), 62):
            reports.append(("in", build_report(0x60, stream[at : at + 62]), 0.0))
            if keepalives:
                reports.append(("in", build_report(0x22, b"\x05"), 0.0))
    if link == "usbmon":
        blob = pcap_bytes(usbmon_session(reports), 220)
    else:
        blob = pcapng_bytes(usbpcap_session(reports), 249)
    device = read_capture_bytes(blob).select()
    observer = Observer(encrypted=False)
    for direction, report, t in device.reports:
        observer.feed(direction, report, t)
    texts = observer.finish().text_exchanges()
    assert [e.request for e in texts] == [c for c, _ in exchanges]
    for exchange, (_, lines) in zip(texts, exchanges, strict=True):
        assert exchange.status == "ok" and exchange.reply is not None
        assert exchange.reply.message == b"".join(line + b"\r\n" for line in lines)


def test_the_fuzz_seeds_decode() -> None:
    for seed in seeds("capture"):
        device = read_capture_bytes(seed).select()
        observer = Observer(encrypted=False)
        for direction, report, t in device.reports:
            observer.feed(direction, report, t)
        (exchange,) = observer.finish().text_exchanges()
        assert exchange.status == "ok" and exchange.reply is not None
        assert exchange.reply.lines == (b"JCMV123-45678",)


@_SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["in", "out"]), st.binary(min_size=64, max_size=64)),
                max_size=40))
# a text command, a stray report, then a line that is no command: not a data line of the
# first (hypothesis found the transcript moving it ahead of the stray report)
@example([("out", b" " + bytes(63)), ("out", bytes(64)), ("out", b" " + bytes(63))])
def test_a_converted_transcript_holds_every_captured_report(
        reports: list[tuple[str, bytes]]) -> None:
    """--transcript keeps every report of the capture (each direction's reports in their
    captured order; replies may move up to the request they answer)."""
    blob = pcap_bytes(usbmon_session([(d, r, float(i)) for i, (d, r) in enumerate(reports)]),
                      220)
    capture = read_capture_bytes(blob)
    if not reports:
        return
    session = PassiveSession(CaptureTransport(capture, capture.select()), "libre")
    lines = session.transcript_lines()
    back = read_capture_bytes("\n".join(lines).encode(), max_reports=1000)
    got = back.devices["transcript"].reports
    for direction in ("in", "out"):
        assert [r for d, r, _ in got if d == direction] == [
            r for d, r in reports if d == direction]


def test_an_encrypted_capture_converts_to_a_transcript_that_still_decrypts(
        fsh_capture: tuple[list[tuple[str, bytes, float]], dict[str, list[Any]]],
        tmp_path: Path) -> None:
    wire, rows = fsh_capture
    path = tmp_path / "fsh.pcapng"
    write_usbmon_capture(path, wire, 0x3950)
    out = tmp_path / "fsh.jsonl"
    code, _, err = _cli("capture", "-q", str(path), "--transcript", str(out))
    assert code == 0, err
    session = PassiveSession(CaptureTransport.open(str(out)))
    assert session.conversation.decrypted
    assert [r.decode() for r in session.replies()["$sn?"].lines] == rows["$sn?"]


# --- binary database sessions (the binary protocol, issue 12) ---------------------------------


def _live_binary(model: str, faults: str = "") -> tuple[str, list[tuple[str, bytes, float]]]:
    """``dump --protocol binary`` of a virtual reader, and the reports of the same session."""
    uri = f"sim:{model}?seed=4&days=2" + (f"&faults={faults}" if faults else "")
    from libre_usb.transport.interface import parse_uri

    tap = _Tap(SimTransport.from_uri(parse_uri(uri)))
    with Session(tap, model, protocol="binary") as session:
        session.dump()
    code, text, err = _cli("dump", "--device", uri, "--protocol", "binary", "-q")
    assert code == 0, err
    return text, tap.reports


@pytest.mark.parametrize(("model", "pid"), [("libre", 0x3650), ("libre_pro", 0x3670)])
def test_binary_session_capture_decodes_to_the_same_json(model: str, pid: int,
                                                        tmp_path: Path) -> None:
    ours, reports = _live_binary(model)
    path = tmp_path / "binary.pcapng"
    assert _dump_of_usbmon_capture(reports, pid, path) == ours
    code, out, err = _cli("capture", str(path))
    assert code == 0, err
    for step in ("binary command GET_DB_SCHEMA", "binary command GET_DATABASE 00",
                 "binary reply to GET_DATABASE:", "binary reply to GET_CFG_DATA: 1 frames"):
        assert step in out, step


@pytest.mark.parametrize("fault", ["atp_corrupt", "atp_duplicate", "host_frame_lost"])
def test_binary_link_trouble_in_a_capture_is_shown_and_recovered(fault: str,
                                                                 tmp_path: Path) -> None:
    """A frame with a bad CRC (asked for again), sent twice, or a host frame the reader
    missed (sent again by the host): the listing shows it, and the records are those the
    client ended up with."""
    ours, reports = _live_binary("libre", fault)
    path = tmp_path / "trouble.jsonl"
    path.write_text("\n".join([json.dumps({"dir": "meta", "product_id": 0x3650})]
                              + [json.dumps({"dir": d, "data": r.hex(), "t": t})
                                 for d, r, t in reports]) + "\n")
    code, out, err = _cli("capture", str(path))
    assert code == 0, err
    shown = {"atp_corrupt": "binary CRC error", "atp_duplicate": "binary retransmitted frame",
             "host_frame_lost": "binary retransmitted frame"}
    assert shown[fault] in out
    code, text, err = _cli("dump", "--device", f"capture:{path}", "-q")
    assert code == 0, err
    assert json.loads(text)["records"] == json.loads(ours)["records"]


@pytest.mark.parametrize("compression", [True, False])
def test_a_binary_capture_says_whether_the_client_asked_for_compression(
        compression: bool, tmp_path: Path) -> None:
    """``compression`` in the settings is what the captured client asked for with
    SET_COMPRESSION (on or off), and the records are the same either way."""
    from libre_usb.transport.interface import parse_uri

    tap = _Tap(SimTransport.from_uri(parse_uri("sim:libre?seed=4&days=1")))
    with Session(tap, "libre", protocol="binary", compression=compression) as session:
        live = session.dump()
    assert live.device.settings["compression"] is compression
    path = tmp_path / "binary.pcapng"
    write_usbmon_capture(path, tap.reports, 0x3650)
    read = PassiveSession(CaptureTransport.open(str(path))).dump()
    assert read.device.settings["compression"] is compression
    assert read.records == live.records
