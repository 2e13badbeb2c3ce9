"""The virtual reader: the device side of the protocol, over seeded content.

``VirtualReader(model="libre", seed=0)`` behaves like a reader as the host sees it:
``write(report)`` takes one 64-byte host->device report, ``read(timeout_ms)`` returns the
next 64-byte device->host report, or ``b""`` when nothing comes within the timeout (it
waits that long, as a real device would). Any client, ours or another library's, can be
pointed at it.

Options (also as ``sim:`` URI query parameters):

``pace_ms``       make each IN report available this many ms after the previous one (the
                  real endpoint's interval is 2 ms)
``keepalive``     insert a ``22 01 05`` keepalive after every N reports
``stale``         leave stale bytes of earlier reports in the padding, as readers do
``silent``        never answer anything (a hung reader)
``silent_after``  stop answering after N text commands
``pre_stale``     queue a stray text reply before the first request (left by an earlier session)
``days``          how many days of records the reader holds (default 90)
``record_base``   add this to every record id (ids past 65535 make the binary protocol's
                  16-bit record numbers wrap)
``faults``        faults to inject, comma-separated (docs/reliability.md; the reader itself
                  does ``binary_error[:CODE][@OP]``: it answers binary op OP (hex, default 31)
                  with ERROR CODE once)
``state``         a JSON file that keeps the reader's clock between runs: a clock set with
                  ``libre-dump clock --set`` is saved there and read back by the next run
                  (simulator/state.py)

Without ``state`` the object keeps what is set (its clock) for its own life. A ``sim:``
device URI without ``state`` uses the per-user file of its model and seed
(:func:`~.state.default_state_path`); ``state=none`` keeps nothing.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from ..devices import DeviceModel, model_by_name
from ..model import Record
from ..protocol.binary.link import DeviceLink
from ..protocol.binary.wire import Op
from ..protocol.frames import MAX_PAYLOAD, REPORT_SIZE, MessageType, build_report, parse_report
from ..protocol.text.reply import build_multirecord, build_text_reply, byte_sum
from .binary import Database, error_reply
from .content import ReaderContent, generate, shift_ids
from .encrypted import EncryptedLink
from .lines import (
    arresult_line,
    history_line,
    insulinx_result_line,
    libre3_arresult_line,
    libre3_history_line,
    neo_result_line,
)
from .state import load_clock, save_clock


@dataclasses.dataclass
class SimOptions:
    pace_ms: float = 0.0
    keepalive: int = 0
    stale: bool = False
    silent: bool = False
    silent_after: int = -1
    pre_stale: bool = False
    #: fault names for fault-injection tests (see docs/reliability.md)
    faults: tuple[str, ...] = ()
    #: how many days of records the reader holds
    days: int = 90
    #: a JSON file that keeps the reader's clock from one run to the next ("" for none)
    state: str = ""
    #: added to every record id (to make the binary protocol's 16-bit numbers wrap)
    record_base: int = 0


def idle(timeout_ms: int) -> None:
    """Nothing to send: wait out the host's timeout, as a real device's silence does."""
    if timeout_ms > 0:
        time.sleep(timeout_ms / 1000)


class Pacer:
    """Spaces IN reports ``pace_ms`` apart, as the endpoint's polling interval does."""

    def __init__(self) -> None:
        self._next_at = 0.0

    def ready(self, pace_ms: float, timeout_ms: int) -> bool:
        """Wait until the next report may go; False (having waited out the timeout) when
        it cannot go within ``timeout_ms``."""
        if not pace_ms:
            return True
        now = time.monotonic()
        wait = self._next_at - now
        if wait > timeout_ms / 1000:
            time.sleep(max(0.0, timeout_ms / 1000))
            return False
        if wait > 0:
            time.sleep(wait)
        self._next_at = max(now, self._next_at) + pace_ms / 1000
        return True


class VirtualReader:
    """A FreeStyle reader in memory. See the module docstring."""

    def __init__(self, model: str = "libre", seed: int = 0, **options: object) -> None:
        self.model: DeviceModel = model_by_name(model)
        self.seed = seed
        self.options = SimOptions(**options)  # type: ignore[arg-type]
        self.content: ReaderContent = generate(seed, model=self.model.name,
                                               days=self.options.days)
        if self.options.record_base:
            shift_ids(self.content, self.options.record_base)
        self._queue: collections.deque[bytes] = collections.deque()
        self._buffer = bytearray(REPORT_SIZE)  # the device's report buffer (never cleared)
        self._sent = 0
        self._pacer = Pacer()
        self._initialised = False
        self._text_commands = 0
        self._errors_sent: set[str] = set()
        #: every text command received, in order (tests check nothing writes)
        self.commands: list[str] = []
        #: every report the host wrote
        self.received: list[bytes] = []
        self.closed = False
        #: the Libre 2/3 encrypted transport (simulator/encrypted.py), None for clear models
        self.link = (EncryptedLink(self.content.serial, seed, self.options.faults,
                                   self._queue.append) if self.model.encrypted else None)
        self._handlers: dict[str, Callable[[], bytes]] = self._make_handlers()
        self._load_state()
        #: the binary database protocol (models that speak it): the link's reader end and
        #: the database; every binary command received, as (op, data)
        self.binary_link: DeviceLink | None = None
        self.database: Database | None = None
        self.binary_commands: list[tuple[int, bytes]] = []
        if self.model.binary:
            self.binary_link = DeviceLink()
            self.database = Database(self.content, pro=self.model.name == "libre_pro")
        if self.options.pre_stale:
            self._queue_text(build_text_reply(b"\r\n"))

    # -- the host's view ------------------------------------------------------------------

    def write(self, report: bytes) -> None:
        if len(report) == REPORT_SIZE + 1 and report[0] == 0:
            report = report[1:]
        if len(report) != REPORT_SIZE:
            raise ValueError(f"a HID report is {REPORT_SIZE} bytes, got {len(report)}")
        self.received.append(bytes(report))
        if self.options.silent:
            return
        if self.link is not None:
            opened = self.link.incoming(bytes(report))
            if opened is None:
                return
            report = opened
        self._handle(report[0], report[2 : 2 + min(report[1], MAX_PAYLOAD)])

    def read(self, timeout_ms: int) -> bytes:
        if not self._queue:
            idle(timeout_ms)
            return b""
        if not self._pacer.ready(self.options.pace_ms, timeout_ms):
            return b""
        return self._queue.popleft()

    def close(self) -> None:
        self.closed = True

    # -- the device's side ------------------------------------------------------------------

    def _emit(self, msg_type: int, payload: bytes) -> None:
        buf = self._buffer if self.options.stale else bytearray(REPORT_SIZE)
        buf[0] = msg_type
        buf[1] = len(payload)
        buf[2 : 2 + len(payload)] = payload
        self._queue.append(self.link.outgoing(bytes(buf)) if self.link else bytes(buf))
        self._sent += 1
        if self.options.keepalive and self._sent % self.options.keepalive == 0:
            buf = self._buffer if self.options.stale else bytearray(REPORT_SIZE)
            # the keepalive byte: 05 on the Libre, 03 on the Neo and InsuLinx (protocol.md 2.2)
            buf[0:3] = b"\x22\x01\x03" if self.model.name in ("neo", "insulinx") else (
                b"\x22\x01\x05")
            self._queue.append(bytes(buf))

    def _queue_text(self, reply: bytes) -> None:
        """Split a reply the way readers do: one line per report, long lines in 62-byte
        pieces, the CKSM/status tail joined to the last line when it fits."""
        pieces: list[bytes] = []
        limit = self.link.max_payload if self.link else MAX_PAYLOAD  # 54 when encrypted
        tail_at = reply.rfind(b"CKSM:")
        body, tail = reply[:tail_at], reply[tail_at:]
        for line in body.split(b"\r\n")[:-1] if body else []:
            data = line + b"\r\n"
            pieces.extend(data[i : i + limit] for i in range(0, len(data), limit))
        if body and not body.endswith(b"\r\n"):
            rest = body[body.rfind(b"\r\n") + 2 :] if b"\r\n" in body else body
            pieces.append(rest)
        if pieces and len(pieces[-1]) + len(tail) <= limit:
            pieces[-1] += tail
        else:
            pieces.append(tail)
        for piece in pieces:
            self._emit(MessageType.TEXT, piece)

    def _handle(self, msg_type: int, payload: bytes) -> None:
        content = self.content
        if msg_type == MessageType.PRE_INIT:
            # the byte is unexplained; InsuLinx sends 0C, Libre 2 16 (protocol.md 2.2)
            self._emit(MessageType.PRE_INIT_REPLY,
                       b"\x0c" if self.model.name == "insulinx" else b"\x16")
        elif msg_type == MessageType.QUERY_SERIAL:
            self._emit(MessageType.SERIAL, content.serial.encode() + b"\0")
        elif msg_type == MessageType.QUERY_VERSION:
            self._emit(MessageType.VERSION, content.software_version.encode() + b"\0")
        elif msg_type == MessageType.INIT:
            self._initialised = True
            self._emit(MessageType.INIT_REPLY, b"\x01")
        elif msg_type in (MessageType.TEXT, MessageType.TEXT_COMMAND_ABBOTT):
            self._text(payload.decode("utf-8", errors="replace").rstrip("\r\n"))
        elif (msg_type in (MessageType.BINARY_REQUEST, MessageType.BINARY_ACK_HOST)
              and self.binary_link is not None):
            self._binary(build_report(msg_type, payload))
        elif msg_type == MessageType.BINARY_ACK_HOST:
            pass  # Abbott's software acknowledges; nothing to answer
        else:
            self._emit(MessageType.UNKNOWN_MESSAGE_ERROR, b"\x85")

    def _binary(self, report: bytes) -> None:
        link, database = self.binary_link, self.database
        assert link is not None and database is not None
        commands, out = link.receive(report)
        for command in commands:
            if command.op == Op.FLUSH:
                out += link.flush()
                continue
            self.binary_commands.append((command.op, command.data))
            error = self._binary_error(command.op)
            clock = self.content.clock
            out += link.send(error if error is not None
                             else database.answer(command.op, command.data))
            if self.content.clock is not clock:  # SET_DATE_TIME set it: keep it
                self._save_state()
        for item in out:
            self._emit(*parse_report(item))

    def _binary_error(self, op: int) -> bytes | None:
        """The ``binary_error[:CODE][@OP]`` fault: answer the target op with ERROR once."""
        for spec in self.options.faults:
            name, _, target = spec.partition("@")
            name, _, code = name.partition(":")
            if name != "binary_error" or spec in self._errors_sent:
                continue
            wanted = int(target, 16) if target else Op.GET_DATABASE
            if op == wanted:
                self._errors_sent.add(spec)
                return error_reply(op, int(code) if code else 3)
        return None

    def _text(self, command: str) -> None:
        self.commands.append(command)
        self._text_commands += 1
        if 0 <= self.options.silent_after < self._text_commands:
            return
        if command.startswith(("$date,", "$time,")):
            self._queue_text(build_text_reply(b"", ok=self._set_clock(command)))
            return
        message = self.reply(command)
        if message is None:
            self._queue_text(build_text_reply(b"", ok=False))
        else:
            self._queue_text(build_text_reply(message))

    def _set_clock(self, command: str) -> bool:
        """``$date,M,D,YY`` / ``$time,H,M`` (protocol.md 3.1); False for a bad value (the
        reader answers ``CMD Fail!``). Setting the time zeroes the seconds."""
        name, _, args = command.partition(",")
        clock = self.content.clock
        try:
            values = [int(v) for v in args.split(",")]
            if name == "$date" and len(values) == 3:
                month, day, year = values
                if not 0 <= year <= 99:
                    return False
                self.content.clock = clock.replace(year=2000 + year, month=month, day=day)
            elif name == "$time" and len(values) == 2:
                self.content.clock = clock.replace(hour=values[0], minute=values[1], second=0)
            else:
                return False
        except ValueError:
            return False
        self._save_state()
        return True

    def _load_state(self) -> None:
        if self.options.state:
            clock = load_clock(Path(self.options.state))
            if clock is not None:
                self.content.clock = clock

    def _save_state(self) -> None:
        if self.options.state:
            save_clock(Path(self.options.state), self.content.clock)

    def reply(self, command: str) -> bytes | None:
        """The message (before ``CKSM:``) this reader answers ``command`` with, or None for a
        command it does not know (it answers ``CMD Fail!``)."""
        handler = self._handlers.get(command)
        return None if handler is None else handler()

    def _make_handlers(self) -> dict[str, Callable[[], bytes]]:
        c = self.content
        model = self.model
        encoding = model.text_encoding

        def text(value: str) -> bytes:
            return value.encode(encoding) + b"\r\n"

        def line(value: str) -> Callable[[], bytes]:
            return lambda: text(value)

        def lines(*rows: str) -> Callable[[], bytes]:
            return lambda: b"".join(text(row) for row in rows)

        def rdt() -> bytes:
            k = c.clock
            values = f"{k.year - 2000},{k.month},{k.day},{k.hour},{k.minute},{k.second},1"
            # the Libre Pro leaves out the factory/user offset (protocol.md 3)
            return text(values if model.name == "libre_pro" else values + ",0")

        def date() -> bytes:
            k = c.clock
            return text(f"{k.month},{k.day},{k.year - 2000}")

        def clock_time() -> bytes:
            k = c.clock
            return text(f"{k.hour},{k.minute}")

        def multirecord(write: Callable[[list[Record]], str]) -> Callable[[], bytes]:
            # readers list the newest record first
            return lambda: build_multirecord([write(r).encode(encoding)
                                              for r in reversed(c.results)])

        def history() -> bytes:
            write = libre3_history_line if model.name == "libre3" else history_line
            return build_multirecord([write(r).encode() for r in reversed(c.history)])

        def reminders() -> bytes:
            rows = ["2,10,1,7,30", "2,11,1,12,0", "2,12,0,19,0"] + ["0,0,0,0,0"] * 9
            return b"".join(text(row) for row in rows)

        def patch() -> bytes:
            # layout as glucometer-protocols documents it: csv lines of numbers, some labelled
            start = c.clock - dt.timedelta(days=3, hours=2)
            rows = [
                f"{start.month},{start.day},{start.year - 2000},{start.hour},{start.minute},0",
                "PID: 112,0",
                "SW Versions: 1,3,4",
                "3,0,0",
                "Event Log: 0",
                "0,0,0,0",
                "AFE Cal Data: 12,34,56",
                "Unused: 0",
            ]
            body = b"".join(text(row) for row in rows)
            return body + b"1,%08X\r\n" % byte_sum(body)

        def event_log() -> bytes:
            # the meter's $event? log (Neo, InsuLinx): lines of numbers, with a trailer
            return build_multirecord(
                [",".join(value for _, value in e.raw).encode() for e in c.meter_events])

        def tags() -> bytes:
            return b"".join(text(row) for row in ["2", "2", *(f"T{n}={state},{label}"
                                                          for n, state, label in c.tags)])

        handlers: dict[str, Callable[[], bytes]] = {
            model.serial_command: line(c.serial),
            model.version_command: line(c.software_version),
            "$date?": date,
            "$time?": clock_time,
            "$ptid?": line(c.patient_id),
        }
        if model.unit_command is not None:
            codes = {unit: code for code, unit in model.unit_values}
            handlers[model.unit_command] = line(codes[c.unit])
        if model.name == "neo":
            handlers.update({
                "$ptname?": line(c.patient_name),
                "$marketlev?": line("1,0"),
                "$result?": multirecord(neo_result_line),
                "$event?": event_log,
            })
        elif model.name == "insulinx":
            first, _, last = c.patient_name.partition(" ")
            handlers.update({
                "$ptname?": line(f"{first},{last},g"),
                "$getrmndrst,0": lines(*["0,"] * 9, "2,Dosage", "2,Alarme",
                                       "2,Prendre\nde l'insuline"),
                "$getrmndr,0": lines("2,12,1,22,0", *["0,0,0,0,0"] * 11),
                "$rmdstrorder?": line("10,11,12"),
                "$event?": event_log,
                "$actthm?": line("17"),
                "$wktrend?": line("1,70,160,6,16,26,11,26,11"),
                "$clktyp?": line("0"),
                "$alllang?": line("0,0,1,0,2,1,3,0,4,1,5,1,6,1,7,0,8,0"),
                "$lang?": line(str(c.language)),
                "$inslock?": line("1,1"),
                "$actinscal?": line("0"),
                "$iobstatus?": line("255,255"),
                "$foodunits?": line("0"),
                "$svgsdef?": line("255"),
                "$corsetup?": line("255"),
                "$insdose?": line("1"),
                "$inslog?": line("1,1"),
                "$inscalsetup?": line("0,0"),
                "$carbratio?": lines("0,0", "1,0", "2,0", "3,0", "4,0", "0"),
                "$svgsratio?": lines("0,0", "1,0", "2,0", "3,0", "4,0", "0"),
                "$mlcalget,3": line("255,255,255"),
                "$cttype?": line("255"),
                "$bgdrop?": lines("0,255", "1,0", "2,0", "3,0", "4,0", "0"),
                "$bgtrgt?": lines("0,0", "1,0", "2,0", "3,0", "4,0", "0"),
                "$bgtgrng?": lines("0,0,0", "1,0,0", "2,0,0", "3,0,0", "4,0,0", "0"),
                "$ntsound?": line("1"),
                "$btsound?": line("0"),
                "$taglang?": line("2,2"),
                "$tagsenbl?": line("1"),
                "$tagorder?": line("2,1,2,3,4"),
                "$gettags,2,2": tags,
                "$frststrt?": line("1"),
                "$result?": multirecord(insulinx_result_line),
            })
        else:
            handlers.update({
                "$ptname?": line(c.patient_name),
                "$dbrnum?": line(f"DB Record Number = {c.record_counter}"),
                "$rdt?": rdt,
                "$brandname?": line(model.title),
                "$marketlev?": line("1,0,0,0"),
                "$lang?": line(str(c.language)),
                "$ntsound?": line("1,1"),
                "$btsound?": line("1,0"),
                "$getrmndr,0": reminders,
                "$patch?": patch,
                "$history?": history,
                "$arresult?": multirecord(
                    libre3_arresult_line if model.name == "libre3"
                    else lambda r: arresult_line(r, c.comments, model.name)),
            })
        return handlers
