"""Property tests (hypothesis) over every parser of untrusted bytes.

The property everywhere: only the documented error types (subclasses of LibreDumpError)
may escape the library, and nothing returns wrong data where it can be told (a valid reply
assembles to exactly its message however it is chunked; a corrupted one never assembles to
a different message; a report with a flipped bit never decrypts). The long-running
coverage-guided version of the same targets is the atheris harness in fuzz/.
"""

from __future__ import annotations

import json
import string
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from libre_usb.devices import MODELS
from libre_usb.errors import LibreDumpError, MacError
from libre_usb.model import DeviceInfo, Dump
from libre_usb.output import export
from libre_usb.protocol.crypto.link import ALWAYS_CLEAR, SessionCipher
from libre_usb.protocol.frames import MAX_PAYLOAD, REPORT_SIZE, build_report, parse_report
from libre_usb.protocol.text.records import PARSERS, parse_lines
from libre_usb.protocol.text.replies import (
    decode_settings,
    parse_date_time,
    parse_dbrnum,
    parse_patch,
    parse_patient_name,
    parse_rdt,
)
from libre_usb.protocol.text.reply import (
    TextReply,
    TextReplyAssembler,
    build_multirecord,
    build_text_reply,
    byte_sum,
    parse_multirecord,
)
from libre_usb.transport.transcript import ReplayTransport
from libre_usb.upload.diff import diff_uploads
from libre_usb.upload.load import load_bytes
from libre_usb.upload.report import FORMATS as REPORT_FORMATS
from libre_usb.upload.report import render as render_report

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from streams import chunked

from fuzz.targets import source_of

FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ENC_KEY = 0x000102030405060708090A0B0C0D0E0F
MAC_KEY = 0x0F0E0D0C0B0A09080706050403020100

#: bytes that matter to the text protocol, mixed with anything
_TEXTY = st.binary(max_size=40) | st.sampled_from(
    [b"\r\n", b"\r", b"\n", b"CKSM:", b"CMD OK", b"CMD Fail!", b",", b'"', b"Log Empty",
     b"00000000", b"1,", b"\xff", b"\xc3\xa9"])
messages = st.lists(_TEXTY, max_size=12).map(b"".join)
chunk_sizes = st.lists(st.integers(1, MAX_PAYLOAD), min_size=1, max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                          allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)


def assemble(pieces: list[bytes]) -> TextReply | None:
    assembler = TextReplyAssembler()
    for piece in pieces:
        reply = assembler.feed(piece)
        if reply is not None:
            return reply
    return None


# -- the HID report ---------------------------------------------------------------------


@FAST
@given(st.binary(max_size=70))
def test_parse_report_on_any_bytes(data: bytes) -> None:
    try:
        msg_type, payload = parse_report(data)
    except LibreDumpError:
        return
    assert len(data) in (REPORT_SIZE, REPORT_SIZE + 1)
    assert 0 <= msg_type <= 0xFF and len(payload) <= MAX_PAYLOAD


@FAST
@given(st.integers(0, 255), st.binary(max_size=MAX_PAYLOAD), st.integers(0, 255))
def test_parse_report_ignores_any_padding(msg_type: int, payload: bytes, pad: int) -> None:
    assert parse_report(build_report(msg_type, payload, pad)) == (msg_type, payload)


# -- text replies ------------------------------------------------------------------------


@FAST
@given(messages, st.booleans(), chunk_sizes)
def test_a_valid_reply_assembles_to_its_message_however_chunked(
        message: bytes, ok: bool, sizes: list[int]) -> None:
    assume(b"CKSM:" not in message)
    reply = assemble(chunked(build_text_reply(message, ok), sizes))
    assert reply is not None
    assert reply.message == message and reply.ok == ok and reply.trailing == b""
    assert reply.checksum == byte_sum(message)


@FAST
@given(messages, st.booleans(), chunk_sizes, st.data())
def test_a_corrupted_reply_never_assembles_to_other_data(
        message: bytes, ok: bool, sizes: list[int], data: st.DataObject) -> None:
    assume(b"CKSM:" not in message)
    stream = bytearray(build_text_reply(message, ok))
    at = data.draw(st.integers(0, len(stream) - 1))
    stream[at] = data.draw(st.integers(0, 255).filter(lambda b: b != stream[at]))
    try:
        reply = assemble(chunked(bytes(stream), sizes))
    except LibreDumpError:
        return
    if reply is not None:  # only if the byte was one the reply does not depend on
        assert reply.message == message and reply.ok == ok


@FAST
@given(st.lists(st.binary(max_size=70), max_size=10))
def test_the_assembler_and_trailer_parser_on_any_bytes(pieces: list[bytes]) -> None:
    assembler = TextReplyAssembler(max_bytes=4096)
    try:
        for piece in pieces:
            reply = assembler.feed(piece)
            if reply is not None:
                assert byte_sum(reply.message) == reply.checksum
                for strict in (True, False):
                    try:
                        parse_multirecord(reply, strict_count=strict)
                    except LibreDumpError:
                        pass
                break
    except LibreDumpError:
        pass


@FAST
@given(st.lists(st.binary(max_size=30).map(lambda b: b"1," + b.replace(b"\r\n", b"")),
                max_size=8),  # a record line starts with its record id
       st.integers(-3, 3))
def test_a_multirecord_trailer_count_must_match(records: list[bytes], delta: int) -> None:
    body = build_multirecord(records)
    if records and delta:
        count = len(records) + delta
        assume(count >= 0)
        lines = body.split(b"\r\n")
        trailer = lines[-2].split(b",")
        lines[-2] = b"%d," % count + trailer[1]
        body = b"\r\n".join(lines)
    reply = assemble([build_text_reply(body)])
    assert reply is not None
    if records and delta:
        with pytest.raises(LibreDumpError):
            parse_multirecord(reply)
    else:
        assert list(parse_multirecord(reply).records) == records


# -- record parsers ----------------------------------------------------------------------

_FIELD = st.text(alphabet=string.digits + ',"-.\r\n é' + "\u0000\u2028", max_size=12)
lines = st.lists(st.lists(_FIELD, max_size=40).map(lambda f: ",".join(f).encode()),
                 min_size=1, max_size=6)


@SLOW
@given(lines)
def test_every_record_parser_keeps_every_line_and_renders(record_lines: list[bytes]) -> None:
    records = []
    for name in PARSERS:
        parsed = parse_lines(name, record_lines, source_of(name))
        assert len(parsed) >= len(record_lines), f"{name} dropped a line"
        records.extend(parsed)
    dump = Dump(device=DeviceInfo(model="libre", product_id=0x3650), records=tuple(records))
    for fmt in export.WRITERS:
        text = export.render(dump, fmt)
        assert isinstance(text, str)


# -- the encrypted report ----------------------------------------------------------------


@FAST
@given(st.binary(max_size=70), st.sampled_from(["host", "device"]))
def test_session_cipher_open_on_any_bytes(data: bytes, role: str) -> None:
    cipher = SessionCipher(ENC_KEY, MAC_KEY, role)  # type: ignore[arg-type]
    try:
        clear = cipher.open(data)
    except LibreDumpError:
        return
    assert len(clear) == REPORT_SIZE or (data[:1] and data[0] in ALWAYS_CLEAR)


@FAST
@given(st.integers(0, 255).filter(lambda t: t not in ALWAYS_CLEAR),
       st.binary(max_size=54), st.integers(0, REPORT_SIZE * 8 - 1))
def test_a_flipped_bit_never_decrypts(msg_type: int, payload: bytes, bit: int) -> None:
    device = SessionCipher(ENC_KEY, MAC_KEY, "device")
    host = SessionCipher(ENC_KEY, MAC_KEY, "host")
    sealed = device.seal(build_report(msg_type, payload))
    assert parse_report(host.open(sealed)) == (msg_type, payload)
    corrupted = bytearray(sealed)
    corrupted[bit // 8] ^= 1 << (bit % 8)
    if corrupted[0] in ALWAYS_CLEAR:  # the type became a clear one: passed through as is
        assert host.open(bytes(corrupted)) == bytes(corrupted)
        return
    with pytest.raises(MacError):
        host.open(bytes(corrupted))


# -- files: transcripts, saved dumps, uploads -------------------------------------------


@FAST
@given(st.text(max_size=300))
def test_transcript_reader_on_any_text(text: str) -> None:
    try:
        ReplayTransport.from_lines(text.splitlines(keepends=True), "fuzz")
    except LibreDumpError:
        pass


@FAST
@given(st.lists(st.dictionaries(st.sampled_from(["dir", "data", "t", "product_id", "x"]),
                                json_values | st.sampled_from(["in", "out", "meta", "00"]),
                                max_size=4), max_size=5))
def test_transcript_reader_on_json_lines_of_any_shape(items: list[dict[str, Any]]) -> None:
    try:
        ReplayTransport.from_lines([json.dumps(item) + "\n" for item in items], "fuzz")
    except LibreDumpError:
        pass


def _valid_dump_document() -> dict[str, Any]:
    records = parse_lines("libre_history", [b"40001,0,5,14,26,10,0,0,0,154,1000,0,0,0,0"],
                          "$history?")
    records += parse_lines("libre_arresult", [
        b'1619,2,3,17,26,5,18,17,1,1,0,139,0,1,0,0,0,0,0,0,0,2,0,0,0,0,0,0,0,"Caf\xc3\xa9"'],
        "$arresult?")
    dump = Dump(device=DeviceInfo(model="libre", product_id=0x3650, serial="S", clock=None),
                records=tuple(records))
    doc: dict[str, Any] = json.loads(export.render(dump, "json"))
    return doc


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*path, index))
    return out


VALID_DUMP = _valid_dump_document()
SMALL_UPLOAD = load_bytes(
    b'{"DeviceData": {"header": {"device": {"serialNumber": "S"}}, "measurementLog": '
    b'{"bloodGlucoseEntries": [{"valueInMgPerDl": 139, "timestamp": "2026-03-17T05:18:17", '
    b'"recordNumber": 1619}]}}}', name="upload")
DUMP_PATHS = [p for p in _paths(VALID_DUMP) if p]


@FAST
@given(st.sampled_from(DUMP_PATHS), json_values | st.sampled_from(
    [1e308, -1, 10**30, "2026-13-45T99:99:99", [[1, 2, 3]], Decimal("1e999")]))
def test_saved_dump_with_any_field_replaced(path: tuple[Any, ...], value: Any) -> None:
    doc = json.loads(json.dumps(VALID_DUMP))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = float(value) if isinstance(value, Decimal) else value
    try:
        dump = export.dump_from_document(doc, "fuzz")
        # what the tool does with a saved dump: diff it against an upload, render the report
        result = diff_uploads(dump, SMALL_UPLOAD)
    except LibreDumpError:
        return
    for fmt in REPORT_FORMATS:
        render_report(result, fmt)


@FAST
@given(st.binary(max_size=200))
def test_upload_loader_on_any_bytes(data: bytes) -> None:
    try:
        load_bytes(data, name="fuzz", max_bytes=1 << 16)
    except LibreDumpError:
        pass


@FAST
@given(st.sampled_from(["scheduledContinuousGlucoseEntries", "bloodGlucoseEntries",
                        "insulinEntries", "foodEntries", "genericEntries", "ketoneEntries"]),
       st.lists(json_values, max_size=3), json_values)
def test_upload_loader_on_entries_of_any_shape(name: str, entries: list[Any],
                                               header: Any) -> None:
    doc = {"DeviceData": {"header": header, "measurementLog": {name: entries}},
           "UserToken": "secret"}
    try:
        load_bytes(json.dumps(doc).encode(), name="fuzz")
    except LibreDumpError:
        pass


# -- informational replies ----------------------------------------------------------------

_REPLY_TEXT = st.text(alphabet=string.digits + ",-. \r\n=DBRecordNumberCKSM:é", max_size=60) | (
    st.lists(st.integers(-(10**25), 10**25), max_size=9).map(
        lambda ints: ",".join(map(str, ints))))
_INFO_COMMANDS = sorted({c for m in MODELS.values() for c in (*m.info_commands, m.serial_command,
                                                                m.version_command)})


@FAST
@given(st.dictionaries(st.sampled_from(_INFO_COMMANDS), _REPLY_TEXT),
       st.sampled_from(["libre", None]))
def test_info_reply_decoders_on_any_text(replies: dict[str, str], table: str | None) -> None:
    """What the reader answers to informational commands is decoded, or left undecoded,
    never a crash (a 25-digit minute once raised OverflowError)."""
    rdt = parse_rdt(replies.get("$rdt?", ""))
    parse_date_time(replies.get("$date?", ""), replies.get("$time?", ""))
    parse_dbrnum(replies.get("$dbrnum?", ""))
    parse_patch(replies.get("$patch?", ""))
    for family in ("libre", "meter"):
        parse_patient_name(replies.get("$ptname?", ""), family)
    settings = decode_settings(replies, language_table=table, rdt=rdt)
    json.dumps(settings)
