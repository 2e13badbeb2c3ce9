"""A session with one reader: the protocol state machine driven over a transport.

This is where time exists: every read has a deadline (``timeout_ms`` of silence), stale
input is drained before we start, and read-only text commands whose reply arrives broken
(checksum, trailer, a reply cut short) are retried a bounded number of times after
draining, with the retry logged. A reader that says nothing at all is not retried: it
fails with :class:`DeviceTimeout` after one timeout.

Only read-only commands are sent (:func:`libre_usb.devices.is_read_only`); the clock
setters need ``allow_write=True`` and erase commands are refused always. With the binary
protocol, the clock is read with GET_DATE_TIME and set with SET_DATE_TIME, and only
:meth:`Session.set_clock` sends that.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from .. import logs
from ..devices import DeviceModel, is_read_only, model_by_name, model_for_product_id
from ..errors import (
    ChecksumError,
    CommandFailed,
    DeviceTimeout,
    InputError,
    NotInTranscript,
    ProtocolError,
)
from ..model import DeviceInfo, Dump, Record
from ..protocol.connection import (
    HostConnection,
    PreInitReply,
    Ready,
    SerialNumber,
    Skipped,
    SoftwareVersion,
    TextResponse,
)
from ..protocol.text.records import LineStats, parse_lines, parse_meter_events
from ..protocol.text.replies import (
    clock_setters,
    decode_settings,
    parse_date_time,
    parse_dbrnum,
    parse_patch,
    parse_patient_name,
    parse_rdt,
    parse_unit,
)
from ..protocol.text.reply import TextReply, parse_multirecord
from ..transport.interface import REPORT_SIZE, Transport

if TYPE_CHECKING:
    from .binary import BinaryReader

log = logs.get("libre_usb.reader.session")

DEFAULT_TIMEOUT_MS = 3000
#: how often a read-only command whose reply arrived broken is sent again
DEFAULT_RETRIES = 2
#: the longest one reply may take in all, by its size class (``--deadline`` overrides both):
#: a few lines of device information, or a record list (90 days of history is ~8,640 lines,
#: about 7,000 reports: well under a minute on a real reader)
INFO_DEADLINE_S = 30.0
RECORDS_DEADLINE_S = 600.0
_DRAIN_MS = 30
#: a text reply's reports are taken this many at a time when they are already waiting
_BATCH = 256
#: the progress callback is called every this many reports of a reply
_PROGRESS_EVERY = 16
_DRAIN_LIMIT = 4096

#: called with (command, records so far, bytes received in the session) while a
#: multi-record reply streams in
Progress = Callable[[str, int, int], None]


class Session:
    """Talks to one reader. Use as a context manager or call :meth:`open` first."""

    def __init__(
        self,
        transport: Transport,
        model: DeviceModel | str | None = None,
        *,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        retries: int = DEFAULT_RETRIES,
        progress: Progress | None = None,
        deadline_s: float | None = None,
        protocol: str | None = "text",
        compression: bool = True,
    ) -> None:
        self.transport = transport
        if isinstance(model, str):
            model = model_by_name(model)
        if model is None:
            model = (
                model_for_product_id(transport.product_id)
                if transport.product_id is not None
                else model_by_name("libre")
            )
        self.model = model
        self.protocol = resolve_protocol(protocol, model)
        #: binary protocol: turn compression on where the model's software does
        self.compression = compression
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.progress = progress
        #: the longest one reply may take in all; None: by its size class
        self.deadline_s = deadline_s
        self.conn = HostConnection(text_command_type=model.text_command_type)
        self.serial_from_init: str | None = None
        self.version_from_init: str | None = None
        self.retried: list[str] = []
        #: bytes of the reports read in this session (for progress display)
        self.bytes_in = 0
        #: binary protocol: link faults recovered from (frames asked for again, dropped
        #: duplicates), by kind
        self.recovered: dict[str, int] = {}
        #: record lines kept raw because they fit no known layout (docs/records.md)
        self.line_stats = LineStats()
        #: the text command that just timed out without a single report of its reply
        self._unanswered: str | None = None
        self._open = False
        #: the binary exchanges of the clock command (one link for the whole session)
        self._clock_link: BinaryReader | None = None

    # -- plumbing -------------------------------------------------------------------------

    def __enter__(self) -> Session:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.transport.close()

    def _read(self, what: str) -> bytes:
        report = self.transport.read(self.timeout_ms)
        if report is None:
            raise DeviceTimeout(
                f"the reader did not answer {what} within {self.timeout_ms / 1000:g} s"
            )
        self.bytes_in += len(report)
        return report

    def drain(self, wait_ms: int = _DRAIN_MS) -> int:
        """Read and drop whatever the reader still has queued; returns how many reports.

        ``wait_ms=0`` takes only what has already arrived, without waiting."""
        dropped = 0
        deadline = time.monotonic() + 2.0
        while dropped < _DRAIN_LIMIT and time.monotonic() < deadline:
            if self.transport.read(wait_ms) is None:
                break
            dropped += 1
        if dropped:
            log.info("drained %d stale report(s)", dropped)
        return dropped

    def _skipped(self, event: Skipped, what: str, useful_at: float) -> DeviceTimeout | None:
        """Log a skipped report; past the timeout with nothing but skipped reports since
        ``useful_at``, the error to raise (a keepalive flood must not hang us)."""
        if event.reason == "stray":
            log.info("skipped a stray 0x%02x report while waiting for %s", event.msg_type, what)
        if time.monotonic() - useful_at <= self.timeout_ms / 1000:
            return None
        self.conn.abort()
        return DeviceTimeout(
            f"the reader sent only keepalives or unrelated reports for "
            f"{self.timeout_ms / 1000:g} s instead of answering {what}"
        )

    def _exchange(self, request: bytes, what: str) -> object:
        self.transport.write(request)
        useful_at = time.monotonic()
        while True:
            event = self.conn.receive(self._read(what))
            if isinstance(event, Skipped):
                error = self._skipped(event, what, useful_at)
                if error is not None:
                    raise error
                continue
            if event is None:
                useful_at = time.monotonic()
                continue
            return event

    # -- connecting -----------------------------------------------------------------------

    def open(self) -> None:
        """Drain stale input, then the init sequence: 04, 05, 15, then 01 -> 71 01 01."""
        if self._open:
            return
        self.drain()
        if self.model.encrypted and not self.transport.decrypted:
            self._encryption_handshake()
        elif self.model.encrypted:
            # a decrypted transcript: the handshake's clear serial query, then as usual
            serial = self._exchange(self.conn.query_serial(), "the serial query (05)")
            if isinstance(serial, SerialNumber):
                self.serial_from_init = serial.serial
        else:
            pre = self._exchange(self.conn.pre_init(), "the pre-init query (04)")
            if isinstance(pre, PreInitReply):
                log.debug("pre-init reply 0x%02x", pre.code)
            serial = self._exchange(self.conn.query_serial(), "the serial query (05)")
            if isinstance(serial, SerialNumber):
                self.serial_from_init = serial.serial
        version = self._exchange(self.conn.query_version(), "the version query (15)")
        if isinstance(version, SoftwareVersion):
            self.version_from_init = version.version
        ready = self._exchange(self.conn.init(), "INIT (01)")
        if not isinstance(ready, Ready):
            raise ProtocolError(f"unexpected reply to INIT: {ready}")
        self._open = True

    def _encryption_handshake(self) -> None:
        from .encrypted import handshake

        self.serial_from_init, self.conn.cipher = handshake(self.transport, self.timeout_ms)

    # -- commands -------------------------------------------------------------------------

    def command(self, command: str, *, allow_write: bool = False) -> TextReply:
        """Send one text command and return its verified reply (``CMD Fail!`` raises
        :class:`CommandFailed`)."""
        if not is_read_only(command):
            if not (allow_write and command.startswith(("$date,", "$time,"))):
                raise InputError(f"refusing to send {command!r}: libre-dump only reads")
        attempts = 1 + (self.retries if is_read_only(command) else 0)
        for attempt in range(attempts):
            try:
                reply = self._text(command)
            except (ChecksumError, _Partial) as exc:
                if attempt + 1 >= attempts:
                    if isinstance(exc, _Partial):
                        raise exc.cause from None
                    raise
                log.warning("%s: %s; draining and retrying (%d of %d)",
                            command, exc, attempt + 1, self.retries)
                self.retried.append(command)
                self.conn.abort()
                self.drain()
                continue
            if not reply.ok:
                # the text before CMD Fail! is not quoted: messages never carry what the
                # reader stores (it may be a note; --redact must hold for stderr too)
                raise CommandFailed(f"the reader answered {command} with CMD Fail!"
                                    + (f" after {len(reply.lines)} line(s)" if reply.lines
                                       else ""))
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def _text(self, command: str) -> TextReply:
        # Whatever is already queued is left over (a repeated or late report of the last
        # reply): taken for this reply's start it would shift every answer by one.
        self.drain(0)
        self._unanswered = None
        self.transport.write(self.conn.text_command(command))
        received = 0
        transport, conn, progress = self.transport, self.conn, self.progress
        monotonic, read_queued, unread = time.monotonic, transport.read_queued, transport.unread
        receive, receive_many = conn.receive, conn.receive_many
        useful_at = monotonic()
        limit = self._deadline(command)
        deadline = useful_at + limit
        while True:
            remaining_ms = int((deadline - monotonic()) * 1000)
            if remaining_ms <= 0:
                # a reader that dribbles and never finishes: not retried (it would take
                # another whole deadline)
                conn.abort()
                raise DeviceTimeout(
                    f"the reader did not finish its reply to {command} within {limit:g} s "
                    f"({received} reports; the deadline for one reply, see --deadline)")
            wait_ms = max(1, min(self.timeout_ms, remaining_ms))
            # the reports already waiting, at most up to the next progress call
            reports = read_queued(wait_ms, _BATCH if progress is None
                                  else _PROGRESS_EVERY - received % _PROGRESS_EVERY)
            if not reports and wait_ms < self.timeout_ms and (
                    monotonic() - useful_at) * 1000 < self.timeout_ms:
                continue  # the deadline, not the timeout, cut this wait short
            if not reports:
                conn.abort()
                error = DeviceTimeout(
                    f"the reader did not answer {command} within {self.timeout_ms / 1000:g} s"
                    + (f" (the reply stopped after {received} reports)" if received else "")
                )
                if received:
                    raise _Partial(error)
                self._unanswered = command
                raise error
            # the bulk of every session: the reports that continue the reply, at once
            taken, response = receive_many(reports)
            if taken:
                self.bytes_in += REPORT_SIZE * taken  # receive_many takes 64-byte reports
                if response is not None:
                    if taken < len(reports):
                        unread(reports[taken:])
                    return response.reply
                received += taken
                useful_at = monotonic()
                if progress is not None and received % _PROGRESS_EVERY == 0:
                    progress(command, conn.reply_lines, self.bytes_in)
                if taken == len(reports):
                    continue
            # the next report is another kind: it alone, the rest given back for the next
            # round
            report = reports[taken]
            if taken + 1 < len(reports):
                unread(reports[taken + 1 :])
            self.bytes_in += len(report)
            event = receive(report)
            if event is None:  # a reply still incomplete
                received += 1
                useful_at = monotonic()
                if progress is not None and received % _PROGRESS_EVERY == 0:
                    progress(command, conn.reply_lines, self.bytes_in)
                continue
            if isinstance(event, TextResponse):
                return event.reply
            if isinstance(event, Skipped):
                skipped = self._skipped(event, command, useful_at)
                if skipped is None:
                    continue
                if received:
                    raise _Partial(skipped)
                raise skipped
            received += 1  # any other event: not this reply's, but the reader is alive
            useful_at = monotonic()

    def _deadline(self, command: str) -> float:
        if self.deadline_s is not None:
            return self.deadline_s
        if any(source.command == command for source in self.model.records):
            return RECORDS_DEADLINE_S
        return INFO_DEADLINE_S

    def records(self, command: str, parser: str, *, strict_count: bool = True) -> list[Record]:
        """Send a multi-record command and parse every line."""
        for attempt in range(1 + self.retries):
            reply = self.command(command)
            try:
                multi = parse_multirecord(reply, strict_count=strict_count)
            except ProtocolError as exc:
                if attempt >= self.retries:
                    raise
                log.warning("%s: %s; draining and retrying", command, exc)
                self.retried.append(command)
                self.drain()
                continue
            if self.progress is not None:
                self.progress(command, len(multi.records), self.bytes_in)
            return parse_lines(parser, multi.records, command, self.line_stats)
        raise AssertionError("unreachable")  # pragma: no cover

    def _optional(self, command: str) -> str | None:
        """The reply text of an informational command, or None if the reader refuses it.

        Decoded with the model's text encoding (Latin-1 on the InsuLinx, UTF-8 with
        replacement elsewhere); lines are joined with ``\n``."""
        try:
            reply = self.command(command)
            encoding = self.model.text_encoding
            return "\n".join(line.decode(encoding, errors="replace") for line in reply.lines)
        except CommandFailed:
            log.info("%s: not supported by this reader", command)
            return None

    # -- whole reads ----------------------------------------------------------------------

    def read_info(self) -> DeviceInfo:
        model = self.model
        replies: dict[str, str] = {}
        for command in info_commands(model):
            text = self._optional(command)
            if text is not None:
                replies[command] = text
        return build_info(model, replies, product_id=self.transport.product_id,
                          serial_from_init=self.serial_from_init,
                          version_from_init=self.version_from_init)

    def _binary_clock(self) -> BinaryReader:
        from .binary import BinaryReader

        if self._clock_link is None:
            self._clock_link = BinaryReader(self)
        return self._clock_link

    def read_clock(self) -> dt.datetime | None:
        """The reader's clock now (naive wall time), or None when the reader says it is
        invalid: ``$rdt?`` on the Libre family (it has seconds), else ``$date?``/``$time?``;
        GET_DATE_TIME with the binary protocol."""
        self.open()
        if self.protocol == "binary":
            return self._binary_clock().read_clock()
        if self.model.has_rdt:
            text = self._optional("$rdt?")
            rdt = parse_rdt(text) if text is not None else None
            if rdt is not None:
                return rdt.time if rdt.valid else None
        date_text, time_text = self._optional("$date?"), self._optional("$time?")
        if date_text is None or time_text is None:
            return None
        return parse_date_time(date_text, time_text)

    def set_clock(self, when: dt.datetime) -> None:
        """Set the reader's wall clock to ``when`` (naive; seconds cannot be set). The only
        write libre-dump ever sends, and only for ``libre-dump clock --set``: the text setters,
        or SET_DATE_TIME with the binary protocol (to the minute too, like the text ones)."""
        self.open()
        try:
            commands = clock_setters(when)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if self.protocol == "binary":
            self._binary_clock().set_clock(when.replace(second=0, microsecond=0))
            return
        for command in commands:
            self.command(command, allow_write=True)

    def read_records(self) -> list[Record]:
        out: list[Record] = []
        for source in self.model.records:
            out.extend(self.records(source.command, source.parser))
        if self.model.event_command is not None:
            out.extend(self.read_events(self.model.event_command))
        return out

    def read_events(self, command: str) -> list[Record]:
        """The meter's event log, kept raw (:func:`parse_meter_events`); nothing when the
        meter answers ``CMD Fail!`` or rejects the command as unknown. A ``count,checksum``
        trailer is checked when present. The log is read last and no public source shows
        every meter answering it: a meter that does not answer at all leaves it out with a
        warning instead of failing the dump (a reply that starts and stops is an error as
        for any command)."""
        try:
            reply = self.command(command)
        except CommandFailed:
            log.info("%s: not supported by this meter", command)
            return []
        except DeviceTimeout as exc:
            if self._unanswered != command:
                raise  # a reply that started, or ran past its deadline: an error as always
            log.warning("%s; the meter's event log is left out", exc)
            return []
        except NotInTranscript:
            # a replay of a client that never asked (Abbott's software and the InsuLinx)
            self.conn.abort()
            log.info("%s: not in the transcript being replayed", command)
            return []
        return meter_events(reply)

    def read_device(self) -> DeviceInfo:
        """:meth:`read_info`, plus the config tables when reading with the binary protocol."""
        info = self.read_info()
        if self.protocol != "binary":
            return info
        from .binary import BinaryReader

        decoded = BinaryReader(self).read(info.record_count, records=False)
        return msgspec.structs.replace(info, settings={**info.settings, **decoded.settings})

    def dump(self) -> Dump:
        self.open()
        info = self.read_info()
        if self.protocol == "binary":
            from .binary import BinaryReader

            decoded = BinaryReader(self).read(info.record_count)
            info = msgspec.structs.replace(info, settings={**info.settings, **decoded.settings})
            return Dump(device=info, records=tuple(decoded.records))
        records = self.read_records()
        return Dump(device=info, records=tuple(records))


def meter_events(reply: TextReply) -> list[Record]:
    """The event records of a ``$event?`` reply (:func:`parse_meter_events`); a
    ``count,checksum`` trailer is checked when the reply has one."""
    lines = list(reply.lines)
    try:
        lines = list(parse_multirecord(reply, strict_count=False).records)
    except ChecksumError:
        raise
    except ProtocolError:
        pass  # no trailer: every line is an event
    return parse_meter_events(lines)


#: the values of ``--protocol``
PROTOCOLS = ("text", "binary", "auto")


def resolve_protocol(protocol: str | None, model: DeviceModel) -> str:
    """``text`` or ``binary`` for ``model``: ``auto`` is binary where the model speaks it
    (Libre, Libre Pro), text elsewhere; None is the model's default (binary on the Libre Pro,
    which public sources show read only that way; text elsewhere); ``binary`` on a model
    without it is an input error."""
    if protocol is None:
        return model.default_protocol
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    if protocol == "auto":
        return "binary" if model.binary else "text"
    if protocol == "binary" and not model.binary:
        raise InputError(f"the {model.title} does not speak the binary database protocol; "
                         "use --protocol text")
    return protocol


class _Partial(Exception):
    """A reply that started and then stopped: worth one more try."""

    def __init__(self, cause: DeviceTimeout) -> None:
        super().__init__(str(cause))
        self.cause = cause



def info_commands(model: DeviceModel) -> tuple[str, ...]:
    """The informational commands a dump reads, in order."""
    return (model.serial_command, model.version_command,
            *([model.unit_command] if model.unit_command else []), *model.info_commands)


def build_info(model: DeviceModel, replies: dict[str, str], *, product_id: int | None,
               serial_from_init: str | None = None,
               version_from_init: str | None = None) -> DeviceInfo:
    """The :class:`DeviceInfo` from the text of informational replies (command -> reply
    lines joined with ``\\n``), however they were obtained: asked by our session, or
    read passively from a capture of another client's session."""
    serial = replies.get(model.serial_command, serial_from_init or "").strip() or None
    version = replies.get(model.version_command, "").split("\n")[0].strip() or (
        version_from_init
    )
    unit = (parse_unit(replies[model.unit_command], model.unit_values)
            if model.unit_command and model.unit_command in replies else None)
    clock = None
    rdt = parse_rdt(replies["$rdt?"]) if "$rdt?" in replies else None
    if rdt is not None:
        clock = rdt.time if rdt.valid else None
    if clock is None and "$date?" in replies and "$time?" in replies:
        clock = parse_date_time(replies["$date?"], replies["$time?"])
    record_count = parse_dbrnum(replies["$dbrnum?"]) if "$dbrnum?" in replies else None
    settings = decode_settings(replies, language_table=model.language_table, rdt=rdt)
    if rdt is None and "$date?" in replies and "$time?" in replies:
        settings["clock_valid"] = clock is not None
    family = "insulinx" if model.name == "insulinx" else "libre"
    name = replies.get("$ptname?")
    patient_id = (replies.get("$ptid?") or "").strip() or None
    return DeviceInfo(
        model=model.name,
        product_id=model.product_ids[0] if product_id is None else product_id,
        serial=serial,
        software_version=version,
        unit=unit,
        clock=clock,
        patient_name=parse_patient_name(name, family) if name is not None else None,
        patient_id=patient_id,
        record_count=record_count,
        replies=tuple(replies.items()),
        settings=settings,
        sensor=parse_patch(replies["$patch?"]) if "$patch?" in replies else None,
    )
