"""Receiving a text reply several reports at a time (issue 16, speed) gives what receiving it
one report at a time gives: the same reply, the same error at the same report, the same
reports left for the next command, the same progress calls.

Three levels: the assembler (``feed_many`` against ``feed``, and both against a line-by-line
reading of the reply format written here from protocol.md 2.4), the connection
(``receive_many`` against ``receive`` on streams mixed with keepalives, strays and malformed
reports), and the session (a transport that hands over every waiting report against one that
hands over one at a time)."""

from __future__ import annotations

import collections
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streams import chunked

from libre_usb.errors import LibreDumpError
from libre_usb.protocol.connection import HostConnection, State, TextResponse
from libre_usb.protocol.frames import MAX_PAYLOAD, build_report
from libre_usb.protocol.text.reply import (
    CRLF,
    TextReply,
    TextReplyAssembler,
    build_text_reply,
    byte_sum,
)
from libre_usb.reader.session import Session
from libre_usb.transport.interface import Transport

FAST = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))

#: bytes that matter to the text protocol, mixed with anything
_TEXTY = st.binary(max_size=30) | st.sampled_from(
    [b"\r\n", b"\r", b"\n", b"CKSM:", b"CMD OK", b"CMD Fail!", b"CMD OK\r\n", b"0000001c",
     b"CKSM:000000FF\r\n", b"CKSM:0000ABCD", b"00000000", b"1,", b"\xff", b"Log Empty"])
_streams = st.lists(_TEXTY, max_size=16).map(b"".join)


def _replies(draw: st.DrawFn) -> bytes:
    """A reply stream: a valid reply (or one with a byte changed), maybe with more after it."""
    message = draw(_streams)
    stream = bytearray(build_text_reply(message, draw(st.booleans())))
    if draw(st.booleans()) and stream:
        at = draw(st.integers(0, len(stream) - 1))
        stream[at] = draw(st.integers(0, 255))
    return bytes(stream) + draw(_streams)


replies = st.composite(_replies)()


def _reference(stream: bytes) -> tuple[TextReply, int] | str | None:
    """The reply format read line by line, the plain way: the reply ends at the first
    ``CKSM:<8 hex>`` line followed by a ``CMD OK`` or ``CMD Fail!`` line. Returns the reply
    and where it ends in the stream, "checksum" when its sum is wrong, None if incomplete."""
    lines = stream.split(CRLF)[:-1]  # complete lines only
    at = 0
    for index, line in enumerate(lines):
        at += len(line) + 2
        if index and line in (b"CMD OK", b"CMD Fail!"):
            last = lines[index - 1]
            if re.fullmatch(rb"(?s)(.*)CKSM:([0-9A-Fa-f]{8})", last):
                prefix, checksum = last[:-13], int(last[-8:], 16)
                body = lines[: index - 1]
                message = b"".join(body_line + CRLF for body_line in body) + prefix
                if byte_sum(message) != checksum:
                    return "checksum"
                kept = (*body, prefix) if prefix else tuple(body)
                return TextReply(line == b"CMD OK", kept, checksum,
                                 fragment=bool(prefix)), at
    return None


def _feed_one_by_one(pieces: list[bytes]) -> tuple[object, int, list[int]]:
    """The result (reply or error), the payloads used and the line count after each."""
    assembler = TextReplyAssembler(max_bytes=2000)
    counts = []
    for index, piece in enumerate(pieces):
        try:
            reply = assembler.feed(piece)
        except LibreDumpError as exc:
            return repr(exc), index + 1, counts
        counts.append(assembler.line_count)
        if reply is not None:
            return reply, index + 1, counts
    return None, len(pieces), counts


def _feed_in_groups(pieces: list[bytes],
                    group: int) -> tuple[object, int, list[tuple[int, int]]]:
    """The same through feed_many, ``group`` payloads at a time, as the connection does: a
    payload it does not take goes to feed, the rest of the group to the next round. The
    line counts are (payloads used, line count) after each round."""
    assembler = TextReplyAssembler(max_bytes=2000)
    counts: list[tuple[int, int]] = []
    used = 0
    while used < len(pieces):
        batch = pieces[used : used + group]
        taken, reply = assembler.feed_many(batch)
        used += taken
        if reply is not None:
            return reply, used, counts
        counts.append((used, assembler.line_count))
        if taken == len(batch):
            continue
        try:
            reply = assembler.feed(pieces[used])
        except LibreDumpError as exc:
            return repr(exc), used + 1, counts
        used += 1
        if reply is not None:
            return reply, used, counts
    return None, used, counts


@FAST
@given(replies, st.lists(st.integers(1, MAX_PAYLOAD), min_size=1, max_size=8),
       st.integers(1, 40))
def test_feed_many_gives_what_feed_gives(stream: bytes, sizes: list[int], group: int) -> None:
    pieces = chunked(stream, sizes)
    one, used_one, counts_one = _feed_one_by_one(pieces)
    many, used_many, counts_many = _feed_in_groups(pieces, group)
    assert (many, used_many) == (one, used_one)
    # the line count is the same after every round (where progress is reported)
    for used, count in counts_many:
        assert count == (counts_one[used - 1] if used else 0)


@FAST
@given(replies, st.lists(st.integers(1, MAX_PAYLOAD), min_size=1, max_size=8))
def test_the_assembler_reads_the_format_as_a_plain_line_by_line_reading(
        stream: bytes, sizes: list[int]) -> None:
    pieces = chunked(stream, sizes)
    result, used, _ = _feed_in_groups(pieces, 16)
    expected = _reference(stream)
    if sum(map(len, pieces[:used])) > 2000:
        assert isinstance(result, str) and "larger than" in result
        return
    if expected is None:
        assert result is None
    elif expected == "checksum":
        assert isinstance(result, str) and "ChecksumError" in result
    else:
        assert isinstance(expected, tuple) and isinstance(result, TextReply)
        reply, end = expected
        # the reply, and what followed it in the report that completed it
        assert result == TextReply(reply.ok, reply.lines, reply.checksum,
                                   stream[end : sum(map(len, pieces[:used]))],
                                   fragment=reply.fragment)


def test_feed_many_takes_a_long_reply_and_leaves_what_follows() -> None:
    message = b"".join(b"%d,1,2,3\r\n" % i for i in range(500))
    stream = build_text_reply(message)
    pieces = [*chunked(stream, [MAX_PAYLOAD]), b"next reply"]
    assembler = TextReplyAssembler()
    taken, reply = assembler.feed_many(pieces)
    assert taken == len(pieces) - 1
    assert reply is not None and reply.message == message and reply.ok


# -- the connection ------------------------------------------------------------------------

_KINDS = st.sampled_from(["text", "text", "text", "keepalive", "stray", "short", "long65",
                          "badlength", "other"])


def _reports(stream: bytes, kinds: list[str]) -> list[bytes]:
    """The stream in text reports, with the other kinds of report among them (``kinds``
    first, then text reports to the end of the stream)."""
    out: list[bytes] = []
    at, index, kinds = 0, 0, list(kinds)
    while at < len(stream) or kinds:
        kind = kinds.pop(0) if kinds else "text"
        index += 1
        if kind in ("text", "long65"):
            piece = stream[at : at + MAX_PAYLOAD - index % 7]
            at += len(piece)
            report = build_report(0x60, piece, pad=index % 256)
            out.append(b"\0" + report if kind == "long65" else report)
        elif kind == "keepalive":
            out.append(build_report(0x22, b"\x01"))
        elif kind == "stray":
            out.append(build_report(0x06, b"JGMA123-45678\0"))
        elif kind == "short":
            out.append(bytes(10))
        elif kind == "badlength":
            out.append(bytes((0x60, 63)) + bytes(62))
        else:
            out.append(build_report(0x35, b"1.0\0"))
    return out


def _connection() -> HostConnection:
    conn = HostConnection(max_reply_bytes=3000)
    conn.state = State.READY
    conn.text_command("$history?")
    return conn


def _receive(reports: list[bytes], group: int) -> list[object]:
    """What the connection gives for ``reports``: ``group`` at a time through receive_many
    (0: one at a time through receive), then receive for one it does not take."""
    conn = _connection()
    seen: list[object] = []
    used = 0
    while used < len(reports):
        if group:
            taken, response = conn.receive_many(reports[used : used + group])
            seen.extend([None] * (taken - (response is not None)))
            used += taken
            if response is not None:
                seen.append(response)
                break
            if used == len(reports):
                break
        try:
            event = conn.receive(reports[used])
        except LibreDumpError as exc:
            seen.append(repr(exc))
            break
        used += 1
        seen.append(event)
        if isinstance(event, TextResponse):
            break
    seen.append((used, conn.state, conn.keepalives, conn.stray, conn.reply_lines))
    return seen


@FAST
@given(replies, st.lists(_KINDS, max_size=30), st.integers(1, 40))
def test_receive_many_gives_what_receive_gives(stream: bytes, kinds: list[str],
                                               group: int) -> None:
    reports = _reports(stream, kinds)
    assert _receive(reports, group) == _receive(reports, 0)


def test_receive_many_takes_nothing_unless_a_text_reply_is_awaited() -> None:
    conn = HostConnection()
    report = build_report(0x60, b"CKSM:00000000\r\nCMD OK\r\n")
    assert conn.receive_many([report]) == (0, None)
    conn.state = State.READY
    assert conn.receive_many([report]) == (0, None)
    conn.text_command("$serlnum?")
    taken, response = conn.receive_many([report, report])
    assert taken == 1 and response is not None and response.reply.ok
    assert conn.state is State.READY


# -- the session ---------------------------------------------------------------------------

class _Queue(Transport):
    """Serves scripted answers; ``many``: hands over every waiting report at once."""

    def __init__(self, answers: dict[bytes, list[bytes]], *, many: bool) -> None:
        self.answers = answers
        self.queue: collections.deque[bytes] = collections.deque()
        self.many = many
        self.product_id = 0x3650

    def write(self, report: bytes) -> None:
        self.queue.extend(self.answers.get(report[2 : 2 + report[1]], []))

    def read(self, timeout_ms: int) -> bytes | None:
        return self.queue.popleft() if self.queue else None

    def read_queued(self, timeout_ms: int, limit: int) -> list[bytes]:
        if not self.many:
            return super().read_queued(timeout_ms, limit)
        count = min(limit, len(self.queue))
        return [self.queue.popleft() for _ in range(count)]

    def unread(self, reports: list[bytes]) -> None:
        assert self.many and reports
        self.queue.extendleft(reversed(reports))


def _session_run(answers: dict[bytes, list[bytes]], *, many: bool,
                 progress: bool) -> list[object]:
    transport = _Queue(answers, many=many)
    calls: list[object] = []
    session = Session(transport, "libre", timeout_ms=5000, retries=1,
                      progress=(lambda *args: calls.append(args)) if progress else None)
    session._open = True  # no init sequence: the answers are the commands' only
    session.conn.state = State.READY
    for command in ("$history?", "$serlnum?"):
        try:
            calls.append(session.command(command))
        except LibreDumpError as exc:
            calls.append(repr(exc))
    calls.append((session.bytes_in, session.retried, list(transport.queue),
                  session.conn.keepalives, session.conn.stray))
    return calls


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(replies, st.lists(_KINDS, max_size=40),
       st.booleans(), st.booleans())
def test_a_session_reads_alike_however_many_reports_the_transport_hands_over(
        stream: bytes, kinds: list[str], progress: bool, again: bool) -> None:
    history = _reports(stream, kinds)
    good = _reports(build_text_reply(b"".join(b"%d,1,2\r\n" % i for i in range(90))), [])
    # a retried command is answered the second time by the same reports, or by a good reply
    answers = {b"$history?": history + (history if again else good),
               b"$serlnum?": _reports(build_text_reply(b"JGMA123-45678\r\n"), ["keepalive"])}
    one = _session_run(answers, many=False, progress=progress)
    assert _session_run(answers, many=True, progress=progress) == one


def test_a_session_reports_progress_every_16_reports_of_a_long_reply() -> None:
    message = b"".join(b"%d,1,2,3,4,5\r\n" % i for i in range(2000))
    answers = {b"$history?": _reports(build_text_reply(message), ["text"] * 20 + ["keepalive"]
                                      + ["text"] * 40 + ["stray"])}
    calls = _session_run(answers, many=True, progress=True)
    counts = [call for call in calls if isinstance(call, tuple) and len(call) == 3]
    text_reports = sum(report[0] == 0x60 for report in answers[b"$history?"])
    # one call per 16 reports of the reply before the last
    assert len(counts) == (text_reports - 1) // 16 > 10
    assert all(bytes_in % 64 == 0 for _, _, bytes_in in counts)
    assert counts == sorted(counts, key=lambda call: call[2])
    assert calls == _session_run(answers, many=False, progress=True)


@pytest.mark.parametrize("limit", [1, 2, 16, 1000])
def test_the_replay_player_hands_over_what_is_waiting(limit: int) -> None:
    from libre_usb.transport.transcript import ReplayTransport

    reports = [build_report(0x60, b"%d" % i) for i in range(40)]
    player = ReplayTransport(reports, [])
    got = player.read_queued(100, limit)
    assert got == reports[: min(limit, 40)]
    player.unread(got[1:])
    assert player.read_queued(100, 1000) == reports[1:]
    assert player.read_queued(100, 1000) == [] and player.read(0) is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=70_000) | st.integers(65_500, 65_540).map(lambda n: b"\xff" * n))
def test_the_byte_total_of_two_checksums_is_the_sum(data: bytes) -> None:
    from libre_usb.protocol.text.reply import _bytes_total

    assert _bytes_total(data) == sum(data)
