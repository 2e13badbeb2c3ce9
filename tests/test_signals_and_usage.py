"""Streams, signals, usage errors and terminals (issue 18, classes 7, 9, 10, 11).

- a signal at any moment, the first tenths of a second (imports) included, ends the run
  with 128 + N and one line, never a traceback; a repeated Ctrl-C changes nothing;
- with stderr closed a successful run still succeeds;
- a usage error is one line, exit 2; ``nan``/``inf`` are not numbers for any option;
- a reader that dribbles and never finishes a reply ends in exit 5 within ``--deadline``;
- control characters from an upload do not reach the terminal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from libre_usb.cli import main
from libre_usb.errors import DeviceTimeout
from libre_usb.reader.session import Session
from libre_usb.simulator import VirtualReader
from libre_usb.transport.interfaces.sim import SimTransport

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def spawn(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "libre_usb", *args], env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            **kwargs)  # type: ignore[call-overload]


def wait_for_our_handlers(pid: int) -> None:
    """Until the child runs our first instruction (it catches SIGTERM from then on; the
    interpreter's own start-up before it, site imports included, is Python's, not ours)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("SigCgt:") and int(line.split()[1], 16) >> (
                        signal.SIGTERM - 1) & 1:
                    return
        time.sleep(0.001)
    raise AssertionError("the child never installed its signal handlers")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("after", [0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.6])
def test_a_signal_at_any_moment_gives_128_plus_n_and_no_traceback(
        tmp_path: Path, signum: int, after: float) -> None:
    proc = spawn("dump", "-d", "sim:libre?pace_ms=2&days=3", "-q", "-o", str(tmp_path / "o"))
    wait_for_our_handlers(proc.pid)
    time.sleep(after)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err.count("\n") <= 1, err
    assert not (tmp_path / "o").exists()


def test_a_repeated_ctrl_c_changes_nothing(tmp_path: Path) -> None:
    proc = spawn("dump", "-d", "sim:libre?pace_ms=2", "-q", "-o", str(tmp_path / "o"))
    time.sleep(1.5)
    for _ in range(5):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.01)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err == "libre-dump: error: interrupted; no partial output was written\n"


def test_with_stderr_closed_a_good_run_succeeds(tmp_path: Path) -> None:
    target = tmp_path / "dump.json"
    command = (f"exec {sys.executable} -m libre_usb dump -d 'sim:libre?days=2&faults="
               f"checksum_once' -o {target} 2>&-")
    proc = subprocess.run(["sh", "-c", command], env=ENV, timeout=60, check=False)
    assert proc.returncode == 0
    assert json.loads(target.read_text())["format"] == "libre-dump"


@pytest.mark.parametrize("args", [
    ["dump", "--bogus"],
    ["dump", "--timeout", "nan"],
    ["dump", "--timeout", "inf"],
    ["dump", "--deadline", "nan"],
    ["dump", "--format", "xml"],
    ["diff"],
    ["diff", "--time-tolerance", "nan", "x"],
    ["diff", "--time-tolerance", "inf", "x"],
    ["diff", "--max-bytes", str(1 << 63), "x"],
    ["nosuchcommand"],
])
def test_a_usage_error_is_one_line_exit_2(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stdout == ""
    assert result.stderr.startswith("libre-dump: error: ") and result.stderr.count("\n") == 1, (
        result.stderr)


def test_a_dribbling_reader_ends_within_the_deadline() -> None:
    """62 bytes every 50 ms and a reply of thousands of reports: without a deadline per
    reply only the reply cap would end it (hours); with one it is exit 5 in bounded time."""
    reader = VirtualReader("libre", 0, days=90, pace_ms=50)
    start = time.monotonic()
    with pytest.raises(DeviceTimeout, match="did not finish its reply to \\$history\\? within"):
        with Session(SimTransport(reader), "libre", timeout_ms=300, deadline_s=1.0) as session:
            session.records("$history?", "libre_history")
    assert time.monotonic() - start < 4


def test_deadline_option_reaches_the_session() -> None:
    result = CliRunner().invoke(main, ["dump", "-d", "sim:libre?pace_ms=20&days=30",
                                       "--timeout", "0.3", "--deadline", "0.5", "-q"])
    assert result.exit_code == 5, result.output
    assert "within 0.5 s" in result.stderr and result.stderr.count("\n") == 1


def test_control_characters_from_an_upload_are_escaped(tmp_path: Path) -> None:
    runner = CliRunner()
    dump = tmp_path / "dump.json"
    assert runner.invoke(main, ["dump", "-d", "sim:libre?days=2", "-q", "-o",
                                str(dump)]).exit_code == 0
    upload = json.loads(runner.invoke(main, ["dump", "-d", "sim:libre?days=2", "-q", "-f",
                                             "libreview", "--no-redact"]).stdout)
    hostile = "\x1b]0;owned\x07\x1b[2J\x9b31m"
    upload["DeviceData"]["header"]["device"]["modelName"] = hostile
    upload["DeviceData"]["header"]["device"]["unexplained\x1b[8m"] = hostile
    path = tmp_path / "upload\x1b[31m.json"
    path.write_text(json.dumps(upload))
    result = runner.invoke(main, ["diff", "--dump", str(dump), str(path)])
    assert result.exit_code in (0, 1), result.output
    assert not any(c in result.output for c in "\x1b\x07\x9b")
    assert "\\x1b]0;owned\\x07" in result.stdout
    path.write_text("{\x1b[2J")
    result = runner.invoke(main, ["diff", "--dump", str(dump), str(path)])
    assert result.exit_code == 2 and "\x1b" not in result.stderr, result.stderr


def test_udev_install_names_a_prefix_that_is_a_file(tmp_path: Path) -> None:
    prefix = tmp_path / "rules.d"
    prefix.write_text("")
    result = CliRunner().invoke(main, ["udev", "install", "--prefix", str(prefix)])
    assert result.exit_code == 2, result.output
    assert "is a file, not a directory" in result.stderr
