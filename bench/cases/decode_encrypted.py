"""Decoding an encrypted Libre 2 ``$history?`` reply: ours against freestyle-hid, same reports.

The reports are real traffic from our virtual Libre 2 reader: a full encryption handshake by
our host, then ``$history?``, each record line in its own encrypted report, captured as the
raw 64-byte reports the host received, with the session keys. Both sides then decode the
very same reports to the same record lines, best of R interleaved rounds: ours
(``HostConnection`` with the host ``SessionCipher``: MAC check and CTR per report, the
text-reply assembler, the trailer) against freestyle-hid's ``Session.query_multirecord``
(``decrypt_message`` per report, its reply and trailer regexes, the ``csv`` split). The
lines are compared first.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from functools import partial
from typing import Any

from libre_usb.protocol.connection import HostConnection, State, TextResponse
from libre_usb.protocol.crypto.link import ALWAYS_CLEAR, SessionCipher
from libre_usb.protocol.text.reply import parse_multirecord

from ..core import Context, Row, case, have_freestyle_hid, interleaved
from .tapped import reply_reports

COMMAND = "$history?"


def capture(records: int) -> tuple[list[bytes], int, int]:
    """(encrypted reports of one $history? reply, session enc key, session MAC key)."""
    stream, session = reply_reports("libre2", records, records // 96 + 2, COMMAND)
    cipher = session.conn.cipher
    assert isinstance(cipher, SessionCipher)
    if any(r[0] in ALWAYS_CLEAR for r in stream):
        raise RuntimeError("the captured stream has clear reports in it (keepalives?)")
    return stream, cipher.enc_key, cipher.mac_key


def ours_lines(stream: list[bytes], enc: int, mac: int) -> list[bytes]:
    conn = HostConnection()
    conn.cipher = SessionCipher(enc, mac, "host")
    conn.state = State.READY
    conn.text_command(COMMAND)
    for report in stream:
        event = conn.receive(report)
        if isinstance(event, TextResponse):
            return list(parse_multirecord(event.reply).records)
    raise RuntimeError("our stack did not see the end of the reply")


class _Replay:
    """freestyle-hid's HID handle, answering from the captured reports."""

    def __init__(self, stream: list[bytes]) -> None:
        self._reports = iter(stream)

    def write(self, report: bytes) -> int:
        return len(report)

    def read(self, size: int = 64) -> bytes:
        return next(self._reports)


def theirs_rows(stream: list[bytes], enc: int, mac: int) -> list[list[str]]:
    from freestyle_hid import _session as fsh_session
    from freestyle_hid._freestyle_encryption import SpeckCMAC, SpeckEncrypt

    session: Any = object.__new__(fsh_session.Session)
    session._handle = _Replay(stream)
    session._encrypted_protocol = True
    session._text_message_type = 0x60
    session._text_reply_message_type = 0x60
    session._encoding = "utf-8"
    session.crypt_enc = SpeckEncrypt(enc)
    session.crypt_mac = SpeckCMAC(mac)
    return [row for row in session.query_multirecord(COMMAND.encode()) if row]


@case("decode-encrypted")
def decode_encrypted(ctx: Context) -> Iterator[Row]:
    if not have_freestyle_hid():
        raise RuntimeError("needs freestyle-hid, the baseline: pip install -e '.[bench]'")
    for size in ctx.sizes[:2] if ctx.quick else (1000, 12572):
        stream, enc, mac = capture(size)
        lines = ours_lines(stream, enc, mac)
        rows = theirs_rows(stream, enc, mac)
        if [next(csv.reader([line.decode()])) for line in lines] != rows or len(rows) != size:
            raise RuntimeError("our record lines differ from freestyle-hid's rows")
        rounds = ctx.rounds if size <= 1000 else max(1, ctx.rounds // 2)
        t_ours, t_theirs = interleaved(rounds, partial(ours_lines, stream, enc, mac),
                                       partial(theirs_rows, stream, enc, mac))
        yield Row("decrypt + assemble, Libre 2", f"{size:,}", t_ours / len(stream) * 1e6,
                  t_theirs / len(stream) * 1e6, "us/report", target=1.0)
