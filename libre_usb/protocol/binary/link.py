"""The binary link as sans-I/O state machines: ATP frames with sequence numbers and CRC32,
ACKs, retransmission, AAP reassembly and the end-of-reply rules.

Three users, one building block (:class:`AtpReceiver`, one direction of the link):

* :class:`HostLink`: what libre-dump's session drives. ``command(op, data)`` returns the
  reports to write (the command frame, then a FLUSH frame); every report read goes to
  ``receive(report)``, which returns events; ``acks()`` returns the ACK reports due.
* :class:`DeviceLink`: the reader's end, used by the virtual reader.
* :class:`Monitor`: passive decoding of a capture (both directions, nothing sent).

Retransmission (ours; the specification's rules are not public, Tidepool's are followed where
known): the host acknowledges with ``seq_rx`` = the next frame it expects. A frame with a bad
CRC or one that arrives ahead of sequence makes the host send one ACK naming the frame it
misses; frames behind sequence (duplicates) are dropped silently. When the reader has been
quiet for a moment and has not confirmed the host's last frames (its ACKs and the ``seq_rx``
of its frames say which it expects), the host sends those frames again; the reader drops a
repeated frame and acknowledges it again. The virtual reader
retransmits everything from ``seq_rx`` on when it receives the same ``seq_rx`` twice in a row
while frames are unacknowledged (a duplicate ACK), and keeps at most :data:`WINDOW` frames
unacknowledged. The host sends a progress ACK every :data:`ACK_EVERY` frames, one whenever the
reader has been quiet for a moment in the middle of a reply (``idle()``), and one at the end.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import construct as cs

from ...errors import CommandFailed, ProtocolError
from ..frames import MessageType, build_report, parse_report
from .aap import AapDecoder, AapFrame, build_aap
from .crc import crc32_words
from .wire import (
    ATP_DATA,
    ATP_HEADER,
    CLOCK_OPS,
    ERROR_TEXT,
    READ_OPS,
    Ack,
    AtpFrame,
    ErrorCode,
    ErrorReply,
    Op,
)

#: frames the virtual reader sends before it waits for an ACK
WINDOW = 16
#: the host acknowledges at least every this many frames
ACK_EVERY = 8
#: the extra bytes of an ACK (Tidepool: 00 02 during init, 00 00 otherwise)
ACK_EXTRA = b"\x00\x00"
INIT_ACK_EXTRA = b"\x00\x02"


def build_atp(seq_rx: int, seq_tx: int, data: bytes) -> bytes:
    """One ATP frame (header + data)."""
    if len(data) > ATP_DATA:
        raise ValueError(f"an ATP frame carries at most {ATP_DATA} bytes, not {len(data)}")
    frame: bytes = AtpFrame.build({"seq_rx": seq_rx & 0xFF, "seq_tx": seq_tx & 0xFF,
                                   "crc": crc32_words(data), "data": data})
    return frame


def build_ack(seq_rx: int, seq_tx: int, extra: bytes = ACK_EXTRA) -> bytes:
    ack: bytes = Ack.build({"seq_rx": seq_rx & 0xFF, "seq_tx": seq_tx & 0xFF, "extra": extra})
    return ack


def _behind(seq: int, expected: int) -> bool:
    """True when ``seq`` is an earlier frame than ``expected`` (mod 256, half the space)."""
    return 0 < (expected - seq) & 0xFF <= 128


# -- events ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FrameReceived:
    """An in-sequence ATP frame; ``frames`` are the AAP frames it completed."""

    seq: int
    frames: tuple[AapFrame, ...]


@dataclasses.dataclass(frozen=True)
class CrcMismatch:
    """An ATP frame whose CRC32 does not match its data (dropped)."""

    seq: int
    expected_seq: int


@dataclasses.dataclass(frozen=True)
class OutOfSequence:
    """An ATP frame ahead of the one expected (a frame was lost; dropped)."""

    seq: int
    expected_seq: int


@dataclasses.dataclass(frozen=True)
class Duplicate:
    """An ATP frame already received (a retransmission or a repeated report; dropped)."""

    seq: int


@dataclasses.dataclass(frozen=True)
class AckReceived:
    """An ACK: the sender expects frame ``seq_rx`` next."""

    seq_rx: int
    seq_tx: int
    extra: bytes


@dataclasses.dataclass(frozen=True)
class Reply:
    """A complete reply to a command: its AAP frames in order."""

    op: int
    frames: tuple[AapFrame, ...]


@dataclasses.dataclass(frozen=True)
class ErrorReplyEvent:
    """The reader answered with ERROR (0x7E)."""

    op: int
    code: int
    extra: bytes

    @property
    def text(self) -> str:
        try:
            return ERROR_TEXT[ErrorCode(self.code)]
        except ValueError:
            return f"unknown error code {self.code}"


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A report that is not part of the binary link (keepalive, stray text...)."""

    msg_type: int
    payload: bytes


Event = (FrameReceived | CrcMismatch | OutOfSequence | Duplicate | AckReceived | Reply
         | ErrorReplyEvent | Skipped)


class BinaryCommandError(CommandFailed):
    """The reader answered a binary command with ERROR (0x7E)."""

    def __init__(self, event: ErrorReplyEvent) -> None:
        try:
            name = Op(event.op).name
        except ValueError:
            name = f"op 0x{event.op:02x}"
        super().__init__(f"the reader answered {name} with ERROR code {event.code} "
                         f"({event.text})")
        self.event = event


# -- one direction ---------------------------------------------------------------------------

class AtpReceiver:
    """Receives the ATP frames of one direction: checks CRC32 and sequence, reassembles the
    AAP stream. ``expected`` is the sequence number of the next frame wanted."""

    def __init__(self, expected: int = 0) -> None:
        self.expected = expected & 0xFF
        self.aap = AapDecoder()
        self.crc_errors = 0
        self.gaps = 0
        self.duplicates = 0

    def feed(self, payload: bytes) -> Event:
        if len(payload) < ATP_HEADER:
            raise ProtocolError(f"ATP frame of {len(payload)} bytes is shorter than its header")
        frame: Any = AtpFrame.parse(payload)
        seq = int(frame.seq_tx)
        data = bytes(frame.data)
        if crc32_words(data) != frame.crc:
            self.crc_errors += 1
            return CrcMismatch(seq, self.expected)
        if seq != self.expected:
            if _behind(seq, self.expected):
                self.duplicates += 1
                return Duplicate(seq)
            self.gaps += 1
            return OutOfSequence(seq, self.expected)
        self.expected = (self.expected + 1) & 0xFF
        return FrameReceived(seq, tuple(self.aap.feed(data)))


def _parse_ack(payload: bytes) -> AckReceived:
    try:
        ack: Any = Ack.parse(payload)
    except cs.ConstructError:
        raise ProtocolError(f"ACK of {len(payload)} bytes: {payload.hex(' ')}") from None
    return AckReceived(int(ack.seq_rx), int(ack.seq_tx), bytes(ack.extra))


def reply_complete(op: int, frames: list[AapFrame], last: AapFrame) -> bool:
    """The end-of-reply rule for a command ``op`` (Tidepool's, where the specification
    differs): database and schema replies end with an empty frame of their op (compressed
    records are 0x35 frames, closed by the empty 0x31); GET_DATE_TIME with its 8-byte frame;
    SET_DATE_TIME with an empty 0x42; GET_CFG_DATA with its first frame; SET_COMPRESSION with
    its 1-byte frame. An ERROR frame ends any reply."""
    if last.op == Op.ERROR:
        return True
    if op == Op.GET_DATABASE:
        return last.op == Op.GET_DATABASE and not last.data
    if op in (Op.GET_DB_SCHEMA, Op.GET_CFG_SCHEMA):
        return last.op == op and not last.data
    if op == Op.GET_DATE_TIME:
        return last.op == op and len(last.data) == 8
    if op == Op.SET_DATE_TIME:
        return last.op == op and not last.data
    if op == Op.GET_CFG_DATA:
        return last.op == op
    if op == Op.SET_COMPRESSION:
        return last.op == op and len(last.data) == 1
    return False


# -- the host --------------------------------------------------------------------------------

class HostLink:
    """The host's end of the binary link (see the module docstring).

    Typical use::

        for report in link.command(Op.GET_DATABASE, bytes([6])):
            write(report)
        while (reply := ...) is None:
            for event in link.receive(read()):
                ...                       # a Reply or an ErrorReplyEvent ends it
            for ack in link.acks():
                write(ack)
    """

    def __init__(self, *, allow_clock: bool = False) -> None:
        self.seq_tx = 0  # next frame we send
        self.rx = AtpReceiver()
        self.allow_clock = allow_clock
        self._op: int | None = None
        self._frames: list[AapFrame] = []
        self._acked = 0  # seq_rx value of the last ACK sent
        self._since_ack = 0
        self._asked: int | None = None  # seq_rx of an outstanding retransmission request
        self._pending: list[bytes] = []
        #: our frames the reader has not confirmed yet, as (seq, data): its ACKs and the
        #: ``seq_rx`` of its frames confirm them
        self._unconfirmed: list[tuple[int, bytes]] = []
        #: every ACK report sent, counted (for the benchmark)
        self.acks_sent = 0
        #: our frames sent again because the reader did not confirm them
        self.resent = 0

    @property
    def busy(self) -> bool:
        return self._op is not None

    def _frame(self, data: bytes) -> bytes:
        report = build_report(MessageType.BINARY_REQUEST, build_atp(self.rx.expected,
                                                                     self.seq_tx, data))
        self._unconfirmed.append((self.seq_tx, data))
        self.seq_tx = (self.seq_tx + 1) & 0xFF
        return report

    def _confirmed(self, seq_rx: int) -> None:
        """The reader expects our frame ``seq_rx`` next: every frame before it arrived."""
        if self._unconfirmed:
            self._unconfirmed = [(seq, data) for seq, data in self._unconfirmed
                                 if not _behind(seq, seq_rx)]

    def command(self, op: int, data: bytes = b"") -> list[bytes]:
        """The reports of one command: its frame, then FLUSH (the reader sends only full
        frames until told to flush). Only read ops, unless ``allow_clock`` for SET_DATE_TIME."""
        if op not in READ_OPS and not (self.allow_clock and op in CLOCK_OPS):
            raise ProtocolError(f"refusing to send binary op 0x{op:02x}: libre-dump only reads")
        if self._op is not None:
            raise ProtocolError("a binary command is still waiting for its reply")
        self._op = op
        self._frames = []
        return [self._frame(build_aap(op, data)), self._frame(build_aap(Op.FLUSH))]

    def init_ack(self) -> bytes:
        """The ACK Abbott's software sends during the init sequence (``00 00 00 02``)."""
        return build_report(MessageType.BINARY_ACK_HOST, build_ack(0, 0, INIT_ACK_EXTRA))

    def abort(self) -> None:
        """Forget the command in progress (after a timeout)."""
        self._op = None
        self._frames = []
        self._unconfirmed = []

    def _ack(self, seq_rx: int) -> None:
        self._pending.append(build_report(MessageType.BINARY_ACK_HOST,
                                          build_ack(seq_rx, self.seq_tx)))
        self._acked = seq_rx
        self._since_ack = 0
        self.acks_sent += 1

    def acks(self) -> list[bytes]:
        """ACK reports to write now (retransmission requests, progress, the final one)."""
        out, self._pending = self._pending, []
        return out

    def idle(self) -> None:
        """The reader said nothing for a moment in the middle of a reply. If it has not
        confirmed our last frames (the command or its FLUSH was lost on the way: a USB
        gadget's kernel driver keeps one SET_REPORT and loses the one before when two
        arrive too fast), send them again; otherwise acknowledge what arrived, which also
        asks again for a frame of the reader's that was lost."""
        if self._op is None:
            return
        if self._unconfirmed:
            for seq, data in self._unconfirmed:
                self._pending.append(build_report(
                    MessageType.BINARY_REQUEST, build_atp(self.rx.expected, seq, data)))
            self.resent += len(self._unconfirmed)
            return
        self._ack(self.rx.expected)

    def receive(self, report: bytes) -> list[Event]:
        msg_type, payload = parse_report(report)
        if msg_type == MessageType.BINARY_ACK_DEVICE:
            ack = _parse_ack(payload)
            # TP accepts only our last frame or the one before; a late ACK of an earlier
            # command is harmless, so only an ACK of a frame never sent is an error
            if ack.seq_rx != self.seq_tx and not _behind(ack.seq_rx, self.seq_tx):
                raise ProtocolError(f"the reader acknowledged frame {ack.seq_rx}, but we sent "
                                    f"up to {(self.seq_tx - 1) & 0xFF}")
            self._confirmed(ack.seq_rx)
            return [ack]
        if msg_type != MessageType.BINARY_RESPONSE:
            return [Skipped(msg_type, payload)]
        event = self.rx.feed(payload)
        events: list[Event] = [event]
        if isinstance(event, (FrameReceived, Duplicate)):
            # a frame whose CRC held: its header's seq_rx is the frame of ours it expects
            self._confirmed(payload[0])
        if isinstance(event, (CrcMismatch, OutOfSequence)):
            if self._asked != self.rx.expected:
                self._asked = self.rx.expected
                self._ack(self.rx.expected)
            return events
        if not isinstance(event, FrameReceived):
            return events
        self._asked = None
        self._since_ack += 1
        done = self._collect(event.frames, events)
        if done:
            self._ack(self.rx.expected)
        elif self._since_ack >= ACK_EVERY:
            self._ack(self.rx.expected)
        return events

    def _collect(self, frames: tuple[AapFrame, ...], events: list[Event]) -> bool:
        for frame in frames:
            if self._op is None:
                raise ProtocolError(f"binary frame op 0x{frame.op:02x} with no command "
                                    "waiting for it")
            if frame.op == Op.ERROR:
                self._op = None
                events.append(error_event(frame))
                return True
            self._frames.append(frame)
            if reply_complete(self._op, self._frames, frame):
                events.append(Reply(self._op, tuple(self._frames)))
                self._op = None
                self._frames = []
                return True
        return False


def error_event(frame: AapFrame) -> ErrorReplyEvent:
    try:
        error: Any = ErrorReply.parse(frame.data)
    except cs.ConstructError:
        return ErrorReplyEvent(-1, -1, frame.data)
    return ErrorReplyEvent(int(error.op), int(error.code), bytes(error.extra))


# -- the reader's end (virtual reader) ---------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CommandReceived:
    op: int
    data: bytes


class DeviceLink:
    """The reader's end: decodes the host's commands, sends AAP data in full ATP frames,
    keeps unacknowledged frames for retransmission (see the module docstring)."""

    def __init__(self, window: int = WINDOW) -> None:
        self.rx = AtpReceiver()
        self.seq_tx = 0  # next frame we send
        self.window = window
        self._buffer = bytearray()  # AAP bytes not yet in a frame
        self._flush = False
        self._unacked: list[tuple[int, bytes]] = []  # (seq, ATP frame)
        self._last_ack: int | None = None
        #: frames sent again on request
        self.retransmitted = 0

    def receive(self, report: bytes) -> tuple[list[CommandReceived], list[bytes]]:
        """A host report -> (commands received, reports to send in answer)."""
        msg_type, payload = parse_report(report)
        out: list[bytes] = []
        commands: list[CommandReceived] = []
        if msg_type == MessageType.BINARY_ACK_HOST:
            ack = _parse_ack(payload)
            out.extend(self._acknowledged(ack.seq_rx))
            return commands, out
        if msg_type != MessageType.BINARY_REQUEST:
            return commands, out
        event = self.rx.feed(payload)
        if isinstance(event, FrameReceived):
            commands.extend(CommandReceived(f.op, f.data) for f in event.frames)
        if isinstance(event, (FrameReceived, Duplicate, OutOfSequence)):
            # a repeated frame is acknowledged again (the host did not see our ACK), one
            # ahead of sequence names the frame we still wait for
            out.append(build_report(MessageType.BINARY_ACK_DEVICE,
                                    build_ack(self.rx.expected, self.seq_tx)))
        return commands, out

    def _acknowledged(self, seq_rx: int) -> list[bytes]:
        duplicate = seq_rx == self._last_ack
        self._last_ack = seq_rx
        while self._unacked and _behind(self._unacked[0][0], seq_rx):
            self._unacked.pop(0)
        out: list[bytes] = []
        if duplicate and self._unacked and self._unacked[0][0] == seq_rx:
            out = [build_report(MessageType.BINARY_RESPONSE, frame)
                   for _, frame in self._unacked]
            self.retransmitted += len(out)
        return out + self._send()

    def send(self, aap: bytes) -> list[bytes]:
        """Queue AAP bytes; returns the full frames that may go now."""
        self._buffer += aap
        return self._send()

    def flush(self) -> list[bytes]:
        """FLUSH: the partly filled last frame goes too."""
        self._flush = True
        return self._send()

    def _send(self) -> list[bytes]:
        out: list[bytes] = []
        while len(self._unacked) < self.window and (
                len(self._buffer) >= ATP_DATA or (self._flush and self._buffer)):
            data = bytes(self._buffer[:ATP_DATA])
            del self._buffer[:ATP_DATA]
            frame = build_atp(self.rx.expected, self.seq_tx, data)
            self._unacked.append((self.seq_tx, frame))
            self.seq_tx = (self.seq_tx + 1) & 0xFF
            out.append(build_report(MessageType.BINARY_RESPONSE, frame))
        if not self._buffer:
            self._flush = False
        return out


# -- passive decoding ------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Observed:
    """One event seen by the :class:`Monitor`, with its direction (``"out"`` host->reader,
    ``"in"`` reader->host)."""

    direction: str
    event: Event | CommandReceived


class Monitor:
    """Decodes both directions of a captured binary session without sending anything.

    ``feed("out" | "in", report)`` takes one 64-byte report as captured and returns what it
    showed: host commands (:class:`CommandReceived`), reader frames (:class:`FrameReceived`
    with the AAP frames they completed), :class:`Reply` when a command's reply is complete
    (by the same end rules as the host), ACKs, CRC errors, gaps and duplicates. Reports that
    are not binary (text, init) come back as :class:`Skipped`.
    """

    def __init__(self) -> None:
        self.host = AtpReceiver()
        self.reader = AtpReceiver()
        self._ops: list[int] = []
        self._frames: list[AapFrame] = []

    def feed(self, direction: str, report: bytes) -> list[Observed]:
        msg_type, payload = parse_report(report)
        if msg_type in (MessageType.BINARY_ACK_HOST, MessageType.BINARY_ACK_DEVICE):
            return [Observed(direction, _parse_ack(payload))]
        if direction == "out" and msg_type == MessageType.BINARY_REQUEST:
            event = self.host.feed(payload)
            out = [Observed(direction, event)]
            if isinstance(event, FrameReceived):
                for frame in event.frames:
                    out.append(Observed(direction, CommandReceived(frame.op, frame.data)))
                    if frame.op != Op.FLUSH:
                        self._ops.append(frame.op)
            return out
        if direction == "in" and msg_type == MessageType.BINARY_RESPONSE:
            event = self.reader.feed(payload)
            out = [Observed(direction, event)]
            if isinstance(event, FrameReceived):
                for frame in event.frames:
                    out.extend(Observed(direction, e) for e in self._reply(frame))
            return out
        return [Observed(direction, Skipped(msg_type, payload))]

    def _reply(self, frame: AapFrame) -> list[Event]:
        op = self._ops[0] if self._ops else -1
        if frame.op == Op.ERROR:
            self._ops[:1] = []
            self._frames = []
            return [error_event(frame)]
        self._frames.append(frame)
        if op >= 0 and reply_complete(op, self._frames, frame):
            self._ops.pop(0)
            reply = Reply(op, tuple(self._frames))
            self._frames = []
            return [reply]
        return []
