"""Assembly + parsing: from the reports of one ``$history?`` reply to typed records.

The reports are what our virtual Libre reader sends for a reply of N records (one record
line per report, as readers send them), captured once. Both sides then turn the very same
reports into the very same typed records, best of R interleaved rounds:

* ours: ``HostConnection.receive`` per report (report framing, the incremental text-reply
  assembler and its checksum) -> ``parse_multirecord`` (trailer count and checksum) ->
  ``parse_lines`` -> ``HistoryRecord`` objects;
* freestyle-hid 1.1.1 (the baseline; libre_usb never imports it): its own
  ``Session.query_multirecord`` reading the same reports (``read_response`` per report, the
  reply and trailer regexes and checksums, the ``csv`` split), then each row through the same
  record parser we use (``parse_libre_history``), since freestyle-hid stops at rows.

The typed results are compared first: a fast wrong answer cannot win.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from libre_usb.model import Record
from libre_usb.protocol.connection import HostConnection, State, TextResponse
from libre_usb.protocol.text.records import PARSERS, parse_lines
from libre_usb.protocol.text.reply import parse_multirecord

from ..core import Context, Row, case, have_freestyle_hid, interleaved
from .tapped import reply_reports

COMMAND = "$history?"


def history_reports(records: int, seed: int = 63) -> list[bytes]:
    """The IN reports of one ``$history?`` reply of ``records`` records."""
    reports, _ = reply_reports("libre", records, records // 80 + 5, COMMAND, seed=seed,
                               reader_days=1)
    return reports


def ours(reports: list[bytes]) -> list[Record]:
    conn = HostConnection()
    conn.state = State.READY
    conn.text_command(COMMAND)
    receive = conn.receive
    for report in reports:
        event = receive(report)
        if isinstance(event, TextResponse):
            return parse_lines("libre_history", parse_multirecord(event.reply).records, COMMAND)
    raise RuntimeError("our stack did not see the end of the reply")


class _Handle:
    """freestyle-hid's HID handle, answering from the captured reports."""

    def __init__(self, reports: list[bytes]) -> None:
        self._reports: Iterator[bytes] = iter(reports)

    def write(self, report: bytes) -> int:
        return len(report)

    def read(self, size: int = 64) -> bytes:
        return next(self._reports)


#: our ``$history?`` parser for one split line (the Libre layout of the layout table)
parse_libre_history = PARSERS["libre_history"]


def theirs(reports: list[bytes]) -> list[Record]:
    from freestyle_hid import _session

    session: Any = object.__new__(_session.Session)
    session._handle = _Handle(reports)
    session._encrypted_protocol = False
    session._text_message_type = 0x60
    session._text_reply_message_type = 0x60
    session._encoding = "utf-8"
    out: list[Record] = []
    for row in session.query_multirecord(COMMAND.encode()):
        if row:
            out.extend(parse_libre_history(row))
    return out


@case("assembly+parse")
def assembly_and_parse(ctx: Context) -> Iterator[Row]:
    if not have_freestyle_hid():
        raise RuntimeError("needs freestyle-hid, the baseline: pip install -e '.[bench]'")
    first: float | None = None
    for size in ctx.sizes:
        reports = history_reports(size)
        mine, baseline = ours(reports), theirs(reports)
        if len(mine) != size or mine != baseline:
            raise RuntimeError(f"{size} records: our records differ from the baseline's")
        # freestyle-hid is quadratic: its biggest replies get one round
        rounds = ctx.rounds if size <= 12572 else 1
        t_ours, t_theirs = interleaved(rounds, partial(ours, reports), partial(theirs, reports))
        per_record = t_ours / size * 1e6
        yield Row("assembly+parse vs freestyle-hid", f"{size:,}", per_record,
                  t_theirs / size * 1e6, "us/record", target=1.0)
        if first is None:
            first = per_record
        else:
            yield Row("assembly+parse: ours per record vs ours at the smallest size",
                      f"{size:,}", per_record, first, "us/record", target=1.5)
