"""Decoding an encrypted Libre 2 ``$history?`` reply: libre-dump vs freestyle-hid, same stream.

The stream is real traffic from our virtual Libre 2 reader: a full encryption handshake by
our host, then ``$history?`` with 12,572 records (the record count seen on a real reader in
glucometerutils issue #63), each record line in its own encrypted report, captured as the raw
64-byte reports the host received, together with the session keys.

Both sides then decode the very same captured reports, best of R rounds each:

* ours: ``HostConnection`` with the host ``SessionCipher`` (MAC check + CTR per report) ->
  ``TextReplyAssembler`` (reply checksum) -> ``parse_multirecord`` (trailer count and
  checksum) -> record lines; and, as a second row, the same plus ``parse_lines`` into typed
  records (work freestyle-hid does not do at all).
* freestyle-hid 1.1.1: its own ``Session.query_multirecord`` reading from the captured reports
  (``decrypt_message`` per report, ``read_response``, the reply regex and checksum, the
  trailer regex and checksum, the ``csv`` split into rows).

The outputs are compared first (same lines, same count), so a fast wrong answer cannot win.
freestyle-hid is a measured baseline only; libre_usb never imports it.

Run: python3 bench/bench_decode.py [--records N] [--rounds R]   (needs freestyle-hid and
freestyle-keys)
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable
from typing import Any

from libre_usb.protocol.connection import HostConnection, State, TextResponse
from libre_usb.protocol.crypto.link import ALWAYS_CLEAR, SessionCipher
from libre_usb.protocol.text.records import parse_lines
from libre_usb.protocol.text.reply import parse_multirecord
from libre_usb.reader.session import Session
from libre_usb.simulator import VirtualReader
from libre_usb.simulator.content import generate
from libre_usb.transport.interface import Transport
from libre_usb.transport.interfaces.sim import SimTransport

try:
    from freestyle_hid import _session as fsh_session
    from freestyle_hid._freestyle_encryption import SpeckCMAC, SpeckEncrypt
except ImportError:
    sys.exit("bench_decode needs freestyle-hid as the baseline: pip install 'libre-dump[dev]'")

COMMAND = "$history?"


class _Tap(Transport):
    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.product_id = inner.product_id
        self.received: list[bytes] = []

    def write(self, report: bytes) -> None:
        self.inner.write(report)

    def read(self, timeout_ms: int) -> bytes | None:
        data = self.inner.read(timeout_ms)
        if data is not None:
            self.received.append(data)
        return data


def capture(records: int) -> tuple[list[bytes], int, int]:
    """(encrypted reports of one $history? reply, session enc key, session MAC key)."""
    reader = VirtualReader("libre2", seed=63)
    history = generate(63, days=records // 96 + 2).history
    if len(history) < records:
        sys.exit(f"the generator made only {len(history)} history records")
    reader.content.history[:] = history[-records:]
    tap = _Tap(SimTransport(reader))
    session = Session(tap, "libre2")
    session.open()
    cipher = session.conn.cipher
    assert isinstance(cipher, SessionCipher)
    start = len(tap.received)
    session.command(COMMAND)
    stream = tap.received[start:]
    if any(r[0] in ALWAYS_CLEAR for r in stream):
        sys.exit("the captured stream has clear reports in it (keepalives?)")
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
    raise SystemExit("our stack did not see the end of the reply")


def ours_records(stream: list[bytes], enc: int, mac: int) -> int:
    return len(parse_lines("libre_history", ours_lines(stream, enc, mac), COMMAND))


class _Replay:
    """freestyle-hid's HID handle, answering from the captured reports."""

    def __init__(self, stream: list[bytes]) -> None:
        self._reports = iter(stream)

    def write(self, report: bytes) -> int:
        return len(report)

    def read(self, size: int = 64) -> bytes:
        return next(self._reports)


def theirs_rows(stream: list[bytes], enc: int, mac: int) -> list[list[str]]:
    session: Any = object.__new__(fsh_session.Session)
    session._handle = _Replay(stream)
    session._encrypted_protocol = True
    session._text_message_type = 0x60
    session._text_reply_message_type = 0x60
    session._encoding = "utf-8"
    session.crypt_enc = SpeckEncrypt(enc)
    session.crypt_mac = SpeckCMAC(mac)
    return [row for row in session.query_multirecord(COMMAND.encode()) if row]


def best_of(rounds: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=12572)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    stream, enc, mac = capture(args.records)
    lines = ours_lines(stream, enc, mac)
    rows = theirs_rows(stream, enc, mac)
    if len(lines) != args.records or len(rows) != args.records:
        sys.exit(f"record counts differ: ours {len(lines)}, freestyle-hid {len(rows)}")
    if [next(csv.reader([line.decode()])) for line in lines] != rows:
        sys.exit("our record lines differ from freestyle-hid's rows")

    n = len(stream)
    t_theirs = best_of(args.rounds, lambda: theirs_rows(stream, enc, mac))
    table = (
        ("decrypt + reply + trailer -> lines", best_of(args.rounds,
                                                       lambda: ours_lines(stream, enc, mac))),
        ("  ... + typed records", best_of(args.rounds, lambda: ours_records(stream, enc, mac))),
    )
    print(f"$history? of {args.records} records in {n} encrypted reports, best of "
          f"{args.rounds} rounds, Python {sys.version.split()[0]}")
    print(f"freestyle-hid query_multirecord: {t_theirs:.3f} s ({t_theirs / n * 1e6:.1f} us/report)")
    print(f"{'libre-dump':36}{'s':>8}{'us/report':>11}{'speed-up':>10}")
    for name, t_ours in table:
        print(f"{name:36}{t_ours:8.3f}{t_ours / n * 1e6:11.1f}{t_theirs / t_ours:9.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
