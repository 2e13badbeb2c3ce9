"""Fuzz targets: each takes arbitrary bytes and drives one parser of untrusted input.

A target returns normally or raises a documented error (a subclass of
:class:`libre_usb.errors.LibreDumpError`); anything else is a crash. Some targets also
check a property and raise :class:`PropertyFailed` when it does not hold (e.g. a valid
reply, however it is chunked, must assemble to exactly its message).

The same functions are used by the atheris harness (``python -m fuzz``) and by
``tests/test_fuzz_regressions.py``, which replays the inputs kept in ``tests/regressions``.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterator

from libre_usb.errors import LibreDumpError
from libre_usb.model import DeviceInfo, Dump
from libre_usb.output import export
from libre_usb.protocol.crypto.link import SessionCipher
from libre_usb.protocol.frames import describe, parse_report
from libre_usb.protocol.text.records import PARSERS, parse_lines
from libre_usb.protocol.text.reply import (
    TextReplyAssembler,
    build_multirecord,
    build_text_reply,
    byte_sum,
    parse_multirecord,
)
from libre_usb.transport.transcript import ReplayTransport

__all__ = ["ALLOWED", "MAX_LEN", "TARGETS", "PropertyFailed", "run_target", "seeds",
           "source_of"]

#: the only exceptions a target may raise
ALLOWED: tuple[type[BaseException], ...] = (LibreDumpError,)

#: fixed keys for the cipher target (the MAC check is what is fuzzed, not the keys)
_ENC_KEY = 0x0123456789ABCDEF0011223344556677
_MAC_KEY = 0x77665544332211000FEDCBA987654321


class PropertyFailed(AssertionError):
    """A target's property did not hold (a crash, like an unexpected exception)."""


def _chunks(data: bytes, key: bytes) -> Iterator[bytes]:
    """Split ``data`` into pieces of 1..62 bytes whose sizes come from ``key``."""
    sizes = hashlib.sha256(key).digest()
    at = 0
    index = 0
    while at < len(data):
        size = 1 + sizes[index % len(sizes)] % 62
        yield data[at : at + size]
        at += size
        index += 1


def target_report(data: bytes) -> None:
    try:
        msg_type, payload = parse_report(data)
    except LibreDumpError:
        describe(data)
        return
    body = data[-64:]
    if not 0 <= msg_type <= 0xFF or len(payload) > 62 or payload != body[2 : 2 + len(payload)]:
        raise PropertyFailed(f"parse_report returned {msg_type}, {payload!r}")


def _assemble(stream: bytes, key: bytes) -> None:
    assembler = TextReplyAssembler(max_bytes=1 << 16)
    for piece in _chunks(stream, key):
        reply = assembler.feed(piece)
        if reply is None:
            continue
        if byte_sum(reply.message) != reply.checksum:
            raise PropertyFailed("a reply was accepted whose checksum does not match")
        for strict in (True, False):
            try:
                multi = parse_multirecord(reply, strict_count=strict)
            except LibreDumpError:
                continue
            if strict and not multi.empty and multi.count != len(multi.records):
                raise PropertyFailed("a strict trailer count that does not match passed")
        return


def target_assembler(data: bytes) -> None:
    # 1. the bytes as a reply stream, arbitrarily chunked
    _assemble(data, data[:8])
    # 2. a valid reply of the bytes as message must assemble to exactly that message
    message = data.replace(b"CKSM:", b"CKSX:")
    stream = build_text_reply(message, ok=bool(len(data) % 2))  # odd length: CMD OK
    assembler = TextReplyAssembler()
    reply = None
    for piece in _chunks(stream, data[-8:]):
        reply = assembler.feed(piece)
        if reply is not None:
            break
    ok = bool(len(data) % 2)
    if reply is None or reply.message != message or reply.ok != ok or reply.trailing:
        raise PropertyFailed(f"a valid reply of {message!r} assembled to {reply!r}")


def source_of(parser: str) -> str:
    """The command whose reply a parser reads (``libre_history`` -> ``$history?``)."""
    for command in ("history", "arresult", "result"):
        if parser.endswith(command):
            return f"${command}?"
    return "$result?"


def target_records(data: bytes) -> None:
    lines = data.split(b"\r\n")
    records = []
    for name in PARSERS:
        parsed = parse_lines(name, lines, source_of(name))
        if len(parsed) < len(lines):
            raise PropertyFailed(f"{name}: a line was dropped")
        records.extend(parsed)
    dump = Dump(device=DeviceInfo(model="libre", product_id=0x3650), records=tuple(records))
    for fmt in export.WRITERS:
        export.render(dump, fmt)


def target_cipher(data: bytes) -> None:
    for role in ("host", "device"):
        cipher = SessionCipher(_ENC_KEY, _MAC_KEY, role)
        try:
            clear = cipher.open(data)
        except LibreDumpError:
            continue
        if len(clear) != len(data) and len(clear) != 64:
            raise PropertyFailed(f"open returned {len(clear)} bytes")


def target_transcript(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    ReplayTransport.from_lines(io.StringIO(text), "fuzz")
    ReplayTransport.from_lines(text.splitlines(keepends=True), "fuzz")


def target_dump(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        doc = None
    from libre_usb.upload.diff import diff_uploads
    from libre_usb.upload.load import load_bytes
    from libre_usb.upload.report import FORMATS, render

    upload = load_bytes(_SMALL_UPLOAD, name="upload")
    dumps = [export.dump_from_ndjson(text.splitlines(), "fuzz")] if "\n" in text else []
    if doc is not None:
        dumps.append(export.dump_from_document(doc, "fuzz"))
    for dump in dumps:  # what diff --dump does with a saved dump
        result = diff_uploads(dump, upload)
        for fmt in FORMATS:
            render(result, fmt)


_SMALL_UPLOAD = (
    b'{"DeviceData": {"header": {"device": {"serialNumber": "S"}}, "measurementLog": '
    b'{"bloodGlucoseEntries": [{"valueInMgPerDl": 139, "timestamp": "2026-03-17T05:18:17", '
    b'"recordNumber": 1619}]}}}')


def target_upload(data: bytes) -> None:
    from libre_usb.upload.load import load_bytes

    load_bytes(data, name="fuzz", max_bytes=1 << 20)


def target_capture(data: bytes) -> None:
    """Any bytes as a capture file: pcap, pcapng, UsbSnoop, USBTrace or transcript (the
    format is picked by content, so the seeds steer the fuzzer into each reader)."""
    from libre_usb.transport.capture import read_capture_bytes

    capture = read_capture_bytes(data, "fuzz", max_reports=10_000)
    for device in capture.devices.values():
        if len(device.reports) > 10_000:
            raise PropertyFailed("more reports kept than max_reports")


def target_observer(data: bytes) -> None:
    """Any sequence of reports, both directions, through the passive observer: it must
    never raise, whatever the reports say (everything odd is a step)."""
    from libre_usb.protocol.observer import Observer

    observer = Observer(encrypted=None)
    at = 0
    while at < len(data):
        size = data[at] % 66
        direction = "out" if data[at] & 0x80 else "in"
        observer.feed(direction, data[at + 1 : at + 1 + size], float(at))
        at += 1 + size
    conv = observer.finish()
    for exchange in conv.exchanges:
        if exchange.status == "ok" and exchange.reply is None:
            raise PropertyFailed("an exchange is ok without a reply")


# -- past the checksum: fuzzed content inside a valid reply ---------------------------------


def _strict(text: str) -> object:
    def refuse(name: str) -> object:
        raise PropertyFailed(f"non-strict JSON written: {name}")

    return json.loads(text, parse_constant=refuse)


def _every_format(dump: Dump) -> None:
    """Every output of a dump is strict JSON or CSV that reads back, row for row."""
    import csv
    import datetime as dt

    from libre_usb.output import timeline

    placed = timeline.place(dump, "UTC")
    for unit in ("mg/dL", "mmol/L"):
        export.dump_from_document(_strict(export.render(placed, "json", unit=unit)))
        for line in export.render(placed, "ndjson", unit=unit).splitlines():
            _strict(line)
        table = export.render(placed, "csv", unit=unit)
        rows = list(csv.reader(io.StringIO(table)))
        if len(rows) != len(placed.records) + 1:
            raise PropertyFailed(f"CSV has {len(rows) - 1} rows for {len(placed.records)}")
    _strict(export.render_libreview(placed, dt.timezone.utc, redact=True))


def target_reply(data: bytes) -> None:
    """Fuzzed record lines wrapped in a valid multi-record trailer and ``CKSM:``, split into
    reports as a reader would, assembled, checked and parsed by every parser, then written
    in every format: the checksum no longer stops the input at the door."""
    lines = [line for line in data.split(b"\r\n") if line][:64]
    reply = build_text_reply(build_multirecord(lines))
    assembler = TextReplyAssembler(max_bytes=1 << 20)
    assembled = None
    for piece in _chunks(reply, data[:8]):
        assembled = assembler.feed(piece) or assembled
    if assembled is None:
        raise PropertyFailed("a valid reply did not assemble")
    multi = parse_multirecord(assembled)
    records = []
    for name in PARSERS:
        records.extend(parse_lines(name, multi.records, source_of(name)))
    _every_format(Dump(device=DeviceInfo(model="libre", product_id=0x3650, serial="X"),
                       records=tuple(records)))


def target_info(data: bytes) -> None:
    """A fuzzed reply to every informational command of every model, through the session
    of the virtual reader (checksums and framing made right), then every format."""
    from libre_usb.devices import MODELS
    from libre_usb.reader.session import Session
    from libre_usb.simulator import VirtualReader
    from libre_usb.transport.interfaces.sim import SimTransport

    names = sorted(name for name, model in MODELS.items() if not model.encrypted)
    model = MODELS[names[data[0] % len(names)] if data else "libre"]
    commands = [c for c in (model.serial_command, model.version_command, model.unit_command,
                            *model.info_commands) if c]
    reader = VirtualReader(model.name, 0, days=0)
    command = commands[(data[1] if len(data) > 1 else 0) % len(commands)]
    reader._handlers[command] = lambda: data[2:] + b"\r\n"
    with Session(SimTransport(reader), model.name, timeout_ms=100) as session:
        dump = session.dump()
    _every_format(dump)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "report": target_report,
    "assembler": target_assembler,
    "records": target_records,
    "cipher": target_cipher,
    "transcript": target_transcript,
    "dump": target_dump,
    "upload": target_upload,
    "capture": target_capture,
    "observer": target_observer,
    "reply": target_reply,
    "info": target_info,
}

#: the longest input each target is given (libFuzzer's -max_len)
MAX_LEN = {"report": 130, "assembler": 4096, "records": 2048, "cipher": 130,
           "transcript": 8192, "dump": 16384, "upload": 16384, "capture": 16384,
           "observer": 8192, "reply": 4096, "info": 2048}


def run_target(name: str, data: bytes) -> None:
    """Run one input; documented errors are swallowed, anything else propagates."""
    try:
        TARGETS[name](data)
    except ALLOWED:
        pass


def seeds(name: str) -> list[bytes]:
    """Valid inputs to start from (the fuzzer mutates them)."""
    from libre_usb.protocol.frames import build_report
    from libre_usb.protocol.text.reply import build_multirecord

    history = [b"40001,0,5,14,26,10,0,0,0,154,1000,0,0,0,0",
               b"40002,0,5,14,26,10,15,0,0,161,1015,0,0,0,0"]
    arresult = [b'1619,2,3,17,26,5,18,17,1,1,0,139,0,1,0,0,0,0,0,0,0,2,0,0,0,0,0,0,0,'
                b'"Caf\xc3\xa9","Sport"']
    if name == "report":
        return [build_report(0x60, b"$sn?"), build_report(0x22, b"\x05", pad=0x41),
                b"\x00" + build_report(0x06, b"JCMV123-45678\0")]
    if name == "assembler":
        return [build_text_reply(build_multirecord(history)), build_text_reply(b"LOG\r\n"),
                build_text_reply(b"Log Empty\r\n", ok=False)]
    if name in ("records", "reply"):
        return [b"\r\n".join(history), b"\r\n".join(arresult)]
    if name == "info":
        return [b"\x00\x00JCMV123-45678", b"\x01\x05DB Record Number = 1234",
                b"\x02\x0317,3,26,10,5,0,1,0"]
    if name == "cipher":
        sealer = SessionCipher(_ENC_KEY, _MAC_KEY, "device")
        return [sealer.seal(build_report(0x60, b"1,2,3\r\nCKSM:00000096\r\n")),
                build_report(0x22, b"\x05")]
    if name == "transcript":
        lines = [{"dir": "meta", "product_id": 0x3650, "model": "libre"},
                 {"dir": "out", "data": build_report(0x04).hex(), "t": 0.0},
                 {"dir": "in", "data": build_report(0x34, b"\x16").hex(), "t": 0.001}]
        return ["\n".join(json.dumps(line) for line in lines).encode()]
    if name == "dump":
        records = parse_lines("libre_history", history, "$history?")
        dump = Dump(device=DeviceInfo(model="libre", product_id=0x3650, serial="X"),
                    records=tuple(records))
        return [export.render(dump, "json").encode(), export.render(dump, "ndjson").encode()]
    if name in ("capture", "observer"):
        return _capture_seeds(name)
    if name == "upload":
        from pathlib import Path

        example = (Path(__file__).resolve().parents[1] / "tests" / "data"
                   / "juggluco-upload-example" / "upload-example.json")
        out = [b'{"DeviceData": {"measurementLog": {"bloodGlucoseEntries": []}}}']
        if example.exists():
            out.append(example.read_bytes())
        return out
    return []


def _capture_seeds(name: str) -> list[bytes]:
    """A short clear session as reports, and the same in a pcap, a pcapng (usbmon and
    USBPcap), a UsbSnoop log and a transcript."""
    import struct

    from libre_usb.protocol.frames import build_report
    from libre_usb.protocol.text.reply import build_text_reply

    session = [("out", build_report(0x04)), ("in", build_report(0x34, b"\x16")),
               ("out", build_report(0x60, b"$sn?")),
               ("in", build_report(0x60, build_text_reply(b"JCMV123-45678\r\n")[:62])),
               ("in", build_report(0x60, build_text_reply(b"JCMV123-45678\r\n")[62:])),
               ("in", build_report(0x22, b"\x05"))]
    if name == "observer":
        return [b"".join(bytes([(0x80 if d == "out" else 0) | 64]) + r for d, r in session)]

    def usbmon(event: str, endpoint: int, data: bytes, setup: bytes | None) -> bytes:
        return struct.pack("<QBBBBHbbqiiII8s", 1, ord(event), 2 if setup else 1, endpoint,
                           5, 1, 0 if setup else 45, 0, 0, 0, 0, len(data), len(data),
                           setup or bytes(8)) + bytes(16) + data

    def usbpcap(info: int, endpoint: int, data: bytes) -> bytes:
        return struct.pack("<HQIHBHHBBI", 27, 1, 0, 9, info, 1, 5, endpoint, 1,
                           len(data)) + data

    setup = bytes.fromhex("2109000200004000")
    mon = [usbmon("S", 0, r, setup) if d == "out" else usbmon("C", 0x81, r, None)
           for d, r in session]
    pcap = [usbpcap(0, 0x01, r) if d == "out" else usbpcap(1, 0x81, r) for d, r in session]
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 220)
    classic = header + b"".join(struct.pack("<IIII", 0, i, len(p), len(p)) + p
                                for i, p in enumerate(mon))

    def block(kind: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    ng = (block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
          + block(1, struct.pack("<HHI", 249, 0, 262144))
          + b"".join(block(6, struct.pack("<IIIII", 0, 0, i, len(p), len(p)) + p)
                     for i, p in enumerate(pcap)))
    snoop = "".join(
        f"[{i} ms]  >>>  URB {i} going down  >>> \n-- URB_FUNCTION_CLASS_INTERFACE:\n"
        "  TransferFlags          = 00000000 (USBD_TRANSFER_DIRECTION_OUT)\n"
        + "".join(f"    {j:08x}: {r[j:j + 16].hex(' ')}\n" for j in range(0, 64, 16))
        + "  Request                 = 00000009\n  Value                   = 00000200\n"
        if d == "out" else
        f"[{i} ms]  <<<  URB {i} coming back  <<< \n-- URB_FUNCTION_BULK_OR_INTERRUPT_TRANSFER:\n"
        "  PipeHandle           = 870cdfdc [endpoint 0x00000081]\n"
        "  TransferFlags        = 00000003 (USBD_TRANSFER_DIRECTION_IN)\n"
        + "".join(f"    {j:08x}: {r[j:j + 16].hex(' ')}\n" for j in range(0, 64, 16))
        for i, (d, r) in enumerate(session)).encode()
    transcript = "\n".join(json.dumps({"dir": d, "data": r.hex(), "t": i})
                           for i, (d, r) in enumerate(session)).encode()
    return [classic, ng, snoop, transcript]
