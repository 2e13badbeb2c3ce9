"""Shareable transcripts: the recorder's redacting writer (``--record FILE --redact``).

A shareable transcript is a transcript (see :mod:`libre_usb.transport.transcript`) that
can be sent to the project: it replays to the same dump as the session it was recorded
from, but holds nothing that identifies the reader's owner. What it changes:

* every text reply is rewritten by
  :func:`~libre_usb.protocol.text.rewrite.rewrite_reply` with the redaction rules the
  caller passes (:class:`ShareRules`; ``libre_usb.output.redact.TranscriptRules``):
  identifying bytes become placeholders of the same length and class, and the ``CKSM:``
  checksum and multi-record trailer are computed again, so it still verifies;
* the serial in the ``06`` reply is masked the same way;
* the padding of every report is zeroed (readers leave stale bytes of earlier replies
  there);
* Libre 2/3: the reports are stored decrypted with the session keys (which are per
  session and never written), the header says ``"decrypted": true``, and the handshake
  reports (``14``/``33``) are left out: they are useless without the keys, and with the
  published master keys they would let someone test guesses of the masked serial.
  Encrypted reports that do not open with the session keys (left over from an earlier
  session) are left out too. A player serves such a transcript through the clear path;
* the header line states the tool version, model, product id, software version and what
  was replaced and left out; it holds no device path, user or machine name. The last
  line of a failed session names the error's class only (messages may quote reader
  text).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .. import __version__, jsonsafe
from ..devices import DeviceModel
from ..errors import ProtocolError
from ..model import Record
from ..protocol.crypto.link import ALWAYS_CLEAR, SessionCipher
from ..protocol.frames import MAX_PAYLOAD, REPORT_SIZE, TEXT_COMMAND_TYPES, MessageType
from ..protocol.text.records import parse_lines, split_line
from ..protocol.text.rewrite import field_spans, mask, mask_fields, mask_text, rewrite_reply

FORMAT = "libre-dump shareable transcript"
#: the version of the header's layout
FORMAT_VERSION = 1


class ShareRules(Protocol):
    """What is identifying in a reader's text replies (:class:`TranscriptRules`)."""

    #: the reader model's name
    model: str

    def is_multirecord(self, command: str) -> bool:
        """True when ``command`` answers with record lines and a trailer."""

    def reply_lines(self, command: str | None, lines: tuple[bytes, ...]) -> tuple[bytes, ...]:
        """The message lines of ``command``'s reply (record lines without the trailer)
        with every identifying byte replaced; each line keeps its length. ``command``
        is None for a reply that answered no command we sent."""

    def serial(self, payload: bytes) -> bytes:
        """The payload of a ``06`` serial reply, masked."""

    def replaced(self) -> dict[str, int]:
        """What was replaced so far, counted by kind."""


Logged = tuple[str, bytes, float]


def shareable_lines(logged: Sequence[Logged], rules: ShareRules, *,
                    product_id: int | None, cipher: SessionCipher | None = None,
                    encrypted: bool = False, error: str | None = None) -> list[str]:
    """The lines of the shareable transcript of a recorded session.

    ``logged``: ``(direction, report, seconds)`` as the recorder saw them; ``cipher``: the
    host session cipher of an encrypted session (None before or without one);
    ``encrypted``: the model's link is encrypted (the transcript is then marked
    decrypted); ``error``: the class name of the error the session ended with.
    """
    dropped: collections.Counter[str] = collections.Counter()
    mirror = (SessionCipher(cipher.enc_key, cipher.mac_key, "device")
              if cipher is not None else None)
    out: list[tuple[str, bytes, float]] = []
    segment: list[int] = []  # indices in ``out`` of the 0x60 reports answering ``command``
    command: str | None = None
    software: str | None = None
    outcomes: collections.Counter[str] = collections.Counter()
    handshake = False  # the last host report was a handshake request (14)

    def flush() -> None:
        if not segment:
            return
        payloads = [out[i][1][2 : 2 + out[i][1][1]] for i in segment]
        multirecord = command is not None and rules.is_multirecord(command)
        result = rewrite_reply(payloads, lambda lines: rules.reply_lines(command, lines),
                               multirecord=multirecord)
        outcomes[result.how] += 1
        for i, payload in zip(segment, result.payloads, strict=True):
            direction, report, t = out[i]
            out[i] = (direction, _report(report[0], payload), t)
        segment.clear()

    for direction, raw, t in logged:
        report = bytes(raw)
        if len(report) != REPORT_SIZE:
            dropped["malformed reports"] += 1
            continue
        if report[0] not in ALWAYS_CLEAR and cipher is not None and mirror is not None:
            try:
                report = (cipher if direction == "in" else mirror).open(report)
            except ProtocolError:  # MacError included: not of this session
                dropped["encrypted reports of another session"] += 1
                continue
        elif encrypted and report[0] not in ALWAYS_CLEAR:
            dropped["encrypted reports of another session"] += 1
            continue
        if direction == "out":
            handshake = report[0] == MessageType.AUTH_REQUEST
        if encrypted and (report[0] == MessageType.AUTH_REQUEST if direction == "out"
                          else report[0] == MessageType.AUTH_REPLY and handshake):
            dropped["encryption handshake reports"] += 1
            continue
        msg_type, length = report[0], report[1]
        if length > MAX_PAYLOAD:  # not a report our session could read: keep its type only
            out.append((direction, bytes([msg_type, length]) + mask(report[2:]), t))
            continue
        payload = report[2 : 2 + length]
        if direction == "out":
            flush()
            command = (payload.rstrip(b"\r\n").decode("latin-1")
                       if msg_type in TEXT_COMMAND_TYPES else None)
            out.append((direction, _report(msg_type, payload), t))
            continue
        if msg_type == MessageType.TEXT:
            segment.append(len(out))
        elif msg_type == MessageType.SERIAL:
            payload = rules.serial(payload)
        elif msg_type == MessageType.VERSION and software is None:
            software = payload.split(b"\0", 1)[0].decode("ascii", errors="replace")
        out.append((direction, _report(msg_type, payload), t))
    flush()
    header = {
        "dir": "meta",
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool": f"libre-dump {__version__}",
        "model": rules.model,
        "product_id": product_id,
        "software_version": software,
        "decrypted": encrypted,
        "replaced": rules.replaced(),
        "replies": dict(sorted(outcomes.items())),
        "left_out": dict(sorted(dropped.items())),
        "padding": "zeroed",
    }
    lines = [jsonsafe.dumps(header, ensure_ascii=False)]
    lines.extend(jsonsafe.dumps({"dir": direction, "data": report.hex(), "t": t})
                 for direction, report, t in out)
    if error is not None:
        lines.append(jsonsafe.dumps({"dir": "end", "error": error}))
    return lines


def _report(msg_type: int, payload: bytes) -> bytes:
    """One report with a zeroed padding."""
    return bytes([msg_type, len(payload)]) + payload + bytes(REPORT_SIZE - 2 - len(payload))


# -- the rules, applied to bytes ------------------------------------------------------------------

class Policy(Protocol):
    """The redaction rules as decisions on reader text
    (``libre_usb.output.redact.TranscriptPolicy``, passed in by the caller: the device layer
    does not import the output layer)."""

    counts: collections.Counter[str]

    def reply_line(self, command: str | None, line: str,
                   placeholder: Callable[[str], str]) -> str: ...

    def identifying_fields(self, fields: Sequence[str],
                           records: Sequence[Record]) -> dict[int, str]: ...

    def decoded_shape(self, records: Sequence[Record]) -> list[dict[str, Any]]: ...


def _placeholder(text: str) -> str:
    # replies are handled as latin-1 text: one character per byte, so lengths are kept
    return mask_text(text, "latin-1")


class TranscriptRules:
    """:class:`ShareRules` for one reader model: record lines are parsed with the model's
    layouts and every field ``policy`` calls identifying is masked in place; other replies
    go through ``policy.reply_line`` line by line."""

    def __init__(self, model: DeviceModel, policy: Policy) -> None:
        self.model = model.name
        self._parsers = {source.command: source.parser for source in model.records}
        self._events = model.event_command
        self._policy = policy

    def is_multirecord(self, command: str) -> bool:
        return command in self._parsers or command in ("$patch?", self._events)

    def replaced(self) -> dict[str, int]:
        return dict(sorted(self._policy.counts.items()))

    def serial(self, payload: bytes) -> bytes:
        masked = mask(payload)
        if masked != payload:
            self._policy.counts["reader serial"] += 1
        return masked

    def reply_lines(self, command: str | None, lines: tuple[bytes, ...]) -> tuple[bytes, ...]:
        if command is not None and command in self._parsers:
            return tuple(self._record_line(self._parsers[command], command, line)
                         for line in lines)
        return tuple(
            self._policy.reply_line(command, line.decode("latin-1"), _placeholder)
            .encode("latin-1") for line in lines)

    def _record_line(self, parser: str, source: str, line: bytes) -> bytes:
        records = parse_lines(parser, [line], source)
        hide = self._policy.identifying_fields(split_line(line), records)
        new = mask_fields(line, set(hide))
        if new == line:
            return line
        shape = self._policy.decoded_shape
        if shape(parse_lines(parser, [new], source)) != shape(records):
            # masking changed how the line reads (a note text that equals a number of the
            # line, say): replace the whole line rather than guess which field is which
            self._policy.counts["record lines replaced whole"] += 1
            return mask(line)
        for index, (start, end) in enumerate(field_spans(line)):
            if index in hide and new[start:end] != line[start:end]:
                self._policy.counts[hide[index]] += 1
        return new
