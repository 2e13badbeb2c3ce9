"""Reading a reader's database over the binary protocol: the session's binary half.

:func:`read_database` drives :class:`~libre_usb.protocol.binary.link.HostLink` over the
session's transport, in the order Abbott's software uses (Tidepool): SET_COMPRESSION (where
the model turns it on), GET_DB_SCHEMA, GET_CFG_SCHEMA, GET_DATE_TIME, GET_CFG_DATA for the
model's config tables, GET_DATABASE for its database tables. Only those reads are sent; the
link refuses anything else. The one exception is :meth:`BinaryReader.set_clock`
(SET_DATE_TIME), which only ``Session.set_clock`` calls, for ``libre-dump clock --set``.

Time lives here, not in the protocol: reads poll in short steps (:data:`POLL_MS`); a step with
nothing in the middle of a reply makes the link acknowledge (which also asks again for a lost
frame); ``timeout_ms`` of silence ends the read with :class:`DeviceTimeout`. Every command's
reply also has a deadline, as a text reply does (docs/reliability.md): the session's
``deadline_s`` (``--deadline``) or, by size class, 600 s for a database table and 30 s for
everything else. A reader that keeps sending (slowly, or frames that fail their CRC and are
asked for again forever) is cut off there with :class:`DeviceTimeout` (exit 5). The whole
read is bounded by that deadline times its commands (17 on the Libre).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Protocol

from .. import logs
from ..devices import DeviceModel
from ..errors import DeviceTimeout, ProtocolError
from ..protocol.binary.aap import AapFrame
from ..protocol.binary.decode import BinaryRead, Decoded, decode_session
from ..protocol.binary.link import (
    BinaryCommandError,
    CrcMismatch,
    Duplicate,
    ErrorReplyEvent,
    HostLink,
    OutOfSequence,
    Reply,
)
from ..protocol.binary.wire import Op, date_time_data
from ..transport.interface import Transport


class Session(Protocol):
    """What the binary reader uses of :class:`~libre_usb.reader.session.Session`."""

    transport: Transport
    model: DeviceModel
    timeout_ms: int
    deadline_s: float | None
    compression: bool
    progress: Callable[[str, int, int], None] | None
    recovered: dict[str, int]
    bytes_in: int

    def drain(self, wait_ms: int = ...) -> int: ...

log = logs.get("libre_usb.binary")

#: how long one read waits before the host acknowledges what it has (ms)
POLL_MS = 50
#: the deadline of one reply by size class, when the session sets none (as for text replies)
TABLE_DEADLINE_S = 600.0
INFO_DEADLINE_S = 30.0


class BinaryReader:
    """The binary exchanges of one session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.link = HostLink()
        #: frames the host had to ask for again, and other link trouble (for the report)
        self.recovered: dict[str, int] = {}
        self._started = False

    def _note(self, what: str) -> None:
        self.recovered[what] = self.recovered.get(what, 0) + 1
        self.session.recovered[what] = self.session.recovered.get(what, 0) + 1

    def exchange(self, op: int, data: bytes = b"") -> tuple[AapFrame, ...]:
        """Send one command and return its reply's frames; an ERROR reply raises
        :class:`BinaryCommandError`."""
        transport = self.session.transport
        timeout_ms = self.session.timeout_ms
        if not self._started:
            self.session.drain(0)
            transport.write(self.link.init_ack())
            self._started = True
        for report in self.link.command(op, data):
            transport.write(report)
        quiet_since = time.monotonic()
        name = Op(op).name if op in Op._value2member_map_ else f"0x{op:02x}"
        limit = self.session.deadline_s
        if limit is None:
            limit = TABLE_DEADLINE_S if op == Op.GET_DATABASE else INFO_DEADLINE_S
        deadline = quiet_since + limit
        received = 0
        while True:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                # not retried: a retry would take another whole deadline
                self.link.abort()
                raise DeviceTimeout(
                    f"the reader did not finish its reply to the binary command {name} "
                    f"within {limit:g} s ({received} reports; the deadline for one reply, "
                    "see --deadline)")
            incoming = transport.read(max(1, min(POLL_MS, timeout_ms, remaining_ms)))
            if incoming is None:
                if time.monotonic() - quiet_since > timeout_ms / 1000:
                    self.link.abort()
                    raise DeviceTimeout(f"the reader did not answer the binary command {name} "
                                        f"within {timeout_ms / 1000:g} s")
                resent = self.link.resent
                self.link.idle()
                if self.link.resent > resent:
                    self._note("HostFrameResent")
                    log.info("%s: the reader did not confirm our last frames; sent again",
                             name)
                for ack in self.link.acks():
                    transport.write(ack)
                continue
            self.session.bytes_in += len(incoming)
            received += 1
            done: tuple[AapFrame, ...] | None = None
            for event in self.link.receive(incoming):
                if isinstance(event, Reply):
                    done = event.frames
                elif isinstance(event, ErrorReplyEvent):
                    for ack in self.link.acks():
                        transport.write(ack)
                    raise BinaryCommandError(event)
                elif isinstance(event, (CrcMismatch, OutOfSequence, Duplicate)):
                    self._note(type(event).__name__)
                    log.info("%s: %s", name, event)
                    quiet_since = time.monotonic()
                else:
                    quiet_since = time.monotonic()
            for ack in self.link.acks():
                transport.write(ack)
            if done is not None:
                return done

    def read_clock(self) -> dt.datetime | None:
        """GET_DATE_TIME: the reader's clock (naive wall time), None when it says invalid."""
        read = BinaryRead()
        read.add_reply(Op.GET_DATE_TIME, self.exchange(Op.GET_DATE_TIME))
        if read.date_time is None:
            raise ProtocolError("the reader's GET_DATE_TIME reply is not 8 bytes long")
        second, minute, hour, day, month, year, valid = read.date_time
        try:
            return dt.datetime(year, month, day, hour, minute, second) if valid else None
        except ValueError:
            return None  # a date that does not exist: the clock is not set

    def set_clock(self, when: dt.datetime) -> None:
        """SET_DATE_TIME to ``when``: the only write, opened for this one command."""
        self.link.allow_clock = True
        try:
            self.exchange(Op.SET_DATE_TIME, date_time_data(
                when.year, when.month, when.day, when.hour, when.minute, when.second))
        finally:
            self.link.allow_clock = False

    def read(self, db_record_number: int | None, *, records: bool = True) -> Decoded:
        """Schemas, clock, config and (unless ``records`` is False) database tables,
        decoded."""
        model = self.session.model
        read = BinaryRead(db_record_number=db_record_number or 0)
        compression = model.binary_compression and self.session.compression
        if compression:
            self.exchange(Op.SET_COMPRESSION, b"\x01")
        for op in (Op.GET_DB_SCHEMA, Op.GET_CFG_SCHEMA, Op.GET_DATE_TIME):
            read.add_reply(op, self.exchange(op))
        for table in model.binary_config_tables:
            try:
                read.add_reply(Op.GET_CFG_DATA, self.exchange(Op.GET_CFG_DATA, bytes([table])),
                               table)
            except BinaryCommandError as exc:
                log.info("config table %d: %s", table, exc)
        for table in model.binary_db_tables if records else ():
            frames = self.exchange(Op.GET_DATABASE, bytes([table]))
            read.add_reply(Op.GET_DATABASE, frames, table)
            if self.session.progress is not None:
                self.session.progress(f"database table {table}", len(frames),
                                      self.session.bytes_in)
        decoded = decode_session(read)
        decoded.settings["protocol"] = "binary"
        decoded.settings["compression"] = compression
        return decoded

