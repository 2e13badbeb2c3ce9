"""``libre-dump clock``: the reader's clock, the host's and the drift; ``clock --set``, the only
write libre-dump sends, checked against the setters Abbott's own software sent to a real
InsuLinx (tests/data/openglucose-insulinx/sync-time.usbsnoop.log)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from captures import INSULINX, need, usbsnoop_reports
from click.testing import CliRunner

from libre_usb.cli import clock_cmd, main
from libre_usb.cli.clock_cmd import drift_text, parse_target
from libre_usb.devices import MODELS, is_read_only
from libre_usb.errors import EXIT_INPUT, InputError
from libre_usb.protocol.frames import MessageType
from libre_usb.protocol.text.replies import clock_setters
from libre_usb.reader.session import Session
from libre_usb.simulator import VirtualReader
from libre_usb.simulator.content import DEFAULT_NOW
from libre_usb.transport.interfaces.sim import SimTransport


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def _captured_text(path: Path) -> list[tuple[str, bytes]]:
    """(direction, text payload) of the 0x60 reports of a capture."""
    return [(d, r[2:2 + r[1]]) for d, r in usbsnoop_reports(need(path)) if r[0] == 0x60]


# -- the wire format, against the real capture ----------------------------------------------

def test_setters_are_spelled_as_abbotts_software_spelled_them() -> None:
    texts = _captured_text(INSULINX / "sync-time.usbsnoop.log")
    sent = [t.decode().rstrip("\r\n") for d, t in texts if d == "out"]
    assert sent == ["$date,8,27,14", "$time,13,40"]
    assert list(clock_setters(dt.datetime(2014, 8, 27, 13, 40, 59))) == sent


def test_the_virtual_reader_answers_setters_as_the_real_meter_did() -> None:
    texts = _captured_text(INSULINX / "sync-time.usbsnoop.log")
    real_replies = [t for d, t in texts if d == "in"]
    assert real_replies == [b"CKSM:00000000\r\nCMD OK\r\n"] * 2
    reader = VirtualReader("insulinx")
    for command in clock_setters(dt.datetime(2014, 8, 27, 13, 40)):
        reader.write(bytes([0x60, len(command)]) + command.encode() + bytes(62 - len(command)))
        report = reader.read(100)
        assert report[2:2 + report[1]] == real_replies[0]
    # and reads back in the meter's own format ($date? / $time? in set-built-in-img.log)
    assert reader.reply("$date?") == b"8,27,14\r\n" and reader.reply("$time?") == b"13,40\r\n"
    real = [t for d, t in _captured_text(INSULINX / "set-built-in-img.usbsnoop.log") if d == "in"]
    assert b"8,27,14\r\nCKSM:00000175\r\nCMD OK\r\n" in real  # the same shape, from the meter


@pytest.mark.parametrize(("when", "commands"), [
    (dt.datetime(2026, 1, 5, 7, 3), ("$date,1,5,26", "$time,7,3")),       # no leading zeros
    (dt.datetime(2000, 12, 31, 23, 59), ("$date,12,31,0", "$time,23,59")),
    (dt.datetime(2099, 2, 28, 0, 0), ("$date,2,28,99", "$time,0,0")),
])
def test_setter_text(when: dt.datetime, commands: tuple[str, str]) -> None:
    assert clock_setters(when) == commands


def test_years_a_reader_cannot_hold() -> None:
    for year in (1999, 2100):
        with pytest.raises(ValueError):
            clock_setters(dt.datetime(year, 1, 1))


# -- the session: set, then read back ---------------------------------------------------------

@pytest.mark.parametrize("model", sorted(MODELS))
def test_set_and_read_back_in_one_session(model: str) -> None:
    reader = VirtualReader(model, 3)
    session = Session(SimTransport(reader), model)
    assert session.read_clock() == DEFAULT_NOW
    session.set_clock(dt.datetime(2027, 2, 3, 4, 5, 6))
    assert session.read_clock() == dt.datetime(2027, 2, 3, 4, 5)  # seconds are not set
    writes = [c for c in reader.commands if not is_read_only(c)]
    assert writes == ["$date,2,3,27", "$time,4,5"]


def test_a_reader_that_refuses_a_setter_is_an_error() -> None:
    reader = VirtualReader("libre")
    session = Session(SimTransport(reader), "libre")
    session.open()
    with pytest.raises(Exception, match="CMD Fail"):
        session.command("$date,13,45,26", allow_write=True)  # month 13: CMD Fail!
    assert session.read_clock() == DEFAULT_NOW


# -- the read-only gate ------------------------------------------------------------------------

def test_the_gate_refuses_writes_unless_the_clock_command_asks() -> None:
    session = Session(SimTransport(VirtualReader("libre")), "libre")
    session.open()
    for command in ("$date,1,1,26", "$time,1,1", "$ptname,x", "$resetpatient"):
        with pytest.raises(InputError):
            session.command(command)
    with pytest.raises(InputError):
        session.command("$resetpatient", allow_write=True)  # erasing: never


@pytest.mark.parametrize("args", [
    ("info",), ("dump", "-f", "csv"), ("clock",), ("clock", "--json"),
])
def test_read_commands_send_only_reads(monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
                                       ) -> None:
    readers: list[VirtualReader] = []
    original = VirtualReader.__init__

    def spy(self: VirtualReader, *a: object, **k: object) -> None:
        original(self, *a, **k)  # type: ignore[arg-type]
        readers.append(self)

    monkeypatch.setattr(VirtualReader, "__init__", spy)
    code, _, err = run(*args, "--device", "sim:libre?days=2")
    assert code == 0, err
    (reader,) = readers
    assert reader.commands and all(is_read_only(c) for c in reader.commands)
    assert all(r[0] != MessageType.TEXT or not r[2:].startswith((b"$date,", b"$time,"))
               for r in reader.received)


# -- the command ------------------------------------------------------------------------------

def test_clock_shows_reader_host_and_drift() -> None:
    code, out, _ = run("clock", "--device", "sim:neo", "--tz", "Europe/Berlin")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Reader clock: {DEFAULT_NOW.isoformat(sep=' ')}"
    assert lines[1].startswith("Host clock:") and lines[1].endswith("(Europe/Berlin, from --tz)")
    assert lines[2].startswith("Drift:") and "the host" in lines[2]


def test_clock_json(tmp_path: Path) -> None:
    code, out, _ = run("clock", "--device", "sim:libre", "--json", "--tz", "UTC")
    assert code == 0
    data = json.loads(out)
    host = dt.datetime.fromisoformat(data["host"])
    assert data["reader"] == DEFAULT_NOW.isoformat() and data["zone"] == "UTC"
    assert data["drift_s"] == (DEFAULT_NOW - host).total_seconds()


def test_set_now_then_a_second_run_reads_the_new_time(tmp_path: Path) -> None:
    state = tmp_path / "reader.json"
    device = f"sim:libre?state={state}"
    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, second=0, microsecond=0)
    code, out, err = run("clock", "--set", "now", "--yes", "--tz", "UTC", "--device", device)
    assert code == 0, err
    assert "Set to:" in out and "Reader now:" in out
    code, out, _ = run("clock", "--device", device, "--tz", "UTC", "--json")
    reader = dt.datetime.fromisoformat(json.loads(out)["reader"])
    after = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert before <= reader <= after  # the new time, to the minute
    assert abs(json.loads(out)["drift_s"]) < 120


def test_set_an_iso_time_with_an_offset_converts_to_the_zone(tmp_path: Path) -> None:
    state = tmp_path / "reader.json"
    code, out, err = run("clock", "--set", "2026-03-29T14:05:30+00:00", "--yes",
                         "--tz", "Europe/Berlin", "--device", f"sim:insulinx?state={state}",
                         "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["set_to"] == "2026-03-29T16:05:00"  # CEST, seconds dropped
    assert data["reader_after"] == "2026-03-29T16:05:00"
    assert json.loads(state.read_text())["clock"] == "2026-03-29T16:05:00"


def test_a_sim_without_state_says_it_forgets() -> None:
    code, _, err = run("clock", "--set", "--yes", "--device", "sim:libre")
    assert code == 0 and "state=FILE" in err
    code, _, err = run("clock", "--set", "--yes", "--quiet", "--device", "sim:libre")
    assert code == 0 and err == ""


def test_set_is_recorded_in_the_transcript(tmp_path: Path) -> None:
    transcript = tmp_path / "clock.jsonl"
    code, _, err = run("clock", "--set", "2026-01-02T03:04", "--yes", "--device", "sim:libre",
                       "--record", str(transcript))
    assert code == 0, err
    sent = [bytes.fromhex(json.loads(line)["data"]) for line in transcript.read_text().splitlines()
            if json.loads(line)["dir"] == "out"]
    texts = [r[2:2 + r[1]].rstrip(b"\r\n") for r in sent if r[0] in (0x60, 0x21)]
    assert b"$date,1,2,26" in texts and b"$time,3,4" in texts
    assert texts.index(b"$date,1,2,26") < texts.index(b"$time,3,4")


def test_set_is_refused_on_a_recording(tmp_path: Path) -> None:
    transcript = tmp_path / "session.jsonl"
    code, _, _ = run("info", "--device", "sim:libre", "--record", str(transcript))
    assert code == 0
    saved = transcript.read_text()
    for scheme in ("replay", "capture"):
        code, out, err = run("clock", "--set", "now", "--yes", "--device",
                             f"{scheme}:{transcript}")
        assert code == EXIT_INPUT, err
        assert "recording" in err and err.count("\n") == 1 and out == ""
    assert transcript.read_text() == saved
    # reading the clock of a recording is fine
    code, out, _ = run("clock", "--device", f"replay:{transcript}")
    assert code == 0 and out.startswith("Reader clock:")


def test_without_a_terminal_or_yes_nothing_is_set(tmp_path: Path) -> None:
    state = tmp_path / "reader.json"
    code, _, err = run("clock", "--set", "--device", f"sim:libre?state={state}")
    assert code == EXIT_INPUT and "not changed" in err and "--yes" in err
    assert not state.exists()


@pytest.mark.parametrize(("answer", "changed"), [("y\n", True), ("n\n", False), ("\n", False)])
def test_the_question(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str,
                      changed: bool) -> None:
    monkeypatch.setattr(clock_cmd, "interactive", lambda: True)
    state = tmp_path / "reader.json"
    code, _, err = run("clock", "--set", "2026-05-06T07:08", "--device",
                       f"sim:libre?state={state}", stdin=answer)
    assert "Set the reader's clock to 2026-05-06 07:08?" in err
    assert (code == 0) is changed and state.exists() is changed


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "1999-01-01T00:00", "2100-01-01"])
def test_bad_set_values(value: str) -> None:
    code, out, err = run("clock", "--set", value, "--yes", "--device", "sim:libre")
    assert code == EXIT_INPUT and out == "" and err.count("\n") == 1


def test_parse_target_and_drift_text() -> None:
    utc = dt.timezone.utc
    assert parse_target("now", utc) is None
    assert parse_target("2026-03-29 14:05:59", utc) == dt.datetime(2026, 3, 29, 14, 5)
    assert parse_target("2026-03-29T14:05Z", dt.timezone(dt.timedelta(hours=-5))) == (
        dt.datetime(2026, 3, 29, 9, 5))
    assert drift_text(0.4) == "none (reader and host agree to the second)"
    assert drift_text(-42) == "reader is 00:00:42 behind the host"
    assert drift_text(90061) == "reader is 1 day 01:01:01 ahead of the host"
