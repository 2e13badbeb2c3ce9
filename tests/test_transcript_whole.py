"""A transcript file read whole (one JSON Lines decoder call, one hex decoding per report:
issue 16, speed) gives exactly what reading it line by line gives: the same reports,
exchanges, product id and flags, or the same error; anything the whole reading is not sure
of is read line by line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libre_usb.errors import InputError
from libre_usb.reader.session import Session
from libre_usb.simulator.reader import VirtualReader
from libre_usb.transport import transcript as transcript_module
from libre_usb.transport.interfaces.sim import SimTransport
from libre_usb.transport.transcript import RecordingTransport, ReplayTransport

OUT = "60" + "0a" + "2473657269616c3f" + "00" * 54  # ours spell hex in lower case


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The lines of a transcript our recorder wrote (a day of a virtual Libre)."""
    path = tmp_path_factory.mktemp("whole") / "session.jsonl"
    recorder = RecordingTransport(SimTransport(VirtualReader("libre", days=1)), path,
                                  model="libre")
    Session(recorder, "libre").dump()
    recorder.save()
    return path.read_text().splitlines(keepends=True)


def _state(player: ReplayTransport) -> tuple[object, ...]:
    return (player._queue[player._head :], [(e.key, e.replies, e.used, e.msg_type)
                                  for e in player._exchanges],
            player.product_id, player.decrypted, player.uri)


def _read(path: Path, *, whole: bool, monkeypatch: pytest.MonkeyPatch) -> object:
    with monkeypatch.context() as patch:
        if not whole:
            patch.setattr(transcript_module, "_WHOLE_BYTES", -1)
        try:
            return _state(ReplayTransport.from_file(path))
        except InputError as exc:
            return str(exc)


def test_a_recorded_transcript_is_read_whole(recorded: list[str], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    data = "".join(recorded).encode()
    player = ReplayTransport._from_plain_lines(data, "t")
    assert player is not None and len(player._exchanges) > 5
    path = tmp_path / "t.jsonl"
    path.write_bytes(data)
    assert (_read(path, whole=True, monkeypatch=monkeypatch)
            == _read(path, whole=False, monkeypatch=monkeypatch))


#: lines that are not as our recorder writes them, and ways of breaking a line
_ODD_LINES = [
    "\n", "  \n", "\r\n", "\x0c\n", "\ufeff{}\n", "[]\n", "null\n", "{}\n",
    '{"dir": "end", "error": "DeviceTimeout: x"}\n',
    '{"dir": "note", "data": 5}\n',
    '{"dir": "meta", "product_id": 13904, "decrypted": true}\n',
    '{"dir": "meta", "product_id": 13904.0}\n',
    '{"dir": "meta", "product_id": 99999}\n',
    '{"dir": "meta"}\n',
    '{"dir": "meta", "model": "\u00e9"}\n',
    '{"dir": "note", "text": "\udcff"}\n',  # written as bytes that are not UTF-8
    f'{{"dir": "out", "data": "{OUT.upper()}", "t": 1}}\n',
    f'{{"dir": "out", "data": "{" ".join(OUT[i:i + 2] for i in range(0, 128, 2))}"}}\n',
    f'{{"dir": "in", "data": "00{OUT}"}}\n',
    f'{{"dir": "in", "data": "{OUT[:-2]}"}}\n',
    f'{{"dir": "in", "data": "{OUT}", "data": "{OUT[:-2]}"}}\n',
    f'{{"dir": "in", "data": "{OUT[:-2]}", "data": "{OUT}"}}\n',
    f'{{"dir": "out", "dir": "in", "data": "{OUT}"}}\n',
    '{"dir": "in", "data": null}\n',
    '{"dir": "in"}\n',
    '{"dir": 5, "data": "00"}\n',
    f'{{"dir": "in", "data": "{OUT}"}} {{"dir": "in", "data": "{OUT}"}}\n',
    f'{{"dir": "in",\n"data": "{OUT}"}}\n',
    f'{{"dir": "in", "data": "{OUT}", "t": 1.2.3}}\n',
    f'{{"dir": "in", "data": "{OUT}", "t": NaN}}\n',
    f'{{"dir": "in", "data": "\\u0036\\u0030{OUT[2:]}"}}\n',
    f'{{"dir": "in", "data": "{OUT}", "x": "\\ud800"}}\n',
    f' {{"dir": "in", "data": "{OUT}"}}\n',
    f'{{"dir": "in", "data": "{OUT}"}} \n',
    f'{{"dir": "in", "data": "{OUT}"}}\r',
    f'{{"dir": "in", "data": "{OUT}", "pad": "{"x" * 70000}"}}\n',
    '{"dir": "in", "data": ' + "[" * 3000 + "]" * 3000 + "}\n",
]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_any_transcript_reads_the_same_whole_or_line_by_line(
        recorded: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        data: st.DataObject) -> None:
    lines = list(recorded[: data.draw(st.integers(0, 40))])
    for _ in range(data.draw(st.integers(0, 3))):
        at = data.draw(st.integers(0, len(lines)))
        odd = data.draw(st.sampled_from(_ODD_LINES))
        if data.draw(st.booleans()) and at < len(lines):
            lines[at] = odd
        else:
            lines.insert(at, odd)
    text = "".join(lines)
    if data.draw(st.booleans()):
        text = text.rstrip("\n")
    path = tmp_path / "t.jsonl"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    assert (_read(path, whole=True, monkeypatch=monkeypatch)
            == _read(path, whole=False, monkeypatch=monkeypatch))


def test_every_odd_line_alone_and_among_ours(recorded: list[str], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.jsonl"
    for odd in _ODD_LINES:
        for lines in ([odd], [*recorded[:5], odd, *recorded[5:9]]):
            path.write_bytes("".join(lines).encode("utf-8", "surrogatepass"))
            assert (_read(path, whole=True, monkeypatch=monkeypatch)
                    == _read(path, whole=False, monkeypatch=monkeypatch)), odd


def test_one_object_over_two_lines_and_two_on_one(recorded: list[str], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # as many objects as lines, but not one a line: an error line by line, so whole too
    path = tmp_path / "t.jsonl"
    split = f'{{"dir": "in",\n"data": "{OUT}"}}\n'
    double = f'{{"dir": "in", "data": "{OUT}"}} {{"dir": "in", "data": "{OUT}"}}\n'
    path.write_text("".join([*recorded[:5], split, double, *recorded[5:9]]))
    whole = _read(path, whole=True, monkeypatch=monkeypatch)
    assert whole == _read(path, whole=False, monkeypatch=monkeypatch)
    assert isinstance(whole, str) and "line 6: not a transcript line" in whole


def test_a_large_transcript_is_read_line_by_line(recorded: list[str], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(recorded))
    monkeypatch.setattr(transcript_module, "_WHOLE_BYTES", 1000)
    called: list[bytes] = []
    monkeypatch.setattr(ReplayTransport, "_from_plain_lines",
                        classmethod(lambda cls, data, name: called.append(data)))
    assert ReplayTransport.from_file(path)._exchanges
    assert called == []
    assert json.loads(recorded[0])["dir"] == "meta"
