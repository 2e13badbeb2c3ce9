"""``libre-dump clock``: the reader's clock, the host's and the drift; ``clock --set``, the only
write libre-dump sends, checked against the setters Abbott's own software sent to a real
InsuLinx (tests/data/openglucose-insulinx/sync-time.usbsnoop.log)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from captures import INSULINX, need, usbsnoop_reports
from click.testing import CliRunner

from libre_usb.cli import clock_cmd, main
from libre_usb.cli.clock_cmd import drift_text, parse_target
from libre_usb.devices import MODELS, is_read_only
from libre_usb.errors import EXIT_INPUT, InputError
from libre_usb.protocol.binary.wire import READ_OPS, Op, date_time_data
from libre_usb.protocol.frames import MessageType
from libre_usb.protocol.text.replies import clock_setters
from libre_usb.reader.session import Session
from libre_usb.simulator import VirtualReader
from libre_usb.simulator.content import DEFAULT_NOW
from libre_usb.simulator.state import default_state_path
from libre_usb.transport.interfaces.sim import SimTransport


def built_readers(monkeypatch: pytest.MonkeyPatch) -> list[VirtualReader]:
    """Every virtual reader the test builds from now on (to look at what it received)."""
    readers: list[VirtualReader] = []
    original = VirtualReader.__init__

    def spy(self: VirtualReader, *a: object, **k: object) -> None:
        original(self, *a, **k)  # type: ignore[arg-type]
        readers.append(self)

    monkeypatch.setattr(VirtualReader, "__init__", spy)
    return readers


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
    readers = built_readers(monkeypatch)
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


def test_the_note_says_where_a_sim_keeps_its_clock(sim_state_is_private: Path) -> None:
    kept = sim_state_is_private / "libre-dump" / "sim" / "libre-seed0.json"
    code, _, err = run("clock", "--set", "--yes", "--device", "sim:libre")
    assert code == 0 and f"keeps this clock in {kept} " in err and kept.exists()
    code, _, err = run("clock", "--set", "--yes", "--device", "sim:libre?state=none")
    assert code == 0 and "forgets this clock" in err
    code, _, err = run("clock", "--set", "--yes", "--quiet", "--device", "sim:libre")
    assert code == 0 and err == ""


# -- the virtual reader keeps its clock from one run to the next -------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``libre-dump ARGS`` in a process of its own (the environment, XDG_STATE_HOME included,
    is the test's: tests/conftest.py)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "libre_usb", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def test_set_now_on_a_plain_sim_then_another_process_shows_the_new_time(
        sim_state_is_private: Path) -> None:
    """Issue 14's acceptance, as a user types it: two separate processes, plain sim:libre."""
    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, second=0, microsecond=0)
    done = _cli("clock", "--set", "now", "--yes", "--device", "sim:libre", "--tz", "UTC")
    assert done.returncode == 0, done.stderr
    done = _cli("clock", "--device", "sim:libre", "--tz", "UTC", "--json")
    assert done.returncode == 0, done.stderr
    reader = dt.datetime.fromisoformat(json.loads(done.stdout)["reader"])
    after = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert before <= reader <= after and abs(json.loads(done.stdout)["drift_s"]) < 120
    # another seed is another reader: its clock was not set
    done = _cli("clock", "--device", "sim:libre?seed=1", "--json")
    assert json.loads(done.stdout)["reader"] == DEFAULT_NOW.isoformat()
    assert sorted(p.name for p in (sim_state_is_private / "libre-dump" / "sim").iterdir()) == [
        "libre-seed0.json"]


def test_the_kept_clock_runs_on(tmp_path: Path) -> None:
    """The file holds the time set and when (UTC) it was set; a later run adds the time
    elapsed since, as the reader's own clock would have run."""
    state = tmp_path / "clock.json"
    set_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    state.write_text(json.dumps({"clock": "2026-02-03T04:05:00",
                                 "set_at": (set_at - dt.timedelta(hours=2)).isoformat()}))
    code, out, _ = run("clock", "--device", f"sim:neo?state={state}", "--json")
    reader = dt.datetime.fromisoformat(json.loads(out)["reader"])
    assert code == 0 and dt.timedelta(hours=2) <= reader - dt.datetime(2026, 2, 3, 4, 5) < (
        dt.timedelta(hours=2, minutes=2))


def test_reads_keep_nothing_and_dumps_stay_the_same(sim_state_is_private: Path) -> None:
    """Until a setter runs, the virtual reader writes no state and shows its seeded clock:
    dumps of one model and seed are the same bytes (the VM stage compares them)."""
    first = run("dump", "-f", "ndjson", "--device", "sim:libre?days=2")
    for args in (("info",), ("clock",), ("clock", "--protocol", "binary"),
                 ("dump", "--protocol", "binary", "-f", "csv")):
        code, _, err = run(*args, "--device", "sim:libre?days=2")
        assert code == 0, err
    assert not any(sim_state_is_private.rglob("*"))
    assert run("dump", "-f", "ndjson", "--device", "sim:libre?days=2") == first


def test_state_none_and_a_reset() -> None:
    code, _, err = run("clock", "--set", "2026-01-02T03:04", "--yes", "--device",
                       "sim:libre?state=none")
    assert code == 0, err
    code, out, _ = run("clock", "--device", "sim:libre", "--json")
    assert json.loads(out)["reader"] == DEFAULT_NOW.isoformat()  # nothing was kept
    code, _, err = run("clock", "--set", "2026-01-02T03:04", "--yes", "--device", "sim:libre")
    assert code == 0, err
    code, out, _ = run("clock", "--device", "sim:libre?state=none", "--json")
    assert json.loads(out)["reader"] == DEFAULT_NOW.isoformat()  # none: not read either
    code, out, _ = run("clock", "--device", "sim:libre", "--json")
    assert json.loads(out)["reader"].startswith("2026-01-02T03:0")
    default_state_path("libre", 0).unlink()  # the documented reset
    code, out, _ = run("clock", "--device", "sim:libre", "--json")
    assert json.loads(out)["reader"] == DEFAULT_NOW.isoformat()


def test_a_broken_state_file_is_a_one_line_error(tmp_path: Path) -> None:
    state = tmp_path / "clock.json"
    state.write_text("{not json")
    code, out, err = run("clock", "--device", f"sim:libre?state={state}")
    assert code == EXIT_INPUT and out == "" and err.count("\n") == 1 and str(state) in err


def test_default_state_path() -> None:
    assert default_state_path("libre", 3, {"XDG_STATE_HOME": "/s", "HOME": "/home/u"}) == Path(
        "/s/libre-dump/sim/libre-seed3.json")
    for unset in ({}, {"XDG_STATE_HOME": ""}, {"XDG_STATE_HOME": "relative"}):
        assert default_state_path("neo", 0, {**unset, "HOME": "/home/u"}) == Path(
            "/home/u/.local/state/libre-dump/sim/neo-seed0.json")


# -- the binary setter: SET_DATE_TIME ----------------------------------------------------------

@pytest.mark.parametrize("model", ["libre", "libre_pro"])
def test_binary_set_and_read_back_in_one_session(model: str) -> None:
    reader = VirtualReader(model, 3)
    session = Session(SimTransport(reader), model, protocol="binary")
    assert session.read_clock() == DEFAULT_NOW
    session.set_clock(dt.datetime(2027, 2, 3, 4, 5, 6))
    assert session.read_clock() == dt.datetime(2027, 2, 3, 4, 5)  # to the minute
    ops = [op for op, _ in reader.binary_commands]
    assert ops == [Op.GET_DATE_TIME, Op.SET_DATE_TIME, Op.GET_DATE_TIME]
    (data,) = [d for op, d in reader.binary_commands if op == Op.SET_DATE_TIME]
    assert data == date_time_data(2027, 2, 3, 4, 5, 0)
    # no text setter went out, and nothing but reads beside the one SET_DATE_TIME
    assert all(is_read_only(c) for c in reader.commands)
    assert set(ops) - {Op.SET_DATE_TIME} <= READ_OPS
    # the text protocol reads the same clock ($rdt?)
    assert Session(SimTransport(reader), model, protocol="text").read_clock() == (
        dt.datetime(2027, 2, 3, 4, 5))


def test_binary_clock_command_sets_and_a_later_run_reads_back(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    readers = built_readers(monkeypatch)
    transcript = tmp_path / "clock.jsonl"
    code, out, err = run("clock", "--protocol", "binary", "--set", "2026-01-02T03:04:59",
                         "--yes", "--device", "sim:libre", "--json", "--record", str(transcript))
    assert code == 0, err
    data = json.loads(out)
    assert data["set_to"] == data["reader_after"] == "2026-01-02T03:04:00"
    (reader,) = readers
    assert [op for op, _ in reader.binary_commands].count(Op.SET_DATE_TIME) == 1
    assert not any(c.startswith(("$date,", "$time,")) for c in reader.commands)
    # the transcript holds the binary setter (a 0x0a report carrying op 0x42)
    sent = [bytes.fromhex(json.loads(line)["data"]) for line in
            transcript.read_text().splitlines() if json.loads(line)["dir"] == "out"]
    assert any(r[0] == MessageType.BINARY_REQUEST and bytes([Op.SET_DATE_TIME]) in r[2:2 + r[1]]
               for r in sent)
    # a later run reads the new clock back, with either protocol
    for protocol in ("binary", "text"):
        code, out, err = run("clock", "--protocol", protocol, "--device", "sim:libre", "--json")
        assert code == 0, err
        assert json.loads(out)["reader"].startswith("2026-01-02T03:0"), protocol
    # reading the clock with the binary protocol sends GET_DATE_TIME and nothing that writes
    assert all(op != Op.SET_DATE_TIME for r in readers[1:] for op, _ in r.binary_commands)
    assert [op for op, _ in readers[1].binary_commands] == [Op.GET_DATE_TIME]


def test_text_setter_then_binary_read_back_in_another_process() -> None:
    done = _cli("clock", "--set", "2026-04-05T06:07", "--yes", "--device", "sim:libre_pro",
                "--protocol", "text")
    assert done.returncode == 0, done.stderr
    done = _cli("clock", "--device", "sim:libre_pro", "--protocol", "binary", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["reader"].startswith("2026-04-05T06:0")


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
