"""Fault injection for the virtual reader: ``sim:<model>?faults=NAME[:ARG][@COMMAND],...``.

:class:`FaultInjector` has the virtual reader's API (``write(report)``, ``read(timeout_ms)``
returning ``b""`` when nothing comes, ``close()``) and sits between
:class:`~libre_usb.transport.interfaces.sim.SimTransport` and the :class:`VirtualReader`.
After each host report it takes everything the reader queued in answer (the reader answers
synchronously), breaks it as the faults say, and serves the result. So the reader stays a
correct reader and every fault is a transformation of what a correct reader sent, the way a
flaky cable, a firmware bug or an unplug would transform it.

Faults (``docs/reliability.md`` has the outcome of each):

==================  ============================================================  =========
name[:ARG]          what the host sees                                             default
                                                                                   target
==================  ============================================================  =========
drop[:K]            text report K of the reply never arrives (default: the middle)  records
duplicate[:K]       text report K arrives twice in a row (default: the last one)    first
stale_padding       every clear report's padding holds protocol-looking garbage     every
                    (``CKSM:``, ``CMD OK``, trailers, keepalives)
keepalive_storm[:N] N keepalives (default 1000) in the middle of the reply           records
keepalive_only      from the target command on, nothing but keepalives, forever     records
checksum_once       the reply's ``CKSM:`` is wrong (one hex digit changed), once     records
checksum_always     every reply's ``CKSM:`` is wrong                                 every
trailer_count       the multi-record trailer counts one record more or fewer than    records
                    arrived; the outer ``CKSM:`` is recomputed, so it is right
cut_short           the reply stops before its last report (``CKSM:``/status)        records
silent              from the target command on, the reader never sends anything      records
unplug              the reader disappears half-way through the reply: reads and      records
                    writes raise :class:`~libre_usb.errors.Disconnected`
unexpected_type[:T] a well-formed report of message type T (hex, default ``0b``,     records
                    binary response) in the middle of the reply
unknown_message     the reader answers the command with ``30 01 85``                records
bad_mac[:N]         (Libre 2/3 only, done by the encrypted link in                  --
                    :mod:`libre_usb.simulator.encrypted`) the MAC of the N-th
                    encrypted report is wrong
==================  ============================================================  =========

Targets: ``records`` is the model's last record command (``$arresult?`` on Libre readers,
``$result?`` on the meters), ``first`` its serial command (the first text command of every
session), ``every`` every text reply. ``@COMMAND`` overrides it (``@history`` is read as
``$history?``). Faults that hit one reply hit the first reply to the target only; a retry
gets a correct reply. Several faults may be given; they act in the order given.

Libre 2/3: the injector sees the reports sealed. To change text inside a reply it opens
the report with the session keys of the reader's end of the link and seals the changed
report again under the same sequence number, so what the host gets is *authentic* wrong
data (a reader bug), not a MAC failure; reports it drops, repeats or adds as they are need
no keys. Encrypted reports carry no padding on the wire (the MAC covers the zero-padded
body), so ``stale_padding`` only reaches their clear reports (keepalives, ``71``, ``35``...).
"""

from __future__ import annotations

import collections
import dataclasses
import re
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from ..devices import DeviceModel
from ..errors import Disconnected, InputError
from ..protocol.crypto.link import ALWAYS_CLEAR, SessionCipher
from ..protocol.frames import MAX_PAYLOAD, REPORT_SIZE, MessageType
from ..protocol.text.reply import byte_sum
from .reader import Pacer, idle

__all__ = ["FAULT_KINDS", "Fault", "FaultInjector", "FaultKind", "SimDevice", "parse_fault",
           "with_faults"]


class SimDevice(Protocol):
    """What :class:`~libre_usb.transport.interfaces.sim.SimTransport` talks to."""

    def write(self, report: bytes) -> None: ...

    def read(self, timeout_ms: int) -> bytes: ...

    def close(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class FaultKind:
    """One kind of fault: its name, what it does and which replies it hits by default."""

    name: str
    summary: str
    #: "records", "first" or "every" (see the module docstring)
    target: str
    #: what ``:ARG`` means, or None when the fault takes no argument
    arg: str | None = None
    #: True when the fault is done by the encrypted link, not by the injector
    link: bool = False
    #: only for models with an encrypted transport
    encrypted_only: bool = False
    #: a fault of the binary protocol (only for models that speak it; read with
    #: ``--protocol binary``); its target is a binary op (hex), by default GET_DATABASE
    binary_only: bool = False


FAULT_KINDS: dict[str, FaultKind] = {kind.name: kind for kind in (
    FaultKind("drop", "a text report of the reply never arrives", "records",
              "K, index of the text report (default: the middle one)"),
    FaultKind("duplicate", "a text report of the reply arrives twice", "first",
              "K, index of the text report (default: the last one)"),
    FaultKind("stale_padding", "protocol-looking garbage in the padding of every clear report",
              "every"),
    FaultKind("keepalive_storm", "a burst of keepalives in the middle of the reply", "records",
              "N, how many (default 1000)"),
    FaultKind("keepalive_only", "nothing but keepalives from the target command on", "records"),
    FaultKind("checksum_once", "a wrong CKSM in the reply, once", "records"),
    FaultKind("checksum_always", "a wrong CKSM in every reply", "every"),
    FaultKind("trailer_count", "a multi-record trailer count that does not match the records "
              "(outer CKSM correct)", "records"),
    FaultKind("cut_short", "the reply stops before its last report", "records"),
    FaultKind("silent", "the reader never sends anything from the target command on",
              "records"),
    FaultKind("unplug", "the reader disappears half-way through the reply", "records"),
    FaultKind("unexpected_type", "a report of an unexpected message type inside the reply",
              "records", "T, the message type in hex (default 0b)"),
    FaultKind("unknown_message", "the reader answers 30 01 85 (unknown message)", "records"),
    FaultKind("bad_mac", "an encrypted report with a wrong MAC", "every",
              "N, which encrypted report (default 0, the first)", link=True,
              encrypted_only=True),
    FaultKind("flip", "one bit flipped in an encrypted report", "every",
              "N:BIT, which report and which bit", link=True, encrypted_only=True),
    FaultKind("atp_drop", "an ATP frame of the binary reply never arrives", "records",
              "K, which frame of the reply's first burst (default: the middle one)",
              binary_only=True),
    FaultKind("atp_corrupt", "an ATP frame of the binary reply arrives with a bad CRC32",
              "records", "K, which frame (default: the middle one)", binary_only=True),
    FaultKind("atp_duplicate", "an ATP frame of the binary reply arrives twice", "records",
              "K, which frame (default: the first one)", binary_only=True),
    FaultKind("ack_lost", "the host's ACKs during the binary reply are lost", "records",
              "N, how many (default 2: the reader's window of 16 frames fills)",
              binary_only=True),
    FaultKind("host_frame_lost", "the host's frame after the binary command (its FLUSH) "
              "never reaches the reader, as a USB gadget loses a SET_REPORT that arrives "
              "before the one before it was read", "records",
              "N, how many of the host's frames from there on (default 1)", binary_only=True),
    FaultKind("binary_error", "the reader answers the binary command with ERROR", "records",
              "CODE, the error code (default 3, command failed)", link=True,
              binary_only=True),
)}

_KEEPALIVE = b"\x22\x01\x05"
#: message types whose payload is text, and the error types, which have outcomes of their own
_NOT_UNEXPECTED = frozenset({MessageType.TEXT, MessageType.TEXT_COMMAND_ABBOTT,
                             MessageType.TEXT_COMMAND_ABBOTT_ALT,
                             MessageType.UNKNOWN_MESSAGE_ERROR, MessageType.AUTH_REPLY})
#: stale padding that looks like the protocol, so that a parser reading past the payload
#: length would be fooled into a complete reply, a trailer or a keepalive
_GARBAGE = (b"\r\nCKSM:00000000\r\nCMD OK\r\n1,00000000\r\nLog Empty\r\nCMD Fail!\r\n"
            b"\x22\x01\x05\x60\x3e\xff\x00")
#: where the sequence number sits in an encrypted report (protocol.md 5.4)
_SEQUENCE = slice(56, 60)
_TRAILER = re.compile(rb"(\d{1,9}),([0-9A-Fa-f]{8})\Z")


@dataclasses.dataclass
class Fault:
    """One fault as given in the URI, its target resolved for the model."""

    kind: FaultKind
    #: the text command whose replies it hits; None for every reply
    target: str | None
    number: int | None = None
    #: replies to the target seen so far
    replies_seen: int = 0

    @property
    def name(self) -> str:
        return self.kind.name


def _command(text: str) -> str:
    """``history`` -> ``$history?``; a full command is kept as it is."""
    command = text if text.startswith("$") else "$" + text
    if not command.endswith("?") and "," not in command:
        command += "?"
    return command


#: the largest fault argument (a keepalive storm of 10**12 reports would never end)
_MAX_ARG = 1_000_000


def parse_fault(text: str, model: DeviceModel) -> Fault:
    """Parse one ``NAME[:ARG][@COMMAND]``; raise :class:`InputError` for a bad one."""
    spec, _, target_text = text.partition("@")
    name, _, arg = spec.partition(":")
    kind = FAULT_KINDS.get(name)
    if kind is None:
        raise InputError(f"unknown sim fault {name!r}; known: {', '.join(FAULT_KINDS)}")
    if kind.encrypted_only and not model.encrypted:
        raise InputError(f"sim fault {name!r} needs an encrypted reader (Libre 2/3); "
                         f"{model.name} has a clear transport")
    if kind.binary_only and not model.binary:
        raise InputError(f"sim fault {name!r} is a fault of the binary protocol, which the "
                         f"{model.title} does not speak")
    if arg and kind.arg is None:
        raise InputError(f"sim fault {name!r} takes no argument")
    number: int | None = None
    if arg and not kind.link:
        try:
            number = int(arg, 16) if name == "unexpected_type" else int(arg)
        except ValueError:
            raise InputError(f"bad sim fault {text!r}: {kind.arg}") from None
        if number < 0 or number > _MAX_ARG or (name == "unexpected_type" and (number > 0xFF
                                                          or number in _NOT_UNEXPECTED)):
            raise InputError(f"bad sim fault {text!r}: {kind.arg}"
                             + (" (not a text or error type)" if name == "unexpected_type"
                                else ""))
    if kind.binary_only:
        try:
            op = int(target_text, 16) if target_text else 0x31
        except ValueError:
            raise InputError(f"bad sim fault {text!r}: the target is a binary op in hex"
                             ) from None
        return Fault(kind, f"binary:{op:02x}", number)
    if target_text:
        target: str | None = _command(target_text)
    elif kind.target == "records":
        target = model.records[-1].command if model.records else model.serial_command
    elif kind.target == "first":
        target = model.serial_command
    else:
        target = None
    return Fault(kind, target, number)


class _Reader(Protocol):
    """The parts of :class:`~libre_usb.simulator.reader.VirtualReader` the injector uses."""

    model: DeviceModel
    commands: list[str]

    def write(self, report: bytes) -> None: ...

    def read(self, timeout_ms: int) -> bytes: ...

    def close(self) -> None: ...


class _Marker:
    """A place in the queue where something other than a report happens."""

    def __init__(self, name: str) -> None:
        self.name = name


_UNPLUG = _Marker("unplug")
_KEEPALIVES_FOREVER = _Marker("keepalives forever")
_Item = bytes | _Marker


class _Codec:
    """Clear view of the reports of one reply, and sealing changed ones again."""

    def __init__(self, reader: object) -> None:
        link = getattr(reader, "link", None)
        self._keys: tuple[int, int] | None = None
        if link is not None and link.established:
            session = link.handshake.session
            self._keys = (session.enc_key, session.mac_key)
        self._host = SessionCipher(*self._keys, "host") if self._keys else None

    def encrypted(self, report: bytes) -> bool:
        return self._keys is not None and report[0] not in ALWAYS_CLEAR

    def open(self, report: bytes) -> bytes:
        return self._host.open(report) if self._host and self.encrypted(report) else report

    def replace(self, original: bytes, msg_type: int, payload: bytes) -> bytes:
        """A report like ``original`` (same sequence number, same padding) with a new type
        and payload."""
        if self._keys is not None and msg_type not in ALWAYS_CLEAR:
            sequence = int.from_bytes(original[_SEQUENCE], "little") if (
                original[0] not in ALWAYS_CLEAR) else 0
            device = SessionCipher(*self._keys, "device", sequence=sequence)
            clear = bytes([msg_type, len(payload)]) + payload
            return device.seal(clear + bytes(REPORT_SIZE - len(clear)))
        report = bytearray(original if original[0] in ALWAYS_CLEAR or self._keys is None
                           else bytes(REPORT_SIZE))
        report[0], report[1] = msg_type, len(payload)
        report[2 : 2 + len(payload)] = payload
        return bytes(report)


def _payload(clear: bytes) -> bytes:
    return clear[2 : 2 + min(clear[1], MAX_PAYLOAD)]


class FaultInjector:
    """The virtual reader with faults. See the module docstring."""

    def __init__(self, reader: _Reader, faults: Iterable[Fault]) -> None:
        self.reader = reader
        self.model = reader.model
        self.faults = list(faults)
        #: what was done, in order, e.g. ``"checksum_once on $arresult?"`` (for tests)
        self.injected: list[str] = []
        self._queue: collections.deque[_Item] = collections.deque()
        self._commands_seen = len(reader.commands)
        self._binary_seen = 0
        self._binary_op: int | None = None
        self._frames_to_lose = 0  # host_frame_lost: host frames still to lose
        self._gone = False
        self._mute = False
        # pacing moves out here, so the faults see whole replies and the host still gets
        # one report per pace_ms
        options = getattr(reader, "options", None)
        self._pace_ms: float = getattr(options, "pace_ms", 0.0)
        if self._pace_ms:
            options.pace_ms = 0.0  # type: ignore[union-attr]
        self._pacer = Pacer()
        initial: list[_Item] = list(self._pull())  # e.g. a stale reply (pre_stale)
        self._queue.extend(self._wire(initial))

    # -- the host's view ------------------------------------------------------------------

    def write(self, report: bytes) -> None:
        if self._gone:
            raise Disconnected("sim: the reader went away (simulated unplug)")
        if report[0] == MessageType.BINARY_ACK_HOST and self._lose_ack():
            return
        if report[0] == MessageType.BINARY_REQUEST and self._lose_host_frame():
            return
        self.reader.write(report)
        batch: list[_Item] = list(self._pull())
        if len(self.reader.commands) > self._commands_seen:
            self._commands_seen = len(self.reader.commands)
            batch = self._reply(self.reader.commands[-1], batch)
        binary = getattr(self.reader, "binary_commands", [])
        if len(binary) > self._binary_seen:
            self._binary_seen = len(binary)
            self._binary_op = binary[-1][0]
            self._arm_host_frame_lost(self._binary_op)
        if self._binary_op is not None:
            batch = self._binary_reply(batch)
        if self._mute:
            return
        self._queue.extend(self._wire(batch))

    def read(self, timeout_ms: int) -> bytes:
        if self._gone:
            raise Disconnected("sim: the reader went away (simulated unplug)")
        if not self._queue:
            idle(timeout_ms)
            return b""
        head = self._queue[0]
        if head is _UNPLUG:
            self._gone = True
            self._queue.clear()
            raise Disconnected("sim: the reader went away in the middle of a reply "
                               "(simulated unplug)")
        if head is _KEEPALIVES_FOREVER:
            time.sleep(0.001)  # about the endpoint's interval: a flood, not a busy loop
            return self._stale(_KEEPALIVE.ljust(REPORT_SIZE, b"\0"))
        if not self._pacer.ready(self._pace_ms, timeout_ms):
            return b""
        item = self._queue.popleft()
        assert isinstance(item, bytes)
        return item

    def close(self) -> None:
        self.reader.close()

    # -- the faults -------------------------------------------------------------------------

    def _pull(self) -> list[bytes]:
        """Everything the reader has queued (it answers each report at once)."""
        out: list[bytes] = []
        while True:
            report = self.reader.read(0)
            if not report:
                return out
            out.append(report)

    def _wire(self, batch: list[_Item]) -> list[_Item]:
        if not any(f.name == "stale_padding" for f in self.faults):
            return batch
        return [self._stale(r) if isinstance(r, bytes) else r for r in batch]

    def _stale(self, report: bytes) -> bytes:
        """Fill the padding of a clear report with protocol-looking garbage."""
        if not any(f.name == "stale_padding" for f in self.faults):
            return report
        if self.model.encrypted and report[0] not in ALWAYS_CLEAR:
            return report  # sealed: the MAC covers the whole report, there is no padding
        used = 2 + min(report[1], MAX_PAYLOAD)
        filler = (_GARBAGE * (REPORT_SIZE // len(_GARBAGE) + 1))[: REPORT_SIZE - used]
        return report[:used] + filler

    def _reply(self, command: str, batch: list[_Item]) -> list[_Item]:
        for fault in self.faults:
            if fault.kind.link or fault.name == "stale_padding":
                continue
            if fault.target is not None and fault.target != command:
                continue
            fault.replies_seen += 1
            if fault.name != "checksum_always" and fault.replies_seen > 1:
                continue
            changed = _APPLY[fault.name](self, fault, batch)
            if changed is not None:
                batch = changed
                self.injected.append(f"{fault.name} on {command}")
        return batch

    # -- binary protocol faults --------------------------------------------------------------

    def _binary_faults(self) -> list[Fault]:
        return [f for f in self.faults if f.kind.binary_only and not f.kind.link
                and f.target == f"binary:{self._binary_op:02x}" and not f.replies_seen]

    def _lose_ack(self) -> bool:
        for fault in self.faults:
            if fault.name != "ack_lost" or fault.target != f"binary:{self._binary_op or 0:02x}":
                continue
            limit = 2 if fault.number is None else fault.number
            if fault.replies_seen < limit:
                fault.replies_seen += 1
                self.injected.append(f"ack_lost on {fault.target}")
                return True
        return False

    def _lose_host_frame(self) -> bool:
        """``host_frame_lost``: the host's frames right after the target command (its FLUSH,
        then whatever it sends again) never arrive, N of them."""
        if self._frames_to_lose:
            self._frames_to_lose -= 1
            return True
        return False

    def _arm_host_frame_lost(self, op: int) -> None:
        for fault in self.faults:
            if (fault.name == "host_frame_lost" and fault.target == f"binary:{op:02x}"
                    and not fault.replies_seen):
                fault.replies_seen += 1
                self._frames_to_lose = 1 if fault.number is None else fault.number
                self.injected.append(f"host_frame_lost on {fault.target}")

    def _binary_reply(self, batch: list[_Item]) -> list[_Item]:
        frames = [i for i, r in enumerate(batch)
                  if isinstance(r, bytes) and r[0] == MessageType.BINARY_RESPONSE]
        if not frames:
            return batch
        for fault in self._binary_faults():
            if fault.name in ("ack_lost", "host_frame_lost"):
                continue
            fault.replies_seen += 1
            default = 0 if fault.name == "atp_duplicate" else len(frames) // 2
            at = frames[min(default if fault.number is None else fault.number,
                            len(frames) - 1)]
            report = batch[at]
            assert isinstance(report, bytes)
            if fault.name == "atp_drop":
                batch = batch[:at] + batch[at + 1 :]
            elif fault.name == "atp_duplicate":
                batch = self._insert(batch, at + 1, [report])
            elif fault.name == "atp_corrupt":
                broken = bytearray(report)
                broken[2 + 6 + min(3, max(0, report[1] - 7))] ^= 0x5A  # a data byte
                batch = [*batch[:at], bytes(broken), *batch[at + 1 :]]
            self.injected.append(f"{fault.name} on {fault.target}")
            frames = [i for i, r in enumerate(batch)
                      if isinstance(r, bytes) and r[0] == MessageType.BINARY_RESPONSE]
        return batch

    @staticmethod
    def _texts(batch: list[_Item]) -> list[int]:
        return [i for i, r in enumerate(batch)
                if isinstance(r, bytes) and r[0] == MessageType.TEXT]

    def _edit_text(self, batch: list[_Item], edit: Callable[[bytes], bytes | None]
                   ) -> list[_Item] | None:
        """Apply ``edit`` to the reply's text (all its text payloads joined) and put the
        result back into the same reports, piece by piece (``edit`` keeps the length)."""
        texts = self._texts(batch)
        if not texts:
            return None
        codec = _Codec(self.reader)
        reports = [batch[i] for i in texts]
        pieces = [_payload(codec.open(r)) for r in reports if isinstance(r, bytes)]
        text = b"".join(pieces)
        new = edit(text)
        if new is None or new == text:
            return None
        assert len(new) == len(text)
        out = list(batch)
        at = 0
        for index, piece in zip(texts, pieces, strict=True):
            replacement = new[at : at + len(piece)]
            at += len(piece)
            original = out[index]
            if replacement != piece and isinstance(original, bytes):
                out[index] = codec.replace(original, MessageType.TEXT, replacement)
        return out

    def _insert(self, batch: list[_Item], at: int, reports: list[_Item]) -> list[_Item]:
        return [*batch[:at], *reports, *batch[at:]]


def _text_index(batch: list[_Item], texts: list[int], number: int | None, default: int) -> int:
    k = default if number is None else number
    return texts[min(k, len(texts) - 1)]


def _drop(inj: FaultInjector, fault: Fault, batch: list[_Item]) -> list[_Item] | None:
    texts = inj._texts(batch)
    if not texts:
        return None
    at = _text_index(batch, texts, fault.number, len(texts) // 2)
    return batch[:at] + batch[at + 1 :]


def _duplicate(inj: FaultInjector, fault: Fault, batch: list[_Item]) -> list[_Item] | None:
    texts = inj._texts(batch)
    if not texts:
        return None
    at = _text_index(batch, texts, fault.number, len(texts) - 1)
    return inj._insert(batch, at + 1, [batch[at]])


def _keepalive_storm(inj: FaultInjector, fault: Fault, batch: list[_Item]
                     ) -> list[_Item] | None:
    texts = inj._texts(batch)
    if not texts:
        return None
    count = 1000 if fault.number is None else fault.number
    keepalive = _KEEPALIVE.ljust(REPORT_SIZE, b"\0")
    return inj._insert(batch, texts[len(texts) // 2], [keepalive] * count)


def _keepalive_only(inj: FaultInjector, fault: Fault, batch: list[_Item]) -> list[_Item]:
    inj._queue.append(_KEEPALIVES_FOREVER)
    inj._mute = True
    return []


def _change_checksum(text: bytes) -> bytes | None:
    at = text.rfind(b"CKSM:")
    if at < 0 or len(text) < at + 13:
        return None
    digit = at + 12
    new = b"1" if text[digit : digit + 1] == b"0" else b"0"
    return text[:digit] + new + text[digit + 1 :]


def _checksum(inj: FaultInjector, fault: Fault, batch: list[_Item]) -> list[_Item] | None:
    return inj._edit_text(batch, _change_checksum)


def _change_trailer(text: bytes) -> bytes | None:
    at = text.rfind(b"CKSM:")
    if at < 2 or text[at - 2 : at] != b"\r\n":
        return None
    message = text[:at]
    start = message.rfind(b"\r\n", 0, len(message) - 2) + 2
    match = _TRAILER.match(message[start:-2])
    if match is None:
        return None  # Log Empty, or not a multi-record reply: nothing to miscount
    count = int(match.group(1))
    wrong = count + 1 if len(str(count + 1)) == len(str(count)) else count - 1
    message = (message[:start] + str(wrong).encode() + b"," + match.group(2)
               + message[start + len(match.group(0)):])
    return message + b"CKSM:%08X" % byte_sum(message) + text[at + 13 :]


def _trailer_count(inj: FaultInjector, fault: Fault, batch: list[_Item]) -> list[_Item] | None:
    return inj._edit_text(batch, _change_trailer)


def _cut_short(inj: FaultInjector, fault: Fault, batch: list[_Item]) -> list[_Item] | None:
    texts = inj._texts(batch)
    if not texts:
        return None
    return batch[: texts[-1]]


def _silent(inj: FaultInjector, fault: Fault, batch: list[_Item]) -> list[_Item]:
    inj._mute = True
    return []


def _unplug(inj: FaultInjector, fault: Fault, batch: list[_Item]) -> list[_Item]:
    texts = inj._texts(batch)
    at = texts[len(texts) // 2] if texts else 0
    return [*batch[:at], _UNPLUG]


def _unexpected_type(inj: FaultInjector, fault: Fault, batch: list[_Item]) -> list[_Item] | None:
    texts = inj._texts(batch)
    if not texts:
        return None
    msg_type = MessageType.BINARY_RESPONSE if fault.number is None else fault.number
    at = texts[len(texts) // 2]
    neighbour = batch[at]
    assert isinstance(neighbour, bytes)
    report = _Codec(inj.reader).replace(neighbour, msg_type, b"\x00\x01\x02\x03")
    return inj._insert(batch, at, [report])


def _unknown_message(inj: FaultInjector, fault: Fault, batch: list[_Item]) -> list[_Item]:
    keep = [r for r in batch if isinstance(r, bytes) and r[0] == MessageType.KEEPALIVE]
    error = bytes([MessageType.UNKNOWN_MESSAGE_ERROR, 1, 0x85]).ljust(REPORT_SIZE, b"\0")
    return [error, *keep]


_Apply = Callable[[FaultInjector, Fault, list[_Item]], list[_Item] | None]
_APPLY: dict[str, _Apply] = {
    "drop": _drop,
    "duplicate": _duplicate,
    "keepalive_storm": _keepalive_storm,
    "keepalive_only": _keepalive_only,
    "checksum_once": _checksum,
    "checksum_always": _checksum,
    "trailer_count": _trailer_count,
    "cut_short": _cut_short,
    "silent": _silent,
    "unplug": _unplug,
    "unexpected_type": _unexpected_type,
    "unknown_message": _unknown_message,
}


def with_faults(reader: _Reader) -> SimDevice:
    """``reader`` behind a :class:`FaultInjector` when its ``faults`` option names faults
    the injector does; ``reader`` itself otherwise. Raises :class:`InputError` for an
    unknown or inapplicable fault."""
    options = getattr(reader, "options", None)
    names: tuple[str, ...] = getattr(options, "faults", ())
    faults = [parse_fault(name, reader.model) for name in names]
    if not any(not f.kind.link for f in faults):
        return reader
    return FaultInjector(reader, faults)
