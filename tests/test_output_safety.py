"""Output files appear complete or not at all, whatever stops the run.

Covered here: ``--record`` transcripts and ``-o`` dumps under SIGTERM and Ctrl-C (a real
process, signalled in the middle of its read), an unplug in the middle of a reply (the
transport raises Disconnected), the ``diff`` report under an unplug, a session that fails
with a timeout or a protocol error (its transcript is kept, marked as failed, and replays
to the same error), and the temp file + fsync + rename order of :func:`atomic_write`.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from captures import UPLOAD_EXAMPLE, need
from click.testing import CliRunner

from libre_usb.cli import main
from libre_usb.errors import EXIT_DEVICE, EXIT_PROTOCOL, EXIT_TIMEOUT
from libre_usb.output import atomic

OLD = "an earlier, complete file\n"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def _read_until(fd: int, marker: bytes, seconds: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + seconds
    while marker not in seen and time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        seen += chunk
    return seen


def _signal_mid_read(tmp_path: Path, signum: int) -> tuple[int, str]:
    """Start a paced dump with -o and --record, wait until its progress line shows it in
    the middle of ``$history?``, send ``signum``; return the exit code and stderr."""
    master, slave = pty.openpty()  # stderr on a terminal, so the progress line is shown
    proc = subprocess.Popen(
        [sys.executable, "-m", "libre_usb", "dump", "--device", "sim:libre?pace_ms=1",
         "-o", "out.json", "--record", "session.jsonl"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
    )
    os.close(slave)
    try:
        seen = _read_until(master, b"$history? ", 60)
        assert b"$history? " in seen, seen
        proc.send_signal(signum)
        proc.wait(timeout=30)
        seen += _read_until(master, b"\0", 5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return proc.returncode, seen.decode(errors="replace")


@pytest.mark.parametrize(("signum", "says"), [
    (signal.SIGTERM, "terminated by SIGTERM; no partial output was written"),
    (signal.SIGINT, "interrupted; no partial output was written"),
])
def test_a_signal_mid_read_leaves_the_old_files_and_nothing_else(
        tmp_path: Path, signum: int, says: str) -> None:
    (tmp_path / "out.json").write_text(OLD)
    (tmp_path / "session.jsonl").write_text(OLD)
    code, err = _signal_mid_read(tmp_path, signum)
    assert code == 128 + signum, err
    assert says in err and "Traceback" not in err
    # the earlier files are as they were, and no temporary file is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "session.jsonl"]
    assert (tmp_path / "out.json").read_text() == OLD
    assert (tmp_path / "session.jsonl").read_text() == OLD


def test_a_signal_mid_read_creates_no_transcript(tmp_path: Path) -> None:
    code, err = _signal_mid_read(tmp_path, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, err
    assert list(tmp_path.iterdir()) == []


def test_an_unplug_mid_reply_writes_neither_dump_nor_transcript(tmp_path: Path) -> None:
    out, transcript = tmp_path / "out.json", tmp_path / "session.jsonl"
    code, stdout, err = run("dump", "--device", "sim:libre?days=10&faults=unplug",
                            "-o", str(out), "--record", str(transcript))
    assert code == EXIT_DEVICE
    assert stdout == "" and err.count("\n") == 1
    assert "went away" in err and "no partial output was written" in err
    assert list(tmp_path.iterdir()) == []


def test_an_unplug_keeps_an_earlier_transcript_intact(tmp_path: Path) -> None:
    transcript = tmp_path / "session.jsonl"
    transcript.write_text(OLD)
    code, _, _ = run("info", "--device", "sim:libre?faults=unplug@$ptname?",
                     "--record", str(transcript))
    assert code == EXIT_DEVICE
    assert transcript.read_text() == OLD
    assert [p.name for p in tmp_path.iterdir()] == ["session.jsonl"]


def test_an_unplug_during_diff_writes_no_report(tmp_path: Path) -> None:
    upload = need(UPLOAD_EXAMPLE)
    report = tmp_path / "report.txt"
    code, stdout, err = run("diff", str(upload), "--device", "sim:libre?days=10&faults=unplug",
                            "-o", str(report))
    assert code == EXIT_DEVICE and stdout == ""
    assert "no partial output was written" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("fault", "code", "error"), [
    ("silent", EXIT_TIMEOUT, "DeviceTimeout"),
    ("checksum_always", EXIT_PROTOCOL, "ChecksumError"),
])
def test_a_failed_session_keeps_a_transcript_that_says_so_and_replays_the_failure(
        tmp_path: Path, fault: str, code: int, error: str) -> None:
    out, transcript = tmp_path / "out.json", tmp_path / "session.jsonl"
    first = run("dump", "--device", f"sim:libre?days=10&faults={fault}", "--timeout", "0.3",
                "-o", str(out), "--record", str(transcript))
    assert first[0] == code
    assert not out.exists()
    lines = [json.loads(line) for line in transcript.read_text().splitlines()]
    assert lines[0]["dir"] == "meta"
    assert lines[-1]["dir"] == "end" and lines[-1]["error"].startswith(f"{error}: ")
    assert sum(1 for line in lines if line["dir"] == "end") == 1
    # the transcript reproduces the failure, with the same message
    second = run("dump", "--device", f"replay:{transcript}", "--model", "libre",
                 "--timeout", "0.3")
    assert second[0] == code
    assert second[2].splitlines()[-1] == first[2].splitlines()[-1]


def test_a_finished_session_has_no_end_line(tmp_path: Path) -> None:
    transcript = tmp_path / "session.jsonl"
    assert run("info", "--device", "sim:libre", "--record", str(transcript))[0] == 0
    assert all(json.loads(line)["dir"] != "end" for line in transcript.read_text().splitlines())


def test_atomic_write_syncs_before_it_renames(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(atomic.os, "replace",
                        lambda a, b: (calls.append("replace"), real_replace(a, b)))
    target = tmp_path / "x.txt"
    with atomic.atomic_write(target) as handle:
        handle.write("complete")
        assert not target.exists()  # nothing under the target name while writing
    assert calls == ["fsync", "replace"]
    assert target.read_text() == "complete"


def test_the_temporary_file_is_new_private_and_never_a_link(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """atomic_write's own mkstemp: mode 0600 while written, a name already taken (here a
    link planted under the first name drawn) is never opened but drawn again."""
    draws = iter([b"\x00" * 6, b"\x00" * 6, b"\x01" * 6])
    monkeypatch.setattr(atomic.os, "urandom", lambda n: next(draws))
    planted = tmp_path / ".x.txt.000000000000.tmp"
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    planted.symlink_to(victim)
    target = tmp_path / "x.txt"
    with atomic.atomic_write(target) as handle:
        temporary = tmp_path / ".x.txt.010101010101.tmp"
        assert temporary.exists() and not temporary.is_symlink()
        assert temporary.stat().st_mode & 0o777 == 0o600
        handle.write("complete")
    assert target.read_text() == "complete" and victim.read_text() == "untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == [planted.name, "victim", "x.txt"]


def test_atomic_write_interrupted_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    target.write_text(OLD)
    with pytest.raises(KeyboardInterrupt), atomic.atomic_write(target) as handle:
        handle.write("half")
        raise KeyboardInterrupt
    assert target.read_text() == OLD
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]
