"""The 64-byte HID report and the message types of the Abbott shared HID protocol.

Layout (protocol.md section 2.1): byte 0 message type, byte 1 payload length L (0..62),
bytes 2..2+L-1 payload, then padding to 64 bytes. The padding is *not* cleared by the
device: stale bytes from earlier replies show up there, so it is always ignored.
"""

from __future__ import annotations

import enum
import functools
from typing import TYPE_CHECKING, Any

from ..errors import ProtocolError

if TYPE_CHECKING:
    import construct as cs

REPORT_SIZE = 64
MAX_PAYLOAD = 62


class MessageType(enum.IntEnum):
    """Message types seen on the wire (protocol.md section 2.2)."""

    INIT = 0x01
    PRE_INIT = 0x04
    QUERY_SERIAL = 0x05
    SERIAL = 0x06
    BINARY_REQUEST = 0x0A
    BINARY_RESPONSE = 0x0B
    BINARY_ACK_DEVICE = 0x0C
    BINARY_ACK_HOST = 0x0D
    AUTH_REQUEST = 0x14
    QUERY_VERSION = 0x15
    TEXT_COMMAND_ABBOTT_ALT = 0x20
    TEXT_COMMAND_ABBOTT = 0x21
    KEEPALIVE = 0x22
    UNKNOWN_MESSAGE_ERROR = 0x30
    AUTH_REPLY = 0x33
    PRE_INIT_REPLY = 0x34
    VERSION = 0x35
    TEXT = 0x60
    INIT_REPLY = 0x71


#: text commands are sent as 0x60 by default; Abbott's software sends 0x21
TEXT_COMMAND_TYPES = frozenset({MessageType.TEXT, MessageType.TEXT_COMMAND_ABBOTT,
                                MessageType.TEXT_COMMAND_ABBOTT_ALT})

@functools.cache
def hid_report() -> cs.Struct:
    """One HID report as the wire carries it (``padding`` is whatever the sender left
    there): the construct definition, built on first use so that a process which only
    reads and sends reports (a dump) never imports construct (issue 16: start-up)."""
    import construct as cs

    return cs.Struct(
        "type" / cs.Int8ub,
        "length" / cs.Int8ub,
        cs.Check(cs.this.length <= MAX_PAYLOAD),
        "payload" / cs.Bytes(cs.this.length),
        "padding" / cs.Bytes(REPORT_SIZE - 2 - cs.this.length),
    )


def __getattr__(name: str) -> Any:
    # ``HidReport`` is the definition's public name; it is made when first asked for
    if name == "HidReport":
        return hid_report()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_report(msg_type: int, payload: bytes = b"", pad: int = 0) -> bytes:
    """Build one 64-byte report; ``pad`` is the byte used to fill the rest.

    This is :data:`HidReport` built by concatenation (tests/test_frames.py checks that both
    build every type, length and padding byte alike, and refuse alike)."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes does not fit one report")
    if not 0 <= msg_type <= 0xFF:
        raise ValueError(f"message type {msg_type} does not fit one byte")
    return bytes((msg_type, len(payload))) + bytes(payload) + bytes((pad,)) * (
        REPORT_SIZE - 2 - len(payload))


def build_report_construct(msg_type: int, payload: bytes = b"", pad: int = 0) -> bytes:
    """:func:`build_report` by the construct definition (the reference the tests compare
    the fast builder with)."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes does not fit one report")
    padding = bytes([pad]) * (REPORT_SIZE - 2 - len(payload))
    data: bytes = hid_report().build(
        {"type": msg_type, "length": len(payload), "payload": payload, "padding": padding}
    )
    return data


def parse_report(report: bytes) -> tuple[int, bytes]:
    """Return ``(type, payload)`` of a 64-byte report; the padding is dropped.

    Reports of 65 bytes with a leading zero report-ID byte (some hidapi builds) are
    accepted; anything else that is not 64 bytes, or a length byte over 62, is a
    :class:`ProtocolError`.

    This is :data:`HidReport` read by slicing: every report of a dump passes here, and the
    construct parser costs about 7 us a report where two slices cost a fraction of one.
    ``HidReport`` stays the definition (it builds every report we send);
    tests/test_frames.py checks that both read every possible report alike.
    """
    if len(report) == REPORT_SIZE + 1 and report[0] == 0:
        report = report[1:]
    if len(report) != REPORT_SIZE:
        raise ProtocolError(f"malformed HID report: {len(report)} bytes instead of {REPORT_SIZE}")
    length = report[1]
    if length > MAX_PAYLOAD:
        raise ProtocolError(
            f"malformed HID report: length byte {length} is over {MAX_PAYLOAD} "
            f"(type 0x{report[0]:02x})"
        )
    return report[0], bytes(report[2 : 2 + length])


def parse_report_construct(report: bytes) -> tuple[int, bytes]:
    """:func:`parse_report` by the construct definition (the reference the tests compare
    the fast reader with)."""
    parsed: Any = hid_report().parse(bytes(report))
    return int(parsed.type), bytes(parsed.payload)


def describe(report: bytes) -> str:
    """A short human-readable form of a report for messages and debug logs."""
    try:
        msg_type, payload = parse_report(report)
    except ProtocolError:
        return report.hex()
    return f"{msg_type:02x} {len(payload):02x} {payload!r}"
