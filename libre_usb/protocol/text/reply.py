"""Text replies: the ``CKSM:`` checksum, ``CMD OK`` / ``CMD Fail!`` and multi-record trailers.

A reply is the concatenated payload of one or more 0x60 reports (protocol.md 2.4)::

    <message>CKSM:<8 upper-case hex>\\r\\nCMD OK\\r\\n      (or CMD Fail!\\r\\n)

The checksum is the unsigned byte sum of ``<message>``. Multi-record replies
(``$history?``, ``$arresult?``, ``$result?``) carry N record lines then a trailer line
``N,<8 hex>`` whose checksum covers the record lines (with their CRLFs) only, or the single
line ``Log Empty``.

:class:`TextReplyAssembler` is fed report payloads one at a time. It only looks at the bytes
it has not seen yet (plus one byte of overlap for a CRLF split across reports), keeps
completed lines and a running byte sum, and so costs the same per report whatever the size
of the reply: a 12,572-record ``$history?`` costs the same per record as a 100-record one.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from ...errors import ChecksumError, ProtocolError

if TYPE_CHECKING:
    import construct as cs

#: the most digits a number from a reader may have: every count, id, value and flag a reader
#: sends fits 32 bits (4294967295: 10 digits). A longer digit string is not a value (it is
#: kept as text, raw), so nothing downstream overflows a float, a Decimal or a date.
MAX_DIGITS = 10


def reader_int(text: str) -> int:
    """A number field of a reply: ``int(text)``, ValueError for more than
    :data:`MAX_DIGITS` digits (however the text is spelled) as for anything not a number."""
    if len(text) > MAX_DIGITS and len(text.strip().lstrip("+-").lstrip("0")) > MAX_DIGITS:
        raise ValueError(f"a number of {len(text)} characters is out of range")
    return int(text)

CRLF = b"\r\n"
_CRLF_SUM = 13 + 10
OK_LINE = b"CMD OK"
FAIL_LINE = b"CMD Fail!"
LOG_EMPTY = b"Log Empty"


@functools.cache
def _definitions() -> dict[str, cs.Construct]:
    """The construct definitions of the reply's end, built on first use: reading a reply
    needs none of them (the assembler below reads the same layout by slicing), so a dump
    never imports construct (issue 16: start-up)."""
    import construct as cs

    #: the hex digits after ``CKSM:`` and in a trailer are upper-case on the wire; we
    #: accept both
    hex8 = cs.ExprAdapter(
        cs.Bytes(8),
        decoder=lambda obj, ctx: int(obj, 16),
        encoder=lambda obj, ctx: b"%08X" % obj,
    )
    return {
        "Hex8": hex8,
        #: the checksum line as it ends a reply (``CKSM:0000011C\r\n``)
        "ChecksumLine": cs.Struct(cs.Const(b"CKSM:"), "checksum" / hex8, cs.Const(CRLF)),
        #: the status line that follows it
        "StatusLine": cs.Select(
            "ok" / cs.Const(OK_LINE + CRLF),
            "fail" / cs.Const(FAIL_LINE + CRLF),
        ),
    }


def __getattr__(name: str) -> Any:
    # Hex8, ChecksumLine and StatusLine: the definitions' public names, made when first
    # asked for
    definitions = _definitions() if name in ("Hex8", "ChecksumLine", "StatusLine") else {}
    if name in definitions:
        return definitions[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: the end of a reply: the checksum line, then the status line (the first such pair ends it)
_END = re.compile(rb"CKSM:([0-9A-Fa-f]{8})\r\nCMD (OK|Fail!)\r\n")
_END_LONGEST = len(b"CKSM:01234567\r\nCMD Fail!\r\n")
#: a line that ends like a checksum line (matched up to the CRLF that ends the line)
_CKSM_LINE_END = re.compile(rb"CKSM:[0-9A-Fa-f]{8}\Z")
_TRAILER = re.compile(rb"(\d{1,9}),([0-9A-Fa-f]{8})\Z")


def _bytes_total(data: bytes) -> int:
    """``sum(data)``, by two checksums computed in C for up to 65,520 bytes: the first half
    of an Adler-32 (RFC 1950 section 8.2) is 1 + the byte sum modulo 65521, and the bytes
    read as one number give the byte sum modulo 255 (256 = 1 modulo 255); the sum, under
    65521 * 255, is the one number below that with both remainders (the Chinese remainder
    theorem). A third of the time of ``sum`` on a batch of reports."""
    if len(data) >= _ADLER_MOD:
        return sum(data)
    low = ((zlib.adler32(data) & 0xFFFF) - 1) % _ADLER_MOD
    return low + _ADLER_MOD * ((int.from_bytes(data, "little") % 255 - low) * _INVERSE % 255)


_ADLER_MOD = 65521
_INVERSE = pow(_ADLER_MOD, -1, 255)


def byte_sum(data: bytes) -> int:
    """The reader's checksum: the unsigned sum of the bytes, as a 32-bit number."""
    return sum(data) & 0xFFFFFFFF


def decode_text(data: bytes) -> str:
    """Decode reader text: UTF-8 with replacement (readers store broken sequences)."""
    return data.decode("utf-8", errors="replace")


class TextReply(msgspec.Struct, frozen=True):
    """A complete, checksum-verified text reply."""

    ok: bool
    #: the message lines without their CRLFs (a trailing fragment with no CRLF is kept too)
    lines: tuple[bytes, ...]
    checksum: int
    #: bytes that followed the status line inside the last payload (normally none)
    trailing: bytes = b""

    #: True when the last line had no CRLF (text glued to ``CKSM:``)
    fragment: bool = False

    @property
    def message(self) -> bytes:
        """The raw message, as the checksum covers it."""
        body = b"".join(line + CRLF for line in self.lines)
        return body[:-2] if self.fragment else body

    @property
    def text(self) -> str:
        """The message decoded, lines joined with ``\\n``."""
        return "\n".join(decode_text(line) for line in self.lines)


class TextReplyAssembler:
    """Incrementally assembles one text reply from report payloads.

    ``feed`` returns ``None`` until the status line arrives, then the verified
    :class:`TextReply`. A wrong checksum raises :class:`ChecksumError`. ``feed_many`` takes
    the payloads of several reports at once (the bulk of a long reply, at a fraction of the
    cost per report) and stops before one that ``feed`` would raise for.

    The reply ends at the first ``CKSM:<8 hex>`` line followed by a ``CMD OK`` or
    ``CMD Fail!`` line. Until then, every complete line is a message line, except the last
    one when it is such a CKSM line: it is held back (with the line still incomplete) until
    the line after it shows whether it ends the message.
    """

    def __init__(self, *, max_bytes: int = 64 * 1024 * 1024) -> None:
        #: the bytes after the last message line: a held CKSM line, then the line still
        #: incomplete
        self._pending = bytearray()
        self._lines: list[bytes] = []
        self._sum = 0  # byte sum of the message lines, CRLFs included
        self._size = 0
        self._max_bytes = max_bytes
        self.done = False

    @property
    def size(self) -> int:
        """Bytes received so far."""
        return self._size

    @property
    def line_count(self) -> int:
        """Complete message lines received so far (for progress reporting)."""
        return len(self._lines)

    def feed(self, payload: bytes) -> TextReply | None:
        if self.done:
            raise ProtocolError("text reply already complete")
        self._size += len(payload)
        if self._size > self._max_bytes:
            raise ProtocolError(f"text reply larger than {self._max_bytes} bytes")
        return self._take(payload, (len(payload),), strict=True)[1]

    def feed_many(self, payloads: list[bytes],
                  sizes: Sequence[int] | None = None) -> tuple[int, TextReply | None]:
        """:meth:`feed` for several payloads in a row: returns how many it took and, when
        the last of them completed the reply, the reply. It takes the payloads before one
        that :meth:`feed` would raise for (too large a reply, a wrong checksum), and stops:
        feed that one next. ``sizes``: their lengths, when the caller has them (the length
        bytes of their reports)."""
        if self.done:
            return 0, None
        if sizes is None:
            sizes = [len(payload) for payload in payloads]
        room = self._max_bytes - self._size
        if sum(sizes) > room:
            count = 0
            for size in sizes:
                room -= size
                if room < 0:
                    break
                count += 1
            payloads, sizes = payloads[:count], sizes[:count]
            if not count:
                return 0, None
        taken, reply = self._take(b"".join(payloads), sizes, strict=False)
        self._size += sum(sizes[:taken])
        return taken, reply

    def _take(self, data: bytes, sizes: Sequence[int], *,
              strict: bool) -> tuple[int, TextReply | None]:
        """Add ``data`` (payloads of ``sizes`` bytes each, in a row); see feed_many."""
        pending = self._pending
        old = len(pending)
        pending += data
        # only the new bytes are searched, plus the overlap an end split across them needs
        end = _END.search(pending, max(0, old - _END_LONGEST + 1))
        if end is None:
            self._add_lines(old)
            return len(sizes), None
        # the payload the status line ends in completes the reply
        index, edge = 0, old + sizes[0]
        while edge < end.end():
            index += 1
            edge += sizes[index]
        message = bytes(pending[: end.start()])
        checksum = int(end[1], 16)
        total = (self._sum + _bytes_total(message)) & 0xFFFFFFFF
        if total != checksum:
            if strict:
                raise ChecksumError(
                    f"text reply checksum mismatch: reader says {checksum:08X}, "
                    f"message sums to {total:08X}"
                )
            # take the payloads before this one only; feed() raises for this one
            del pending[old:]
            if not index:
                return 0, None
            return self._take(data[: edge - sizes[index] - old], sizes[:index], strict=False)
        ok = end[2] == b"OK"
        trailing = bytes(pending[end.end() : edge])
        pending.clear()  # (a match on a bytearray reads its groups from it when asked)
        self.done = True
        lines = self._lines
        lines += message.split(CRLF)
        # the last piece is the text before "CKSM:" on its line (normally nothing)
        fragment = lines.pop()
        if fragment:
            lines.append(fragment)
        return index + 1, TextReply(ok, tuple(lines), checksum, trailing,
                                    fragment=bool(fragment))

    def _add_lines(self, old: int) -> None:
        """Move the lines completed by the bytes after ``old`` from the buffer to the
        message, all but a last CKSM line (it may end the message)."""
        pending = self._pending
        last = pending.rfind(CRLF, max(0, old - 1))
        if last < 0:
            return
        if _CKSM_LINE_END.match(pending, last - 13, last):
            # held back: the lines before it are the message's
            last = pending.rfind(CRLF, 0, last - 13)
            if last < 0:
                return
        complete = bytes(pending[: last + 2])
        del pending[: last + 2]
        self._sum += _bytes_total(complete)
        lines = self._lines
        lines += complete.split(CRLF)
        lines.pop()  # the empty piece after the last CRLF


def build_text_reply(message: bytes, ok: bool = True) -> bytes:
    """The full reply stream for ``message`` (used by the virtual reader and tests)."""
    tail: bytes = _definitions()["ChecksumLine"].build({"checksum": byte_sum(message)})
    return message + tail + (OK_LINE if ok else FAIL_LINE) + CRLF


# -- multi-record replies -------------------------------------------------------------------

class MultiRecord(msgspec.Struct, frozen=True):
    """The record lines of a multi-record reply, their trailer verified."""

    records: tuple[bytes, ...]
    count: int
    checksum: int
    empty: bool = False


def parse_multirecord(reply: TextReply, *, strict_count: bool = True) -> MultiRecord:
    """Split a multi-record reply into record lines and verify its trailer.

    ``strict_count=False`` accepts a trailer count that differs from the line count
    (``$patch?`` answers several lines with the trailer ``1,<checksum>``); the checksum
    is always verified.
    """
    lines = reply.lines
    if lines == (LOG_EMPTY,):
        return MultiRecord((), 0, 0, empty=True)
    if not lines:
        raise ProtocolError("multi-record reply has no trailer line")
    match = _TRAILER.match(lines[-1])
    if match is None:
        raise ProtocolError(
            # the line is not quoted: it may be a record with a note (messages and
            # warnings never carry what the reader stores; --redact must hold for them)
            f"multi-record reply ends without a count,checksum trailer (its last line is "
            f"{len(lines[-1])} bytes)"
        )
    count, checksum = int(match.group(1)), int(match.group(2), 16)
    records = lines[:-1]
    total = (reply.checksum - sum(lines[-1]) - _CRLF_SUM) & 0xFFFFFFFF
    if total != checksum:
        raise ChecksumError(
            f"multi-record checksum mismatch: trailer says {checksum:08X}, "
            f"records sum to {total:08X}"
        )
    if strict_count and count != len(records):
        raise ProtocolError(
            f"multi-record trailer says {count} records but {len(records)} arrived"
        )
    return MultiRecord(records, count, checksum)


def build_multirecord(records: list[bytes]) -> bytes:
    """The message of a multi-record reply (records + trailer, or ``Log Empty``)."""
    if not records:
        return LOG_EMPTY + CRLF
    body = b"".join(record + CRLF for record in records)
    return body + b"%d,%08X" % (len(records), byte_sum(body)) + CRLF
