"""A passive observer of a reader conversation, sans-I/O.

Where :class:`~libre_usb.protocol.connection.HostConnection` *drives* a reader, the
:class:`Observer` only watches one: it is fed every report of a captured session, in
capture order and in both directions (``feed("out" | "in", report, t)``), and works out
what the captured client asked and what the reader answered, without ever sending
anything. The client may be anyone: Abbott's software, glucometerutils, another version of
libre-dump. So it tolerates what our own client never does: requests sent back to back
before the replies (``04 05 15``), a command sent twice (Abbott sends ``$serlnum?`` as
0x20, unanswered, then as 0x60), a command whose reply never came, host-to-device text
lines that are data for the command before them (``$custthm`` uploads a bitmap as lines
of hex, then ``END``), keepalives anywhere, binary-protocol frames.

Libre 2/3 sessions are encrypted after a clear handshake (protocol.md 5.3). When the
handshake is in the capture and the master keys are given, the observer recovers both
nonces from it (the host's challenge response carries them, encrypted under the
authorisation key derived from the serial), derives the session keys and decrypts every
later report in both directions. Without the handshake (the capture started mid-session)
or without the keys it says so, and counts the reports it could not read.

:meth:`Observer.finish` returns the :class:`Conversation`: every step in order, for a
readable listing, and every exchange (a request with the reports that answered it), from
which :mod:`libre_usb.reader.passive` builds the records the client read.
"""

from __future__ import annotations

import collections
import dataclasses
import hmac
import re
from typing import Any

import construct as cs

from ..errors import ChecksumError, LibreDumpError, MacError, ProtocolError
from .binary.aap import AapFrame
from .binary.link import (
    AckReceived,
    CommandReceived,
    CrcMismatch,
    Duplicate,
    ErrorReplyEvent,
    Monitor,
    OutOfSequence,
    Reply,
)
from .binary.wire import Op
from .crypto.link import (
    ALWAYS_CLEAR,
    CHALLENGE,
    CHALLENGE_ACCEPTED,
    CHALLENGE_RESPONSE,
    SERIAL_LENGTH,
    MasterKeys,
    SessionCipher,
    derive_auth_keys,
    derive_session_keys,
)
from .crypto.primitives import Cmac, Speck
from .frames import TEXT_COMMAND_TYPES, MessageType, parse_report
from .text.reply import TextReply, TextReplyAssembler, parse_multirecord

__all__ = ["Conversation", "Exchange", "Handshake", "Observer", "Step"]

#: requests of the clear init sequence and the message type of their reply
_INIT_REPLIES: dict[int, int] = {
    MessageType.PRE_INIT: MessageType.PRE_INIT_REPLY,
    MessageType.QUERY_SERIAL: MessageType.SERIAL,
    MessageType.QUERY_VERSION: MessageType.VERSION,
    MessageType.INIT: MessageType.INIT_REPLY,
}
_INIT_NAMES: dict[int, str] = {
    MessageType.PRE_INIT: "pre-init query",
    MessageType.QUERY_SERIAL: "serial query",
    MessageType.QUERY_VERSION: "version query",
    MessageType.INIT: "INIT",
}
_BINARY_TYPES: dict[int, str] = {
    MessageType.BINARY_REQUEST: "binary request",
    MessageType.BINARY_RESPONSE: "binary response",
    MessageType.BINARY_ACK_DEVICE: "binary ack (reader)",
    MessageType.BINARY_ACK_HOST: "binary ack (host)",
}
_TRAILER = re.compile(rb"\d{1,9},[0-9A-Fa-f]{8}\Z")
#: how many reply lines a step quotes
_QUOTED_LINES = 3


@dataclasses.dataclass
class Step:
    """One line of the conversation as it happened."""

    t: float
    #: ">" host to reader, "<" reader to host, "!" a note of the observer's
    direction: str
    #: init, handshake, command, data, reply, keepalive, binary, encrypted, stray,
    #: malformed, note
    kind: str
    text: str
    #: index of the :class:`Exchange` this step belongs to, if any
    exchange: int | None = None


@dataclasses.dataclass
class Exchange:
    """A request of the captured client and what answered it."""

    index: int
    t: float
    #: "init", "handshake", "text", "binary" or "other"
    kind: str
    #: the text command (without CR/LF), or a name such as "pre-init query"
    request: str
    msg_type: int
    #: the captured reports filed with this request, ("out" | "in", report, t), as they
    #: were on the wire (encrypted ones stay encrypted)
    reports: list[tuple[str, bytes, float]] = dataclasses.field(default_factory=list)
    #: pending, ok, fail, checksum, incomplete, unanswered, rejected, error, answered
    status: str = "pending"
    detail: str = ""
    reply: TextReply | None = None
    #: host-to-reader text lines that were data for this command ($custthm)
    data_lines: int = 0
    retransmission: bool = False
    #: reply reports seen so far (text replies)
    reply_reports: int = 0
    _assembler: TextReplyAssembler | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass
class Handshake:
    """What the capture showed of the Libre 2/3 encryption handshake."""

    serial: bytes | None = None
    reader_nonce: bytes | None = None
    host_nonce: bytes | None = None
    #: none, started, challenged, responded, accepted, rejected
    state: str = "none"
    #: why reports could not be decrypted, when they could not
    problem: str | None = None


@dataclasses.dataclass
class Conversation:
    steps: list[Step]
    exchanges: list[Exchange]
    #: reader reports that came before any request (left over from earlier)
    initial: list[tuple[str, bytes, float]]
    serial: str | None
    version: str | None
    pre_init_code: int | None
    ready: bool
    encrypted: bool
    decrypted: bool
    handshake: Handshake
    keepalives: int
    binary_frames: dict[int, int]
    #: the complete replies of the binary database protocol, (op, AAP frames), in order
    binary_replies: list[tuple[int, tuple[AapFrame, ...]]]
    #: the client's last SET_COMPRESSION: True (on), False (off), None (never sent)
    binary_compression: bool | None
    #: binary link trouble seen: CRC errors, lost frames, retransmitted frames
    binary_link: dict[str, int]
    undecrypted: int
    malformed: int
    stray: int

    def text_exchanges(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.kind == "text"]


def _cstring(payload: bytes) -> str:
    return payload.split(b"\0", 1)[0].decode("ascii", errors="replace")


def _quote(data: bytes, limit: int = 60) -> str:
    text = data.decode("latin-1").encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Observer:
    """Watches one captured session. See the module docstring.

    ``keys``: the Libre 2/3 master keys, to decrypt an encrypted session whose handshake
    is in the capture (None: encrypted reports are counted, not read).
    ``encrypted``: whether the reader's model is encrypted (None: unknown; then a session
    is taken as encrypted once its handshake shows, or when its reports do not parse as
    clear ones).
    """

    def __init__(self, *, keys: MasterKeys | None = None, encrypted: bool | None = None,
                 max_reply_bytes: int = 64 * 1024 * 1024) -> None:
        self.keys = keys
        self.encrypted = bool(encrypted)
        self._model_encrypted = encrypted
        self.max_reply_bytes = max_reply_bytes
        self.steps: list[Step] = []
        self.exchanges: list[Exchange] = []
        self.initial: list[tuple[str, bytes, float]] = []
        self.handshake = Handshake()
        self.serial: str | None = None
        self.version: str | None = None
        self.pre_init_code: int | None = None
        self.ready = False
        self.keepalives = 0
        self.binary_frames: collections.Counter[int] = collections.Counter()
        self.binary_replies: list[tuple[int, tuple[AapFrame, ...]]] = []
        self.binary_compression: bool | None = None
        self.binary_link: collections.Counter[str] = collections.Counter()
        self._monitor = Monitor()
        self.undecrypted = 0
        self.malformed = 0
        self.stray = 0
        self._text: Exchange | None = None  # the text command awaiting its reply
        self._init: list[Exchange] = []  # init requests awaiting their replies
        self._auth: Exchange | None = None  # the handshake request awaiting a reply
        self._binary: Exchange | None = None
        self._last: Exchange | None = None  # where keepalives and strays are filed
        self._auth_enc: Speck | None = None
        self._auth_mac: Cmac | None = None
        self._challenge_iv: bytes | None = None
        self._open_host: SessionCipher | None = None  # opens host -> reader reports
        self._open_reader: SessionCipher | None = None  # opens reader -> host reports

    # -- plumbing -------------------------------------------------------------------------

    def _step(self, t: float, direction: str, kind: str, text: str,
              exchange: Exchange | None = None) -> None:
        self.steps.append(Step(t, direction, kind, text,
                               exchange.index if exchange is not None else None))

    def _exchange(self, t: float, kind: str, request: str, msg_type: int,
                  raw: bytes) -> Exchange:
        exchange = Exchange(len(self.exchanges), t, kind, request, msg_type, [("out", raw, t)])
        self.exchanges.append(exchange)
        self._last = exchange
        return exchange

    def _file_in(self, raw: bytes, t: float, exchange: Exchange | None = None) -> None:
        target = exchange if exchange is not None else self._last
        if target is None:
            self.initial.append(("in", raw, t))
        else:
            target.reports.append(("in", raw, t))

    def _open(self, raw: bytes, direction: str, t: float) -> bytes | None:
        """The clear report, or None when it is encrypted and cannot be read."""
        if not raw or raw[0] in ALWAYS_CLEAR:
            return raw
        cipher = self._open_host if direction == "out" else self._open_reader
        if cipher is not None:
            try:
                return cipher.open(raw)
            except MacError:
                self.malformed += 1
                self._step(t, ">" if direction == "out" else "<", "malformed",
                           f"encrypted 0x{raw[0]:02x} report failed its MAC check with the "
                           "session keys of the captured handshake")
                return None
            except ProtocolError as exc:
                self.malformed += 1
                self._step(t, ">" if direction == "out" else "<", "malformed", str(exc))
                return None
        if not self.encrypted and self._model_encrypted is None and _looks_clear(raw):
            return raw
        if not self.encrypted and self._model_encrypted is None:
            self.encrypted = True
        if not self.encrypted:
            return raw
        self.undecrypted += 1
        if self.handshake.problem is None:
            self.handshake.problem = (
                "the capture has encrypted reports but not the encryption handshake that "
                "set up their keys (it started in the middle of a session): they cannot be "
                "decrypted")
        self._step(t, ">" if direction == "out" else "<", "encrypted",
                   f"encrypted 0x{raw[0]:02x} report, sequence field "
                   f"{int.from_bytes(raw[56:60], 'little')}" if len(raw) == 64 else
                   f"encrypted 0x{raw[0]:02x} report of {len(raw)} bytes")
        return None

    # -- feeding --------------------------------------------------------------------------

    def feed(self, direction: str, raw: bytes, t: float = 0.0) -> None:
        """Take one captured report. Never raises for what the reports say: everything
        odd becomes a step (malformed, stray, undecryptable) and is counted."""
        raw = bytes(raw)
        if direction == "out":
            self._out(raw, t)
        elif direction == "in":
            self._in(raw, t)
        else:
            raise ValueError(f"direction must be 'out' or 'in', not {direction!r}")

    def _parse(self, raw: bytes, clear: bytes, t: float, arrow: str) -> tuple[int, bytes] | None:
        try:
            return parse_report(clear)
        except ProtocolError as exc:
            self.malformed += 1
            self._step(t, arrow, "malformed", f"{exc}: {raw[:8].hex(' ')} ...")
            return None

    def _out(self, raw: bytes, t: float) -> None:
        clear = self._open(raw, "out", t)
        if clear is None:
            if self._last is not None:
                self._last.reports.append(("out", raw, t))
            else:
                self.initial.append(("out", raw, t))
            return
        parsed = self._parse(raw, clear, t, ">")
        if parsed is None:
            if self._last is not None:
                self._last.reports.append(("out", raw, t))
            else:
                self.initial.append(("out", raw, t))
            return
        msg_type, payload = parsed
        if msg_type in _INIT_REPLIES:
            exchange = self._exchange(t, "init", _INIT_NAMES[msg_type], msg_type, raw)
            self._init.append(exchange)
            if msg_type == MessageType.QUERY_SERIAL and self.encrypted:
                self.handshake.state = "started"
            self._step(t, ">", "init", f"{msg_type:02x} {_INIT_NAMES[msg_type]}", exchange)
        elif msg_type == MessageType.AUTH_REQUEST:
            self._auth_request(raw, clear, payload, t)
        elif msg_type in TEXT_COMMAND_TYPES:
            self._text_command(raw, msg_type, payload, t)
        elif msg_type in _BINARY_TYPES:
            self.binary_frames[msg_type] += 1
            self._binary_report("out", raw, clear, t)
        else:
            exchange = self._exchange(t, "other", f"0x{msg_type:02x}", msg_type, raw)
            self._step(t, ">", "stray", f"{msg_type:02x} report of unknown meaning, "
                       f"{len(payload)} bytes: {payload[:16].hex(' ')}", exchange)

    def _text_command(self, raw: bytes, msg_type: int, payload: bytes, t: float) -> None:
        line = payload.rstrip(b"\r\n")
        pending = self._text
        # a data line (e.g. $custthm's image rows) follows its command directly: after any
        # other report of ours (a stray one started an exchange of its own) it is a command
        if (pending is not None and pending.reply_reports == 0 and self._last is pending
                and not line.startswith(b"$")):
            pending.data_lines += 1
            pending.reports.append(("out", raw, t))
            self._step(t, ">", "data", f"data line for {pending.request}: {_quote(line)}",
                       pending)
            return
        if pending is not None:
            self._close_text(pending, t)
        command = line.decode("latin-1")
        previous = next((e for e in reversed(self.exchanges) if e.kind == "text"), None)
        exchange = self._exchange(t, "text", command, msg_type, raw)
        exchange._assembler = TextReplyAssembler(max_bytes=self.max_reply_bytes)
        if previous is not None and previous.request == command and (
                previous.status != "ok" or previous is pending):
            exchange.retransmission = True
        self._text = exchange
        how = "" if msg_type == MessageType.TEXT else f" (as 0x{msg_type:02x})"
        again = " [retransmission]" if exchange.retransmission else ""
        self._step(t, ">", "command", f"{command}{how}{again}", exchange)

    def _close_text(self, exchange: Exchange, t: float) -> None:
        """A text command that got no complete reply before the next command."""
        if exchange.reply_reports:
            exchange.status = "incomplete"
            exchange.detail = f"the reply stopped after {exchange.reply_reports} reports"
        else:
            exchange.status = "unanswered"
        exchange._assembler = None
        self._step(t, "!", "note", f"{exchange.request}: {exchange.status}"
                   + (f" ({exchange.detail})" if exchange.detail else ""), exchange)
        if self._text is exchange:
            self._text = None

    def _auth_request(self, raw: bytes, clear: bytes, payload: bytes, t: float) -> None:
        self.encrypted = True
        sub = payload[:1]
        if sub == b"\x11":
            exchange = self._exchange(t, "handshake", "start authorize", clear[0], raw)
            self.handshake.state = "started" if self.handshake.state == "none" else \
                self.handshake.state
            self._open_host = self._open_reader = None
            self._auth = exchange
            self._step(t, ">", "handshake", "14 01 11 start authorize", exchange)
        elif sub == b"\x17":
            exchange = self._exchange(t, "handshake", "challenge response", clear[0], raw)
            self._auth = exchange
            self._step(t, ">", "handshake", "14 1a 17 challenge response: "
                       + self._on_response(clear), exchange)
        else:
            exchange = self._exchange(t, "handshake", f"14 {payload[:1].hex()}", clear[0], raw)
            self._auth = exchange
            self._step(t, ">", "handshake", f"14 {len(payload):02x} {payload.hex(' ')} "
                       "(unknown handshake message)", exchange)

    def _on_response(self, report: bytes) -> str:
        self.handshake.state = "responded"
        try:
            response: Any = CHALLENGE_RESPONSE.parse(report)
        except cs.ConstructError:
            return "malformed"
        if self._auth_enc is None or self._auth_mac is None or self._challenge_iv is None:
            return self._why_not()
        if not hmac.compare_digest(self._auth_mac.tag(report[:20]), bytes(response.mac)):
            self.handshake.problem = ("the host's challenge response fails its MAC with the "
                                      "keys derived from this serial")
            return "MAC does not verify"
        nonces = self._auth_enc.ctr(b"\x00" + self._challenge_iv,
                                    bytes(response.encrypted_nonces))
        if self.handshake.reader_nonce is not None and nonces[:8] != self.handshake.reader_nonce:
            self.handshake.problem = "the challenge response does not carry the reader nonce"
            return "reader nonce does not match"
        self.handshake.host_nonce = nonces[8:]
        return f"MAC ok, host nonce {nonces[8:].hex()}"

    def _why_not(self) -> str:
        if self.keys is None:
            self.handshake.problem = (
                "the Libre 2/3 keys are not installed (pip install 'libre-dump[libre2]'): "
                "the handshake is in the capture but its session keys cannot be derived")
            return "not checked (no keys)"
        self.handshake.problem = ("the serial query (05/06) or the challenge is missing "
                                  "from the captured handshake")
        return "not checked (handshake incomplete in the capture)"

    def _in(self, raw: bytes, t: float) -> None:
        clear = self._open(raw, "in", t)
        if clear is None:
            self._file_in(raw, t)
            return
        parsed = self._parse(raw, clear, t, "<")
        if parsed is None:
            self._file_in(raw, t)
            return
        msg_type, payload = parsed
        if msg_type == MessageType.KEEPALIVE:
            self.keepalives += 1
            target = self._text or self._last
            self._file_in(raw, t, target)
            self._step(t, "<", "keepalive", f"22 keepalive {payload.hex(' ')}", target)
            return
        if msg_type in _INIT_REPLIES.values():
            self._init_reply(raw, msg_type, payload, t)
            return
        if msg_type == MessageType.AUTH_REPLY:
            self._auth_reply(raw, clear, payload, t)
            return
        if msg_type == MessageType.UNKNOWN_MESSAGE_ERROR:
            target = self._text or self._binary or self._last
            self._file_in(raw, t, target)
            if target is not None:
                target.status = "rejected"
                target.detail = f"30 {payload.hex(' ')} unknown message"
                if target is self._text:
                    self._text = None
            self._step(t, "<", "reply", f"30 {payload.hex(' ')} the reader rejected "
                       f"{target.request if target else 'a request'} as an unknown message",
                       target)
            return
        if msg_type == MessageType.TEXT:
            self._text_reply(raw, payload, t)
            return
        if msg_type in _BINARY_TYPES:
            self.binary_frames[msg_type] += 1
            self._binary_report("in", raw, clear, t)
            return
        self.stray += 1
        self._file_in(raw, t)
        self._step(t, "<", "stray", f"{msg_type:02x} report of unknown meaning: "
                   f"{payload[:16].hex(' ')}", self._last)

    def _init_reply(self, raw: bytes, msg_type: int, payload: bytes, t: float) -> None:
        exchange = next((e for e in self._init if _INIT_REPLIES[e.msg_type] == msg_type), None)
        if exchange is not None:
            self._init.remove(exchange)
            exchange.status = "answered"
        self._file_in(raw, t, exchange)
        if msg_type == MessageType.PRE_INIT_REPLY:
            self.pre_init_code = payload[0] if payload else None
            text = f"34 pre-init reply {payload.hex(' ')}"
        elif msg_type == MessageType.SERIAL:
            self.serial = _cstring(payload)
            text = f"06 serial {self.serial}"
            if len(payload) >= SERIAL_LENGTH:
                self.handshake.serial = payload[:SERIAL_LENGTH]
                if self.keys is not None:
                    enc, mac = derive_auth_keys(self.keys, self.handshake.serial)
                    self._auth_enc, self._auth_mac = Speck(enc), Cmac(mac)
        elif msg_type == MessageType.VERSION:
            self.version = _cstring(payload)
            text = f"35 version {self.version}"
        else:
            self.ready = payload == b"\x01"
            text = f"71 {payload.hex(' ')} " + ("ready" if self.ready else "unexpected INIT reply")
        if exchange is None:
            text += " (no request for it in the capture)"
        kind = "handshake" if self.encrypted and msg_type == MessageType.SERIAL else "init"
        self._step(t, "<", kind, text, exchange)

    def _auth_reply(self, raw: bytes, clear: bytes, payload: bytes, t: float) -> None:
        exchange = self._auth
        self._file_in(raw, t, exchange)
        if exchange is not None:
            exchange.status = "answered"
        sub = payload[:1]
        if sub == b"\x16":
            self.handshake.state = "challenged"
            try:
                challenge: Any = CHALLENGE.parse(clear)
            except cs.ConstructError:
                self._step(t, "<", "malformed", "malformed challenge (33 10 16 ...)", exchange)
                return
            self.handshake.reader_nonce = bytes(challenge.reader_nonce)
            self._challenge_iv = bytes(challenge.iv)
            self.handshake.host_nonce = None
            self._step(t, "<", "handshake", f"33 10 16 challenge, reader nonce "
                       f"{self.handshake.reader_nonce.hex()}", exchange)
        elif sub == b"\x18":
            self._step(t, "<", "handshake", "33 22 18 challenge accepted: "
                       + self._on_accepted(clear), exchange)
        elif payload == b"\x15":
            self.handshake.state = "rejected"
            self._step(t, "<", "handshake", "33 01 15 encryption not initialised", exchange)
        elif payload == b"\x14":
            self.handshake.state = "rejected"
            self._step(t, "<", "handshake", "33 01 14 encryption setup failed", exchange)
        else:
            self._step(t, "<", "handshake", f"33 {payload.hex(' ')} (unknown)", exchange)
        self._auth = None

    def _on_accepted(self, report: bytes) -> str:
        self.handshake.state = "accepted"
        hs = self.handshake
        if self._auth_enc is None or self._auth_mac is None or self.keys is None:
            return self._why_not()
        try:
            accepted: Any = CHALLENGE_ACCEPTED.parse(report)
        except cs.ConstructError:
            return "malformed"
        if not hmac.compare_digest(self._auth_mac.tag(report[:26]), bytes(accepted.mac)):
            hs.problem = "the reader's challenge acceptance fails its MAC"
            return "MAC does not verify"
        nonces = self._auth_enc.ctr(b"\x00" + bytes(accepted.iv), bytes(accepted.encrypted_nonces))
        if hs.host_nonce is None and hs.reader_nonce is not None and nonces[8:] == hs.reader_nonce:
            hs.host_nonce = nonces[:8]  # the response was not captured; the acceptance says
        if hs.serial is None or hs.reader_nonce is None or hs.host_nonce is None or (
                nonces != hs.host_nonce + hs.reader_nonce):
            hs.problem = "the challenge acceptance does not carry the captured nonces back"
            return "nonces do not match"
        enc, mac = derive_session_keys(self.keys, hs.serial, hs.reader_nonce, hs.host_nonce)
        self._open_host = SessionCipher(enc, mac, "device")
        self._open_reader = SessionCipher(enc, mac, "host")
        hs.problem = None
        return "MAC ok, session keys derived from the serial and both nonces"

    def _binary_report(self, direction: str, raw: bytes, clear: bytes, t: float) -> None:
        """A report of the binary database protocol, through the binary link's passive
        :class:`~libre_usb.protocol.binary.link.Monitor`: commands start exchanges, complete
        replies are kept for decoding, link trouble (CRC errors, lost or resent frames) is
        shown and counted."""
        arrow = ">" if direction == "out" else "<"
        try:
            seen = self._monitor.feed(direction, clear)
        except LibreDumpError as exc:
            self.malformed += 1
            self._file_in_or_out(direction, raw, t)
            self._step(t, arrow, "malformed", f"binary report: {exc}", self._binary)
            return
        filed = False
        for item in seen:
            event = item.event
            if isinstance(event, CommandReceived):
                if event.op == Op.FLUSH:
                    continue
                if event.op == Op.SET_COMPRESSION:
                    self.binary_compression = event.data[:1] == b"\x01"
                exchange = self._exchange(t, "binary", _op_name(event.op), event.op, raw)
                filed = True
                self._binary = exchange
                self._step(t, arrow, "binary", f"binary command {_op_name(event.op)}"
                           + (f" {event.data.hex(' ')}" if event.data else ""), exchange)
            elif isinstance(event, Reply):
                self.binary_replies.append((event.op, event.frames))
                if self._binary is not None:
                    self._binary.status = "ok"
                self._step(t, arrow, "reply", f"binary reply to {_op_name(event.op)}: "
                           f"{len(event.frames)} frames", self._binary)
            elif isinstance(event, ErrorReplyEvent):
                if self._binary is not None:
                    self._binary.status, self._binary.detail = "fail", event.text
                self._step(t, arrow, "reply", f"binary ERROR to {_op_name(event.op)}: "
                           f"{event.text}", self._binary)
            elif isinstance(event, CrcMismatch | OutOfSequence | Duplicate):
                what = {CrcMismatch: "CRC error", OutOfSequence: "lost frame",
                        Duplicate: "retransmitted frame"}[type(event)]
                self.binary_link[what] += 1
                self._step(t, arrow, "binary", f"binary {what}: frame {event.seq}"
                           + (f", expected {event.expected_seq}"
                              if not isinstance(event, Duplicate) else ""), self._binary)
            elif isinstance(event, AckReceived):
                self.binary_link["acks"] += 1  # counted, not listed: one every few frames
        if not filed:
            self._file_in_or_out(direction, raw, t)

    def _file_in_or_out(self, direction: str, raw: bytes, t: float) -> None:
        target = self._binary or self._last
        if target is None:
            self.initial.append((direction, raw, t))
        else:
            target.reports.append((direction, raw, t))

    def _text_reply(self, raw: bytes, payload: bytes, t: float) -> None:
        exchange = self._text
        if exchange is None or exchange._assembler is None:
            self.stray += 1
            self._file_in(raw, t)
            self._step(t, "<", "stray", f"60 text with no command awaiting it: {_quote(payload)}",
                       self._last)
            return
        exchange.reports.append(("in", raw, t))
        exchange.reply_reports += 1
        try:
            reply = exchange._assembler.feed(payload)
        except ChecksumError as exc:
            self._finish_text(exchange, t, "checksum", str(exc))
            return
        except ProtocolError as exc:
            self._finish_text(exchange, t, "error", str(exc))
            return
        if reply is None:
            return
        exchange.reply = reply
        self._finish_text(exchange, t, "ok" if reply.ok else "fail", _describe_reply(reply))

    def _finish_text(self, exchange: Exchange, t: float, status: str, detail: str) -> None:
        exchange.status, exchange.detail = status, detail
        exchange._assembler = None
        self._text = None
        verdict = {"ok": "CMD OK", "fail": "CMD Fail!", "checksum": "BAD CHECKSUM",
                   "error": "BROKEN REPLY"}[status]
        self._step(t, "<", "reply", f"{verdict} ({exchange.reply_reports} reports) {detail}",
                   exchange)

    def finish(self) -> Conversation:
        """End of the capture: close what is still open and return the conversation."""
        t = self.steps[-1].t if self.steps else 0.0
        if self._text is not None:
            self._close_text(self._text, t)
        for exchange in self._init:
            exchange.status = "unanswered"
        if self.encrypted and self._open_reader is None and self.handshake.problem is None \
                and self.undecrypted:
            self.handshake.problem = "the encryption handshake did not complete in the capture"
        return Conversation(
            steps=self.steps,
            exchanges=self.exchanges,
            initial=self.initial,
            serial=self.serial,
            version=self.version,
            pre_init_code=self.pre_init_code,
            ready=self.ready,
            encrypted=self.encrypted,
            decrypted=self._open_reader is not None,
            handshake=self.handshake,
            keepalives=self.keepalives,
            binary_frames=dict(self.binary_frames),
            binary_replies=self.binary_replies,
            binary_compression=self.binary_compression,
            binary_link=dict(self.binary_link),
            undecrypted=self.undecrypted,
            malformed=self.malformed,
            stray=self.stray,
        )


def _op_name(op: int) -> str:
    try:
        return Op(op).name
    except ValueError:
        return f"op 0x{op:02x}"


def _looks_clear(raw: bytes) -> bool:
    """Whether a report of an encryptable type reads as a clear one (a length byte that
    fits and zero or stale padding is all a clear report has; an encrypted one has a
    random-looking length byte, over 62 three times out of four)."""
    return len(raw) == 64 and raw[1] <= 62


def _describe_reply(reply: TextReply) -> str:
    """checksum verdict, line count and the first lines, for a step."""
    lines = reply.lines
    parts = [f"checksum {reply.checksum:08X} ok"]
    if lines and _TRAILER.match(lines[-1]):
        try:
            multi = parse_multirecord(reply, strict_count=False)
            parts.append(f"{len(multi.records)} records, trailer {lines[-1].decode()} ok")
        except LibreDumpError as exc:
            parts.append(f"trailer {lines[-1].decode()}: {exc}")
        return ", ".join(parts)
    if lines == (b"Log Empty",):
        return ", ".join([*parts, "Log Empty"])
    shown = " | ".join(_quote(line, 40) for line in lines[:_QUOTED_LINES])
    more = f" | ... ({len(lines)} lines)" if len(lines) > _QUOTED_LINES else ""
    return ", ".join(parts) + (f": {shown}{more}" if lines else ": (empty)")
