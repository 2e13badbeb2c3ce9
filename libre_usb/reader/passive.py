"""A captured session decoded passively: the records another client read.

:class:`PassiveSession` stands where :class:`~libre_usb.reader.session.Session` stands for a
live reader (``dump``, ``info`` and ``diff`` use either), but it sends nothing: it runs the
:class:`~libre_usb.protocol.observer.Observer` over a capture's reports and builds the
:class:`~libre_usb.model.Dump` from the replies the captured client received, with the
same record parsers and the same informational decoding as a live dump. Records come from
the model's record commands the client sent and got complete, checksum-verified replies
to; what the client never asked for is simply not there (the conversation listing of
``libre-dump capture`` shows what it did ask).

The model comes from ``--model``, else from the USB product id in the capture's device
descriptor (or a transcript's meta line); a capture without either is refused rather than
decoded with a guessed model.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from .. import jsonsafe, logs
from ..devices import DeviceModel, is_read_only, model_by_name, model_for_product_id
from ..errors import ChecksumError, InputError, MissingExtra, ProtocolError
from ..keys import load_master_keys
from ..model import DeviceInfo, Dump, Record
from ..protocol.binary.decode import BinaryRead, Decoded, decode_session
from ..protocol.binary.wire import Op
from ..protocol.crypto.link import MasterKeys
from ..protocol.observer import Conversation, Exchange, Observer
from ..protocol.text.records import LineStats, parse_lines
from ..protocol.text.reply import TextReply, parse_multirecord
from ..transport.interfaces.capture import CaptureTransport
from .session import build_info, info_commands, meter_events

__all__ = ["PassiveSession", "decode"]

log = logs.get("libre_usb.passive")


def decode(reports: list[tuple[str, bytes, float]], *, encrypted: bool | None,
           keys: MasterKeys | None) -> Conversation:
    """Run the observer over captured reports."""
    observer = Observer(keys=keys, encrypted=encrypted)
    for direction, report, t in reports:
        observer.feed(direction, report, t)
    return observer.finish()


def _needs_keys(reports: list[tuple[str, bytes, float]], model: DeviceModel | None) -> bool:
    if model is not None:
        return model.encrypted
    return any(d == "out" and r[:1] == b"\x14" for d, r, _ in reports)


class PassiveSession:
    """The session held in a capture; see the module docstring."""

    def __init__(self, transport: CaptureTransport, model: DeviceModel | str | None = None,
                 *, require_model: bool = True) -> None:
        self.transport = transport
        if isinstance(model, str):
            model = model_by_name(model)
        if model is None and transport.capture.model is not None:
            model = model_by_name(transport.capture.model)
        if model is None and transport.product_id is not None:
            model = model_for_product_id(transport.product_id)
        if model is None and require_model:
            raise InputError(
                f"{transport.uri}: the capture does not say which reader this is (no USB "
                "device descriptor in it): name the model with --model")
        #: the reader model, when known (``libre-dump capture`` lists a session without)
        self.known_model: DeviceModel | None = model
        #: record lines kept raw because they fit no known layout (docs/records.md)
        self.line_stats = LineStats()
        self.keys_problem: str | None = None
        keys = None
        if _needs_keys(transport.reports, model):
            try:
                keys = load_master_keys()
            except MissingExtra as exc:
                self.keys_problem = str(exc)
        self.conversation = decode(transport.reports,
                                   encrypted=model.encrypted if model else None, keys=keys)
        #: what the session retried: nothing, it sends nothing (the captured client's own
        #: resent commands are in the conversation, marked ``retransmission``)
        self.retried: list[str] = []
        #: binary link trouble the session recovered from: none, it sends nothing (the
        #: captured link's CRC errors and resent frames are in ``conversation.binary_link``)
        self.recovered: dict[str, int] = {}

    def __enter__(self) -> PassiveSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.transport.close()

    def open(self) -> None:
        """Nothing to open: the captured client did that."""

    # -- what the client read -------------------------------------------------------------

    @property
    def model(self) -> DeviceModel:
        if self.known_model is None:
            raise InputError(f"{self.transport.uri}: name the reader model with --model")
        return self.known_model

    def _check_readable(self) -> None:
        conv = self.conversation
        if conv.encrypted and not conv.decrypted:
            reason = conv.handshake.problem or self.keys_problem or "the session keys are unknown"
            if self.keys_problem and conv.handshake.state != "none":
                reason = self.keys_problem
            raise InputError(f"{self.transport.uri}: an encrypted session that cannot be "
                             f"decrypted: {reason}")

    def replies(self) -> dict[str, TextReply]:
        """The first complete, checksum-verified ``CMD OK`` reply to each command."""
        self._check_readable()
        found: dict[str, TextReply] = {}
        for exchange in self.conversation.text_exchanges():
            if exchange.status == "ok" and exchange.reply is not None:
                found.setdefault(exchange.request, exchange.reply)
        return found

    def read_info(self) -> DeviceInfo:
        model = self.model
        replies = self.replies()
        texts: dict[str, str] = {}
        ordered = [c for c in info_commands(model) if c in replies]
        record_commands = {source.command for source in model.records}
        if model.event_command is not None:
            record_commands.add(model.event_command)
        ordered += [c for c in replies if c not in ordered and c not in record_commands
                    and is_read_only(c)]
        for command in ordered:
            encoding = model.text_encoding
            texts[command] = "\n".join(line.decode(encoding, errors="replace")
                                       for line in replies[command].lines)
        return build_info(model, texts, product_id=self.transport.product_id,
                          serial_from_init=self.conversation.serial,
                          version_from_init=self.conversation.version)

    def read_records(self) -> list[Record]:
        model = self.model
        replies = self.replies()
        out: list[Record] = []
        for source in model.records:
            reply = replies.get(source.command)
            if reply is None:
                broken = [e for e in self.conversation.text_exchanges()
                          if e.request == source.command]
                damaged = [e for e in broken if e.status in ("checksum", "error")]
                if damaged:
                    # what the client read cannot be known: like a live reply that stays
                    # broken after its retries, an error, not a dump with records missing
                    error = ChecksumError if damaged[0].status == "checksum" else ProtocolError
                    raise error(f"{self.transport.uri}: the captured reply to "
                                f"{source.command} is broken: {damaged[0].detail}")
                if broken:
                    log.warning("%s: the captured client's %s got no complete, verified reply "
                                "(%s): no records from it", self.transport.uri,
                                source.command, ", ".join(sorted({e.status for e in broken})))
                else:
                    log.info("%s: the captured client did not read %s", self.transport.uri,
                             source.command)
                continue
            multi = parse_multirecord(reply)
            out.extend(parse_lines(source.parser, multi.records, source.command,
                                   self.line_stats))
        events = replies.get(model.event_command) if model.event_command else None
        if events is not None and events.ok:
            out.extend(meter_events(events))
        return out

    def _binary(self, info: DeviceInfo) -> Decoded | None:
        """The binary database replies the captured client got, decoded as the session
        decodes its own (None when the client did not read the database that way)."""
        replies = self.conversation.binary_replies
        if not replies:
            return None
        read = BinaryRead(db_record_number=info.record_count or 0)
        for op, frames in replies:
            read.add_reply(op, frames)
        decoded = decode_session(read)
        decoded.settings["protocol"] = "binary"
        # what the client asked for (SET_COMPRESSION 01 on, 00 off), not merely whether it asked
        decoded.settings["compression"] = bool(self.conversation.binary_compression)
        return decoded

    def read_device(self) -> DeviceInfo:
        """:meth:`read_info`, plus the binary config tables when the client read them."""
        info = self.read_info()
        decoded = self._binary(info)
        if decoded is None:
            return info
        return msgspec.structs.replace(info, settings={**info.settings, **decoded.settings})

    def dump(self) -> Dump:
        info = self.read_info()
        decoded = self._binary(info)
        if decoded is not None and any(op in (Op.GET_DATABASE, Op.COMPRESSED_DATABASE)
                                       for op, _ in self.conversation.binary_replies):
            info = msgspec.structs.replace(info, settings={**info.settings, **decoded.settings})
            return Dump(device=info, records=tuple(decoded.records))
        if decoded is not None:
            info = msgspec.structs.replace(info, settings={**info.settings, **decoded.settings})
        return Dump(device=info, records=tuple(self.read_records()))

    def read_clock(self) -> dt.datetime | None:
        """The reader's clock as the captured client read it (None when it did not, or
        when the reader said it was invalid)."""
        return self.read_info().clock

    def set_clock(self, when: dt.datetime) -> None:
        raise InputError(f"{self.transport.uri} is a recording, not a reader: its clock "
                         "cannot be set")

    # -- transcript -----------------------------------------------------------------------

    def transcript_lines(self) -> list[str]:
        """The captured session in our transcript format (``--record``'s JSON Lines): a
        meta line, then every report, each reply filed after the request it answers (so
        ``replay:`` can serve it), with its capture time relative to the first report."""
        conv = self.conversation
        reports = [*conv.initial]
        for exchange in conv.exchanges:
            reports.extend(exchange.reports)
        t0 = min((t for _, _, t in reports), default=0.0)
        lines = [jsonsafe.dumps({
            "dir": "meta",
            "product_id": self.transport.product_id,
            "model": self.known_model.name if self.known_model else None,
            "device": self.transport.uri,
        })]
        for direction, report, t in reports:
            lines.append(jsonsafe.dumps({"dir": direction, "data": report.hex(),
                                     "t": round(t - t0, 6)}))
        return lines


def setters(conversation: Conversation) -> list[Exchange]:
    """The commands the captured client sent that change the reader (clock, settings,
    themes): everything that is not a read-only query."""
    return [e for e in conversation.text_exchanges() if not is_read_only(e.request)]

