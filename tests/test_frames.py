"""The 64-byte HID report."""

from __future__ import annotations

import pytest

from libre_usb.errors import ProtocolError
from libre_usb.protocol.frames import MAX_PAYLOAD, MessageType, build_report, parse_report


def test_build_and_parse_round_trip() -> None:
    report = build_report(MessageType.TEXT, b"$sn?")
    assert len(report) == 64
    assert report[:6] == b"\x60\x04$sn?"
    assert parse_report(report) == (0x60, b"$sn?")


def test_padding_is_ignored_whatever_it_holds() -> None:
    stale = b"\x22\x01\x03" + b".18 May 21 2015\r\nCKSM:00000391\r\nCMD OK\r\n".ljust(61, b"\xcd")
    assert parse_report(stale) == (0x22, b"\x03")


def test_leading_report_id_byte_is_accepted() -> None:
    assert parse_report(b"\x00" + build_report(0x71, b"\x01")) == (0x71, b"\x01")


@pytest.mark.parametrize("length", [63, 64, 255])
def test_length_over_62_is_a_protocol_error(length: int) -> None:
    report = bytes([0x60, length]) + bytes(62)
    with pytest.raises(ProtocolError, match="over 62"):
        parse_report(report)


@pytest.mark.parametrize("size", [0, 1, 63, 66, 128])
def test_wrong_report_size_is_a_protocol_error(size: int) -> None:
    with pytest.raises(ProtocolError, match="malformed"):
        parse_report(bytes([0x60]) + bytes(max(0, size - 1)))


def test_payload_too_long_to_build() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        build_report(0x60, b"x" * 63)


def test_the_fast_reader_reads_every_report_as_the_construct_definition_does() -> None:
    """parse_report slices; HidReport (construct) is the definition: every type, every
    length byte, payloads and paddings of every kind read alike, or are refused alike."""
    import random

    from libre_usb.protocol.frames import parse_report_construct

    rng = random.Random(16)
    for length in range(256):
        for msg_type in (0x00, 0x22, 0x60, 0x71, 0xFF, rng.randrange(256)):
            report = bytes([msg_type, length]) + rng.randbytes(62)
            try:
                expected: tuple[int, bytes] | None = parse_report_construct(report)
            except Exception:
                expected = None
            if expected is None:
                with pytest.raises(ProtocolError):
                    parse_report(report)
            else:
                assert parse_report(report) == expected
                assert parse_report(b"\x00" + report) == expected
                assert parse_report(bytearray(report)) == expected


def test_the_fast_builder_builds_every_report_as_the_construct_definition_does() -> None:
    """build_report concatenates; HidReport (construct) is the definition: every type, every
    payload length, every padding byte build alike, and what one refuses the other refuses."""
    import random

    from libre_usb.protocol.frames import build_report_construct

    rng = random.Random(16)
    for length in range(MAX_PAYLOAD + 2):
        payload = rng.randbytes(length)
        for msg_type in (-1, 0x00, 0x22, 0x60, 0x71, 0xFF, 0x100, rng.randrange(256)):
            for pad in (0, 0xCD, 0xFF, 0x100):
                try:
                    expected: bytes | None = build_report_construct(msg_type, payload, pad)
                except Exception:
                    expected = None
                if expected is None:
                    with pytest.raises(ValueError):
                        build_report(msg_type, payload, pad)
                else:
                    assert build_report(msg_type, payload, pad) == expected
                    assert build_report(MessageType(0x60), bytearray(payload), pad) == (
                        build_report_construct(0x60, payload, pad))


def test_reading_and_sending_reports_needs_no_construct() -> None:
    """The construct definitions are built on first use: a dump reads and sends reports
    without importing construct (issue 16: start-up)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from libre_usb.protocol import connection, frames\n"
            "from libre_usb.protocol.text import reply\n"
            "frames.parse_report(frames.build_report(0x60, b'$sn?'))\n"
            "assert 'construct' not in sys.modules\n"
            "assert frames.HidReport.build is not None and reply.ChecksumLine is not None\n"
            "assert 'construct' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
