"""Transcripts: record every report exchanged (``--record FILE``) and replay them.

A transcript is JSON Lines, one object per report::

    {"dir": "out" | "in", "data": "<hex of the 64 bytes>", "t": <seconds since start>}

Our recorder also writes one ``{"dir": "meta", ...}`` line first (product id, model), and
when the session failed (a protocol error or a timeout) one ``{"dir": "end", "error": ...}``
line last; readers ignore directions they do not know, and the player uses the product id
if present. An interrupted run (Ctrl-C, SIGTERM, an unplug) writes no transcript at all.

A shareable transcript (``--record FILE --redact``, :mod:`libre_usb.transport.shareable`)
has a longer header; when it says ``"decrypted": true`` it holds the clear reports of a
Libre 2/3 session, and the player says so (:attr:`Transport.decrypted`), so the session
skips the encryption handshake and reads the clear reports as they are.

``replay:FILE`` answers a client from such a file (``replay:FILE?pace_ms=2`` at the pace of
the reader's 2 ms interrupt endpoint, one report every 2 ms from each request). For each
report the client sends, it finds the first unused ``out`` line that matches and serves the
``in`` reports that followed that line up to the next ``out`` line. ``in`` lines before the
first ``out`` line are served when the device is opened, as stale input a real device can
hold. Matching is by message type and payload, except that text commands match by command text
whatever their type (0x20, 0x21, 0x60) and trailing CR/LF; an unused line of the same type is
preferred. A report with no match is an error naming it. So a transcript recorded from another
client, with other commands in another order, still replays.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec

from .. import jsonsafe
from ..errors import InputError, NotInTranscript
from ..inputs import open_input
from ..output.atomic import atomic_write
from ..protocol.frames import TEXT_COMMAND_TYPES, describe
from .interface import REPORT_SIZE, DeviceURI, Transport, check_report

if TYPE_CHECKING:  # imported when used: the crypto modules are not needed for a plain read
    from ..protocol.crypto.link import SessionCipher
    from .shareable import Logged, ShareRules

#: a transcript larger than this is refused
MAX_TRANSCRIPT_BYTES = 256 * 1024 * 1024
#: a longer line is not a transcript line (ours are about 170 characters)
MAX_LINE = 64 * 1024
#: most reports a transcript may hold (a 90-day dump is about 20,000)
MAX_REPORTS = 250_000


#: a report line exactly as :class:`RecordingTransport` writes it (json.dumps of
#: ``{"dir", "data", "t"}``): read with one match instead of the JSON parser; any other
#: spelling of the same object goes through the JSON parser (msgspec)
_OUR_LINE = re.compile(r'\{"dir": "(in|out)", "data": "([0-9a-f]{128})", "t": [0-9.e+-]+\}')


def _key(report: bytes) -> tuple[str, bytes]:
    """What a host report is matched by."""
    msg_type, length = report[0], min(report[1], REPORT_SIZE - 2)
    payload = report[2 : 2 + length]
    if msg_type in TEXT_COMMAND_TYPES:
        return ("text", payload.rstrip(b"\r\n"))
    return (f"{msg_type:02x}", payload)


class _Exchange(msgspec.Struct):
    key: tuple[str, bytes]
    replies: list[bytes]
    used: bool = False
    #: the message type the transcript's host report had
    msg_type: int = -1


class ReplayTransport(Transport):
    """A player: serves a transcript's device reports in answer to matching host reports."""

    def __init__(self, initial: list[bytes], exchanges: list[_Exchange],
                 product_id: int | None = None, uri: str = "replay", *,
                 decrypted: bool = False) -> None:
        #: the reports served and not yet read: ``_queue[_head:]``
        self._queue = list(initial)
        self._head = 0
        self._exchanges = exchanges
        self.product_id = product_id
        self.uri = uri
        #: serve the answer to a request one report every ``pace_ms`` ms from the request,
        #: as the reader's 2 ms interrupt endpoint does (0: all at once)
        self.pace_ms = 0.0
        self._next_at = 0.0
        self.decrypted = decrypted

    @property
    def recorded_protocol(self) -> str:
        """``binary`` when the recorded session spoke the binary protocol (it holds 0x0A
        reports), else ``text``: a replay reads the way the recording did."""
        binary = any(e.msg_type == 0x0A for e in self._exchanges)
        return "binary" if binary else "text"

    @classmethod
    def from_file(cls, path: str | Path) -> ReplayTransport:
        path = Path(path)
        try:
            # any input kind (a pipe, /dev/stdin, a FIFO) is bounded in bytes and in waiting
            with open_input(path, MAX_TRANSCRIPT_BYTES) as raw, io.TextIOWrapper(
                    io.BufferedReader(raw), encoding="utf-8") as handle:
                return cls.from_lines(handle, str(path))
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a transcript (not UTF-8 text)") from None
        except OSError as exc:
            raise InputError(f"{path}: {exc.strerror or exc}") from None

    @classmethod
    def from_lines(cls, lines: IO[str] | list[str], name: str = "transcript") -> ReplayTransport:
        """Read a transcript. Anything that is not one is an :class:`InputError` naming
        the line: a line longer than :data:`MAX_LINE` characters (read no further than
        that), bad JSON, a field of the wrong type, bad hex, a report that is not 64 bytes,
        or no report at all."""
        initial: list[bytes] = []
        exchanges: list[_Exchange] = []
        product_id: int | None = None
        decrypted = False
        reports = 0
        for number, line in enumerate(_bounded_lines(lines, name), 1):
            if not line.strip():
                continue
            try:
                ours = _OUR_LINE.fullmatch(line.rstrip("\r\n"))
                if ours is not None:  # our recorder's own lines, without the JSON parser
                    direction, data = ours[1], bytes.fromhex(ours[2])
                else:
                    item: Any = msgspec.json.decode(line)  # (json itself: 1-2 ms of start-up)
                    if not isinstance(item, dict) or not isinstance(item.get("dir"), str):
                        raise TypeError
                    direction = item["dir"]
                    if direction == "meta":
                        product_id = _product_id(item.get("product_id"), name, number)
                        decrypted = item.get("decrypted") is True
                        continue
                    if direction not in ("in", "out"):
                        continue
                    data = bytes.fromhex(item["data"])
            except (ValueError, KeyError, TypeError, RecursionError):
                raise InputError(
                    f"{name} line {number}: not a transcript line "
                    '(expected {"dir": "in"|"out", "data": "<hex>", "t": <seconds>})'
                ) from None
            if len(data) == REPORT_SIZE + 1 and data[0] == 0:
                data = data[1:]
            if len(data) != REPORT_SIZE:
                raise InputError(f"{name} line {number}: a report is 64 bytes, not {len(data)}")
            reports += 1
            if reports > MAX_REPORTS:
                raise InputError(f"{name}: more than {MAX_REPORTS} reports; not a transcript "
                                 "of one reader")
            if direction == "out":
                exchanges.append(_Exchange(_key(data), [], msg_type=data[0]))
            elif exchanges:
                exchanges[-1].replies.append(data)
            else:
                initial.append(data)
        if not exchanges and not initial:
            raise InputError(f"{name}: not a transcript (no \"in\" or \"out\" report in it)")
        return cls(initial, exchanges, product_id, f"replay:{name}", decrypted=decrypted)

    def write(self, report: bytes) -> None:
        report = check_report(report)
        key = _key(report)
        # an exchange sent with the same message type first (Abbott's software sends
        # `$serlnum?` once as 0x20, unanswered, then as 0x60), then any text type
        for same_type in (True, False):
            for exchange in self._exchanges:
                if exchange.used or exchange.key != key:
                    continue
                if same_type and exchange.msg_type != report[0]:
                    continue
                exchange.used = True
                if self._head == len(self._queue):
                    self._next_at = time.monotonic()
                del self._queue[: self._head]  # the reports read, no longer held
                self._head = 0
                self._queue += exchange.replies
                exchange.replies = []  # served: the queue holds them until read, no longer
                return
        raise NotInTranscript(f"the transcript has no unused exchange for {describe(report)}")

    def read(self, timeout_ms: int) -> bytes | None:
        if self._head == len(self._queue):
            return None
        if self.pace_ms:
            # the link's schedule, not the host's: a host that reads late finds the
            # reports that arrived meanwhile waiting, as in the kernel's report queue
            due = self._next_at + self.pace_ms / 1000
            wait = due - time.monotonic()
            if wait > timeout_ms / 1000:
                time.sleep(max(0.0, timeout_ms / 1000))
                return None
            if wait > 0:
                time.sleep(wait)
            self._next_at = due
        self._head += 1
        return self._queue[self._head - 1]

    def read_queued(self, timeout_ms: int, limit: int) -> list[bytes]:
        if self.pace_ms:
            return super().read_queued(timeout_ms, limit)
        head = self._head
        self._head = min(head + limit, len(self._queue))
        return self._queue[head : self._head]

    def unread(self, reports: list[bytes]) -> None:
        # the last reports read_queued handed over: they are still in the list, before _head
        head = self._head - len(reports)
        if head < 0:
            raise ValueError("more reports given back than were read")
        self._queue[head : self._head] = reports
        self._head = head


def _bounded_lines(lines: IO[str] | list[str], name: str) -> Iterator[str]:
    """The lines of a transcript, refusing (without reading it whole) a line longer than
    :data:`MAX_LINE`: a transcript line is about 170 characters."""
    if isinstance(lines, list):
        source: Iterator[str] = iter(lines)
    else:
        handle = lines
        source = iter(lambda: handle.readline(MAX_LINE + 1), "")
    for number, line in enumerate(source, 1):
        if len(line) > MAX_LINE:
            raise InputError(f"{name} line {number}: longer than {MAX_LINE} characters, "
                             "not a transcript line")
        yield line


def _product_id(value: object, name: str, number: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise InputError(f"{name} line {number}: product_id must be a USB product id "
                         f"(0..65535), not {str(value)[:40]}")
    return value


class RecordingTransport(Transport):
    """A logger: passes reports through and writes the transcript when closed.

    The file is written atomically on close, so an interrupted run leaves no half
    transcript under the target name.

    ``share``: write a shareable transcript instead, redacted with these rules
    (:mod:`libre_usb.transport.shareable`); ``encrypted``: the reader's link is encrypted
    (Libre 2/3), so the transcript is stored decrypted with the cipher given to
    :meth:`link_opened`.
    """

    def __init__(self, inner: Transport, path: str | Path, *, model: str | None = None,
                 share: ShareRules | None = None, encrypted: bool = False) -> None:
        self.inner = inner
        self.path = Path(path)
        self.uri = inner.uri
        self.product_id = inner.product_id
        self.decrypted = inner.decrypted
        self.share = share
        self.encrypted = encrypted
        self._cipher: SessionCipher | None = None
        self._start = time.monotonic()
        self._meta = {"dir": "meta", "product_id": inner.product_id, "model": model,
                      "device": inner.uri}
        self._reports: list[Logged] = []
        self._closed = False

    def link_opened(self, cipher: object) -> None:
        """The session's encrypted link is open with ``cipher`` (the host's
        :class:`~libre_usb.protocol.crypto.link.SessionCipher`; None: no encrypted link):
        a shareable transcript stores the reports decrypted with it."""
        from ..protocol.crypto.link import SessionCipher

        self._cipher = cipher if isinstance(cipher, SessionCipher) else None

    def _log(self, direction: str, data: bytes) -> None:
        self._reports.append((direction, bytes(data), round(time.monotonic() - self._start, 6)))

    def write(self, report: bytes) -> None:
        self._log("out", report)
        self.inner.write(report)

    def read(self, timeout_ms: int) -> bytes | None:
        data = self.inner.read(timeout_ms)
        if data is not None:
            self._log("in", data)
        return data

    def lines(self, *, error: str | None = None) -> list[str]:
        """The transcript's lines (see :meth:`save`)."""
        if self.share is not None:
            from .shareable import shareable_lines

            return shareable_lines(
                self._reports, self.share, product_id=self.product_id, cipher=self._cipher,
                encrypted=self.encrypted,
                error=None if error is None else error.split(":", 1)[0])
        lines = [jsonsafe.dumps(self._meta)]
        lines.extend(jsonsafe.dumps({"dir": direction, "data": data.hex(), "t": t})
                     for direction, data, t in self._reports)
        if error is not None:
            lines.append(jsonsafe.dumps({"dir": "end", "error": error}))
        return lines

    def save(self, *, error: str | None = None) -> None:
        """Write the transcript (atomically). ``error``: the session ended with this error
        (``"<class>: <message>"``); a last ``{"dir": "end", "error": ...}`` line says so
        (players ignore it), so the transcript of a failed session never passes for a
        complete one. A shareable transcript names the error's class only."""
        lines = self.lines(error=error)
        with atomic_write(self.path) as handle:
            handle.write("\n".join(lines) + "\n")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.inner.close()


def open_uri(uri: DeviceURI) -> Transport:
    """The ``replay:`` entry of the backend table (transport/interface.py).

    ``replay:FILE?pace_ms=N`` serves each answer at the link's pace, one report every N ms
    (the real endpoint's interval is 2 ms), when FILE itself has no ``?`` in its name."""
    target, sep, query = uri.target.rpartition("?")
    if not sep or Path(uri.target).exists() or not query.startswith("pace_ms="):
        return ReplayTransport.from_file(uri.target)
    try:
        pace_ms = float(query.removeprefix("pace_ms="))
        if not 0 <= pace_ms <= 1000:
            raise ValueError
    except ValueError:
        raise InputError(f"bad device {uri.scheme}:{uri.target}: pace_ms must be a number "
                         "of milliseconds from 0 to 1000") from None
    transport = ReplayTransport.from_file(target)
    transport.pace_ms = pace_ms
    return transport
