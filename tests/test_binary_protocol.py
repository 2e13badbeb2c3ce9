"""The binary protocol's sans-I/O layer against bytes nobody here wrote (Tidepool's vectors,
tests/data/tidepool) and against itself (link state machines, compression round trips)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libre_usb.errors import ProtocolError
from libre_usb.protocol.binary.aap import AapDecoder, AapFrame, build_aap
from libre_usb.protocol.binary.crc import crc16_record, crc32_words
from libre_usb.protocol.binary.link import (
    AckReceived,
    CommandReceived,
    CrcMismatch,
    DeviceLink,
    Duplicate,
    ErrorReplyEvent,
    HostLink,
    Monitor,
    OutOfSequence,
    Reply,
    build_atp,
)
from libre_usb.protocol.binary.records import (
    DEFAULT_HEADER,
    RecordNumbers,
    compress,
    decompress,
    parse_record,
)
from libre_usb.protocol.binary.schema import Field, Schema, parse_schemas
from libre_usb.protocol.binary.wire import AapFrame as AapStruct
from libre_usb.protocol.binary.wire import FieldType, Op
from libre_usb.protocol.frames import MessageType, build_report, parse_report

DATA = Path(__file__).resolve().parent / "data" / "tidepool"
PACKETS = json.loads((DATA / "libre1_aap_packets.json").read_text(encoding="utf-8"))
VECTORS = json.loads((DATA / "libre1_protocol_vectors.json").read_text(encoding="utf-8"))
#: what the reference says the four history records are (tests/data/tidepool/SOURCE.md)
HISTORY = [(37028, 75, 8160, "2015-09-10T03:53:19"), (37027, 80, 8145, "2015-09-10T03:38:19"),
           (37026, 94, 8130, "2015-09-10T03:23:19"), (37025, 114, 8115, "2015-09-10T03:08:19")]
TIME_CONVERSION = 1356912000


def history_records() -> list[bytes]:
    return [bytes.fromhex(p["data_hex"]) for p in PACKETS["historical_record_packets"]]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["aap_frame_hex"])
def test_atp_crc32_matches_every_captured_frame(vector: dict[str, str]) -> None:
    aap = bytes.fromhex(vector["aap_frame_hex"])
    assert crc32_words(aap) == int(vector["atp_crc32"], 16)
    # and the ATP frame we build around it carries that CRC, little-endian, at bytes 2..5
    frame = build_atp(0, 0, aap)
    assert int.from_bytes(frame[2:6], "little") == int(vector["atp_crc32"], 16)


def test_captured_commands_parse_as_aap_frames() -> None:
    ops = []
    for vector in VECTORS["vectors"]:
        raw = bytes.fromhex(vector["aap_frame_hex"])
        parsed = AapStruct.parse(raw)
        assert build_aap(parsed.op, parsed.data) == raw
        ops.append((parsed.op, bytes(parsed.data)))
    assert (Op.GET_CFG_DATA, b"\x0a") in ops and (Op.GET_DATABASE, b"\x07") in ops
    assert (Op.SET_COMPRESSION, b"\x01") in ops and (Op.FLUSH, b"") in ops


def test_history_records_decode_as_the_reference_says() -> None:
    numbers = RecordNumbers(37029)
    body = Schema(12, 1, 4, (
        Field(150, 0, 0, FieldType.UNSIGNED, 10), Field(151, 0, 12, FieldType.UNSIGNED, 1),
        Field(157, 1, 0, FieldType.UNSIGNED, 16), Field(156, 2, 0, FieldType.UNSIGNED, 16),
        Field(155, 3, 0, FieldType.CRC16, 16)))
    for data, (number, glucose, age, when) in zip(history_records(), HISTORY, strict=True):
        assert data[0] == 6  # the historical table
        record = numbers.apply(parse_record(data[0], data[1:], bodies={12: body}))
        assert record.crc_ok is True
        assert (record.type, record.time_valid) == (12, True)
        assert record.number == number
        seconds = TIME_CONVERSION + record.reader_time + record.user_offset
        assert dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds) == (
            dt.datetime.fromisoformat(when))
        values = body.read_all(record.data, 12)
        assert values[150] == glucose and values[157] == age and values[156] == 0


def test_a_tampered_record_fails_its_crc16() -> None:
    data = history_records()[0]
    assert parse_record(6, data[1:]).crc_ok is True
    for at in range(1, len(data) - 2):
        tampered = bytearray(data)
        tampered[at] ^= 0x01
        assert parse_record(6, bytes(tampered[1:])).crc_ok is False, at
    # the CRC16 is the catalogue CRC described in the module (refin, not refout)
    assert crc16_record(data[1:-2]) == int.from_bytes(data[-2:], "little")


def test_factory_config_packet_holds_what_the_reference_says() -> None:
    packet = PACKETS["factory_config_packet"]
    data = bytes.fromhex(packet["data_hex"])
    assert data[0] == 1 and len(data) == packet["dataLength"]
    # a config schema written from the reference's offsets (the packet's own schema is not
    # public): brand text at data offset 37, unit at 134, time conversion at 157
    schema = Schema(1, 1, 118, (
        Field(1029, 18, 0, FieldType.UTF8, 8 * 24), Field(1057, 66, 8, FieldType.UNSIGNED, 8),
        Field(1072, 78, 0, FieldType.UNSIGNED, 32)))
    values = schema.read_all(data[1:])
    assert values == {1029: "FreeStyle Libre", 1057: 1, 1072: TIME_CONVERSION}


def test_record_numbers_across_16_bit_wraps() -> None:
    numbers = RecordNumbers(131075)  # next wrap 196608
    assert numbers.number(6, 2) == 131074
    numbers.wrapped(6, 131072 - 5)  # a wrap record that is not a multiple, as seen in practice
    assert numbers.number(6, 65535) == 131071
    assert numbers.number(0, 1) == 131073  # other tables keep their own window
    assert RecordNumbers(65536).number(0, 65535) == 65535


@given(st.binary(max_size=300), st.integers(0, 255))
@settings(max_examples=200, deadline=None)
def test_compression_round_trip(record: bytes, table: int) -> None:
    back_table, data, crc_ok = decompress(compress(table, record))
    assert (back_table, crc_ok) == (table, True)
    assert data == record + bytes(-len(record) % 4)


@given(st.lists(st.sampled_from([bytes(4), b"\x01\x00\x00\x00", b"\xff\xee\xdd\xcc"]),
                max_size=12))
@settings(max_examples=300, deadline=None)
def test_compression_is_as_short_as_the_format_allows(words: list[bytes]) -> None:
    """Every way of sending each run of zero words as a zero block or inside a raw block,
    tried: none is shorter than what compress() writes."""
    import itertools

    record = b"".join(words)
    runs: list[tuple[bool, int]] = []  # (zero, words)
    for word in words:
        zero = word == bytes(4)
        runs = ([*runs[:-1], (zero, runs[-1][1] + 1)] if runs and runs[-1][0] == zero
                else [*runs, (zero, 1)])
    zero_runs = [i for i, (zero, _) in enumerate(runs) if zero]
    best = None
    for choice in itertools.product((False, True), repeat=len(zero_runs)):
        as_zero = {i for i, pick in zip(zero_runs, choice, strict=True) if pick}
        size, open_raw = 0, False
        for i, (_, count) in enumerate(runs):
            if i in as_zero:
                size, open_raw = size + 4, False
            else:
                size, open_raw = size + 4 * count + (0 if open_raw else 4), True
        best = size if best is None else min(best, size)
    assert len(compress(6, record)) == 1 + (best or 0) + 4
    assert decompress(compress(6, record))[1:] == (record, True)


def test_real_history_records_grow_when_compressed() -> None:
    """Why compression costs reports on a Libre (docs/performance.md): a compressed record
    is one 0x35 frame per record (Tidepool decodes one record per frame), and the real
    history records of Tidepool's capture have no 32-bit word of zeros, so even the shortest
    encoding is the record plus a block header and a CRC32: 8 bytes more than plain."""
    for packet in history_records():
        table, record = packet[0], packet[1:]
        assert len(record) == 20
        assert bytes(4) not in [record[i:i + 4] for i in range(0, 20, 4)]
        assert len(build_aap(Op.COMPRESSED_DATABASE, compress(table, record))) == (
            len(build_aap(Op.GET_DATABASE, packet)) + 8)


def test_compression_rejects_damage() -> None:
    packed = bytearray(compress(6, bytes(8) + b"\x01\x02\x03\x04" + bytes(16)))
    packed[-1] ^= 0x40
    assert decompress(bytes(packed))[2] is False
    bad = bytearray(compress(6, b"\x01\x02\x03\x04"))
    bad[1] = 0x42
    with pytest.raises(ProtocolError, match="block type 0x42"):
        decompress(bytes(bad))


@given(st.lists(st.tuples(st.integers(0, 0x7F), st.binary(max_size=400)), max_size=6),
       st.integers(1, 70))
@settings(max_examples=200, deadline=None)
def test_aap_reassembly_from_any_slicing(frames: list[tuple[int, bytes]], cut: int) -> None:
    stream = b"".join(build_aap(op, data) for op, data in frames)
    decoder = AapDecoder()
    out: list[AapFrame] = []
    for at in range(0, len(stream), cut):
        out.extend(decoder.feed(stream[at : at + cut]))
    assert out == [AapFrame(op, data) for op, data in frames]
    assert decoder.idle


def test_aap_length_prefix_is_seven_bits_lsb_first() -> None:
    assert build_aap(0x31, bytes(200))[:3] == bytes([0x80 | (200 & 0x7F), 0x80 | 1, 0x31])
    assert build_aap(0x34) == b"\x34"
    with pytest.raises(ProtocolError):
        AapDecoder().feed(b"\x81\x81\x81\x81\x31")


def test_schema_tables_round_trip_and_the_quoted_header_schema() -> None:
    encoded = DEFAULT_HEADER.encode()
    # the common-header schema as Tidepool's code comment quotes it, byte for byte
    assert encoded == bytes([48, 0, 1, 0, 255, 6, 0, 5,
                             0, 0, 0, 0, 0, 1, 16, 0,
                             8, 0, 1, 0, 0, 0, 8, 0,
                             7, 0, 1, 0, 15, 0, 1, 0,
                             9, 0, 2, 0, 0, 0, 32, 0,
                             10, 0, 4, 0, 0, 2, 32, 0])
    assert parse_schemas(encoded + encoded) == [DEFAULT_HEADER, DEFAULT_HEADER]
    with pytest.raises(ProtocolError):
        parse_schemas(encoded[:-3])


def test_signed_and_multi_word_fields() -> None:
    field = Field(10, 4, 0, FieldType.SIGNED, 32)
    buffer = bytearray(12)
    field.write(buffer, -12836)
    assert field.read(bytes(buffer)) == -12836
    odd = Field(99, 0, 13, FieldType.UNSIGNED, 7)  # bits 13..19: runs over two words
    odd.write(buffer, 0x55)
    assert odd.read(bytes(buffer)) == 0x55 and field.read(bytes(buffer)) == -12836


# -- the link state machines ------------------------------------------------------------------

def _exchange(host: HostLink, device: DeviceLink, op: int, data: bytes, reply: bytes,
              mangle: object = None) -> list[object]:
    """Run one command through both ends; ``mangle(reports) -> reports`` breaks the reader's
    reports once. Returns every host event."""
    events: list[object] = []
    to_device = host.command(op, data)
    to_host: list[bytes] = []
    first = True
    while to_device or to_host:
        for report in to_device:
            commands, answer = device.receive(report)
            for command in commands:
                if command.op == Op.FLUSH:
                    answer += device.flush()
                else:
                    answer += device.send(reply)
            to_host += answer
        to_device = []
        if first and callable(mangle):
            to_host = mangle(to_host)
            first = False
        for report in to_host:
            events.extend(host.receive(report))
            to_device += host.acks()
        to_host = []
        if not to_device and host.busy:
            host.idle()
            to_device = host.acks()
    return events


REPLY = b"".join(build_aap(Op.GET_DATABASE, bytes([6]) + bytes([i]) * 20) for i in range(40))
REPLY += build_aap(Op.GET_DATABASE)


def _reply_of(events: list[object]) -> Reply:
    replies = [e for e in events if isinstance(e, Reply)]
    assert len(replies) == 1
    return replies[0]


def test_a_reply_arrives_whole() -> None:
    host, device = HostLink(), DeviceLink()
    events = _exchange(host, device, Op.GET_DATABASE, b"\x06", REPLY)
    reply = _reply_of(events)
    assert reply.op == Op.GET_DATABASE and len(reply.frames) == 41
    assert b"".join(f.encode() for f in reply.frames) == REPLY
    assert device.retransmitted == 0


def _binary(reports: list[bytes]) -> list[int]:
    return [i for i, r in enumerate(reports) if r[0] == MessageType.BINARY_RESPONSE]


def _drop(reports: list[bytes]) -> list[bytes]:
    at = _binary(reports)[3]
    return reports[:at] + reports[at + 1 :]


def _corrupt(reports: list[bytes]) -> list[bytes]:
    at = _binary(reports)[2]
    report = bytearray(reports[at])
    report[20] ^= 0xFF
    return [*reports[:at], bytes(report), *reports[at + 1 :]]


def _duplicate(reports: list[bytes]) -> list[bytes]:
    at = _binary(reports)[1]
    return [*reports[: at + 1], reports[at], *reports[at + 1 :]]


@pytest.mark.parametrize(("mangle", "seen"), [(_drop, OutOfSequence), (_corrupt, CrcMismatch),
                                              (_duplicate, Duplicate)])
def test_lost_corrupted_and_repeated_frames_are_recovered(mangle: object, seen: type) -> None:
    host, device = HostLink(), DeviceLink()
    events = _exchange(host, device, Op.GET_DATABASE, b"\x06", REPLY, mangle)
    assert any(isinstance(e, seen) for e in events)
    assert b"".join(f.encode() for f in _reply_of(events).frames) == REPLY
    if seen is not Duplicate:
        assert device.retransmitted > 0


def test_an_error_reply_is_an_event_and_ends_the_reply() -> None:
    host, device = HostLink(), DeviceLink()
    events = _exchange(host, device, Op.GET_CFG_DATA, b"\x08",
                       build_aap(Op.ERROR, bytes([Op.GET_CFG_DATA, 5])))
    errors = [e for e in events if isinstance(e, ErrorReplyEvent)]
    assert errors and errors[0].code == 5 and errors[0].text == "invalid table id"
    assert not host.busy


def test_the_host_builds_only_reads() -> None:
    with pytest.raises(ProtocolError, match="only reads"):
        HostLink().command(Op.SET_DATE_TIME, bytes(8))
    with pytest.raises(ProtocolError):
        HostLink().command(0x43)
    reports = HostLink(allow_clock=True).command(Op.SET_DATE_TIME, bytes(8))
    assert len(reports) == 2
    # every command is followed by a FLUSH frame with the next sequence number
    host = HostLink()
    first, flush = host.command(Op.GET_DB_SCHEMA)
    for seq, report in enumerate((first, flush)):
        msg_type, payload = parse_report(report)
        assert msg_type == MessageType.BINARY_REQUEST and payload[1] == seq
    assert parse_report(flush)[1][6:] == bytes([Op.FLUSH])


def test_a_device_ack_of_a_frame_never_sent_is_a_protocol_error() -> None:
    host = HostLink()
    host.command(Op.GET_DATE_TIME)
    with pytest.raises(ProtocolError, match="acknowledged frame 9"):
        host.receive(build_report(MessageType.BINARY_ACK_DEVICE, bytes([9, 0, 0, 0])))


def test_the_monitor_decodes_both_directions_passively() -> None:
    host, device = HostLink(), DeviceLink()
    wire: list[tuple[str, bytes]] = []
    outgoing = list(host.command(Op.GET_DATABASE, b"\x06"))
    while outgoing:
        report = outgoing.pop(0)
        wire.append(("out", report))
        commands, answer = device.receive(report)
        for command in commands:
            answer += device.flush() if command.op == Op.FLUSH else device.send(REPLY)
        for item in answer:
            wire.append(("in", item))
            host.receive(item)
            outgoing += host.acks()
    monitor = Monitor()
    seen = [s for direction, report in wire for s in monitor.feed(direction, report)]
    commands = [s.event for s in seen if isinstance(s.event, CommandReceived)]
    assert [c.op for c in commands] == [Op.GET_DATABASE, Op.FLUSH]
    replies = [s.event for s in seen if isinstance(s.event, Reply)]
    assert len(replies) == 1 and len(replies[0].frames) == 41
    assert b"".join(f.encode() for f in replies[0].frames) == REPLY
    assert any(s.direction == "out" and isinstance(s.event, AckReceived) for s in seen)


def test_set_date_time_is_built_only_on_request_and_sets_the_virtual_clock() -> None:
    import datetime as _dt

    from libre_usb.protocol.binary.wire import DateTime, date_time_data
    from libre_usb.simulator.binary import Database
    from libre_usb.simulator.content import generate

    data = date_time_data(2026, 7, 1, 13, 5, 9)
    assert data == bytes([9, 5, 13, 1, 7]) + (2026).to_bytes(2, "little") + b"\x01"
    assert DateTime.parse(data).year == 2026
    database = Database(generate(0, model="libre", days=1))
    reply = database.answer(Op.SET_DATE_TIME, data)
    assert reply == build_aap(Op.SET_DATE_TIME)
    assert database.content.clock == _dt.datetime(2026, 7, 1, 13, 5, 9)
    assert database.answer(Op.SET_DATE_TIME, date_time_data(2026, 2, 30, 0, 0, 0))[
        -2:] == bytes([Op.SET_DATE_TIME, 1])  # ERROR bad parameters


def test_a_date_change_and_a_time_change_back_to_back_are_one_change() -> None:
    import datetime as _dt

    from libre_usb.model import ScanRecord, TimeChangeRecord
    from libre_usb.protocol.binary.decode import merge_time_changes

    def change(number: int, old: str, new: str) -> TimeChangeRecord:
        new_time = _dt.datetime.fromisoformat(new)
        return TimeChangeRecord(record_id=number, source="db:results", record_type=5,
                                local_time=new_time, old_time=_dt.datetime.fromisoformat(old),
                                new_time=new_time)

    date = change(100, "2026-01-01T10:00:00", "2026-03-05T10:00:07")  # the date first
    time = change(103, "2026-03-05T10:00:40", "2026-03-05T17:30:00")  # then the time
    later = change(400, "2026-04-01T08:00:00", "2026-04-01T09:00:00")
    scan = ScanRecord(record_id=101, source="db:results", record_type=2, local_time=None)
    out = merge_time_changes([date, scan, time, later])
    assert out[0] is scan and out[2] is later
    merged = out[1]
    assert isinstance(merged, TimeChangeRecord) and merged.record_id == 103
    assert merged.old_time == date.old_time and merged.new_time == time.new_time
    assert dict(merged.raw)[0] == "100"
    # far apart, or neither the date nor the hour and minute shared: two changes
    assert merge_time_changes([date, later]) == [date, later]
    other = change(120, "2026-03-05T10:01:00", "2026-03-09T11:45:00")
    assert merge_time_changes([date, other]) == [date, other]


def test_decode_session_of_hand_made_tables() -> None:
    """decode_session on tables built here: a record type whose schema lists the header's
    fields counts its words from the record's start; the insulin table's doses stay raw; a
    record with a bad CRC16 is kept as unknown, never decoded into values."""
    from libre_usb.model import InsulinRecord, UnknownRecord
    from libre_usb.protocol.binary.decode import BinaryRead, decode_session
    from libre_usb.protocol.binary.records import DEFAULT_HEADER

    manual = Schema(7, 1, 9, (*DEFAULT_HEADER.fields, Field(78, 6, 0, FieldType.UNSIGNED, 16),
                              Field(77, 8, 0, FieldType.CRC16, 16)))
    factory = Schema(1, 1, 4, (Field(1072, 0, 0, FieldType.UNSIGNED, 32),))
    record = bytearray(18)
    for field, value in zip(manual.fields[:6], (0x1234, 7, 1, 5000, -60, 13), strict=True):
        field.write(record, value)
    record[16:18] = crc16_record(bytes(record[:16])).to_bytes(2, "little")
    broken = bytearray(record)
    broken[0] ^= 1  # another record number, same CRC: it no longer matches
    read = BinaryRead(db_schemas={7: manual}, cfg_schemas={1: factory},
                      config={1: TIME_CONVERSION.to_bytes(4, "little") + bytes(4)},
                      tables={1: [AapFrame(Op.GET_DATABASE, b"\x01" + bytes(record)),
                                  AapFrame(Op.GET_DATABASE, b"\x01" + bytes(broken))]},
                      db_record_number=0x1300)
    decoded = decode_session(read)
    insulin, unknown = decoded.records
    assert isinstance(insulin, InsulinRecord) and insulin.insulin_type == "rapid_manual"
    assert insulin.record_id == 0x1234 and insulin.units is None
    assert dict(insulin.raw) == {78: "13"}
    assert insulin.local_time == dt.datetime(1970, 1, 1) + dt.timedelta(
        seconds=TIME_CONVERSION + 5000 - 60)
    assert isinstance(unknown, UnknownRecord) and unknown.fields[0] == "crc_error"
    assert decoded.problems == {"record CRC16 mismatch": 1}
