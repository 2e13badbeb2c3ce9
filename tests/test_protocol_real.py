"""The protocol layer against real bytes nobody here wrote.

Sources: the InsuLinx session captured by OpenGlucose (tests/data/openglucose-insulinx), Tidepool's
captured text replies, and the real replies quoted in docs/protocol.md section 7.
"""

from __future__ import annotations

import json

import pytest
from captures import INSULINX, TIDEPOOL, need, usbsnoop_reports

from libre_usb.errors import ChecksumError, EncryptionError, ProtocolError
from libre_usb.protocol.connection import (
    HostConnection,
    PreInitReply,
    Ready,
    SerialNumber,
    Skipped,
    SoftwareVersion,
    TextResponse,
)
from libre_usb.protocol.frames import build_report
from libre_usb.protocol.text.reply import (
    TextReplyAssembler,
    byte_sum,
    parse_multirecord,
)


def _feed_all(raw: bytes, chunk: int = 62) -> object:
    assembler = TextReplyAssembler()
    result = None
    for i in range(0, len(raw), chunk):
        result = assembler.feed(raw[i : i + chunk]) or result
    return result


def _tidepool() -> list[dict[str, object]]:
    path = need(TIDEPOOL / "libre1_protocol_vectors.json")
    return list(json.loads(path.read_text())["text_responses"])


def test_tidepool_captured_replies_verify() -> None:
    for case in _tidepool():
        raw = str(case["raw"]).encode()
        reply = _feed_all(raw, chunk=5)
        assert reply is not None and reply.ok
        assert reply.message + b"CKSM:%08X\r\nCMD OK\r\n" % reply.checksum == raw


@pytest.mark.parametrize("position", range(0, 27))
def test_tidepool_reply_with_a_corrupted_byte_is_rejected(position: int) -> None:
    raw = bytearray(b"DB Record Number = 226988\r\nCKSM:00000765\r\nCMD OK\r\n")
    raw[position] ^= 0x01
    with pytest.raises(ChecksumError):
        _feed_all(bytes(raw))


def _insulinx_exchanges() -> list[tuple[bytes, list[bytes]]]:
    """(text command report, the device reports that followed it) from the real capture."""
    reports = usbsnoop_reports(need(INSULINX / "plug.usbsnoop.log"))
    exchanges: list[tuple[bytes, list[bytes]]] = []
    for direction, data in reports:
        if direction == "out" and data[0] == 0x60:
            exchanges.append((data, []))
        elif direction == "in" and exchanges:
            exchanges[-1][1].append(data)
    return exchanges


def test_every_text_reply_of_the_real_insulinx_session_verifies() -> None:
    exchanges = _insulinx_exchanges()
    assert len(exchanges) == 40
    keepalives = 0
    for command_report, replies in exchanges:
        conn = HostConnection()
        conn.state = conn.state.READY
        command = command_report[2 : 2 + command_report[1]].decode("latin-1").strip()
        conn.text_command(command)
        events = [conn.receive(r) for r in replies]
        keepalives += sum(isinstance(e, Skipped) and e.reason == "keepalive" for e in events)
        done = [e for e in events if isinstance(e, TextResponse)]
        assert len(done) == 1, command
        assert done[0].reply.ok
    assert keepalives == 13  # the README of the capture counts 13 keepalives


def test_real_multirecord_result_reply_and_trailer() -> None:
    exchanges = _insulinx_exchanges()
    _command, replies = next(e for e in exchanges if b"$result?" in e[0])
    conn = HostConnection()
    conn.state = conn.state.READY
    conn.text_command("$result?")
    reply = next(e for e in (conn.receive(r) for r in replies) if isinstance(e, TextResponse))
    multi = parse_multirecord(reply.reply)
    assert multi.count == 237 == len(multi.records)
    assert multi.checksum == 0x0006FEC2
    # a reply split at exactly 62 bytes, mid-"CMD OK", assembled across two reports
    getrmndrst = next(e for e in exchanges if b"$getrmndrst" in e[0])
    assert getrmndrst[1][-1][2:8] == b"D OK\r\n"


def test_real_reply_with_a_corrupted_byte_is_rejected() -> None:
    exchanges = _insulinx_exchanges()
    _, replies = next(e for e in exchanges if b"$result?" in e[0])
    for index in (0, 100, len(replies) // 2):
        damaged = [bytearray(r) for r in replies]
        if damaged[index][0] != 0x60:
            continue
        damaged[index][3] ^= 0x04
        conn = HostConnection()
        conn.state = conn.state.READY
        conn.text_command("$result?")
        with pytest.raises((ChecksumError, ProtocolError)):
            for report in damaged:
                event = conn.receive(bytes(report))
                if isinstance(event, TextResponse):
                    parse_multirecord(event.reply)


def test_real_init_sequence_of_the_insulinx_session() -> None:
    reports = usbsnoop_reports(need(INSULINX / "plug.usbsnoop.log"))
    device = [d for direction, d in reports if direction == "in"][:4]
    conn = HostConnection()
    conn.pre_init()
    assert conn.receive(device[0]) == PreInitReply(0x0C)
    conn.query_serial()
    assert conn.receive(device[1]) == SerialNumber("JAGT241-U6242")
    conn.query_version()
    assert conn.receive(device[2]) == SoftwareVersion("1.40")
    conn.init()
    assert isinstance(conn.receive(device[3]), Ready)


def test_issue63_trailer_is_consistent_with_its_reply_checksum() -> None:
    # glucometerutils issue #63 (real Libre 1 log): trailer 12572,01A4B897, CKSM:01A4BB9B.
    # The outer checksum covers the records and the trailer line: so the trailer's own
    # checksum plus the bytes of the trailer line must give the outer one.
    trailer = b"12572,01A4B897\r\n"
    assert (0x01A4B897 + byte_sum(trailer)) & 0xFFFFFFFF == 0x01A4BB9B


def test_issue73_keepalive_with_stale_padding_and_stray_reply() -> None:
    # glucometerutils issue #73 (Precision Neo): a keepalive whose padding holds an old reply,
    # and a leftover text reply (a bare CRLF, checksum 0x17) read while waiting for INIT.
    keepalive = b"\x22\x01\x03" + b".18 May 21 2015\r\nCKSM:00000391\r\nCMD OK\r\n"
    keepalive = keepalive.ljust(64, b"\x00")
    stray = build_report(0x60, b"\r\nCKSM:00000017\r\nCMD OK\r\n")
    conn = HostConnection()
    conn.init()
    assert conn.receive(keepalive) == Skipped(0x22, b"\x03", "keepalive")
    assert isinstance(conn.receive(stray), Skipped)
    assert isinstance(conn.receive(build_report(0x71, b"\x01")), Ready)
    # the stray reply really is a valid reply: a bare CRLF sums to 0x17
    assert byte_sum(b"\r\n") == 0x17


def test_libre2_clear_command_gets_encryption_not_initialised() -> None:
    # glucometerutils issue #68: a Libre 2 answers a clear $sn? with 33 01 15
    conn = HostConnection()
    conn.pre_init()
    assert conn.receive(build_report(0x34, b"\x16")) == PreInitReply(0x16)
    conn.query_serial()
    assert conn.receive(build_report(0x06, b"MAGA987-J0123\x00")) == SerialNumber("MAGA987-J0123")
    conn.init()
    assert isinstance(conn.receive(build_report(0x71, b"\x01")), Ready)
    conn.text_command("$sn?")
    with pytest.raises(EncryptionError, match="not initialised"):
        conn.receive(build_report(0x33, b"\x15"))
