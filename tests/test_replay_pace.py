"""``replay:FILE?pace_ms=N``: a transcript served at the link's pace (bench/'s paced case)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from libre_usb.errors import InputError
from libre_usb.reader.session import Session
from libre_usb.simulator.reader import VirtualReader
from libre_usb.transport.interface import open_transport
from libre_usb.transport.interfaces.sim import SimTransport
from libre_usb.transport.transcript import RecordingTransport, ReplayTransport


@pytest.fixture(scope="module")
def transcript(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pace") / "session.jsonl"
    recorder = RecordingTransport(SimTransport(VirtualReader("libre", days=1)), path)
    Session(recorder, "libre").dump()
    recorder.save()
    return path


def test_paced_replay_spaces_each_answer_from_its_request(transcript: Path) -> None:
    paced = open_transport(f"replay:{transcript}?pace_ms=5")
    assert isinstance(paced, ReplayTransport) and paced.pace_ms == 5
    session = Session(paced, "libre")
    session.open()
    start = time.monotonic()
    reply = session.command("$history?")
    elapsed = time.monotonic() - start
    reports = len(reply.lines) + 1  # one line a report, the checksum tail with the last
    assert elapsed >= (reports - 1) * 0.005
    unpaced = Session(ReplayTransport.from_file(transcript), "libre").dump()
    assert Session(open_transport(f"replay:{transcript}?pace_ms=0.5"), "libre").dump() == unpaced


def test_paced_replay_times_out_like_a_reader_when_the_next_report_is_not_due(
        transcript: Path) -> None:
    paced = ReplayTransport.from_file(transcript)
    paced.pace_ms = 500
    paced.write(Session(paced, "libre").conn.pre_init())
    assert paced.read(10) is None  # not due within 10 ms
    assert paced.read(1000) is not None


@pytest.mark.parametrize("query", ["pace_ms=fast", "pace_ms=-1", "pace_ms=5000"])
def test_bad_pace_is_an_input_error(transcript: Path, query: str) -> None:
    with pytest.raises(InputError, match="pace_ms"):
        open_transport(f"replay:{transcript}?{query}")


def test_a_file_whose_name_has_a_question_mark_still_opens(tmp_path: Path,
                                                           transcript: Path) -> None:
    odd = tmp_path / "a?pace_ms=2"
    odd.write_bytes(transcript.read_bytes())
    opened = open_transport(f"replay:{odd}")
    assert isinstance(opened, ReplayTransport) and opened.pace_ms == 0
