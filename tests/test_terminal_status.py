"""What a person sees on a terminal: the progress line while a reader sends its records, erased
cleanly and replaced by a one-line summary; and nothing at all on stderr when it is a pipe or
with --quiet. The commands run in a real pseudo-terminal (the pty module), as in a shell."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

from libre_usb.cli.device_cmds import default_output_name
from libre_usb.cli.status import ERASE, StatusLine, dump_summary, human_bytes
from libre_usb.model import DeviceInfo, Dump

ROOT = Path(__file__).resolve().parent.parent
SIM = "sim:libre?days=3&pace_ms=0.5"
SUMMARY = re.compile(r"^\d+ records \(history \d+, scans \d+.*\) in \d+:\d\d -> (\S+)$")


def _run(args: list[str], cwd: Path, *, stdout_tty: bool, stderr_tty: bool,
         env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    """Run ``python -m libre_usb ARGS``; stdout and stderr each on a pty or a pipe.
    Returns the exit code, what stdout got and what stderr got (raw bytes)."""
    fds: dict[str, tuple[int, int]] = {}
    for name, tty in (("out", stdout_tty), ("err", stderr_tty)):
        fds[name] = pty.openpty() if tty else os.pipe()
    environ = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200", **(env or {}))
    proc = subprocess.Popen([sys.executable, "-m", "libre_usb", *args], cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=fds["out"][1],
                            stderr=fds["err"][1], env=environ)
    for _reader, writer in fds.values():
        os.close(writer)
    got = {"out": b"", "err": b""}
    open_fds = {fds["out"][0]: "out", fds["err"][0]: "err"}
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [], 120)
        if not ready:
            proc.kill()
            raise AssertionError(f"no output for 120 s: {got}")
        for fd in ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the pty's other side is closed
                chunk = b""
            if not chunk:
                os.close(fd)
                del open_fds[fd]
            else:
                got[open_fds[fd]] += chunk
    return proc.wait(timeout=60), got["out"], got["err"]


def _screen(raw: bytes) -> list[str]:
    """The lines a terminal shows after ``raw``: CR goes to column 0, ESC[K erases to the end
    of the line, LF starts a new line (the pty turns it into CR LF)."""
    lines = [""]
    col = 0
    text = raw.decode()
    i = 0
    while i < len(text):
        if text.startswith("\033[K", i):
            lines[-1] = lines[-1][:col]
            i += 3
            continue
        ch = text[i]
        if ch == "\r":
            col = 0
        elif ch == "\n":
            lines.append("")
            col = 0
        else:
            line = lines[-1]
            lines[-1] = line[:col] + ch + line[col + 1:]
            col += 1
        i += 1
    return [line for line in lines if line]


def test_on_a_terminal_progress_then_a_summary_and_the_dump_in_a_file(tmp_path: Path) -> None:
    code, out, err = _run(["dump", "--device", SIM], tmp_path, stdout_tty=True, stderr_tty=True)
    assert code == 0, err
    assert out == b""  # no JSON poured into the terminal
    text = err.decode()
    # the progress line was drawn, more than once, each time over the previous one
    drawn = re.findall(r"\r\033\[Kreading (\$\w+\?) (\d+) records, ([\d.]+ k?B), "
                       r"([\d.]+ k?B)/s, (\d+:\d\d)", text)
    assert len(drawn) >= 2, text
    assert {command for command, *_ in drawn} >= {"$history?"}
    # and at the end the screen holds the summary and nothing else: no stray characters
    screen = _screen(err)
    assert len(screen) == 1, screen
    match = SUMMARY.match(screen[0])
    assert match, screen
    written = tmp_path / match.group(1)
    dump = json.loads(written.read_text())
    counts = {kind: len(records) for kind, records in dump["records"].items() if records}
    assert int(screen[0].split()[0]) == sum(counts.values())
    for kind, n in counts.items():
        assert f"{kind.replace('_', ' ')} {n}" in screen[0]
    assert [p.name for p in tmp_path.iterdir()] == [written.name]


def test_a_retry_mid_read_leaves_no_stray_characters(tmp_path: Path) -> None:
    device = SIM + "&faults=checksum_once@history"
    code, _, err = _run(["dump", "--device", device, "-o", "out.json"], tmp_path,
                        stdout_tty=True, stderr_tty=True)
    assert code == 0, err
    screen = _screen(err)
    assert len(screen) == 3, screen
    assert "WARNING: $history?" in screen[0] and "retrying" in screen[0]
    assert screen[1] == "note: retried $history? after a broken reply"
    assert SUMMARY.match(screen[2]) and screen[2].endswith("-> out.json")


def test_stdout_piped_stderr_on_a_terminal_says_stdout(tmp_path: Path) -> None:
    code, out, err = _run(["dump", "--device", SIM, "-f", "csv"], tmp_path,
                          stdout_tty=False, stderr_tty=True)
    assert code == 0
    assert out.startswith(b"kind,") or b"," in out.splitlines()[0]
    screen = _screen(err)
    assert len(screen) == 1 and screen[0].endswith("-> stdout"), screen
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("stdout_tty", [False, True])
def test_nothing_on_stderr_when_it_is_a_pipe(tmp_path: Path, stdout_tty: bool) -> None:
    code, out, err = _run(["dump", "--device", SIM, "-o", "out.json"], tmp_path,
                          stdout_tty=stdout_tty, stderr_tty=False)
    assert code == 0
    assert err == b"" and out == b""
    assert json.loads((tmp_path / "out.json").read_text())["device"]["model"] == "libre"


def test_quiet_on_a_terminal_shows_nothing(tmp_path: Path) -> None:
    code, out, err = _run(["dump", "--device", SIM, "--quiet", "-o", "out.json"], tmp_path,
                          stdout_tty=True, stderr_tty=True)
    assert code == 0
    assert err == b"" and out == b""


def test_diff_device_shows_progress_on_a_terminal_and_nothing_on_a_pipe(tmp_path: Path) -> None:
    upload = ROOT / "tests" / "data" / "juggluco-upload-example" / "upload-example.json"
    args = ["diff", str(upload), "--device", SIM, "-o", "report.txt"]
    code, _, err = _run(args, tmp_path, stdout_tty=True, stderr_tty=True)
    assert code in (0, 1)
    assert re.search(r"\r\033\[Kreading \$history\? \d+ records", err.decode()), err
    assert _screen(err) == []  # erased: the report is in the file
    code, _, err = _run(args, tmp_path, stdout_tty=False, stderr_tty=False)
    assert code in (0, 1) and err == b""


def test_the_line_never_wraps_and_each_redraw_erases_the_last() -> None:
    ticks = iter([0.0, 0.0, 1.0, 1.05, 2.0])
    stream = io.StringIO()
    status = StatusLine(enabled=True, stream=stream, clock=lambda: next(ticks))
    os.environ["COLUMNS"] = "30"
    try:
        status.update("$history?", 100_000, 12_345_678)   # drawn
        status.update("$history?", 100_001, 12_345_700)   # drawn (1 s later)
        status.update("$history?", 100_002, 12_345_800)   # skipped: 50 ms after the last
        status.update("$arresult?", 5, 12_400_000)        # drawn, shorter than before
    finally:
        del os.environ["COLUMNS"]
    status.finish("done")
    parts = stream.getvalue().split(ERASE)
    assert parts[0] == "" and len(parts) == 5  # three draws and the final erase
    assert all(len(part) <= 29 for part in parts[1:4])
    assert parts[-1] == "done\n"


def test_disabled_writes_nothing() -> None:
    stream = io.StringIO()
    status = StatusLine(enabled=False, stream=stream)
    status.update("$history?", 1, 64)
    status.finish("summary")
    assert stream.getvalue() == ""


def test_summary_and_sizes() -> None:
    empty = Dump(device=DeviceInfo(model="libre", product_id=0x3650), records=())
    assert dump_summary(empty, "x.json", 65) == "0 records in 1:05 -> x.json"
    assert human_bytes(999) == "999 B" and human_bytes(1500) == "1.5 kB"
    assert human_bytes(2_500_000) == "2.5 MB"


def test_default_file_name_never_overwrites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    import datetime as dt

    monkeypatch.chdir(tmp_path)
    now = dt.datetime(2026, 12, 6, 8, 15, 0)
    assert default_output_name("libre", "json", now) == "libre-20261206-081500.json"
    (tmp_path / "libre-20261206-081500.json").write_text("{}")
    assert default_output_name("libre", "json", now) == "libre-20261206-081500-2.json"
    assert default_output_name("neo", "libreview", now) == "neo-20261206-081500.libreview.json"


def test_a_log_message_erases_the_line_first() -> None:
    import logging

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        status = StatusLine(enabled=True, stream=stream, per_second=1e9)
        status.update("$history?", 10, 640)
        logging.getLogger("libre_usb.reader.session").warning("retrying")
        status.update("$history?", 20, 1280)
        status.finish("done")
    finally:
        root.removeHandler(handler)
    assert handler.filters == []
    text = stream.getvalue()
    assert ERASE + "retrying\n" in text  # the line went before the message was written
    assert text.endswith(ERASE + "done\n")
