"""The session and transports against the virtual reader, replay and recording."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from libre_usb.errors import DeviceTimeout, InputError, ProtocolError
from libre_usb.output import export
from libre_usb.reader.session import Session
from libre_usb.simulator import VirtualReader
from libre_usb.transport.interface import open_transport, parse_uri
from libre_usb.transport.interfaces.sim import SimTransport
from libre_usb.transport.transcript import RecordingTransport, ReplayTransport


def _key(record: object) -> tuple[str, int, str]:
    return (record.source, record.record_id, repr(record.to_dict()))  # type: ignore[attr-defined]


def _dump(reader: VirtualReader, **kwargs: object) -> list[object]:
    with Session(SimTransport(reader), **kwargs) as session:  # type: ignore[arg-type]
        return sorted(session.dump().records, key=_key)


def test_dump_returns_exactly_the_seeded_records() -> None:
    reader = VirtualReader("libre", seed=3)
    assert _dump(reader) == sorted(reader.content.records, key=_key)
    # nothing but reads was sent
    assert all(c.endswith("?") or c == "$getrmndr,0" for c in reader.commands)


def test_keepalives_and_stale_padding_change_nothing() -> None:
    plain = _dump(VirtualReader("libre", seed=1))
    noisy_reader = VirtualReader("libre", seed=1, keepalive=3, stale=True)
    assert _dump(noisy_reader) == plain


def test_stray_reply_from_an_earlier_session_is_discarded() -> None:
    assert _dump(VirtualReader("libre", seed=2, pre_stale=True)) == _dump(
        VirtualReader("libre", seed=2))


def test_silent_reader_times_out_quickly() -> None:
    reader = VirtualReader("libre", silent=True)
    start = time.monotonic()
    with pytest.raises(DeviceTimeout, match="did not answer"):
        Session(SimTransport(reader), timeout_ms=300).open()
    assert time.monotonic() - start < 2.0


def test_reader_that_stops_mid_session_times_out() -> None:
    reader = VirtualReader("libre", silent_after=3)
    with pytest.raises(DeviceTimeout), Session(SimTransport(reader), timeout_ms=200) as session:
        session.dump()


def test_session_refuses_anything_that_writes() -> None:
    reader = VirtualReader("libre")
    with Session(SimTransport(reader)) as session:
        for command in ("$resetpatient", "$ptname,Eve", "$date,1,2,26", "$swreset"):
            with pytest.raises(InputError, match="only reads"):
                session.command(command)
        # the clock is settable only when explicitly allowed
        session.command("$time,9,30", allow_write=True)
        with pytest.raises(InputError):
            session.command("$resetpatient", allow_write=True)
    assert "$resetpatient" not in reader.commands


def test_recorded_transcript_replays_to_the_same_dump(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    recorder = RecordingTransport(open_transport("sim:libre?seed=5"), path, model="libre")
    with Session(recorder) as session:
        first = export.render(session.dump(), "json")
    recorder.save()
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["dir"] == "meta"
    assert all(len(bytes.fromhex(json.loads(x)["data"])) == 64 for x in lines[1:])
    with Session(open_transport(f"replay:{path}")) as session:
        second = export.render(session.dump(), "json")
    assert first == second


def test_replay_matches_text_commands_whatever_their_type_and_crlf(tmp_path: Path) -> None:
    from libre_usb.protocol.frames import build_report
    from libre_usb.protocol.text.reply import build_text_reply

    def line(direction: str, report: bytes) -> str:
        return json.dumps({"dir": direction, "data": report.hex(), "t": 0})

    reply = build_text_reply(b"ABCD123-X4567\r\n")
    lines = [
        line("in", build_report(0x60, b"\r\nCKSM:00000017\r\nCMD OK\r\n")),  # stale, served at open
        line("out", build_report(0x21, b"$swver?\r\n")),  # another client's extra command
        line("in", build_report(0x60, build_text_reply(b"2.1.2\r\n"))),
        line("out", build_report(0x21, b"$sn?\r\n")),
        line("in", build_report(0x60, reply)),
    ]
    transport = ReplayTransport.from_lines(lines)
    assert transport.read(0) is not None  # the stale input
    transport.write(build_report(0x60, b"$sn?"))
    assert transport.read(0) == build_report(0x60, reply)
    with pytest.raises(ProtocolError, match="no unused exchange"):
        transport.write(build_report(0x60, b"$sn?"))


def test_other_spellings_of_a_transcript_replay_alike(tmp_path: Path) -> None:
    """Our recorder's lines are read without the JSON parser: a transcript with other
    spellings of the same lines mixed in (compact JSON, CRLF, blank lines), as a file or as
    a list of lines, gives the same exchanges, and a spoiled line is named by its number."""
    import io

    path = tmp_path / "t.jsonl"
    recorder = RecordingTransport(open_transport("sim:libre?seed=5&days=2"), path, model="libre")
    with Session(recorder) as session:
        session.dump()
    recorder.save()
    lines = path.read_text().splitlines(keepends=True)
    mixed = [json.dumps(json.loads(line), separators=(",", ":")) + "\n" if n % 7 == 3
             else line.replace("\n", "\r\n") if n % 11 == 5
             else line + "\n" if n % 13 == 6 else line for n, line in enumerate(lines)]

    def exchanges(player: ReplayTransport) -> list[tuple[object, ...]]:
        return [(e.key, e.msg_type, tuple(e.replies)) for e in player._exchanges]

    general = [exchanges(ReplayTransport.from_lines(list(text))) for text in (lines, mixed)]
    bulk = [exchanges(ReplayTransport.from_lines(io.StringIO("".join(text))))
            for text in (lines, mixed)]
    assert general[0] == general[1] == bulk[0] == bulk[1] and len(bulk[0]) > 10
    spoiled = lines[:]
    spoiled[200] = spoiled[200].replace('"data": "', '"data": "zz', 1)
    with pytest.raises(InputError, match="line 201:"):
        ReplayTransport.from_lines(io.StringIO("".join(spoiled)))


@pytest.mark.parametrize("text", ["not json", '{"dir": "in", "data": "zz"}',
                                  '{"dir": "out", "data": "00"}', "[1, 2]"])
def test_bad_transcripts_are_input_errors(text: str) -> None:
    with pytest.raises(InputError, match="line 1"):
        ReplayTransport.from_lines([text])


@pytest.mark.parametrize("uri", ["/dev/hidraw0", "foo:bar", "sim:", "usb"])
def test_bad_device_uris(uri: str) -> None:
    with pytest.raises(InputError, match="bad device"):
        parse_uri(uri)


def test_sim_uri_options() -> None:
    transport = open_transport("sim:libre?seed=4&keepalive=2&stale=1&pace_ms=0.1")
    assert isinstance(transport, SimTransport)
    assert transport.reader.seed == 4 and transport.reader.options.keepalive == 2
    with pytest.raises(InputError, match="unknown sim option"):
        open_transport("sim:libre?bogus=1")
    with pytest.raises(InputError, match="unknown reader model"):
        open_transport("sim:nosuch")
