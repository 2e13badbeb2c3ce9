"""The 64-byte HID report."""

from __future__ import annotations

import pytest

from libre_usb.errors import ProtocolError
from libre_usb.protocol.frames import MessageType, build_report, parse_report


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
