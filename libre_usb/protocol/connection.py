"""The host side of a reader connection as a sans-I/O state machine.

Like h11: the caller asks for the bytes of a request (``pre_init()``, ``init()``,
``text_command()``...), writes them however it likes, then hands every report it reads to
:meth:`HostConnection.receive`, which returns an event when one is complete. No I/O, no
clock: timeouts and retries belong to the caller (:mod:`libre_usb.reader.session`).

States::

    IDLE --pre_init()--> AWAIT_PRE_INIT --0x34--> IDLE
    IDLE --query_serial()--> AWAIT_SERIAL --0x06--> IDLE
    IDLE --query_version()--> AWAIT_VERSION --0x35--> IDLE
    IDLE --init()--> AWAIT_INIT --71 01 01--> READY
    READY --text_command()--> AWAIT_TEXT --...CMD OK/Fail!--> READY

In every state 0x22 keepalives are skipped, and text reports that arrive when no text
reply is awaited (leftovers of an earlier session) are discarded and counted.
"""

from __future__ import annotations

import enum
from typing import Protocol

import msgspec

from ..errors import CommandFailed, EncryptionError, ProtocolError
from .frames import MAX_PAYLOAD, REPORT_SIZE, MessageType, build_report, parse_report
from .text.reply import TextReply, TextReplyAssembler

#: the text message type as a plain int (compared with every report received)
_TEXT = int(MessageType.TEXT)
#: the length bytes a report may have (a report with any other is malformed)
_LENGTHS = bytes(range(MAX_PAYLOAD + 1))
_TEXT_BYTE = bytes((_TEXT,))


class ReportCipher(Protocol):
    """What the connection needs of the Libre 2/3 encrypted transport."""

    def seal(self, report: bytes) -> bytes: ...

    def open(self, raw: bytes) -> bytes: ...


class State(enum.Enum):
    IDLE = "idle"
    AWAIT_PRE_INIT = "await_pre_init"
    AWAIT_SERIAL = "await_serial"
    AWAIT_VERSION = "await_version"
    AWAIT_INIT = "await_init"
    READY = "ready"
    AWAIT_TEXT = "await_text"


class PreInitReply(msgspec.Struct, frozen=True):
    """Reply to 0x04: one byte of unknown meaning (InsuLinx 0x0C, Libre 2 0x16)."""

    code: int


class SerialNumber(msgspec.Struct, frozen=True):
    serial: str


class SoftwareVersion(msgspec.Struct, frozen=True):
    version: str


class Ready(msgspec.Struct, frozen=True):
    """The reader answered INIT with ``71 01 01``."""


class TextResponse(msgspec.Struct, frozen=True):
    command: str
    reply: TextReply


class Skipped(msgspec.Struct, frozen=True):
    """A report that was read and deliberately ignored."""

    msg_type: int
    payload: bytes
    reason: str  # "keepalive" or "stray"


Event = PreInitReply | SerialNumber | SoftwareVersion | Ready | TextResponse | Skipped

#: message types whose payload is a NUL-terminated string
def _cstring(payload: bytes) -> str:
    return payload.split(b"\0", 1)[0].decode("ascii", errors="replace")


class HostConnection:
    """Host side of one connection. See the module docstring for the states."""

    def __init__(
        self,
        *,
        text_command_type: int = MessageType.TEXT,
        crlf: bool = False,
        max_command: int = MAX_PAYLOAD,
        max_reply_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.state = State.IDLE
        self.text_command_type = text_command_type
        self.crlf = crlf
        self.max_command = max_command
        self.max_reply_bytes = max_reply_bytes
        self.cipher: ReportCipher | None = None
        self.keepalives = 0
        self.stray = 0
        self._command = ""
        self._assembler: TextReplyAssembler | None = None

    @property
    def reply_lines(self) -> int:
        """Lines of the text reply received so far (for progress display)."""
        return self._assembler.line_count if self._assembler is not None else 0

    # -- requests -------------------------------------------------------------------------

    def _seal(self, report: bytes) -> bytes:
        return self.cipher.seal(report) if self.cipher is not None else report

    def _request(self, msg_type: int, state: State, allowed: tuple[State, ...]) -> bytes:
        if self.state not in allowed:
            raise ProtocolError(f"cannot send 0x{msg_type:02x} in state {self.state.value}")
        self.state = state
        return self._seal(build_report(msg_type))

    def pre_init(self) -> bytes:
        return self._request(MessageType.PRE_INIT, State.AWAIT_PRE_INIT, (State.IDLE,))

    def query_serial(self) -> bytes:
        return self._request(MessageType.QUERY_SERIAL, State.AWAIT_SERIAL, (State.IDLE,))

    def query_version(self) -> bytes:
        return self._request(MessageType.QUERY_VERSION, State.AWAIT_VERSION, (State.IDLE,))

    def init(self) -> bytes:
        return self._request(MessageType.INIT, State.AWAIT_INIT, (State.IDLE, State.READY))

    def text_command(self, command: str) -> bytes:
        """The report carrying ``command``; then feed reports until a TextResponse."""
        if self.state is not State.READY:
            raise ProtocolError(f"cannot send a text command in state {self.state.value}")
        payload = command.encode("utf-8") + (b"\r\n" if self.crlf else b"")
        if len(payload) > self.max_command:
            raise ProtocolError(
                f"command {command!r} is {len(payload)} bytes; at most {self.max_command} fit"
            )
        self._command = command
        self._assembler = TextReplyAssembler(max_bytes=self.max_reply_bytes)
        self.state = State.AWAIT_TEXT
        return self._seal(build_report(self.text_command_type, payload))

    def abort(self) -> None:
        """Forget a request that will not be answered (after a timeout or error)."""
        self._assembler = None
        self.state = State.READY if self.state in (State.READY, State.AWAIT_TEXT) else State.IDLE

    # -- replies --------------------------------------------------------------------------

    def receive(self, report: bytes) -> Event | None:
        """Take one report from the reader. Returns an event, or None while a text reply
        is still incomplete. Raises :class:`ProtocolError` (and subclasses) on errors;
        the connection then returns to the state before the request."""
        if self.cipher is not None:
            report = self.cipher.open(report)
        msg_type, payload = parse_report(report)
        if msg_type == _TEXT and self.state is State.AWAIT_TEXT:
            # the bulk of every session, first (the other types below are not TEXT)
            assembler = self._assembler
            assert assembler is not None
            try:
                reply = assembler.feed(payload)
            except ProtocolError:
                self.abort()
                raise
            if reply is None:
                return None
            self.state = State.READY
            self._assembler = None
            return TextResponse(self._command, reply)
        if msg_type == MessageType.KEEPALIVE:
            self.keepalives += 1
            return Skipped(msg_type, payload, "keepalive")
        if msg_type == MessageType.UNKNOWN_MESSAGE_ERROR:
            pending = self._command or f"state {self.state.value}"
            self.abort()
            raise CommandFailed(
                f"reader rejected the request ({pending}) as an unknown message "
                f"(30 {len(payload):02x} {payload.hex(' ')})"
            )
        if msg_type == MessageType.AUTH_REPLY:
            self.abort()
            if payload[:1] == b"\x15" and self.cipher is not None:
                raise EncryptionError(
                    "reader rejected our encrypted report as not initialised (33 01 15) "
                    "although the encryption handshake had completed: it did not accept the "
                    "report's MAC"
                )
            if payload[:1] == b"\x15":
                raise EncryptionError(
                    "reader says encryption is not initialised (33 01 15): it is a Libre 2/3 "
                    "reader and needs the encrypted session"
                )
            raise EncryptionError(f"reader reports an encryption error (33 {payload.hex(' ')})")
        state = self.state
        expected = {
            State.AWAIT_PRE_INIT: MessageType.PRE_INIT_REPLY,
            State.AWAIT_SERIAL: MessageType.SERIAL,
            State.AWAIT_VERSION: MessageType.VERSION,
            State.AWAIT_INIT: MessageType.INIT_REPLY,
        }.get(state)
        if expected is not None and msg_type == expected:
            return self._handshake_reply(msg_type, payload)
        # anything else is left over from an earlier exchange: count it and go on
        self.stray += 1
        return Skipped(msg_type, payload, "stray")

    def receive_many(self, reports: list[bytes]) -> tuple[int, TextResponse | None]:
        """:meth:`receive` for the bulk of a text reply, several reports at a time.

        Takes the leading reports of ``reports`` that continue the text reply being
        assembled, all with the result :meth:`receive` would give them, and returns how many
        it took and the :class:`TextResponse` when the last of them completed the reply. It
        stops before any other report (another type, a malformed report, one that would
        raise, anything while no text reply is awaited or on an encrypted link): give that
        one to :meth:`receive`. It never raises."""
        assembler = self._assembler
        if self.state is not State.AWAIT_TEXT or self.cipher is not None or assembler is None:
            return 0, None
        count = len(reports)
        joined = b"".join(reports)
        lengths = joined[1::REPORT_SIZE]
        if (len(joined) != REPORT_SIZE * count or joined[::REPORT_SIZE] != _TEXT_BYTE * count
                or lengths.translate(None, _LENGTHS)):
            # not all of them: the text reports (64 bytes, type 0x60, a valid length) first
            count = 0
            for report in reports:
                if len(report) != REPORT_SIZE or report[0] != _TEXT or report[1] > MAX_PAYLOAD:
                    break
                count += 1
            if not count:
                return 0, None
            reports, lengths = reports[:count], lengths[:count]
        taken, reply = assembler.feed_many([report[2 : 2 + report[1]] for report in reports],
                                           lengths)
        if reply is None:
            return taken, None
        self.state = State.READY
        self._assembler = None
        return taken, TextResponse(self._command, reply)

    def _handshake_reply(self, msg_type: int, payload: bytes) -> Event:
        if msg_type == MessageType.INIT_REPLY:
            if payload != b"\x01":
                self.state = State.IDLE
                raise ProtocolError(f"unexpected INIT reply 71 {payload.hex(' ')}")
            self.state = State.READY
            return Ready()
        self.state = State.IDLE
        if msg_type == MessageType.PRE_INIT_REPLY:
            return PreInitReply(payload[0] if payload else -1)
        if msg_type == MessageType.SERIAL:
            return SerialNumber(_cstring(payload))
        return SoftwareVersion(_cstring(payload))
